//! Enter on an unfinished line (an open quote, a trailing backslash) continues it on the next
//! line instead of running it, as in sh: the words are split as exec splits them.

use super::words;
use reedline::{ValidationResult, Validator};

pub struct QuoteValidator;

impl Validator for QuoteValidator {
    fn validate(&self, line: &str) -> ValidationResult {
        if words::split(line).is_incomplete() {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Complete
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(line: &str) -> bool {
        matches!(QuoteValidator.validate(line), ValidationResult::Complete)
    }

    #[test]
    fn open_quotes_and_trailing_backslashes_continue() {
        for line in [
            "user create bob --key 'ssh-ed25519 AAAA",
            "say \"half",
            "say \"escaped quote \\\"",
            "site list \\",
            "it's",
            "'multi\nline",
            "\"",
        ] {
            assert!(!complete(line), "{line:?} should continue");
        }
    }

    #[test]
    fn finished_lines_run_even_when_odd() {
        let long = "a".repeat(10_000);
        for line in [
            "",
            "site list",
            "user create bob --key 'ssh-ed25519 AAAA bob'",
            "say \"it's\"",
            "say 'a \"b'",
            "'multi\nline'",
            "site list \\\\",
            "joined \\\nline",
            "semi; colon { brace } ../.. \u{0}nul",
            "# a comment with an ' open quote",
            "site show ex\u{430}mple.com",
            long.as_str(),
        ] {
            assert!(complete(line), "{line:?} should run");
        }
    }
}
