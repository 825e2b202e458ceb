//! Themes: colours, modifiers and the styles named by meaning (`error`, `selected`, …) that
//! the TUI paints with, and the TOML theme file with its `parent`.

use super::{Layer, UiKind, by_name, check_size, layer, load_chain, toml_error};
use crate::domain::printable;
use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// A terminal colour: the terminal's own (`reset`), one of the 16 ANSI colours, one of the
/// 256 indexed colours, or 24-bit RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// The named colours with their canonical names.
const NAMED: &[(Colour, &str)] = &[
    (Colour::Reset, "reset"),
    (Colour::Black, "black"),
    (Colour::Red, "red"),
    (Colour::Green, "green"),
    (Colour::Yellow, "yellow"),
    (Colour::Blue, "blue"),
    (Colour::Magenta, "magenta"),
    (Colour::Cyan, "cyan"),
    (Colour::Gray, "gray"),
    (Colour::DarkGray, "dark_gray"),
    (Colour::LightRed, "light_red"),
    (Colour::LightGreen, "light_green"),
    (Colour::LightYellow, "light_yellow"),
    (Colour::LightBlue, "light_blue"),
    (Colour::LightMagenta, "light_magenta"),
    (Colour::LightCyan, "light_cyan"),
    (Colour::White, "white"),
];

impl Colour {
    /// Parses a colour: a name (any case, `_`/`-` optional, `grey` for `gray`), `#rrggbb`,
    /// `indexed:N` or a number 0–255.
    pub fn parse(input: &str) -> Result<Colour> {
        let lower = input.trim().to_ascii_lowercase();
        if let Some(hex) = lower.strip_prefix('#') {
            if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
                if let (Some(r), Some(g), Some(b)) = (byte(0), byte(2), byte(4)) {
                    return Ok(Colour::Rgb(r, g, b));
                }
            }
            return Err(Self::invalid(input));
        }
        let number = lower.strip_prefix("indexed:").unwrap_or(&lower);
        if !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()) {
            return number
                .parse::<u8>()
                .map(Colour::Indexed)
                .map_err(|_| Self::invalid(input));
        }
        let compact: String = lower
            .chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .collect::<String>()
            .replace("grey", "gray");
        NAMED
            .iter()
            .find(|(_, name)| name.replace('_', "") == compact)
            .map(|(colour, _)| *colour)
            .ok_or_else(|| Self::invalid(input))
    }

    fn invalid(input: &str) -> Error {
        let names: Vec<&str> = NAMED.iter().map(|(_, n)| *n).collect();
        Error::invalid(format!(
            "colour {} is not valid: use a name ({}; \"grey\" spellings too), \"#rrggbb\", \
             \"indexed:N\" or a number from 0 to 255",
            printable(input),
            names.join(", ")
        ))
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Colour::Indexed(n) => write!(f, "indexed:{n}"),
            Colour::Rgb(r, g, b) => write!(f, "#{r:02x}{g:02x}{b:02x}"),
            named => {
                let name = NAMED
                    .iter()
                    .find(|(c, _)| c == named)
                    .map_or("reset", |(_, n)| n);
                f.write_str(name)
            }
        }
    }
}

