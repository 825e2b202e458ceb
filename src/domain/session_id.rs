//! Session ids: eight lower-case hex digits, random, shown by `session list` and typed back to
//! `session kill`.

use crate::error::{Error, Result};
use std::fmt;

/// The id of one live session (an authenticated SSH connection).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    pub const LEN: usize = 8;

    /// A new random id (random, so ids say nothing about how many connections there were).
    pub fn random() -> SessionId {
        SessionId(format!("{:08x}", rand::random::<u32>()))
    }

    pub fn parse(input: &str) -> Result<SessionId> {
        let valid = input.len() == Self::LEN
            && input
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(Error::invalid(format!(
                "session id {} is not valid: use the {} hex digits `session list` shows",
                super::printable(input),
                Self::LEN
            )));
        }
        Ok(SessionId(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_parse() {
        for _ in 0..100 {
            let id = SessionId::random();
            assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
        }
    }

    #[test]
    fn refuses_evil_ids() {
        let huge = "a".repeat(10_000);
        for evil in [
            "",
            "0",
            "0123456",
            "012345678",
            "0123456G",
            "ABCDEF01",
            "0123 567",
            "01234\n67",
            "0123\u{0}567",
            "../../..",
            "０１２３４５６７",
            "0123456٧",
            &huge,
        ] {
            let err = SessionId::parse(evil).unwrap_err();
            assert_eq!(err.kind, crate::error::ErrorKind::Invalid, "{evil:?}");
            assert!(
                err.message.len() < 200,
                "the message quotes at most a short prefix"
            );
        }
    }
}
