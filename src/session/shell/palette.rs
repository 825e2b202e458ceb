//! The shell's colours, and whether to use any: not when `NO_COLOR` is set to anything non-empty
//! (no-color.org), nor on a terminal without colours (`TERM` unset, empty or `dumb`).

use nu_ansi_term::{Color, Style};

/// Styles by meaning; all plain when colour is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub colour: bool,
    pub text: Style,
    pub command: Style,
    pub unknown: Style,
    pub flag: Style,
    pub quoted: Style,
    pub hint: Style,
    pub prompt: Color,
    pub indicator: Color,
}

impl Palette {
    pub fn new(colour: bool) -> Palette {
        let plain = Style::new();
        let pick = |style: Style| if colour { style } else { plain };
        Palette {
            colour,
            text: plain,
            command: pick(Style::new().fg(Color::Green)),
            unknown: pick(Style::new().fg(Color::Red)),
            flag: pick(Style::new().fg(Color::Cyan)),
            quoted: pick(Style::new().fg(Color::Yellow)),
            hint: pick(Style::new().fg(Color::DarkGray)),
            prompt: Color::Green,
            indicator: Color::Default,
        }
    }
}

/// Whether the terminal described by `term` and `no_color` (the environment's values) gets colour.
pub fn colour_wanted(term: Option<&str>, no_color: Option<&str>) -> bool {
    let no_color = no_color.is_some_and(|v| !v.is_empty());
    let term_has_colour = term.is_some_and(|t| !t.is_empty() && t != "dumb");
    term_has_colour && !no_color
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_and_dumb_terminals_get_none() {
        assert!(colour_wanted(Some("xterm-256color"), None));
        assert!(colour_wanted(Some("tmux-256color"), Some("")));
        assert!(!colour_wanted(Some("xterm-256color"), Some("1")));
        assert!(!colour_wanted(Some("dumb"), None));
        assert!(!colour_wanted(Some(""), None));
        assert!(!colour_wanted(None, None));
        let plain = Palette::new(false);
        assert_eq!(plain.command, Style::new());
        assert_eq!(plain.quoted, Style::new());
        assert_ne!(Palette::new(true).command, Style::new());
    }
}
