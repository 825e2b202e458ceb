//! The user's theme as ratatui styles: one [`Style`] per meaning ([`StyleName`]).
//!
//! Low-bandwidth mode and `NO_COLOR` drop every colour and keep the modifiers (bold, reversed,
//! underlined), which is what the shipped `mono` theme is too.

use crate::domain::ui::{Colour, Modifier as UiModifier, StyleName, StyleSpec};
use ratatui::style::{Color, Modifier, Style};
use std::collections::BTreeMap;

/// Styles by meaning.
#[derive(Debug, Clone, Default)]
pub struct Styles {
    map: BTreeMap<StyleName, Style>,
}

impl Styles {
    /// From the resolved theme; `colour: false` keeps only modifiers.
    pub fn new(specs: &BTreeMap<StyleName, StyleSpec>, colour: bool) -> Styles {
        let map = specs
            .iter()
            .map(|(name, spec)| (*name, style_of(spec, colour)))
            .collect();
        Styles { map }
    }

    /// The style of a meaning (plain when the theme lacks it).
    pub fn get(&self, name: StyleName) -> Style {
        self.map.get(&name).copied().unwrap_or_default()
    }
}

fn style_of(spec: &StyleSpec, colour: bool) -> Style {
    let mut style = Style::default();
    if colour {
        if let Some(fg) = spec.fg {
            style = style.fg(color(fg));
        }
        if let Some(bg) = spec.bg {
            style = style.bg(color(bg));
        }
    }
    for m in &spec.modifiers {
        style = style.add_modifier(modifier(*m));
    }
    style
}

fn color(c: Colour) -> Color {
    match c {
        Colour::Reset => Color::Reset,
        Colour::Black => Color::Black,
        Colour::Red => Color::Red,
        Colour::Green => Color::Green,
        Colour::Yellow => Color::Yellow,
        Colour::Blue => Color::Blue,
        Colour::Magenta => Color::Magenta,
        Colour::Cyan => Color::Cyan,
        Colour::Gray => Color::Gray,
        Colour::DarkGray => Color::DarkGray,
        Colour::LightRed => Color::LightRed,
        Colour::LightGreen => Color::LightGreen,
        Colour::LightYellow => Color::LightYellow,
        Colour::LightBlue => Color::LightBlue,
        Colour::LightMagenta => Color::LightMagenta,
        Colour::LightCyan => Color::LightCyan,
        Colour::White => Color::White,
        Colour::Indexed(i) => Color::Indexed(i),
        Colour::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

fn modifier(m: UiModifier) -> Modifier {
    match m {
        UiModifier::Bold => Modifier::BOLD,
        UiModifier::Dim => Modifier::DIM,
        UiModifier::Italic => Modifier::ITALIC,
        UiModifier::Underlined => Modifier::UNDERLINED,
        UiModifier::Reversed => Modifier::REVERSED,
        UiModifier::CrossedOut => Modifier::CROSSED_OUT,
    }
}
