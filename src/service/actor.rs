//! Who is acting: bound once after authentication, then passed to every service call.

use crate::domain::Role;

/// The identity a request runs as. Built by the SSH layer after the key signature was verified,
/// or by `vipanel admin` for the local system administrator; never from anything a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user's id; `None` for the built-in local administrator of `vipanel admin`.
    pub user_id: Option<i64>,
    pub user: String,
    pub tenant_id: i64,
    pub tenant: String,
    pub role: Role,
    pub key_fingerprint: Option<String>,
    /// Where the request came from: `IP:PORT` for SSH, `local` for `vipanel admin`.
    pub source: String,
    /// Logged in with an automation key: no second step was asked, so it may not manage keys
    /// or authenticators (that would lift its `--from` networks or its role cap).
    pub automation: bool,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Refuses what an automation key must never do: manage keys or authenticators.
    pub fn refuse_automation(&self, what: &str) -> crate::error::Result<()> {
        if self.automation {
            return Err(crate::error::Error::forbidden(format!(
                "an automation key cannot {what}; log in with your own key and code"
            )));
        }
        Ok(())
    }

    /// Whether this actor is the user with id `user_id`.
    pub fn is_user(&self, user_id: i64) -> bool {
        self.user_id == Some(user_id)
    }
}
