//! Keymaps: the TUI's actions, keys in their canonical text form (`ctrl-d`, `G`, `f5`), and the
//! TOML keymap file with its `parent`. A resolved keymap never binds one key to two actions.

use super::{Layer, UiKind, by_name, check_size, layer, load_chain, toml_error};
use crate::domain::printable;
use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

named_enum! {
    /// What a key does in the TUI.
    pub enum Action {
        Quit = "quit",
        Help = "help",
        Back = "back",
        Command = "command",
        Filter = "filter",
        Shell = "shell",
        Refresh = "refresh",
        Up = "up",
        Down = "down",
        PageUp = "page_up",
        PageDown = "page_down",
        Top = "top",
        Bottom = "bottom",
        Open = "open",
        NextScreen = "next_screen",
        PrevScreen = "prev_screen",
        ScreenOverview = "screen_overview",
        ScreenServers = "screen_servers",
        ScreenSites = "screen_sites",
        ScreenJobs = "screen_jobs",
        ScreenLogs = "screen_logs",
        ScreenUsers = "screen_users",
        SortNext = "sort_next",
        SortReverse = "sort_reverse",
        Create = "create",
        Delete = "delete",
        Enable = "enable",
        Disable = "disable",
        Reboot = "reboot",
        Resize = "resize",
        Power = "power",
        Retry = "retry",
        Logs = "logs",
    }
}

impl Action {
    /// One line for the help overlay.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit vipanel",
            Action::Help => "show or hide the keys",
            Action::Back => "close the overlay, clear the filter, go back",
            Action::Command => "command mode: a screen by name (:sites, :srv), :shell, :quit",
            Action::Filter => "filter the list",
            Action::Shell => "leave the dashboard for the shell",
            Action::Refresh => "refresh now",
            Action::Up => "move up",
            Action::Down => "move down",
            Action::PageUp => "move up a page",
            Action::PageDown => "move down a page",
            Action::Top => "go to the first item",
            Action::Bottom => "go to the last item",
            Action::Open => "open the selected item",
            Action::NextScreen => "next screen",
            Action::PrevScreen => "previous screen",
            Action::ScreenOverview => "the overview",
            Action::ScreenServers => "the servers",
            Action::ScreenSites => "the sites",
            Action::ScreenJobs => "the jobs",
            Action::ScreenLogs => "the logs",
            Action::ScreenUsers => "the users",
            Action::SortNext => "sort by the next column",
            Action::SortReverse => "reverse the sort order",
            Action::Create => "create an item here",
            Action::Delete => "delete the selected item (asks first)",
            Action::Enable => "enable the selected item",
            Action::Disable => "disable the selected item",
            Action::Reboot => "reboot the selected server",
            Action::Resize => "resize the selected server",
            Action::Power => "power the selected server on or off",
            Action::Retry => "retry the selected job",
            Action::Logs => "show the selected item's logs",
        }
    }
}

/// A key without its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCode {
    /// A printable character, as typed (`G` is shift-g).
    Char(char),
    Up,
    Down,
    Left,
    Right,
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Insert,
    Home,
    End,
    PageUp,
    PageDown,
    Space,
    /// F1 to F12.
    F(u8),
}

/// The named keys with their canonical names.
const NAMED: &[(KeyCode, &str)] = &[
    (KeyCode::Up, "up"),
    (KeyCode::Down, "down"),
    (KeyCode::Left, "left"),
    (KeyCode::Right, "right"),
    (KeyCode::Enter, "enter"),
    (KeyCode::Esc, "esc"),
    (KeyCode::Tab, "tab"),
    (KeyCode::BackTab, "backtab"),
    (KeyCode::Backspace, "backspace"),
    (KeyCode::Delete, "delete"),
    (KeyCode::Insert, "insert"),
    (KeyCode::Home, "home"),
    (KeyCode::End, "end"),
    (KeyCode::PageUp, "pageup"),
    (KeyCode::PageDown, "pagedown"),
    (KeyCode::Space, "space"),
];

