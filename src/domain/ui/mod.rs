//! TEMPORARY stub of the UI preference types (replaced by the full module at merge).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    Reset,
    Black,
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
    Gray,
    DarkGray,
    LightRed,
    LightGreen,
    LightYellow,
    LightBlue,
    LightMagenta,
    LightCyan,
    White,
    Indexed(u8),
    Rgb(u8, u8, u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modifier {
    Bold,
    Dim,
    Italic,
    Underlined,
    Reversed,
    CrossedOut,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StyleSpec {
    pub fg: Option<Colour>,
    pub bg: Option<Colour>,
    pub modifiers: Vec<Modifier>,
}

macro_rules! names {
    ($name:ident { $($v:ident),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($v),* }
        impl $name { pub const ALL: &'static [$name] = &[$($name::$v),*]; }
    };
}

names!(StyleName { Text, Muted, Title, Border, BorderFocus, Header, Selected, Key, KeyText, StatusBar, Ok, Warning, Error, Info, Accent, Disabled, Stale, Chart, Dialog, DialogTitle, Input, FilterMatch, Tab, TabActive });
names!(Action { Quit, Help, Back, Command, Filter, Shell, Refresh, Up, Down, PageUp, PageDown, Top, Bottom, Open, NextScreen, PrevScreen, ScreenOverview, ScreenServers, ScreenSites, ScreenJobs, ScreenLogs, ScreenUsers, SortNext, SortReverse, Create, Delete, Enable, Disable, Reboot, Resize, Power, Retry, Logs });

impl Action {
    pub fn describe(self) -> &'static str {
        "stub"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyCode {
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
    F(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl TryFrom<String> for Key {
    type Error = String;
    fn try_from(s: String) -> Result<Key, String> {
        let mut ctrl = false;
        let mut rest = s.as_str();
        if let Some(r) = rest.strip_prefix("ctrl-") {
            ctrl = true;
            rest = r;
        }
        let code = match rest {
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "f5" => KeyCode::F(5),
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().unwrap_or(' ')),
            _ => return Err(format!("bad key {s}")),
        };
        Ok(Key {
            code,
            ctrl,
            alt: false,
        })
    }
}

impl From<Key> for String {
    fn from(k: Key) -> String {
        let base = match k.code {
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "up".into(),
            KeyCode::Down => "down".into(),
            KeyCode::Enter => "enter".into(),
            KeyCode::Esc => "esc".into(),
            KeyCode::Tab => "tab".into(),
            KeyCode::BackTab => "backtab".into(),
            KeyCode::Home => "home".into(),
            KeyCode::End => "end".into(),
            KeyCode::PageUp => "pageup".into(),
            KeyCode::PageDown => "pagedown".into(),
            KeyCode::F(n) => format!("f{n}"),
            other => format!("{other:?}").to_lowercase(),
        };
        if k.ctrl { format!("ctrl-{base}") } else { base }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from(*self))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bandwidth {
    Low,
    Normal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiSettings {
    pub theme: String,
    pub keymap: String,
    pub refresh_secs: u32,
    pub bandwidth: Bandwidth,
    pub themes: Vec<String>,
    pub keymaps: Vec<String>,
    pub styles: BTreeMap<StyleName, StyleSpec>,
    pub bindings: BTreeMap<Action, Vec<Key>>,
    pub warnings: Vec<String>,
}

/// Stub: the settings of a user who chose nothing (default theme or mono; default or vim keys).
pub fn stub_settings(theme: &str, keymap: &str) -> UiSettings {
    use Colour::*;
    use StyleName as S;
    let mono = theme == "mono";
    let spec = |fg: Option<Colour>, bg: Option<Colour>, m: &[Modifier]| StyleSpec {
        fg: if mono { None } else { fg },
        bg: if mono { None } else { bg },
        modifiers: m.to_vec(),
    };
    let mut styles = BTreeMap::new();
    for s in StyleName::ALL {
        let v = match s {
            S::Muted | S::Disabled => spec(Some(DarkGray), None, &[Modifier::Dim]),
            S::Title | S::Header | S::DialogTitle => spec(None, None, &[Modifier::Bold]),
            S::Selected | S::TabActive => spec(None, None, &[Modifier::Reversed]),
            S::Key => spec(Some(Cyan), None, &[Modifier::Bold]),
            S::Ok => spec(Some(Green), None, &[]),
            S::Warning | S::Stale => spec(Some(Yellow), None, &[Modifier::Bold]),
            S::Error => spec(Some(Red), None, &[Modifier::Bold]),
            S::Info | S::Accent | S::Chart => spec(Some(Cyan), None, &[]),
            S::BorderFocus => spec(Some(Cyan), None, &[]),
            S::FilterMatch => spec(Some(Yellow), None, &[Modifier::Underlined]),
            _ => spec(None, None, &[]),
        };
        styles.insert(*s, v);
    }
    let k = |s: &str| Key::try_from(s.to_owned()).expect("stub key");
    let mut bindings = BTreeMap::new();
    let table: &[(Action, &[&str])] = &[
        (Action::Quit, &["q", "ctrl-c"]),
        (Action::Help, &["?"]),
        (Action::Back, &["esc"]),
        (Action::Command, &[":"]),
        (Action::Filter, &["/"]),
        (Action::Shell, &["!"]),
        (Action::Refresh, &["ctrl-r", "f5"]),
        (Action::Up, &["up"]),
        (Action::Down, &["down"]),
        (Action::PageUp, &["pageup"]),
        (Action::PageDown, &["pagedown"]),
        (Action::Top, &["home"]),
        (Action::Bottom, &["end"]),
        (Action::Open, &["enter"]),
        (Action::NextScreen, &["tab"]),
        (Action::PrevScreen, &["backtab"]),
        (Action::ScreenOverview, &["1"]),
        (Action::ScreenServers, &["2"]),
        (Action::ScreenSites, &["3"]),
        (Action::ScreenJobs, &["4"]),
        (Action::ScreenLogs, &["5"]),
        (Action::ScreenUsers, &["6"]),
        (Action::SortNext, &["s"]),
        (Action::SortReverse, &["S"]),
        (Action::Create, &["c"]),
        (Action::Delete, &["d"]),
        (Action::Enable, &["e"]),
        (Action::Disable, &["x"]),
        (Action::Reboot, &["r"]),
        (Action::Resize, &["z"]),
        (Action::Power, &["p"]),
        (Action::Retry, &["t"]),
        (Action::Logs, &["l"]),
    ];
    for (a, keys) in table {
        bindings.insert(*a, keys.iter().map(|s| k(s)).collect::<Vec<_>>());
    }
    if keymap == "vim" {
        bindings.insert(Action::Up, vec![k("k"), k("up")]);
        bindings.insert(Action::Down, vec![k("j"), k("down")]);
        bindings.insert(Action::Top, vec![k("g"), k("home")]);
        bindings.insert(Action::Bottom, vec![k("G"), k("end")]);
    }
    UiSettings {
        theme: theme.into(),
        keymap: keymap.into(),
        refresh_secs: 5,
        bandwidth: Bandwidth::Normal,
        themes: vec!["default".into(), "mono".into()],
        keymaps: vec!["default".into(), "vim".into()],
        styles,
        bindings,
        warnings: vec![],
    }
}
