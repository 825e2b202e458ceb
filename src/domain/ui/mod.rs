//! Per-user UI preferences and the files behind them: themes (styles named by meaning) and
//! keymaps (keys bound to actions), each a TOML file that may name a `parent` and override it
//! partially.
//!
//! Pure data: parsing, validation and resolution only. Nothing here draws (no ratatui, no
//! crossterm), touches the database or knows who the user is; the service decides which files a
//! user may see and passes the user's own ones in. The TUI receives a [`UiSettings`] (the
//! output of `ui show -o json`) and maps these types onto its terminal library.

/// Defines a fieldless enum whose variants have one wire name each (used by serde, `as_str`,
/// `from_name`), with `ALL` in declaration order (which is also its `Ord`).
macro_rules! named_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name (snake_case).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The variant whose wire name is `name`.
            pub fn from_name(name: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == name)
            }

            /// Every wire name, comma separated (for error messages).
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod keymap;
mod theme;

pub use keymap::{Action, Key, KeyCode, Keymap, KeymapFile};
pub use theme::{Colour, Modifier, StyleName, StyleSpec, Theme, ThemeFile};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The largest theme or keymap file accepted, in bytes (16 KiB).
pub const MAX_FILE_BYTES: usize = 16 * 1024;
/// How many themes, and how many keymaps, one user may import.
pub const MAX_IMPORTED: usize = 20;
/// The longest parent chain, counting the file itself.
pub const MAX_DEPTH: usize = 8;
/// The longest name of an imported file.
pub const MAX_NAME_LEN: usize = 32;
/// Words that are verbs of `ui theme` / `ui keymap`, so never names.
pub const RESERVED_NAMES: &[&str] = &["list", "ls", "import", "remove", "rm", "export"];

/// The theme and keymap selected when a user chose none.
pub const DEFAULT_NAME: &str = "default";
/// The dashboard refresh interval when a user chose none, in seconds.
pub const DEFAULT_REFRESH_SECS: u32 = 5;
/// The allowed refresh intervals, in seconds.
pub const REFRESH_RANGE: std::ops::RangeInclusive<u32> = 1..=3600;

/// The themes shipped in `themes/`, in the order they are listed.
pub const SHIPPED_THEMES: &[(&str, &str)] = &[
    ("default", include_str!("../../../themes/default.toml")),
    ("dark", include_str!("../../../themes/dark.toml")),
    ("light", include_str!("../../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../../themes/mono.toml")),
];

/// The keymaps shipped in `keymaps/`, in the order they are listed.
pub const SHIPPED_KEYMAPS: &[(&str, &str)] = &[
    ("default", include_str!("../../../keymaps/default.toml")),
    ("vim", include_str!("../../../keymaps/vim.toml")),
    ("emacs", include_str!("../../../keymaps/emacs.toml")),
];

/// Which kind of UI file: a theme or a keymap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UiKind {
    Theme,
    Keymap,
}

impl UiKind {
    /// `theme` or `keymap`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            UiKind::Theme => "theme",
            UiKind::Keymap => "keymap",
        }
    }

    /// The files of this kind shipped with vipanel: `(name, TOML)`.
    pub fn shipped(self) -> &'static [(&'static str, &'static str)] {
        match self {
            UiKind::Theme => SHIPPED_THEMES,
            UiKind::Keymap => SHIPPED_KEYMAPS,
        }
    }

    /// The TOML of the shipped file `name`.
    pub fn shipped_file(self, name: &str) -> Option<&'static str> {
        self.shipped()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| *text)
    }
}

impl std::fmt::Display for UiKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much the TUI may send: `low` for slow links (fewer live updates, no charts' history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bandwidth {
    Low,
    #[default]
    Normal,
}

impl Bandwidth {
    pub fn as_str(self) -> &'static str {
        match self {
            Bandwidth::Low => "low",
            Bandwidth::Normal => "normal",
        }
    }

    /// Parses `low` or `normal` (exit 5 otherwise).
    pub fn parse(input: &str) -> Result<Bandwidth> {
        match input {
            "low" => Ok(Bandwidth::Low),
            "normal" => Ok(Bandwidth::Normal),
            other => Err(Error::invalid(format!(
                "bandwidth {} is not valid: use low or normal",
                super::printable(other)
            ))),
        }
    }
}