impl Serialize for Colour {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Colour;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a colour: a name, \"#rrggbb\", \"indexed:N\" or a number 0-255")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Colour, E> {
                Colour::parse(v).map_err(|e| E::custom(e.message))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Colour, E> {
                u8::try_from(v)
                    .map(Colour::Indexed)
                    .map_err(|_| E::custom(Colour::invalid(&v.to_string()).message))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Colour, E> {
                u8::try_from(v)
                    .map(Colour::Indexed)
                    .map_err(|_| E::custom(Colour::invalid(&v.to_string()).message))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

named_enum! {
    /// A text attribute.
    pub enum Modifier {
        Bold = "bold",
        Dim = "dim",
        Italic = "italic",
        Underlined = "underlined",
        Reversed = "reversed",
        CrossedOut = "crossed_out",
    }
}

/// How one kind of thing is drawn: colours (absent = inherit from what is under it, usually
/// the terminal's own) and modifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StyleSpec {
    pub fg: Option<Colour>,
    pub bg: Option<Colour>,
    pub modifiers: Vec<Modifier>,
}

named_enum! {
    /// The styles a theme defines, named by what they mean, not by how they look.
    pub enum StyleName {
        Text = "text",
        Muted = "muted",
        Title = "title",
        Border = "border",
        BorderFocus = "border_focus",
        Header = "header",
        Selected = "selected",
        Key = "key",
        KeyText = "key_text",
        StatusBar = "status_bar",
        Ok = "ok",
        Warning = "warning",
        Error = "error",
        Info = "info",
        Accent = "accent",
        Disabled = "disabled",
        Stale = "stale",
        Chart = "chart",
        Dialog = "dialog",
        DialogTitle = "dialog_title",
        Input = "input",
        FilterMatch = "filter_match",
        Tab = "tab",
        TabActive = "tab_active",
    }
}

impl StyleName {
    /// What the style is for (the table in docs/tui.md).
    pub fn describe(self) -> &'static str {
        match self {
            StyleName::Text => "ordinary text",
            StyleName::Muted => "secondary text: hints, timestamps, units",
            StyleName::Title => "a panel's title",
            StyleName::Border => "the border of a panel without focus",
            StyleName::BorderFocus => "the border of the panel with focus",
            StyleName::Header => "column headers of tables",
            StyleName::Selected => "the selected row or item",
            StyleName::Key => "a key in the help bar and help overlay",
            StyleName::KeyText => "the description next to a key",
            StyleName::StatusBar => "the status bar at the bottom",
            StyleName::Ok => "good states: running, succeeded, enabled",
            StyleName::Warning => "states that need attention: degraded, retrying",
            StyleName::Error => "failures and error messages",
            StyleName::Info => "neutral notices",
            StyleName::Accent => "highlights that are not states (counts, the current value)",
            StyleName::Disabled => "disabled items and actions not allowed",
            StyleName::Stale => "data that could not be refreshed lately",
            StyleName::Chart => "lines and bars of charts",
            StyleName::Dialog => "the body of a dialog or overlay",
            StyleName::DialogTitle => "the title of a dialog or overlay",
            StyleName::Input => "text being typed (command line, filter)",
            StyleName::FilterMatch => "the part of an item that matches the filter",
            StyleName::Tab => "a screen's tab",
            StyleName::TabActive => "the tab of the current screen",
        }
    }
}

/// A resolved theme: every [`StyleName`] has a style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Theme {
    pub name: String,
    pub styles: BTreeMap<StyleName, StyleSpec>,
}

impl Theme {
    /// The style called `name` (the default, unstyled, if a hand-built theme lacks it).
    pub fn style(&self, name: StyleName) -> StyleSpec {
        self.styles.get(&name).cloned().unwrap_or_default()
    }

    /// Resolves theme `name`: shipped themes first, then the user's `own` files (name → TOML).
    pub fn resolve(name: &str, own: &BTreeMap<String, String>) -> Result<Theme> {
        let chain = load_chain(UiKind::Theme, name, own, ThemeFile::parse, |f| {
            f.parent.as_deref()
        })?;
        let styles = layer(
            UiKind::Theme,
            &chain,
            StyleName::ALL,
            StyleName::as_str,
            "define every style",
        )?;
        Ok(Theme {
            name: name.to_owned(),
            styles,
        })
    }

    /// A shipped theme, resolved (`default`, `dark`, `light`, `high-contrast`, `mono`).
    pub fn shipped(name: &str) -> Result<Theme> {
        Self::resolve(name, &BTreeMap::new())
    }
}

impl Layer<StyleName, StyleSpec> for ThemeFile {
    fn entries(&self) -> &BTreeMap<StyleName, StyleSpec> {
        &self.styles
    }
}

/// One theme file as written: what it overrides of its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeFile {
    pub description: Option<String>,
    pub parent: Option<String>,
    pub styles: BTreeMap<StyleName, StyleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    description: Option<String>,
    parent: Option<String>,
    #[serde(default)]
    styles: BTreeMap<String, StyleSpec>,
}

