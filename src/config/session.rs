//! `[session]`: interactive sessions (a `vipanel __session` child on a PTY per shell login).

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// `[session]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionConfig {
    /// The unprivileged account session processes run as when the daemon runs as root (created
    /// by `serve` when missing; never shared with other software).
    pub user: String,
    /// A session without user input (bytes typed) for this long ends; 0 = never.
    pub idle_timeout_secs: u64,
    /// How long before the idle end the user is warned.
    pub idle_warning_secs: u64,
    /// Interactive sessions one user may have open at once, over all its connections.
    pub max_per_user: u32,
    /// Interactive sessions one connection may have open at once.
    pub max_per_connection: u32,
    /// Shell history lines kept per user (the newest).
    pub history_lines: u32,
    /// After SIGHUP, how long a session process has to exit before it gets SIGKILL, in ms.
    pub hangup_grace_ms: u64,
    /// Requests one session may have in flight at once over its link.
    pub max_requests: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            user: "vipanel-session".into(),
            idle_timeout_secs: 900,
            idle_warning_secs: 60,
            max_per_user: 10,
            max_per_connection: 4,
            history_lines: 1000,
            hangup_grace_ms: 1000,
            max_requests: 16,
        }
    }
}

impl SessionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| {
            Err(ConfigError(format!(
                "bad value for key `session.{key}`: {why}"
            )))
        };
        if !is_account_name(&self.user) {
            return bad(
                "user",
                format!(
                    "{:?} is not an account name (lower-case letters, digits, `-` and `_`, \
                     starting with a letter or `_`, at most 32 characters)",
                    self.user
                ),
            );
        }
        if self.user == "root" {
            return bad(
                "user",
                "must not be root: session processes run unprivileged".into(),
            );
        }
        if self.idle_timeout_secs > 0 && self.idle_warning_secs >= self.idle_timeout_secs {
            return bad(
                "idle_warning_secs",
                format!(
                    "must be less than session.idle_timeout_secs ({})",
                    self.idle_timeout_secs
                ),
            );
        }
        for (key, value, max) in [
            ("max_per_user", u64::from(self.max_per_user), 1000),
            (
                "max_per_connection",
                u64::from(self.max_per_connection),
                100,
            ),
            ("history_lines", u64::from(self.history_lines), 100_000),
            ("hangup_grace_ms", self.hangup_grace_ms, 60_000),
            ("max_requests", u64::from(self.max_requests), 1000),
        ] {
            if value == 0 || value > max {
                return bad(key, format!("must be from 1 to {max}"));
            }
        }
        Ok(())
    }
}

/// A name `useradd` accepts without `--badname`, and that cannot be read as an option or a
/// number.
fn is_account_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 32
        && (first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        for good in ["vipanel-session", "_vp", "a1_b-c"] {
            assert!(is_account_name(good), "{good}");
        }
        for bad in [
            "",
            "-rf",
            "Root",
            "1abc",
            "a b",
            "a;b",
            "a/../b",
            "ä",
            "a\n",
            &"a".repeat(33),
        ] {
            assert!(!is_account_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_checked() {
        let ok = SessionConfig::default();
        assert!(ok.validate().is_ok());
        for broken in [
            SessionConfig {
                user: "root".into(),
                ..SessionConfig::default()
            },
            SessionConfig {
                idle_timeout_secs: 60,
                idle_warning_secs: 60,
                ..SessionConfig::default()
            },
            SessionConfig {
                max_per_user: 0,
                ..SessionConfig::default()
            },
            SessionConfig {
                history_lines: 0,
                ..SessionConfig::default()
            },
        ] {
            assert!(broken.validate().is_err(), "{broken:?}");
        }
        // No idle timeout: the warning does not matter.
        let off = SessionConfig {
            idle_timeout_secs: 0,
            ..SessionConfig::default()
        };
        assert!(off.validate().is_ok());
    }
}
