//! Login lookups for the SSH layer: which user a verified key belongs to, and `whoami`.

use super::{Actor, Services, WhoAmI};
use crate::domain::Role;
use crate::error::{Error, Result};

/// The SSH login name that means "whoever owns the key".
pub const PANEL_LOGIN: &str = "panel";

/// Who a key logs in as, before the source address is known.
#[derive(Debug, Clone)]
pub struct LoginIdentity {
    pub key_id: i64,
    pub actor: Actor,
}

/// Why a key was refused at login; recorded in the audit trail, never told to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    UnknownKey,
    /// The key is registered, but the login name is neither `panel` nor its owner's name.
    OtherUsersKey,
    UserLocked,
}

impl LoginRefusal {
    pub fn reason(self) -> &'static str {
        match self {
            LoginRefusal::UnknownKey => "unknown key",
            LoginRefusal::OtherUsersKey => "key of another user",
            LoginRefusal::UserLocked => "user locked",
        }
    }
}

/// The answer to "may this key log in under this name?".
#[derive(Debug, Clone)]
pub enum LoginCheck {
    Accepted(LoginIdentity),
    Refused {
        reason: LoginRefusal,
        fingerprint: String,
        /// The key owner's tenant (so its owners see attempts on their users), or empty.
        tenant: String,
    },
}

impl Services {
    /// Checks a key (by its SHA-256 fingerprint) offered under SSH login name `login`: it must
    /// be registered, its user not locked, and `login` must be `panel` or that user's own name.
    pub async fn login_check(&self, login: &str, fingerprint: &str) -> Result<LoginCheck> {
        let fingerprint = fingerprint.to_owned();
        let Some(owner) = self.db.key_owner(&fingerprint).await? else {
            return Ok(LoginCheck::Refused {
                reason: LoginRefusal::UnknownKey,
                fingerprint,
                tenant: String::new(),
            });
        };
        let refusal = if login != PANEL_LOGIN && login != owner.user {
            Some(LoginRefusal::OtherUsersKey)
        } else if owner.locked {
            Some(LoginRefusal::UserLocked)
        } else {
            None
        };
        if let Some(reason) = refusal {
            return Ok(LoginCheck::Refused {
                reason,
                fingerprint,
                tenant: owner.tenant,
            });
        }
        Ok(LoginCheck::Accepted(LoginIdentity {
            key_id: owner.key_id,
            actor: Actor {
                user_id: Some(owner.user_id),
                user: owner.user,
                tenant_id: owner.tenant_id,
                tenant: owner.tenant,
                role: Role::parse(&owner.role)?,
                key_fingerprint: Some(fingerprint),
                source: String::new(),
            },
        }))
    }

    /// Records a successful login (audit row, key's last use). Best effort: a failure is logged.
    pub async fn login_succeeded(&self, identity: &LoginIdentity, login: &str) {
        // The key's last use first: a one-row update that `key list` shows.
        if let Err(err) = self.db.touch_key(identity.key_id).await {
            tracing::warn!(error = %err, "cannot record key use");
        }
        let actor = &identity.actor;
        let detail = format!("login={}", shown_login(login));
        let entry = audit_entry(
            &actor.user,
            &actor.tenant,
            actor.role.as_str(),
            actor.key_fingerprint.as_deref(),
            &actor.source,
            &actor.user,
            "ok",
            &detail,
        );
        // Flagged when from a new network (see suspicion.rs).
        self.append_flagged(entry, actor.user_id).await;
    }

    /// Records a refused login attempt with its reason (best effort).
    pub async fn login_refused(&self, login: &str, check: &LoginCheck, source: &str) {
        let LoginCheck::Refused {
            reason,
            fingerprint,
            tenant,
        } = check
        else {
            return;
        };
        let login = shown_login(login);
        let detail = format!("reason={}", reason.reason());
        let entry = audit_entry(
            &login,
            tenant,
            "",
            Some(fingerprint),
            source,
            &login,
            "refused",
            &detail,
        );
        // Flagged when part of a burst of failures (see suspicion.rs).
        self.append_flagged(entry, None).await;
    }

    /// The actor as it stands now, checked before every command so that removing a key or
    /// locking, deleting or re-roling a user applies to connections that are already open.
    pub async fn refresh_actor(&self, actor: &Actor) -> Result<Actor> {
        let Some(fingerprint) = &actor.key_fingerprint else {
            return Ok(actor.clone());
        };
        let user = self
            .db
            .key_owner(fingerprint)
            .await?
            .filter(|owner| actor.is_user(owner.user_id))
            .ok_or_else(|| Error::locked("the key you logged in with was removed; log in again"))?;
        if user.locked {
            return Err(Error::locked(
                "your user is locked; ask an owner or admin to unlock it",
            ));
        }
        Ok(Actor {
            role: Role::parse(&user.role)?,
            tenant_id: user.tenant_id,
            tenant: user.tenant,
            ..actor.clone()
        })
    }

    pub fn whoami(&self, actor: &Actor) -> WhoAmI {
        WhoAmI {
            user: actor.user.clone(),
            tenant: actor.tenant.clone(),
            role: actor.role.to_string(),
            key_fingerprint: actor.key_fingerprint.clone(),
            source: actor.source.clone(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn audit_entry<'a>(
    actor: &'a str,
    tenant: &'a str,
    role: &'a str,
    key_fingerprint: Option<&'a str>,
    source: &'a str,
    target: &'a str,
    result: &'a str,
    detail: &'a str,
) -> crate::store::NewAudit<'a> {
    crate::store::NewAudit {
        actor,
        tenant,
        role,
        key_fingerprint,
        source,
        action: "login",
        target,
        result,
        detail,
        ..Default::default()
    }
}

/// A login name as the client sent it, made safe to store and show: no control characters,
/// at most 64 characters.
fn shown_login(login: &str) -> String {
    login
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