/// Parses a refresh interval in whole seconds, within [`REFRESH_RANGE`].
pub fn parse_refresh_secs(input: &str) -> Result<u32> {
    input
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|secs| REFRESH_RANGE.contains(secs))
        .ok_or_else(|| {
            Error::invalid(format!(
                "refresh interval {} is not valid: use a whole number of seconds from {} to {}",
                super::printable(input),
                REFRESH_RANGE.start(),
                REFRESH_RANGE.end()
            ))
        })
}

/// The four preferences a user sets, as stored (names not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiPreferences {
    pub theme: String,
    pub keymap: String,
    pub refresh_secs: u32,
    pub bandwidth: Bandwidth,
}

impl Default for UiPreferences {
    fn default() -> Self {
        UiPreferences {
            theme: DEFAULT_NAME.to_owned(),
            keymap: DEFAULT_NAME.to_owned(),
            refresh_secs: DEFAULT_REFRESH_SECS,
            bandwidth: Bandwidth::Normal,
        }
    }
}

/// Everything the TUI needs, resolved: the output of `ui show -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiSettings {
    /// The selected theme (after any fallback: see `warnings`).
    pub theme: String,
    /// The selected keymap (after any fallback).
    pub keymap: String,
    pub refresh_secs: u32,
    pub bandwidth: Bandwidth,
    /// Every theme the user may select: shipped ones first, then its own by name.
    pub themes: Vec<String>,
    /// Every keymap the user may select, likewise.
    pub keymaps: Vec<String>,
    /// The resolved theme: every [`StyleName`].
    pub styles: BTreeMap<StyleName, StyleSpec>,
    /// The resolved keymap: every [`Action`].
    pub bindings: BTreeMap<Action, Vec<Key>>,
    /// What went wrong resolving the stored selection (the default was used instead).
    pub warnings: Vec<String>,
}

impl UiSettings {
    /// A shipped theme and keymap with the default refresh and bandwidth: what the dashboard
    /// draws with until the user's own settings arrive (and in tests).
    pub fn shipped(theme: &str, keymap: &str) -> Result<UiSettings> {
        let theme = Theme::shipped(theme)?;
        let keymap = Keymap::shipped(keymap)?;
        Ok(UiSettings {
            theme: theme.name,
            keymap: keymap.name,
            refresh_secs: DEFAULT_REFRESH_SECS,
            bandwidth: Bandwidth::Normal,
            themes: shipped_names(UiKind::Theme)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            keymaps: shipped_names(UiKind::Keymap)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            styles: theme.styles,
            bindings: keymap.bindings,
            warnings: Vec::new(),
        })
    }
}

/// Checks the name of a file a user imports: 1 to 32 characters `[a-z0-9][a-z0-9-]*`, not a
/// shipped name and not a verb of `ui theme` / `ui keymap`.
pub fn validate_import_name(kind: UiKind, name: &str) -> Result<()> {
    let shown = super::printable(name);
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !first_ok || !rest_ok {
        return Err(Error::invalid(format!(
            "{kind} name {shown} is not valid: use 1 to {MAX_NAME_LEN} characters, lower-case \
             letters, digits and '-', starting with a letter or digit"
        )));
    }
    if kind.shipped_file(name).is_some() {
        return Err(Error::invalid(format!(
            "{kind} name {shown} is a shipped {kind}'s name: pick another (shipped: {})",
            shipped_names(kind).join(", ")
        )));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(Error::invalid(format!(
            "{kind} name {shown} is a word of the `ui {kind}` command: pick another (not {})",
            RESERVED_NAMES.join(", ")
        )));
    }
    Ok(())
}

/// The names of the shipped files of `kind`, in order.
pub fn shipped_names(kind: UiKind) -> Vec<&'static str> {
    kind.shipped().iter().map(|(name, _)| *name).collect()
}

/// Refuses a file larger than [`MAX_FILE_BYTES`].
fn check_size(kind: UiKind, name: &str, text: &str) -> Result<()> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Error::invalid(format!(
            "{kind} {}: the file is {} bytes; at most {MAX_FILE_BYTES} (16 KiB) are accepted",
            super::printable(name),
            text.len()
        )));
    }
    Ok(())
}

