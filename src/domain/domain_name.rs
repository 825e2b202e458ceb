//! Domain names for sites and aliases: lower-cased, IDN converted to punycode, RFC 1123 labels.
//!
//! Rules: at most 253 characters, at least two labels, each label 1–63 of `[a-z0-9-]` not starting
//! or ending with `-`, no `--` in positions 3–4 unless it is a valid `xn--` label, no trailing dot,
//! a top-level label that is not all digits (so IP addresses are refused), and no label mixing
//! Latin with Cyrillic or Greek letters (the classic look-alike attack).

use crate::error::{Error, Result};
use std::fmt;

/// A validated, normalized (ASCII, lower-case) domain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

const MAX_LEN: usize = 253;
const MAX_LABEL: usize = 63;

/// Renders untrusted input for an error message: escaped, and cut to a readable length.
pub(crate) fn printable(input: &str) -> String {
    const SHOWN: usize = 64;
    if input.chars().count() > SHOWN {
        let head: String = input.chars().take(SHOWN).collect();
        format!("{head:?}…")
    } else {
        format!("{input:?}")
    }
}

impl DomainName {
    pub fn parse(input: &str) -> Result<DomainName> {
        let shown = printable(input);
        let invalid = |why: &str| Error::invalid(format!("domain {shown} is not valid: {why}"));
        if input.is_empty() {
            return Err(Error::invalid("domain must not be empty"));
        }
        if input.len() > 4 * MAX_LEN {
            return Err(invalid("it is far too long"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("it contains spaces or control characters"));
        }
        if input.chars().any(is_invisible) {
            return Err(invalid("it contains invisible characters"));
        }
        if input.ends_with('.') {
            return Err(invalid("remove the trailing dot"));
        }
        if !input.is_ascii() {
            for label in input.split('.') {
                if mixes_scripts(label) {
                    return Err(invalid(
                        "a label mixes Latin with Cyrillic or Greek letters (look-alike)",
                    ));
                }
            }
        }
        let lower = input.to_lowercase();
        let ascii = if lower.is_ascii() {
            lower
        } else {
            idna::domain_to_ascii_strict(&lower)
                .map_err(|_| invalid("it is not a valid internationalized name"))?
        };
        check_ascii(&ascii).map_err(invalid)?;
        Ok(DomainName(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_ascii(name: &str) -> std::result::Result<(), &'static str> {
    if name.len() > MAX_LEN {
        return Err("it is longer than 253 characters");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("it needs at least two labels, like example.com");
    }
    for label in &labels {
        check_label(label)?;
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("the last label is all digits (IP addresses are not domains)");
    }
    Ok(())
}

fn check_label(label: &str) -> std::result::Result<(), &'static str> {
    if label.is_empty() {
        return Err("it has an empty label (two dots in a row, or a leading dot)");
    }
    if label.len() > MAX_LABEL {
        return Err("a label is longer than 63 characters");
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("labels may only hold letters, digits and '-'");
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("a label starts or ends with '-'");
    }
    if label.get(2..4) == Some("--") {
        if !label.starts_with("xn--") {
            return Err("'--' in the third and fourth position is reserved for xn-- labels");
        }
        if !valid_punycode_label(label) {
            return Err("an xn-- label is not valid punycode");
        }
    }
    Ok(())
}

/// An `xn--` label must decode, and encode back to itself (so it is the canonical form).
fn valid_punycode_label(label: &str) -> bool {
    let Some(encoded) = label.strip_prefix("xn--") else {
        return false;
    };
    let Some(decoded) = idna::punycode::decode_to_string(encoded) else {
        return false;
    };
    if decoded.is_ascii() || mixes_scripts(&decoded) {
        return false;
    }
    matches!(idna::domain_to_ascii_strict(&decoded), Ok(back) if back == label)
}

/// Format characters that IDNA would silently drop (zero-width space, joiners, BOM, …).
fn is_invisible(c: char) -> bool {
    matches!(c as u32, 0xad | 0x34f | 0x180e | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x206f | 0xfe00..=0xfe0f | 0xfeff)
}

fn mixes_scripts(label: &str) -> bool {
    let (mut latin, mut cyrillic, mut greek) = (false, false, false);
    for c in label.chars() {
        match c as u32 {
            0x41..=0x5a | 0x61..=0x7a | 0xc0..=0x24f => latin = true,
            0x370..=0x3ff | 0x1f00..=0x1fff => greek = true,
            0x400..=0x52f => cyrillic = true,
            _ => {}
        }
    }
    [latin, cyrillic, greek].into_iter().filter(|s| *s).count() > 1
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_good_domains() {
        let cases = [
            ("example.com", "example.com"),
            ("Example.COM", "example.com"),
            ("a-b.example.co.uk", "a-b.example.co.uk"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("москва.рф", "xn--80adxhks.xn--p1ai"),
            ("1.example.com", "1.example.com"),
        ];
        for (input, want) in cases {
            assert_eq!(DomainName::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn refuses_evil_domains() {
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        let huge = "a".repeat(10_000);
        let evil = [
            "",
            "a;b",
            "a;b.com",
            "a b.com",
            "a\nb.com",
            "a\0b.com",
            "../x",
            "..",
            "a..b",
            "a..b.com",
            "-bad.com",
            "bad-.com",
            "example.com.",
            ".example.com",
            "localhost",
            "1.2.3.4",
            "a{b}.com",
            "a/b.com",
            "a_b.com",
            "ab--cd.com",
            "xn--.com",
            "xn--zzzz-.com",
            "xn--a.com",
            "xn--abc-.com",
            "pаypal.com",
            "exa$mple.com",
            "*.example.com",
            &long_label,
            &long_name,
            &huge,
            "example.com\u{200b}x",
        ];
        for input in evil {
            let err = DomainName::parse(input).unwrap_err();
            assert_eq!(err.kind, crate::error::ErrorKind::Invalid, "{input:?}");
        }
    }

    #[test]
    fn error_messages_are_escaped_and_short() {
        let err = DomainName::parse(&format!("a\n{}", "b".repeat(500))).unwrap_err();
        assert!(!err.message.contains('\n'));
        assert!(err.message.len() < 200);
    }
}
