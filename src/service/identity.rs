//! Login lookups for the SSH layer: which user a verified key belongs to, and `whoami`.

use super::{Actor, Services, WhoAmI};
use crate::domain::{Role, SshPublicKey};
use crate::error::{Error, Result};

/// The SSH login name that means "whoever owns the key".
pub const PANEL_LOGIN: &str = "panel";

/// Who a key logs in as, before the source address is known.
#[derive(Debug, Clone)]
pub struct LoginIdentity {
    pub key_id: i64,
    pub actor: Actor,
}

impl Services {
    /// The identity for a key offered under SSH login name `login`, if the key is registered,
    /// its user is not locked, and `login` is `panel` or that user's own name.
    pub async fn login_identity(
        &self,
        login: &str,
        key: &russh::keys::PublicKey,
    ) -> Result<Option<LoginIdentity>> {
        let fingerprint = SshPublicKey::fingerprint_of(key);
        let Some(owner) = self.db.key_owner(&fingerprint).await? else {
            return Ok(None);
        };
        if (login != PANEL_LOGIN && login != owner.user) || owner.locked {
            return Ok(None);
        }
        Ok(Some(LoginIdentity {
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

    /// Records that a key was used to log in (best effort).
    pub async fn key_used(&self, key_id: i64) {
        if let Err(err) = self.db.touch_key(key_id).await {
            tracing::warn!(error = %err, "cannot record key use");
        }
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
