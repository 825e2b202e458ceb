//! Enrolling an authenticator and managing second factors: the login-time enrollment (after the
//! one-time enrollment code), `totp enroll|reset|recovery-codes` and `user enroll-code`.
//!
//! A stolen key alone cannot enroll: every user but the bootstrap admin needs the one-time code
//! its creator was given (argon2id-hashed, `auth.enroll_code_ttl_secs`, one live code a user).

use super::audit::record_ok;
use super::identity::{LoginIdentity, login_audit, login_detail};
use super::policy::Verb;
use super::second_factor::{CodeCheck, CodeFailure, totp_context, unix_now};
use super::{Actor, EnrollCode, RecoveryCodes, Services, TotpEnrollment};
use crate::domain::Name;
use crate::error::{Error, Result};
use crate::secret::{OneTimeCode, Totp, hash_code, qr_code_text, verify_code};
use crate::store::Tx;
use chrono::{DateTime, Duration, Utc};

/// How many recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;
/// The bootstrap admin's enrollment needs no code; its marker in `enroll_codes.hash`.
const NO_CODE_NEEDED: &str = "";

/// What a user without an authenticator must show before enrolling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollRequirement {
    /// The bootstrap admin at its first login.
    NoCodeNeeded,
    /// The one-time code its creator was given.
    NeedsCode,
    /// No live code: someone must issue one (`user enroll-code NAME`).
    NoLiveCode,
}

/// A secret offered to a user, not stored until the user proves it works with one code.
pub struct PendingEnrollment {
    secret: Vec<u8>,
    /// The enrollment code (hash) this enrollment spends when it finishes.
    code_hash: String,
    pub secret_base32: String,
    pub uri: String,
    /// The URI as a QR code in Unicode blocks.
    pub qr: String,
}

impl Services {
    pub async fn enroll_requirement(&self, identity: &LoginIdentity) -> Result<EnrollRequirement> {
        let user_id = user_id(&identity.actor)?;
        Ok(match self.db.enroll_code_of(user_id).await? {
            Some(row) if row.expires_at > Utc::now() => {
                if row.hash == NO_CODE_NEEDED {
                    EnrollRequirement::NoCodeNeeded
                } else {
                    EnrollRequirement::NeedsCode
                }
            }
            _ => EnrollRequirement::NoLiveCode,
        })
    }

    /// Checks a typed enrollment code; a wrong one counts towards the lockout like a wrong TOTP
    /// code.
    pub async fn check_enroll_code(
        &self,
        identity: &LoginIdentity,
        login: &str,
        typed: &str,
    ) -> Result<CodeCheck> {
        if let Some(until) = self.lockout_in_force(identity, login).await? {
            return Ok(CodeCheck::LockedOut(until));
        }
        let user_id = user_id(&identity.actor)?;
        let row = self
            .db
            .enroll_code_of(user_id)
            .await?
            .filter(|row| row.expires_at > Utc::now());
        let good = match row {
            Some(row) if row.hash == NO_CODE_NEEDED => true,
            Some(row) => {
                let typed = typed.to_owned();
                tokio::task::spawn_blocking(move || verify_code(&typed, &row.hash))
                    .await
                    .map_err(|e| Error::internal(format!("code check failed: {e}")))?
            }
            None => false,
        };
        if good {
            return Ok(CodeCheck::Accepted);
        }
        self.code_failed(identity, login, CodeFailure::WrongEnrollCode)
            .await
    }

    /// A new secret for `identity`'s user, with its URI and QR code (nothing stored yet), bound
    /// to the user's live enrollment code: replacing or expiring that code voids it.
    pub async fn start_enrollment(&self, identity: &LoginIdentity) -> Result<PendingEnrollment> {
        let user_id = user_id(&identity.actor)?;
        let code = self
            .db
            .enroll_code_of(user_id)
            .await?
            .filter(|row| row.expires_at > Utc::now())
            .ok_or_else(|| {
                Error::locked("your enrollment code expired or was replaced; log in again")
            })?;
        let mut pending = pending_for(&self.config.auth.issuer, &identity.actor.user)?;
        pending.code_hash = code.hash;
        Ok(pending)
    }