/// A key with its modifiers. Shift is part of the character (`G`, `?`), not a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    /// A key without modifiers.
    pub fn plain(code: KeyCode) -> Key {
        Key {
            code,
            ctrl: false,
            alt: false,
        }
    }

    /// Parses the text form: `j`, `G`, `?`, `ctrl-d`, `alt-v`, `ctrl-alt-x`, `pageup`, `f5`,
    /// `shift-tab`… Names and modifiers are case-insensitive; a single character is itself
    /// (with `ctrl`, a letter's case does not matter: terminals cannot tell).
    pub fn parse(input: &str) -> Result<Key> {
        let invalid =
            |why: &str| Error::invalid(format!("key {} is not valid: {why}", printable(input)));
        if input.is_empty() {
            return Err(invalid("it is empty"));
        }
        let (mut ctrl, mut alt) = (false, false);
        let mut rest = input;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.chars().count() > 1 && lower.starts_with("ctrl-") {
                ctrl = true;
                rest = &rest[5..];
            } else if rest.chars().count() > 1 && lower.starts_with("alt-") {
                alt = true;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (None, _) => return Err(invalid("a modifier needs a key after it")),
            (Some(c), None) if c.is_control() => {
                return Err(invalid("control characters are not keys; write ctrl-x"));
            }
            (Some(' '), None) => KeyCode::Space,
            (Some(c), None) if ctrl && c.is_ascii_alphabetic() => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            (Some(c), None) => KeyCode::Char(c),
            _ => {
                let lower = rest.to_ascii_lowercase();
                let function = lower
                    .strip_prefix('f')
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=12).contains(n) && !lower.starts_with("f0"));
                match (lower.as_str(), function) {
                    (_, Some(n)) => KeyCode::F(n),
                    ("shift-tab", _) => KeyCode::BackTab,
                    (name, _) => NAMED
                        .iter()
                        .find(|(_, n)| *n == name)
                        .map(|(code, _)| *code)
                        .ok_or_else(|| {
                            let names: Vec<&str> = NAMED.iter().map(|(_, n)| *n).collect();
                            invalid(&format!(
                                "use one character (j, G, ?), a name ({}, f1 to f12), \
                                 optionally after ctrl- and/or alt-",
                                names.join(", ")
                            ))
                        })?,
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "f{n}"),
            named => f.write_str(
                NAMED
                    .iter()
                    .find(|(c, _)| *c == named)
                    .map_or("?", |(_, n)| n),
            ),
        }
    }
}

