//! The audit trail's hash chain: each row's `hash` is SHA-256 over the previous row's hash and
//! the row's canonical form, so changing, inserting or removing a row breaks every hash after it.
//!
//! The canonical form is a JSON array of the row's fields in a fixed order, with the time as
//! microseconds since the epoch: unambiguous whatever the fields contain, and the same on both
//! database backends.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The fields that are chained, borrowed from a row to append or a row read back.
pub struct ChainFields<'a> {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub tenant: &'a str,
    pub role: &'a str,
    pub key_fingerprint: Option<&'a str>,
    pub source: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub result: &'a str,
    pub detail: &'a str,
    /// The command line (secrets masked), when the row records a command.
    pub command: Option<&'a str>,
    pub exit_code: Option<i32>,
    /// Why the row is suspicious, or empty.
    pub flag: &'a str,
}

/// Hex SHA-256 of `prev_hash` and the canonical row.
///
/// Rows written before schema v2 have no command, exit code or flag; their canonical form is
/// the first eleven fields only, so they keep verifying. Any row that has one of the three is
/// hashed with all fourteen.
pub fn chain_hash(prev_hash: &str, row: &ChainFields<'_>) -> String {
    let mut canonical = serde_json::json!([
        row.seq,
        row.at.timestamp_micros(),
        row.actor,
        row.tenant,
        row.role,
        row.key_fingerprint,
        row.source,
        row.action,
        row.target,
        row.result,
        row.detail,
    ]);
    if (row.command.is_some() || row.exit_code.is_some() || !row.flag.is_empty())
        && let Some(fields) = canonical.as_array_mut()
    {
        fields.push(row.command.into());
        fields.push(row.exit_code.into());
        fields.push(row.flag.into());
    }
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.to_string().as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(detail: &str) -> ChainFields<'_> {
        ChainFields {
            seq: 1,
            at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            actor: "admin",
            tenant: "system",
            role: "admin",
            key_fingerprint: None,
            source: "local",
            action: "tenant.create",
            target: "acme",
            result: "ok",
            detail,
            command: None,
            exit_code: None,
            flag: "",
        }
    }

    #[test]
    fn any_change_changes_the_hash() {
        let base = chain_hash("", &row(""));
        assert_eq!(base.len(), 64);
        assert_eq!(base, chain_hash("", &row("")), "deterministic");
        assert_ne!(base, chain_hash("", &row("x")));
        assert_ne!(base, chain_hash("00", &row("")));
        let with_command = ChainFields {
            command: Some("site create a.example"),
            exit_code: Some(0),
            ..row("")
        };
        assert_ne!(base, chain_hash("", &with_command));
        let flagged = ChainFields {
            flag: "new network",
            ..row("")
        };
        assert_ne!(base, chain_hash("", &flagged));
    }
}