    /// Stores the pending secret once `typed` is a good code for it; returns the recovery codes
    /// to show, or `None` when the code was wrong (counted towards the lockout). The
    /// confirming code's step counts as used, and the login is recorded in the same transaction.
    pub async fn finish_enrollment(
        &self,
        identity: &LoginIdentity,
        login: &str,
        pending: &PendingEnrollment,
        typed: &str,
    ) -> Result<Option<Vec<String>>> {
        let user_id = user_id(&identity.actor)?;
        let Some(step) = Totp::new(&pending.secret)?.check(typed, unix_now()) else {
            return match self
                .code_failed(identity, login, CodeFailure::Wrong)
                .await?
            {
                CodeCheck::LockedOut(until) => Err(locked_out_error(&identity.actor.user, until)),
                _ => Ok(None),
            };
        };
        let sealed = self
            .secret_key()?
            .seal(&totp_context(user_id), &pending.secret)?;
        let (codes, hashes) = new_recovery_codes().await?;
        let detail = login_detail(identity, login, "enrolled=yes");
        let row = login_audit(identity, "ok", &detail);
        let flag = self.flag_for(&row, Some(user_id)).await;
        let mut tx = self.db.begin().await?;
        // Still the same live code, and still no authenticator: else another login enrolled
        // meanwhile, or an owner replaced the code (revoking this enrollment).
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        if !tx.spend_enroll_code(user_id, &pending.code_hash).await?
            || !tx.insert_first_totp(user_id, &sealed, step).await?
        {
            return Err(Error::conflict(
                "this enrollment is void: the enrollment code was replaced or spent, or the user already has an authenticator; log in again",
            ));
        }
        tx.replace_recovery_codes(user_id, &hashes).await?;
        let actor = &identity.actor;
        record_ok(
            &mut tx,
            actor,
            &actor.tenant,
            "totp.enroll",
            &actor.user,
            "at login",
        )
        .await?;
        tx.append_audit(&crate::store::NewAudit { flag: &flag, ..row })
            .await?;
        tx.commit().await?;
        Ok(Some(codes))
    }

    /// `totp enroll [USER]`: a new authenticator secret, active at once, with new recovery
    /// codes. Yourself, or (admins) another user for provisioning.
    pub async fn totp_enroll(&self, actor: &Actor, user: Option<&Name>) -> Result<TotpEnrollment> {
        let target = user.map_or_else(|| actor.user.clone(), ToString::to_string);
        self.audited(actor, "totp.enroll", &target, async {
            actor.refuse_automation("manage authenticators")?;
            let row = self.second_factor_subject(actor, user, true).await?;
            let pending = pending_for(&self.config.auth.issuer, &row.name)?;
            let sealed = self
                .secret_key()?
                .seal(&totp_context(row.id), &pending.secret)?;
            let (codes, hashes) = new_recovery_codes().await?;
            let mut tx = self.db.begin().await?;
            tx.set_totp(row.id, &sealed, None).await?;
            tx.delete_enroll_code(row.id).await?;
            tx.replace_recovery_codes(row.id, &hashes).await?;
            record_ok(&mut tx, actor, &row.tenant, "totp.enroll", &row.name, "").await?;
            tx.commit().await?;
            Ok(TotpEnrollment {
                user: row.name,
                secret: pending.secret_base32,
                uri: pending.uri,
                recovery_codes: codes,
            })
        })
        .await
    }

    /// `totp reset USER` (owners in their tenant, admins): removes the authenticator and recovery
    /// codes and issues a new enrollment code, so the user enrolls again at its next login.
    pub async fn totp_reset(&self, actor: &Actor, user: &Name) -> Result<EnrollCode> {
        self.audited(actor, "totp.reset", user.as_str(), async {
            actor.refuse_automation("manage authenticators")?;
            let row = self.visible_user(actor, user, Verb::Write).await?;
            super::users::refuse_peer_or_above(actor, &row, "authenticator")?;
            self.new_enroll_code_for(actor, row, "totp.reset", true)
                .await
        })
        .await
    }

    /// `totp recovery-codes`: ten new recovery codes for yourself (the old ones stop working).
    pub async fn totp_recovery_codes(&self, actor: &Actor) -> Result<RecoveryCodes> {
        self.audited(actor, "totp.recovery-codes", &actor.user, async {
            actor.refuse_automation("manage authenticators")?;
            let row = self.second_factor_subject(actor, None, false).await?;
            if self.db.totp_of(row.id).await?.is_none() {
                return Err(Error::conflict(
                    "you have no authenticator enrolled; run `totp enroll` first",
                ));
            }
            let (codes, hashes) = new_recovery_codes().await?;
            let mut tx = self.db.begin().await?;
            tx.replace_recovery_codes(row.id, &hashes).await?;
            record_ok(
                &mut tx,
                actor,
                &row.tenant,
                "totp.recovery-codes",
                &row.name,
                "",
            )
            .await?;
            tx.commit().await?;
            Ok(RecoveryCodes {
                user: row.name,
                recovery_codes: codes,
            })
        })
        .await
    }

    /// `user enroll-code NAME`: a new one-time enrollment code for a user without an
    /// authenticator (the previous code stops working).
    pub async fn user_enroll_code(&self, actor: &Actor, user: &Name) -> Result<EnrollCode> {
        self.audited(actor, "user.enroll-code", user.as_str(), async {
            actor.refuse_automation("manage authenticators")?;
            let row = self.visible_user(actor, user, Verb::Write).await?;
            super::users::refuse_peer_or_above(actor, &row, "authenticator")?;
            if self.db.totp_of(row.id).await?.is_some() {
                return Err(Error::conflict(format!(
                    "user {} already has an authenticator; `totp reset {}` makes it enroll again",
                    row.name, row.name
                )));
            }
            self.new_enroll_code_for(actor, row, "user.enroll-code", false)
                .await
        })
        .await
    }

