//! Splitting a shell line into words the way `shell-words` (and so exec) does, but tolerant of
//! an unfinished line: every word keeps its byte span, quoted stretches are reported for the
//! highlighter, and an open quote or a trailing backslash is reported instead of being an error.
//!
//! Quoting as in POSIX sh: `'…'` is literal, `"…"` allows `\"`, `\\`, `\$`, `` \` `` and
//! backslash-newline, a backslash outside quotes escapes the next character.

use std::ops::Range;

/// One word: where it is in the line and its text with quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub span: Range<usize>,
    pub text: String,
}

/// A line split into words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words {
    pub words: Vec<Word>,
    /// Byte ranges of quoted stretches, quotes included (an open one runs to the end).
    pub quoted: Vec<Range<usize>>,
    /// The quote left open at the end of the line, if any.
    pub open_quote: Option<char>,
    /// The line ends in a backslash outside quotes (a continuation).
    pub trailing_escape: bool,
}

impl Words {
    /// Whether the line is unfinished: an open quote or a trailing backslash.
    pub fn is_incomplete(&self) -> bool {
        self.open_quote.is_some() || self.trailing_escape
    }
}

fn is_delimiter(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n')
}

/// Splits `line` into words, state for state as `shell_words::split`.
pub fn split(line: &str) -> Words {
    let mut out = Words::default();
    let mut text = String::new();
    // Where the current word started, while inside one.
    let mut start: Option<usize> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let Some(word_start) = start else {
            // Between words.
            match c {
                c if is_delimiter(c) => {}
                '#' => {
                    // A comment runs to the end of the line.
                    while chars.next_if(|&(_, c)| c != '\n').is_some() {}
                }
                '\\' => match chars.next() {
                    Some((_, '\n')) => {}
                    Some((_, next)) => {
                        start = Some(at);
                        text.push(next);
                    }
                    None => {
                        out.trailing_escape = true;
                        start = Some(at);
                    }
                },
                _ => {
                    start = Some(at);
                    if !quote(&mut out, &mut text, &mut chars, line.len(), at, c) {
                        text.push(c);
                    }
                }
            }
            continue;
        };
        match c {
            c if is_delimiter(c) => {
                out.words.push(Word {
                    span: word_start..at,
                    text: std::mem::take(&mut text),
                });
                start = None;
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((_, next)) => text.push(next),
                None => out.trailing_escape = true,
            },
            c => {
                if !quote(&mut out, &mut text, &mut chars, line.len(), at, c) {
                    text.push(c);
                }
            }
        }
    }
    if let Some(word_start) = start {
        out.words.push(Word {
            span: word_start..line.len(),
            text,
        });
    }
    out
}

/// Reads a quoted stretch opened by `c` at `at` (if `c` is a quote) into `text`, recording it.
fn quote(
    out: &mut Words,
    text: &mut String,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    line_end: usize,
    at: usize,
    c: char,
) -> bool {
    if c != '\'' && c != '"' {
        return false;
    }
    while let Some((end, next)) = chars.next() {
        match next {
            q if q == c => {
                out.quoted.push(at..end + 1);
                return true;
            }
            '\\' if c == '"' => match chars.peek() {
                Some(&(_, escaped @ ('"' | '\\' | '$' | '`'))) => {
                    text.push(escaped);
                    chars.next();
                }
                Some(&(_, '\n')) => {
                    chars.next();
                }
                Some(_) => text.push('\\'),
                // A backslash as the last character leaves the quote open.
                None => {}
            },
            other => text.push(other),
        }
    }
    out.quoted.push(at..line_end);
    out.open_quote = Some(c);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        split(line).words.into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn agrees_with_shell_words_on_complete_lines() {
        for line in [
            "site create example.com --php 8.2",
            "  user   create bob  ",
            r#"user create bob --key 'ssh-ed25519 AAAA bob@laptop'"#,
            r#"key add "a \"quoted\" word" x\ y"#,
            r#"say 'it''s' "back\\slash" "not\escape""#,
            "multi 'line\nvalue' done",
            "joined\\\nline",
            "",
            "é ü 日本",
            "site list # a comment",
            "# only a comment",
            "a\\\n b",
            "x \\  y",
        ] {
            let ours = split(line);
            assert!(!ours.is_incomplete(), "{line:?}");
            assert_eq!(texts(line), shell_words::split(line).unwrap(), "{line:?}");
        }
    }

    #[test]
    fn spans_cover_each_word_with_its_quotes() {
        let line = r#"site show "example.com" x"#;
        let words = split(line);
        let spans: Vec<&str> = words.words.iter().map(|w| &line[w.span.clone()]).collect();
        assert_eq!(spans, ["site", "show", "\"example.com\"", "x"]);
        assert_eq!(words.quoted, vec![10..23]);
    }

    #[test]
    fn unfinished_lines_are_reported() {
        let open = split("user create bob --key 'ssh-ed25519 AAAA");
        assert_eq!(open.open_quote, Some('\''));
        assert_eq!(open.words.last().unwrap().text, "ssh-ed25519 AAAA");
        assert_eq!(open.quoted.last().unwrap().end, 39);
        assert_eq!(split(r#"say "half"#).open_quote, Some('"'));
        assert_eq!(split(r#"say "esc\"#).open_quote, Some('"'));
        assert_eq!(split(r#"say "esc\"""#).open_quote, None);
        assert!(split("site list \\").trailing_escape);
        assert!(split("site list \\").is_incomplete());
        assert!(!split("site list \\\\").is_incomplete());
    }
}
