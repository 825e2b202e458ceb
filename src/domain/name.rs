//! User and tenant names: `[a-z][a-z0-9-]{0,31}`, usable as Unix user names and in file paths.

use crate::error::{Error, Result};
use std::fmt;

/// A user or tenant name. Lower-case ASCII, starts with a letter, at most 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub const MAX_LEN: usize = 32;

    /// Parses `input` as a name; `what` ("user name", "tenant name") goes into the error message.
    pub fn parse(input: &str, what: &str) -> Result<Name> {
        let shown = super::domain_name::printable(input);
        let mut chars = input.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if input.is_empty() {
            return Err(Error::invalid(format!("{what} must not be empty")));
        }
        if input.len() > Self::MAX_LEN {
            return Err(Error::invalid(format!(
                "{what} {shown} is too long ({} characters; at most {})",
                input.chars().count(),
                Self::MAX_LEN
            )));
        }
        if !first_ok || !rest_ok {
            return Err(Error::invalid(format!(
                "{what} {shown} is not valid: use a lower-case letter followed by lower-case letters, digits or '-'"
            )));
        }
        Ok(Name(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_names() {
        for good in ["a", "alice", "web-1", "a0", &"a".repeat(32)] {
            assert!(Name::parse(good, "user name").is_ok(), "{good}");
        }
    }

    #[test]
    fn refuses_evil_names() {
        let long = "a".repeat(33);
        let huge = "a".repeat(10_000);
        for evil in [
            "",
            "1abc",
            "-abc",
            "Alice",
            "al ice",
            "a;b",
            "a\nb",
            "a\0b",
            "a/b",
            "../x",
            "a.b",
            "a{b",
            "аlice",
            "alice\u{200b}",
            "a_b",
            &long,
            &huge,
        ] {
            let err = Name::parse(evil, "user name").unwrap_err();
            assert_eq!(err.kind, crate::error::ErrorKind::Invalid, "{evil:?}");
        }
    }
}
