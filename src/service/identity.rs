//! Login lookups for the SSH layer: which user a verified key belongs to, which second step it
//! still needs, and `whoami`.

use super::{Actor, Services, WhoAmI};
use crate::config::TotpMode;
use crate::domain::{Role, SourceNets};
use crate::error::{Error, Result};
use crate::store::KeyOwnerRow;
use std::net::IpAddr;

/// The SSH login name that means "whoever owns the key".
pub const PANEL_LOGIN: &str = "panel";

/// Who a key logs in as, and what it still has to pass.
#[derive(Debug, Clone)]
pub struct LoginIdentity {
    pub key_id: i64,
    pub actor: Actor,
    pub second_step: SecondStep,
}

/// The login step after a good key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondStep {
    /// None: `auth.totp = "off"`, or an automation key from an allowed source.
    None,
    /// A TOTP (or recovery) code, through keyboard-interactive.
    Code,
    /// The user has no authenticator yet: it must enroll before any command runs.
    Enroll,
}

/// Why a key was refused at login; recorded in the audit trail, never told to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    UnknownKey,
    /// The key is registered, but the login name is neither `panel` nor its owner's name.
    OtherUsersKey,
    UserLocked,
    /// An automation key used from outside its `--from` networks.
    SourceNotAllowed,
}

impl LoginRefusal {
    pub fn reason(self) -> &'static str {
        match self {
            LoginRefusal::UnknownKey => "unknown key",
            LoginRefusal::OtherUsersKey => "key of another user",
            LoginRefusal::UserLocked => "user locked",
            LoginRefusal::SourceNotAllowed => {
                "automation key used from a source outside its --from"
            }
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
    /// Checks a key (by its SHA-256 fingerprint) offered under SSH login name `login` from
    /// `source`: it must be registered, its user not locked, `login` must be `panel` or that
    /// user's own name, and an automation key must come from one of its networks.
    pub async fn login_check(
        &self,
        login: &str,
        fingerprint: &str,
        source: Option<IpAddr>,
    ) -> Result<LoginCheck> {
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
        } else if owner.automation && !automation_source_allowed(&owner, source) {
            Some(LoginRefusal::SourceNotAllowed)
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
        let second_step = if self.config.auth.totp == TotpMode::Off || owner.automation {
            SecondStep::None
        } else if owner.has_totp {
            SecondStep::Code
        } else {
            SecondStep::Enroll
        };
        Ok(LoginCheck::Accepted(LoginIdentity {
            key_id: owner.key_id,
            actor: Actor {
                user_id: Some(owner.user_id),
                role: effective_role(&owner)?,
                user: owner.user,
                tenant_id: owner.tenant_id,
                tenant: owner.tenant,
                key_fingerprint: Some(fingerprint),
                source: String::new(),
                automation: owner.automation,
            },
            second_step,
        }))
    }

    /// Records a successful login (audit row, key's last use). Best effort: a failure is logged.
    /// `recorded`: the login row was already written (in the transaction that accepted the
    /// TOTP step), so only the key's last use is left to record.
    pub async fn login_succeeded(&self, identity: &LoginIdentity, login: &str, recorded: bool) {
        // The key's last use first: a one-row update that `key list` shows.
        if let Err(err) = self.db.touch_key(identity.key_id).await {
            tracing::warn!(error = %err, "cannot record key use");
        }
        if recorded {
            return;
        }
        let detail = login_detail(identity, login, "");
        let entry = login_audit(identity, "ok", &detail);
        // Flagged when from a new network (see suspicion.rs).
        self.append_flagged(entry, identity.actor.user_id).await;
    }

    /// Records a refused login attempt with its reason (best effort).
    /// `skipped`: refusals not recorded since the previous row (the daemon's write budget).
    pub async fn login_refused(&self, login: &str, check: &LoginCheck, source: &str, skipped: u64) {
        let LoginCheck::Refused {
            reason,
            fingerprint,
            tenant,
        } = check
        else {
            return;
        };
        let login = shown_login(login);
        let mut detail = format!("reason={}", reason.reason());
        if skipped > 0 {
            detail.push_str(&format!(" unrecorded_refusals_before={skipped}"));
        }
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

    /// Records that a source address was penalised for misbehaving before authentication
    /// (best effort). The row is flagged: penalties are worth a look.
    pub async fn penalty_imposed(&self, source: &str, offence: &str, penalty_secs: u64) {
        let detail = format!("offence={offence} penalty_secs={penalty_secs}");
        let entry = crate::store::NewAudit {
            actor: "-",
            source,
            action: "login.penalty",
            target: source,
            result: "penalised",
            detail: &detail,
            flag: "penalty",
            ..Default::default()
        };
        if let Err(err) = self.db.append_audit(&entry).await {
            tracing::error!(error = %err, "cannot record a penalty in the audit trail");
        }
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
            role: effective_role(&user)?,
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

/// The audit row of a login event of an identified user (success, wrong code, lockout…).
pub(super) fn login_audit<'a>(
    identity: &'a LoginIdentity,
    result: &'a str,
    detail: &'a str,
) -> crate::store::NewAudit<'a> {
    let actor = &identity.actor;
    audit_entry(
        &actor.user,
        &actor.tenant,
        actor.role.as_str(),
        actor.key_fingerprint.as_deref(),
        &actor.source,
        &actor.user,
        result,
        detail,
    )
}

/// `login=NAME second=…` plus `extra`, the detail of a login row.
pub(super) fn login_detail(identity: &LoginIdentity, login: &str, extra: &str) -> String {
    let second = match identity.second_step {
        SecondStep::None => "none",
        SecondStep::Code => "code",
        SecondStep::Enroll => "enrollment",
    };
    let mut detail = format!("login={} second={second}", shown_login(login));
    if !extra.is_empty() {
        detail.push(' ');
        detail.push_str(extra);
    }
    detail
}

/// An automation key acts with at most its `--role`, never above its user's role.
fn effective_role(owner: &KeyOwnerRow) -> Result<Role> {
    let role = Role::parse(&owner.role)?;
    match owner.max_role.as_deref() {
        Some(cap) if owner.automation => Ok(role.min(Role::parse(cap)?)),
        _ => Ok(role),
    }
}

/// Whether an automation key may be used from `source` (no source: refused).
fn automation_source_allowed(owner: &KeyOwnerRow, source: Option<IpAddr>) -> bool {
    let (Some(ip), Ok(nets)) = (source, SourceNets::parse(&owner.allowed_from)) else {
        return false;
    };
    nets.contains(ip)
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