    /// Issues `row`'s new enrollment code and records `action`; `reset` first removes its
    /// authenticator and recovery codes.
    async fn new_enroll_code_for(
        &self,
        actor: &Actor,
        row: crate::store::UserRow,
        action: &str,
        reset: bool,
    ) -> Result<EnrollCode> {
        let (code, hash) = new_enroll_code().await?;
        let mut tx = self.db.begin().await?;
        let detail = if reset {
            format!("had_authenticator={}", tx.delete_totp(row.id).await?)
        } else {
            String::new()
        };
        let expires_at = self
            .store_enroll_code(&mut tx, row.id, &hash, actor)
            .await?;
        record_ok(&mut tx, actor, &row.tenant, action, &row.name, &detail).await?;
        tx.commit().await?;
        Ok(EnrollCode {
            user: row.name,
            enroll_code: code,
            expires_at,
        })
    }

    /// Issues an enrollment code inside `tx` (used by `user create`); returns it and its expiry.
    pub(super) async fn issue_enroll_code(
        &self,
        tx: &mut Tx,
        user_id: i64,
        actor: &Actor,
    ) -> Result<(String, DateTime<Utc>)> {
        let (code, hash) = new_enroll_code().await?;
        let expires_at = self.store_enroll_code(tx, user_id, &hash, actor).await?;
        Ok((code, expires_at))
    }

    /// Lets the bootstrap admin enroll at its first login without a code.
    pub(super) async fn allow_first_enrollment(&self, tx: &mut Tx, user_id: i64) -> Result<()> {
        let expires_at = Utc::now() + Duration::days(3650);
        tx.set_enroll_code(user_id, NO_CODE_NEEDED, expires_at, "@bootstrap")
            .await
    }

    async fn store_enroll_code(
        &self,
        tx: &mut Tx,
        user_id: i64,
        hash: &str,
        actor: &Actor,
    ) -> Result<DateTime<Utc>> {
        let ttl = i64::try_from(self.config.auth.enroll_code_ttl_secs).unwrap_or(86_400);
        let expires_at = Utc::now() + Duration::seconds(ttl);
        tx.set_enroll_code(user_id, hash, expires_at, &actor.user)
            .await?;
        Ok(expires_at)
    }

    /// The user whose second factor is managed: yourself, or `user` when `others` allows it
    /// (admins only: provisioning another user's secret means knowing it).
    async fn second_factor_subject(
        &self,
        actor: &Actor,
        user: Option<&Name>,
        others: bool,
    ) -> Result<crate::store::UserRow> {
        match (user, actor.user_id) {
            (Some(name), _) if others => {
                let row = self.visible_user(actor, name, Verb::Write).await?;
                if !actor.is_user(row.id) && !actor.is_admin() {
                    return Err(Error::forbidden(
                        "only admins provision another user's authenticator; use `totp reset USER` so the user enrolls itself",
                    ));
                }
                Ok(row)
            }
            (None, Some(id)) => self
                .db
                .user_by_id(id)
                .await?
                .ok_or_else(|| Error::locked("your user no longer exists")),
            (None, None) => Err(Error::usage(
                "the local administrator has no authenticator of its own; name a user: totp enroll USER",
            )),
            (Some(_), _) => Err(Error::usage("name no user: this manages your own codes")),
        }
    }
}

/// The error that ends an enrollment when the user got locked out.
pub fn locked_out_error(user: &str, until: DateTime<Utc>) -> Error {
    Error::locked(format!(
        "too many wrong codes: {user} is locked out until {} UTC; an owner or admin can lift it with `user unlock {user}`",
        until.format("%Y-%m-%d %H:%M")
    ))
}

fn pending_for(issuer: &str, account: &str) -> Result<PendingEnrollment> {
    let secret = Totp::generate_secret()?;
    let uri = Totp::uri(issuer, account, &secret);
    Ok(PendingEnrollment {
        code_hash: String::new(),
        secret_base32: Totp::secret_base32(&secret),
        qr: qr_code_text(&uri)?,
        uri,
        secret,
    })
}

/// A new enrollment code and its hash.
async fn new_enroll_code() -> Result<(String, String)> {
    let code = OneTimeCode::generate()?.0;
    let for_hash = code.clone();
    let hash = tokio::task::spawn_blocking(move || hash_code(&for_hash))
        .await
        .map_err(|e| Error::internal(format!("hashing failed: {e}")))??;
    Ok((code, hash))
}

/// Ten new recovery codes and their hashes.
async fn new_recovery_codes() -> Result<(Vec<String>, Vec<String>)> {
    tokio::task::spawn_blocking(|| {
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        let mut hashes = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            let code = OneTimeCode::generate()?.0;
            hashes.push(hash_code(&code)?);
            codes.push(code);
        }
        Ok((codes, hashes))
    })
    .await
    .map_err(|e| Error::internal(format!("hashing failed: {e}")))?
}

fn user_id(actor: &Actor) -> Result<i64> {
    actor
        .user_id
        .ok_or_else(|| Error::internal("a login identity without a user"))
}