/// A TOML error as one line: where, and what.
fn toml_error(kind: UiKind, name: &str, text: &str, err: &toml::de::Error) -> Error {
    let line = err
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let place = line.map_or_else(String::new, |l| format!(", line {l}"));
    let message = err
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Error::invalid(format!(
        "{kind} {}{place}: {message}",
        super::printable(name)
    ))
}

/// A file's table (`[styles]`, `[bindings]`) with its names turned into `K`; an unknown name
/// is refused naming it and listing the known ones (`what`: `style`, `action`).
fn by_name<K: Ord, V>(
    kind: UiKind,
    file: &str,
    what: &str,
    table: BTreeMap<String, V>,
    from_name: fn(&str) -> Option<K>,
    known: fn() -> String,
) -> Result<BTreeMap<K, V>> {
    let unknown: Vec<String> = table
        .keys()
        .filter(|k| from_name(k).is_none())
        .map(|k| super::printable(k))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::invalid(format!(
            "{kind} {}: unknown {what} {}; the {what}s are: {}",
            super::printable(file),
            unknown.join(", "),
            known()
        )));
    }
    Ok(table
        .into_iter()
        .filter_map(|(k, v)| from_name(&k).map(|key| (key, v)))
        .collect())
}

/// A parsed theme or keymap file, as [`layer`] sees it: the entries it sets.
trait Layer<K, V> {
    fn entries(&self) -> &BTreeMap<K, V>;
}

/// Lays the files of a chain (child first, as [`load_chain`] gives it) over each other: the
/// root's entries, then each child's replacing its parent's. The root, which has no parent, must
/// set every key of `all` (`must`: "define every style"), naming the missing ones if not.
fn layer<K: Ord + Copy, V: Clone, F: Layer<K, V>>(
    kind: UiKind,
    chain: &[(String, F)],
    all: &[K],
    name_of: fn(K) -> &'static str,
    must: &str,
) -> Result<BTreeMap<K, V>> {
    let mut merged = BTreeMap::new();
    if let Some((root_name, root)) = chain.last() {
        let missing: Vec<&str> = all
            .iter()
            .filter(|k| !root.entries().contains_key(k))
            .map(|k| name_of(*k))
            .collect();
        if !missing.is_empty() {
            return Err(Error::invalid(format!(
                "{kind} {} has no parent, so it must {must}; missing: {}",
                super::printable(root_name),
                missing.join(", ")
            )));
        }
    }
    for (_, file) in chain.iter().rev() {
        merged.extend(file.entries().iter().map(|(k, v)| (*k, v.clone())));
    }
    Ok(merged)
}

/// The files `name` resolves through, itself first then each parent: shipped files first,
/// then the user's `own` ones. Refuses unknown names, cycles and chains longer than
/// [`MAX_DEPTH`].
fn load_chain<F>(
    kind: UiKind,
    name: &str,
    own: &BTreeMap<String, String>,
    parse: fn(&str, &str) -> Result<F>,
    parent_of: fn(&F) -> Option<&str>,
) -> Result<Vec<(String, F)>> {
    let mut chain: Vec<(String, F)> = Vec::new();
    let mut next = Some(name.to_owned());
    while let Some(current) = next.take() {
        if chain.iter().any(|(n, _)| *n == current) {
            let path: Vec<&str> = chain
                .iter()
                .map(|(n, _)| n.as_str())
                .chain([current.as_str()])
                .collect();
            return Err(Error::invalid(format!(
                "{kind} {}: its parents form a cycle ({}); a {kind} cannot be its own ancestor",
                super::printable(name),
                path.join(" -> ")
            )));
        }
        if chain.len() == MAX_DEPTH {
            return Err(Error::invalid(format!(
                "{kind} {}: its parent chain is longer than {MAX_DEPTH} files",
                super::printable(name)
            )));
        }
        let text = kind
            .shipped_file(&current)
            .or_else(|| own.get(&current).map(String::as_str))
            .ok_or_else(|| {
                let mut available = shipped_names(kind);
                available.extend(own.keys().map(String::as_str));
                let what = if chain.is_empty() {
                    format!("there is no {kind} {}", super::printable(&current))
                } else {
                    format!(
                        "{kind} {}: its parent {} does not exist",
                        super::printable(&chain[chain.len() - 1].0),
                        super::printable(&current)
                    )
                };
                Error::not_found(format!("{what} (available: {})", available.join(", ")))
            })?;
        let file = parse(&current, text)?;
        next = parent_of(&file).map(str::to_owned);
        chain.push((current, file));
    }
    Ok(chain)
}