impl std::str::FromStr for Key {
    type Err = Error;
    fn from_str(s: &str) -> Result<Key> {
        Key::parse(s)
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Key::parse(&text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A resolved keymap: every [`Action`] present (an empty list only when a file unbinds it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keymap {
    pub name: String,
    pub bindings: BTreeMap<Action, Vec<Key>>,
}

impl Keymap {
    /// The action `key` is bound to, if any.
    pub fn action_for(&self, key: &Key) -> Option<Action> {
        self.bindings
            .iter()
            .find(|(_, keys)| keys.contains(key))
            .map(|(action, _)| *action)
    }

    /// The keys bound to `action` (for the help bar).
    pub fn keys(&self, action: Action) -> &[Key] {
        self.bindings.get(&action).map_or(&[], Vec::as_slice)
    }

    /// Resolves keymap `name`: shipped keymaps first, then the user's `own` files (name →
    /// TOML). Refuses a result that binds a key to two actions, listing every such key.
    pub fn resolve(name: &str, own: &BTreeMap<String, String>) -> Result<Keymap> {
        let chain = load_chain(UiKind::Keymap, name, own, KeymapFile::parse, |f| {
            f.parent.as_deref()
        })?;
        let bindings = layer(
            UiKind::Keymap,
            &chain,
            Action::ALL,
            Action::as_str,
            "bind every action",
        )?;
        let keymap = Keymap {
            name: name.to_owned(),
            bindings,
        };
        let conflicts = keymap.conflicts();
        if !conflicts.is_empty() {
            return Err(Error::invalid(format!(
                "keymap {}: {}",
                printable(name),
                conflicts.join("\n")
            )));
        }
        Ok(keymap)
    }

    /// A shipped keymap, resolved (`default`, `vim`, `emacs`).
    pub fn shipped(name: &str) -> Result<Keymap> {
        Self::resolve(name, &BTreeMap::new())
    }

    /// One line per key bound to more than one action, in key order.
    fn conflicts(&self) -> Vec<String> {
        let mut by_key: BTreeMap<Key, Vec<Action>> = BTreeMap::new();
        for (action, keys) in &self.bindings {
            for key in keys {
                let actions = by_key.entry(*key).or_default();
                if !actions.contains(action) {
                    actions.push(*action);
                }
            }
        }
        by_key
            .into_iter()
            .filter(|(_, actions)| actions.len() > 1)
            .map(|(key, actions)| {
                let quoted: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
                let (last, first) = quoted
                    .split_last()
                    .map_or((None, &[][..]), |(l, f)| (Some(l), f));
                let both = if first.len() == 1 { "both " } else { "" };
                format!(
                    "key \"{key}\" is bound to {both}{} and {}; bind it to one action only",
                    first.join(", "),
                    last.map_or("", String::as_str)
                )
            })
            .collect()
    }
}

impl Layer<Action, Vec<Key>> for KeymapFile {
    fn entries(&self) -> &BTreeMap<Action, Vec<Key>> {
        &self.bindings
    }
}

/// One keymap file as written: what it overrides of its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeymapFile {
    pub description: Option<String>,
    pub parent: Option<String>,
    pub bindings: BTreeMap<Action, Vec<Key>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeymap {
    description: Option<String>,
    parent: Option<String>,
    #[serde(default)]
    bindings: BTreeMap<String, KeyList>,
}

/// `"key"` or `["key", …]`.
struct KeyList(Vec<Key>);

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KeyList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key (\"j\") or a list of keys ([\"j\", \"down\"])")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<KeyList, E> {
                Key::parse(v)
                    .map(|k| KeyList(vec![k]))
                    .map_err(|e| E::custom(e.message))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<KeyList, A::Error> {
                let mut keys: Vec<Key> = Vec::new();
                while let Some(key) = seq.next_element::<Key>()? {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                Ok(KeyList(keys))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl KeymapFile {
    /// Parses the TOML of keymap `name` (the name only goes into error messages).
    pub fn parse(name: &str, text: &str) -> Result<KeymapFile> {
        check_size(UiKind::Keymap, name, text)?;
        let raw: RawKeymap =
            toml::from_str(text).map_err(|e| toml_error(UiKind::Keymap, name, text, &e))?;
        let bindings = by_name(
            UiKind::Keymap,
            name,
            "action",
            raw.bindings,
            Action::from_name,
            Action::names,
        )?
        .into_iter()
        .map(|(action, keys)| (action, keys.0))
        .collect();
        Ok(KeymapFile {
            description: raw.description,
            parent: raw.parent,
            bindings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ui::SHIPPED_KEYMAPS;

    fn own(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect()
    }

    fn keys(list: &[&str]) -> Vec<Key> {
        list.iter().map(|k| Key::parse(k).unwrap()).collect()
    }

    #[test]
    fn every_shipped_keymap_resolves_fully() {
        for (name, _) in SHIPPED_KEYMAPS {
            let keymap = Keymap::shipped(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(keymap.bindings.len(), Action::ALL.len(), "{name}");
            for action in Action::ALL {
                assert!(!keymap.keys(*action).is_empty(), "{name}: {action} unbound");
                assert!(!action.describe().is_empty());
            }
        }
        let default = Keymap::shipped("default").unwrap();
        assert_eq!(default.keys(Action::Quit), keys(&["q", "ctrl-c"]));
        assert_eq!(default.keys(Action::ScreenUsers), keys(&["6"]));
        assert_eq!(default.keys(Action::SortReverse), keys(&["S"]));
        let vim = Keymap::shipped("vim").unwrap();
        assert_eq!(vim.keys(Action::Bottom), keys(&["G", "end"]));
        assert_eq!(vim.keys(Action::PageDown), keys(&["ctrl-d", "pagedown"]));
        assert_eq!(vim.keys(Action::Delete), keys(&["d"]), "inherited");
        let emacs = Keymap::shipped("emacs").unwrap();
        assert_eq!(emacs.keys(Action::Back), keys(&["esc", "ctrl-g"]));
        assert_eq!(emacs.keys(Action::Top), keys(&["alt-<", "home"]));
        assert_eq!(
            emacs.action_for(&Key::parse("ctrl-n").unwrap()),
            Some(Action::Down)
        );
    }

    #[test]
    fn keys_round_trip_in_canonical_form() {
        let canonical = [
            "j",
            "G",
            "?",
            "/",
            ":",
            "!",
            "-",
            "ctrl-d",
            "alt-v",
            "ctrl-alt-x",
            "alt-<",
            "up",
            "down",
            "left",
            "right",
            "enter",
            "esc",
            "tab",
            "backtab",
            "backspace",
            "delete",
            "insert",
            "home",
            "end",
            "pageup",
            "pagedown",
            "space",
            "f1",
            "f12",
            "ctrl--",
        ];
        for text in canonical {
            let key = Key::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(key.to_string(), text);
            let json = serde_json::to_string(&key).unwrap();
            assert_eq!(serde_json::from_str::<Key>(&json).unwrap(), key);
        }
        let same = [
            ("Ctrl-D", "ctrl-d"),
            ("ctrl-D", "ctrl-d"),
            ("ALT-ctrl-x", "ctrl-alt-x"),
            ("shift-tab", "backtab"),
            ("Shift-Tab", "backtab"),
            ("PageUp", "pageup"),
            ("F5", "f5"),
            (" ", "space"),
        ];
        for (input, canonical) in same {
            assert_eq!(Key::parse(input).unwrap().to_string(), canonical, "{input}");
        }
        assert_ne!(Key::parse("g").unwrap(), Key::parse("G").unwrap());
        assert_eq!(Key::parse("alt-V").unwrap().to_string(), "alt-V");
        for bad in [
            "", "ctrl-", "jj", "\u{7}", "f13", "f0", "hyper-x", "ctrl-foo", "\t",
        ] {
            let err = Key::parse(bad).unwrap_err();
            assert!(err.message.contains("key "), "{bad:?}: {err}");
        }
    }

    #[test]
    fn conflicts_are_refused_naming_both_bindings() {
        let mine = "parent = \"vim\"\n[bindings]\ndelete = [\"j\"]\n";
        let err = Keymap::resolve("mine", &own(&[("mine", mine)])).unwrap_err();
        assert_eq!(
            err.message,
            "keymap \"mine\": key \"j\" is bound to both \"down\" and \"delete\"; bind it to one action only"
        );
        let two = "parent = \"default\"\n[bindings]\nquit = [\"d\", \"x\"]\n";
        let err = Keymap::resolve("two", &own(&[("two", two)])).unwrap_err();
        let lines: Vec<&str> = err.message.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].contains("\"d\"") && lines[0].contains("\"delete\""),
            "{err}"
        );
        assert!(
            lines[1].contains("\"x\"") && lines[1].contains("\"disable\""),
            "{err}"
        );
        let moved = "parent = \"default\"\n[bindings]\nquit = \"d\"\ndelete = \"D\"\n";
        let keymap = Keymap::resolve("moved", &own(&[("moved", moved)])).unwrap();
        assert_eq!(keymap.keys(Action::Quit), keys(&["d"]));
        let unbound = "parent = \"default\"\n[bindings]\nshell = []\n";
        let keymap = Keymap::resolve("unbound", &own(&[("unbound", unbound)])).unwrap();
        assert!(keymap.keys(Action::Shell).is_empty());
    }

    #[test]
    fn evil_keymaps_are_refused_naming_the_problem() {
        let cases = [
            (
                "parent = \"default\"\n[bindings]\nexplode = \"x\"",
                "explode",
            ),
            ("parent = \"default\"\n[bindings]\nquit = \"jj\"", "jj"),
            ("parent = \"default\"\n[bindings]\nquit = 3", "key"),
            ("parent = \"default\"\nkeys = {}", "keys"),
            ("[bindings]\nquit = \"q\"", "missing"),
            ("parent = \"evil\"", "cycle"),
        ];
        for (text, needle) in cases {
            let err = Keymap::resolve("evil", &own(&[("evil", text)])).unwrap_err();
            assert!(err.message.contains(needle), "{text}: {err}");
        }
        let err = Keymap::resolve(
            "evil",
            &own(&[("evil", "parent = \"default\"\n[bindings]\nexplode = \"x\"")]),
        )
        .unwrap_err();
        assert!(
            err.message.contains("screen_overview"),
            "lists the valid ones: {err}"
        );
        let big = format!("parent = \"default\"\n#{}\n", "x".repeat(20 * 1024));
        assert!(Keymap::resolve("big", &own(&[("big", &big)])).is_err());
    }
}