impl ThemeFile {
    /// Parses the TOML of theme `name` (the name only goes into error messages).
    pub fn parse(name: &str, text: &str) -> Result<ThemeFile> {
        check_size(UiKind::Theme, name, text)?;
        let raw: RawTheme =
            toml::from_str(text).map_err(|e| toml_error(UiKind::Theme, name, text, &e))?;
        let styles = by_name(
            UiKind::Theme,
            name,
            "style",
            raw.styles,
            StyleName::from_name,
            StyleName::names,
        )?;
        Ok(ThemeFile {
            description: raw.description,
            parent: raw.parent,
            styles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ui::SHIPPED_THEMES;

    fn own(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect()
    }

    #[test]
    fn every_shipped_theme_resolves_fully() {
        for (name, _) in SHIPPED_THEMES {
            let theme = Theme::shipped(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(theme.styles.len(), StyleName::ALL.len(), "{name}");
            for style in StyleName::ALL {
                assert!(theme.styles.contains_key(style), "{name} lacks {style}");
            }
        }
        let mono = Theme::shipped("mono").unwrap();
        for (name, style) in &mono.styles {
            assert_eq!(
                (style.fg, style.bg),
                (None, None),
                "mono {name} has a colour"
            );
        }
        let default = Theme::shipped("default").unwrap();
        assert!(!default.style(StyleName::Selected).modifiers.is_empty());
        for child in ["dark", "light", "high-contrast", "mono"] {
            let file = ThemeFile::parse(child, UiKind::Theme.shipped_file(child).unwrap());
            assert_eq!(file.unwrap().parent.as_deref(), Some("default"), "{child}");
        }
    }

    #[test]
    fn colours_round_trip_and_parse_leniently() {
        let canonical = [
            "reset",
            "black",
            "dark_gray",
            "light_red",
            "light_magenta",
            "white",
            "#0a1b2c",
            "indexed:0",
            "indexed:255",
        ];
        for text in canonical {
            let colour = Colour::parse(text).unwrap();
            assert_eq!(colour.to_string(), text);
            let json = serde_json::to_string(&colour).unwrap();
            assert_eq!(serde_json::from_str::<Colour>(&json).unwrap(), colour);
        }
        assert_eq!(Colour::parse("DarkGrey").unwrap(), Colour::DarkGray);
        assert_eq!(Colour::parse("grey").unwrap(), Colour::Gray);
        assert_eq!(Colour::parse("LIGHT_BLUE").unwrap(), Colour::LightBlue);
        assert_eq!(Colour::parse("#FFAA00").unwrap().to_string(), "#ffaa00");
        assert_eq!(Colour::parse("42").unwrap(), Colour::Indexed(42));
        for bad in [
            "purple",
            "#fff",
            "#gggggg",
            "indexed:256",
            "256",
            "",
            "indexed:",
        ] {
            let err = Colour::parse(bad).unwrap_err();
            assert!(err.message.contains("#rrggbb"), "{bad}: {err}");
        }
        let spec: StyleSpec = toml::from_str("fg = 208\nbg = \"grey\"").unwrap();
        assert_eq!(spec.fg, Some(Colour::Indexed(208)));
        assert_eq!(spec.bg, Some(Colour::Gray));
    }

    #[test]
    fn partial_override_replaces_whole_styles() {
        let mine = "parent = \"dark\"\n[styles]\nerror = { fg = \"#ff0000\" }\n";
        let theme = Theme::resolve("mine", &own(&[("mine", mine)])).unwrap();
        let dark = Theme::shipped("dark").unwrap();
        let error = theme.style(StyleName::Error);
        assert_eq!(error.fg, Some(Colour::Rgb(255, 0, 0)));
        assert!(
            error.modifiers.is_empty(),
            "the parent's style is replaced wholly"
        );
        assert_eq!(theme.style(StyleName::Ok), dark.style(StyleName::Ok));
    }

    #[test]
    fn evil_themes_are_refused_naming_the_problem() {
        let cases = [
            ("[styles]\ntext = { fg = \"purple\" }", "purple"),
            ("parent = \"default\"\n[styles]\nshiny = {}", "shiny"),
            (
                "parent = \"default\"\n[styles]\ntext = { fg = \"red\", blink = true }",
                "blink",
            ),
            (
                "parent = \"default\"\n[styles]\ntext = { modifiers = [\"blink\"] }",
                "blink",
            ),
            ("parent = \"default\"\ncolours = 1", "colours"),
            ("parent = \"nope\"", "nope"),
            ("[styles]\ntext = {}", "missing"),
        ];
        for (text, needle) in cases {
            let err = Theme::resolve("evil", &own(&[("evil", text)])).unwrap_err();
            assert!(err.message.contains(needle), "{text}: {err}");
        }
        let unknown = Theme::resolve(
            "evil",
            &own(&[("evil", "parent = \"default\"\n[styles]\nshiny = {}")]),
        )
        .unwrap_err();
        assert!(
            unknown.message.contains("border_focus"),
            "lists the valid ones: {unknown}"
        );
        let big = format!("parent = \"default\"\n#{}\n", "x".repeat(20 * 1024));
        let err = Theme::resolve("big", &own(&[("big", &big)])).unwrap_err();
        assert!(err.message.contains("16 KiB"), "{err}");
        let cycle = own(&[("a", "parent = \"b\""), ("b", "parent = \"a\"")]);
        let err = Theme::resolve("a", &cycle).unwrap_err();
        assert!(err.message.contains("cycle"), "{err}");
        let mut deep = own(&[("t0", "parent = \"default\"")]);
        for i in 1..10 {
            deep.insert(format!("t{i}"), format!("parent = \"t{}\"", i - 1));
        }
        assert!(Theme::resolve("t5", &deep).is_ok());
        let err = Theme::resolve("t9", &deep).unwrap_err();
        assert!(err.message.contains("longer than 8"), "{err}");
    }
}