/// Every name of `kind` a user with `own` files may select: shipped first, then its own.
pub fn available_names(kind: UiKind, own: &BTreeMap<String, String>) -> Vec<String> {
    shipped_names(kind)
        .into_iter()
        .map(str::to_owned)
        .chain(own.keys().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_names_are_checked() {
        assert!(validate_import_name(UiKind::Theme, "mine").is_ok());
        assert!(validate_import_name(UiKind::Theme, "9-to-5").is_ok());
        for bad in ["", "-x", "Mine", "a_b", "a b", &"x".repeat(33)] {
            assert!(validate_import_name(UiKind::Theme, bad).is_err(), "{bad:?}");
        }
        let shipped = validate_import_name(UiKind::Theme, "dark").unwrap_err();
        assert!(shipped.message.contains("shipped"), "{shipped}");
        assert!(validate_import_name(UiKind::Keymap, "vim").is_err());
        assert!(validate_import_name(UiKind::Keymap, "dark").is_ok());
        assert!(validate_import_name(UiKind::Keymap, "list").is_err());
    }

    #[test]
    fn settings_round_trip_through_json_and_docs_examples_resolve() {
        let theme = Theme::shipped("dark").unwrap();
        let keymap = Keymap::shipped("vim").unwrap();
        let settings = UiSettings {
            theme: theme.name.clone(),
            keymap: keymap.name.clone(),
            refresh_secs: DEFAULT_REFRESH_SECS,
            bandwidth: Bandwidth::Low,
            themes: available_names(UiKind::Theme, &BTreeMap::new()),
            keymaps: available_names(UiKind::Keymap, &BTreeMap::new()),
            styles: theme.styles,
            bindings: keymap.bindings,
            warnings: Vec::new(),
        };
        let json = serde_json::to_value(&settings).unwrap();
        assert_eq!(
            json["styles"]["selected"],
            serde_json::json!({"fg": "black", "bg": "cyan", "modifiers": ["bold"]})
        );
        assert_eq!(json["bindings"]["top"], serde_json::json!(["g", "home"]));
        assert_eq!(json["bandwidth"], "low");
        let back: UiSettings = serde_json::from_value(json).unwrap();
        assert_eq!(back, settings);
        // The examples of docs/tui.md.
        let loud = "description = \"dark, louder\"\nparent = \"dark\"\n\n[styles]\n\
            error = { fg = \"light_red\", modifiers = [\"bold\", \"reversed\"] }\n\
            selected = { fg = \"black\", bg = \"yellow\", modifiers = [\"bold\"] }\n";
        let own = BTreeMap::from([("loud".to_owned(), loud.to_owned())]);
        assert!(Theme::resolve("loud", &own).is_ok());
        let mine = "description = \"vim, x quits\"\nparent = \"vim\"\n\n[bindings]\n\
            quit = [\"q\", \"x\", \"ctrl-c\"]\ndisable = [\"X\"]\n";
        let own = BTreeMap::from([("mine".to_owned(), mine.to_owned())]);
        assert!(Keymap::resolve("mine", &own).is_ok());
    }

    #[test]
    fn refresh_and_bandwidth_parse() {
        assert_eq!(parse_refresh_secs("5").unwrap(), 5);
        assert_eq!(parse_refresh_secs("3600").unwrap(), 3600);
        for bad in ["0", "3601", "99999", "-1", "1.5", "x", ""] {
            assert!(parse_refresh_secs(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Bandwidth::parse("low").unwrap(), Bandwidth::Low);
        assert!(Bandwidth::parse("medium").is_err());
    }
}
