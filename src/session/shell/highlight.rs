//! Highlighting the line being typed: commands that exist, words that are no command, flags and
//! quoted strings, in the [`Palette`] (plain when colour is off).

use super::grammar::{Grammar, WordKind};
use super::palette::Palette;
use super::words;
use reedline::{Highlighter, StyledText};
use std::sync::Arc;

pub struct ShellHighlighter {
    grammar: Arc<Grammar>,
    palette: Palette,
}

impl ShellHighlighter {
    pub fn new(grammar: Arc<Grammar>, palette: Palette) -> Self {
        ShellHighlighter { grammar, palette }
    }
}

impl Highlighter for ShellHighlighter {
    fn highlight(&self, line: &str, _cursor: usize) -> StyledText {
        let mut styled = StyledText::new();
        if line.is_empty() {
            return styled;
        }
        styled.push((self.palette.text, line.to_owned()));
        if !self.palette.colour {
            return styled;
        }
        let split = words::split(line);
        let texts: Vec<&str> = split.words.iter().map(|w| w.text.as_str()).collect();
        let (_, kinds) = self.grammar.walk(&texts);
        let typing = !line.ends_with([' ', '\t', '\n']);
        for (index, (word, kind)) in split.words.iter().zip(&kinds).enumerate() {
            let style = match kind {
                WordKind::Command => self.palette.command,
                WordKind::Flag => self.palette.flag,
                WordKind::Argument => continue,
                WordKind::Unknown => {
                    // The word still being typed is not wrong while it can become a command.
                    let last = index + 1 == split.words.len();
                    if last
                        && typing
                        && self.could_become_command(texts.get(..index).unwrap_or(&[]), &word.text)
                    {
                        continue;
                    }
                    self.palette.unknown
                }
            };
            styled.style_range(word.span.start, word.span.end, style);
        }
        for range in &split.quoted {
            styled.style_range(range.start, range.end, self.palette.quoted);
        }
        styled
    }
}

impl ShellHighlighter {
    fn could_become_command(&self, before: &[&str], word: &str) -> bool {
        let (at, _) = self.grammar.walk(before);
        !at.lost
            && at
                .node
                .children
                .iter()
                .any(|child| child.name.starts_with(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nu_ansi_term::Style;

    fn highlighter(colour: bool) -> ShellHighlighter {
        ShellHighlighter::new(Arc::new(Grammar::load()), Palette::new(colour))
    }

    /// Each styled piece of `line`, as (text, style).
    fn pieces(line: &str) -> Vec<(String, Style)> {
        highlighter(true)
            .highlight(line, line.len())
            .buffer
            .into_iter()
            .map(|(style, text)| (text, style))
            .collect()
    }

    /// The style of the first occurrence of `text` in `line` (which must be styled alike).
    fn style_of(line: &str, text: &str) -> Style {
        let from = line.find(text).unwrap();
        let mut at = 0;
        let mut found = None;
        for (piece, style) in pieces(line) {
            let range = at..at + piece.len();
            if range.contains(&from) || (range.start < from + text.len() && range.end > from) {
                assert!(
                    found.is_none_or(|f| f == style),
                    "{text:?} is styled unevenly"
                );
                found = Some(style);
            }
            at = range.end;
        }
        found.unwrap()
    }

    #[test]
    fn known_commands_unknown_words_flags_and_quotes() {
        let p = Palette::new(true);
        let line = "site create example.com --php 8.2";
        assert_eq!(style_of(line, "site"), p.command);
        assert_eq!(style_of(line, "create"), p.command);
        assert_eq!(style_of(line, "--php"), p.flag);
        assert_eq!(style_of(line, " example.com "), p.text);
        assert_eq!(style_of("sight list", "sight"), p.unknown);
        assert_eq!(style_of("sight list", "list"), p.unknown);
        assert_eq!(style_of("site frob ", "frob"), p.unknown);
        assert_eq!(style_of("exit", "exit"), p.command);
        let line = r#"user create bob --key 'ssh-ed25519 AAAA bob'"#;
        assert_eq!(style_of(line, "'ssh-ed25519 AAAA bob'"), p.quoted);
        // An open quote is highlighted to the end of the line.
        assert_eq!(style_of("site show \"exa", "\"exa"), p.quoted);
    }

    #[test]
    fn a_word_being_typed_is_not_wrong_yet() {
        let p = Palette::new(true);
        assert_eq!(style_of("sit", "sit"), p.text);
        assert_eq!(style_of("site cr", "cr"), p.text);
        assert_eq!(style_of("site cr ", "cr"), p.unknown);
        assert_eq!(style_of("site xy", "xy"), p.unknown);
    }

    #[test]
    fn the_text_is_kept_whole_and_plain_without_colour() {
        for line in [
            "site create 'a b' --php 8.2",
            "é 日本 \"x",
            "  spaced  out  ",
        ] {
            let styled = highlighter(true).highlight(line, 0);
            assert_eq!(styled.raw_string(), line);
            let plain = highlighter(false).highlight(line, 0);
            assert_eq!(plain.buffer.len(), 1);
            assert_eq!(plain.buffer[0].0, Style::new());
            assert_eq!(plain.raw_string(), line);
        }
    }
}
