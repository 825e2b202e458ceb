//! Writing to the session's terminal outside the line editor: command output, notices, and the
//! yes/no question of a destructive command.
//!
//! Output is written as the daemon sent it, with each bare `\n` made `\r\n`, so it lands the
//! same whether the terminal is in raw mode or not.

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::borrow::Cow;
use std::io::Write;

/// The longest answer read for a confirmation.
const ANSWER_MAX: usize = 16;

/// `text` with every `\n` not already after a `\r` turned into `\r\n`.
pub fn crlf(text: &str) -> Cow<'_, str> {
    if !text.contains('\n') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut previous = '\0';
    for c in text.chars() {
        if c == '\n' && previous != '\r' {
            out.push('\r');
        }
        out.push(c);
        previous = c;
    }
    Cow::Owned(out)
}

/// Writes a command's output: standard output, then standard error.
pub fn write_output(stdout: &str, stderr: &str) {
    if !stdout.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(crlf(stdout).as_bytes());
        let _ = out.flush();
    }
    if !stderr.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(crlf(stderr).as_bytes());
        let _ = err.flush();
    }
}

/// Shows a notice from the panel on a line of its own.
pub fn write_notice(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{}\r\n", crlf(text.trim_end()));
    let _ = err.flush();
}

/// Clears the screen and its scrollback, cursor home.
pub fn clear_screen() {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b"\x1b[H\x1b[2J\x1b[3J");
    let _ = out.flush();
}

/// Shows `prompt` and reads a yes/no answer: `y` or `yes` (any case) is yes; anything else,
/// Ctrl-C, Ctrl-D or Escape is no.
pub fn confirm(prompt: &str) -> bool {
    let mut err = std::io::stderr();
    let _ = err.write_all(crlf(prompt).as_bytes());
    let _ = err.flush();
    let answer = match crossterm::terminal::enable_raw_mode() {
        Ok(()) => {
            let answer = read_answer(&mut err);
            let _ = crossterm::terminal::disable_raw_mode();
            answer
        }
        Err(_) => None,
    };
    let _ = err.write_all(b"\r\n");
    let _ = err.flush();
    answer.is_some_and(|a| matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn read_answer(echo: &mut impl Write) -> Option<String> {
    let mut answer = String::new();
    loop {
        let (code, modifiers) = match event::read() {
            Ok(Event::Key(KeyEvent {
                code,
                modifiers,
                kind: KeyEventKind::Press | KeyEventKind::Repeat,
                ..
            })) => (code, modifiers),
            Ok(_) => continue,
            // The terminal is gone.
            Err(_) => return None,
        };
        match code {
            KeyCode::Enter => return Some(answer),
            KeyCode::Esc => return None,
            KeyCode::Char('c' | 'd') if modifiers.contains(KeyModifiers::CONTROL) => return None,
            KeyCode::Backspace if answer.pop().is_some() => {
                let _ = echo.write_all(b"\x08 \x08");
            }
            KeyCode::Char(c)
                if (c.is_ascii_graphic() || c == ' ')
                    && answer.len() < ANSWER_MAX
                    && !modifiers.contains(KeyModifiers::CONTROL) =>
            {
                answer.push(c);
                let _ = write!(echo, "{c}");
            }
            _ => {}
        }
        let _ = echo.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_newlines_become_crlf() {
        assert_eq!(crlf("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf("\n\n"), "\r\n\r\n");
        assert!(matches!(crlf("no newline"), Cow::Borrowed(_)));
        assert_eq!(crlf("é\n日本\n"), "é\r\n日本\r\n");
    }
}
