//! Suspicious-activity flags, decided when a login-related audit row is written (the row's
//! `flag` column, chained with the rest; `audit list --suspicious` shows flagged rows):
//!
//! - `burst …`: a failed login step (action `login` or `login.…`, result not `ok`) that is at
//!   least the `audit.burst_failures`-th within `audit.burst_window_secs` from the same source
//!   address (any port) or for the same user;
//! - `new-network NET`: a successful login from a network (IPv4 /24, IPv6 /48) the user never
//!   logged in from, when it had logged in from another one before (a user's very first login
//!   is not flagged: every user has one);
//! - `lockout`: every `login.lockout` row.
//!
//! Flags are best effort: when they cannot be computed the row is still written, unflagged.

use super::Services;
use super::identity::PANEL_LOGIN;
use crate::store::NewAudit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The action of the rows written when a user is locked out after failed second steps.
pub const LOCKOUT_ACTION: &str = "login.lockout";

impl Services {
    /// The `flag` for the login-related row `row` about to be written, `""` when nothing is
    /// suspicious. `user_id` is the panel user the row is about, when known: a successful
    /// `login` records its network for that user (see the module comment for the rules).
    pub async fn flag_for(&self, row: &NewAudit<'_>, user_id: Option<i64>) -> String {
        if row.action == LOCKOUT_ACTION {
            return "lockout".into();
        }
        let is_login = row.action == "login" || row.action.starts_with("login.");
        let outcome = if !is_login {
            Ok(String::new())
        } else if row.result != "ok" {
            self.burst_flag(row).await
        } else if let (Some(user_id), Some(network)) = (user_id, network_of(row.source)) {
            self.new_network_flag(user_id, &network).await
        } else {
            Ok(String::new())
        };
        outcome.unwrap_or_else(|err| {
            tracing::warn!(error = %err, action = row.action, "cannot compute an audit flag");
            String::new()
        })
    }

    /// Writes the login-related row `row` with its flag ([`Services::flag_for`]); best effort:
    /// a failure is logged, never returned (logins are not refused for want of an audit row).
    pub async fn append_flagged(&self, row: NewAudit<'_>, user_id: Option<i64>) {
        let flag = self.flag_for(&row, user_id).await;
        let row = NewAudit { flag: &flag, ..row };
        if let Err(err) = self.db.append_audit(&row).await {
            tracing::error!(error = %err, action = row.action, "cannot write an audit row");
        }
    }

    async fn burst_flag(&self, row: &NewAudit<'_>) -> crate::error::Result<String> {
        let settings = &self.config.audit;
        let window = settings.burst_window_secs;
        let since = i64::try_from(window)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let host = host_of(row.source);
        let user = names_a_user(row.actor).then_some(row.actor);
        let (by_source, by_user) = self
            .db
            .login_failures_since(since, host.as_deref(), user)
            .await?;
        // This row counts too: it is the (count + 1)-th failure.
        let threshold = i64::from(settings.burst_failures);
        Ok(match (host, user) {
            (Some(host), _) if by_source + 1 >= threshold => format!(
                "burst source={host} failures={} window={window}s",
                by_source + 1
            ),
            (_, Some(user)) if by_user + 1 >= threshold => format!(
                "burst user={user} failures={} window={window}s",
                by_user + 1
            ),
            _ => String::new(),
        })
    }

    async fn new_network_flag(&self, user_id: i64, network: &str) -> crate::error::Result<String> {
        let seen = self.db.record_user_network(user_id, network).await?;
        Ok(if seen.new && seen.known_before > 0 {
            format!("new-network {network}")
        } else {
            String::new()
        })
    }
}

/// Whether an audit row's actor names a panel user (not the `panel` login, nor `@local`).
fn names_a_user(actor: &str) -> bool {
    !actor.is_empty() && actor != PANEL_LOGIN && !actor.starts_with('@')
}

/// The address part of an `IP:PORT` source as it is written in the audit trail (`IP`, or
/// `[IPv6]`), or `None` when the source is not an address (`local`, `unknown`).
fn host_of(source: &str) -> Option<String> {
    let addr: SocketAddr = source.parse().ok()?;
    Some(match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    })
}

/// The network a source address belongs to for "new network": its IPv4 /24 or IPv6 /48
/// (IPv4-mapped IPv6 addresses count as IPv4).
pub fn network_of(source: &str) -> Option<String> {
    let addr: SocketAddr = source.parse().ok()?;
    Some(match addr.ip().to_canonical() {
        IpAddr::V4(ip) => {
            let [a, b, c, _] = ip.octets();
            format!("{}/24", Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(ip) => {
            let [a, b, c, ..] = ip.segments();
            format!("{}/48", Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_of_sources() {
        for (source, want) in [
            ("203.0.113.7:50000", Some("203.0.113.0/24")),
            ("203.0.113.255:1", Some("203.0.113.0/24")),
            ("127.0.0.1:22", Some("127.0.0.0/24")),
            ("[2001:db8:1:2::5]:22", Some("2001:db8:1::/48")),
            (
                "[2001:db8:ffff:ffff:ffff::1]:22",
                Some("2001:db8:ffff::/48"),
            ),
            ("[::ffff:198.51.100.9]:22", Some("198.51.100.0/24")),
            ("[::1]:22", Some("::/48")),
            ("local", None),
            ("unknown", None),
            ("", None),
            ("203.0.113.7", None),
            ("203.0.113.7:99999", None),
            ("1.2.3.4:22\n", None),
        ] {
            assert_eq!(network_of(source).as_deref(), want, "{source:?}");
        }
    }

    #[test]
    fn hosts_match_how_sources_are_written() {
        assert_eq!(host_of("127.0.0.1:4000").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("[::1]:4000").as_deref(), Some("[::1]"));
        assert_eq!(host_of("local"), None);
        // A LIKE wildcard can never come through: only parsed addresses are used.
        assert_eq!(host_of("%:1"), None);
    }

    #[test]
    fn only_real_user_names_count_as_users() {
        assert!(names_a_user("alice"));
        assert!(!names_a_user("panel"));
        assert!(!names_a_user("@local"));
        assert!(!names_a_user(""));
    }
}
