//! The second login step: a TOTP code (each time step accepted once per user) or a single-use
//! recovery code, with a per-user lockout after too many wrong codes.
//!
//! A good code is accepted in one transaction with the login's audit row, so two connections
//! racing with the same code cannot both win: the conditional update of `last_step` decides.

use super::Services;
use super::identity::{LoginIdentity, login_audit, login_detail};
use crate::error::{Error, Result};
use crate::secret::{OneTimeCode, Totp, verify_code};
use crate::store::{NewAudit, Tx};
use chrono::{DateTime, Duration, Utc};

/// What became of a typed code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    Accepted,
    /// Wrong, replayed or used-up; the attempt was counted.
    Refused,
    /// The user is locked out (now, or because of this attempt) until then.
    LockedOut(DateTime<Utc>),
}

/// What a good code uses up.
enum Claim {
    /// A TOTP time step (accepted once per user).
    TotpStep(i64),
    /// A recovery code, by id.
    RecoveryCode(i64),
}

/// Why a code was refused, for the audit trail (never told to the client).
#[derive(Debug, Clone, Copy)]
pub(super) enum CodeFailure {
    Wrong,
    Replayed,
    WrongEnrollCode,
}

impl CodeFailure {
    fn reason(self) -> &'static str {
        match self {
            CodeFailure::Wrong => "wrong code",
            CodeFailure::Replayed => "code already used",
            CodeFailure::WrongEnrollCode => "wrong or expired enrollment code",
        }
    }
}

/// The sealing context of a user's TOTP secret: a sealed secret opens only in its own row.
pub(super) fn totp_context(user_id: i64) -> String {
    format!("totp:{user_id}")
}

pub(super) fn unix_now() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or(0)
}

impl Services {
    /// Checks the code typed at the `Verification code: ` prompt for an identified user.
    pub async fn verify_second_step(
        &self,
        identity: &LoginIdentity,
        login: &str,
        typed: &str,
    ) -> Result<CodeCheck> {
        let user_id = user_id(identity)?;
        if let Some(until) = self.lockout_in_force(identity, login).await? {
            return Ok(CodeCheck::LockedOut(until));
        }
        let typed = typed.trim();
        if OneTimeCode::looks_like(typed) {
            return self.verify_recovery_code(identity, login, typed).await;
        }
        let Some(row) = self.db.totp_of(user_id).await? else {
            return Err(Error::locked("no authenticator is enrolled for this user"));
        };
        let secret = self
            .secret_key()?
            .open(&totp_context(user_id), &row.secret)?;
        let Some(step) = Totp::new(&secret)?.check(typed, unix_now()) else {
            return self.code_failed(identity, login, CodeFailure::Wrong).await;
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        // A replay seen already here records nothing else (such as the network it came from);
        // the claim in `accept` still decides races.
        if row.last_step.is_some_and(|last| last >= step) {
            return self
                .code_failed(identity, login, CodeFailure::Replayed)
                .await;
        }
        self.accept(identity, login, Claim::TotpStep(step), "")
            .await
    }

    /// Claims a good code's step or recovery code and records the login, in one transaction:
    /// of two logins racing with the same code, the one whose claim fails is a replay.
    async fn accept(
        &self,
        identity: &LoginIdentity,
        login: &str,
        claim: Claim,
        extra: &str,
    ) -> Result<CodeCheck> {
        let user_id = user_id(identity)?;
        let detail = login_detail(identity, login, extra);
        let row = login_audit(identity, "ok", &detail);
        // Before the transaction: computing the flag reads (and records the network).
        let flag = self.flag_for(&row, Some(user_id)).await;
        let mut tx = self.db.begin().await?;
        // A lockout that began after the first check (a concurrent wrong code) wins.
        if let Some(until) = tx
            .lock_login_state(user_id)
            .await?
            .filter(|u| *u > Utc::now())
        {
            drop(tx);
            return Ok(self
                .lockout_in_force(identity, login)
                .await?
                .map_or(CodeCheck::LockedOut(until), CodeCheck::LockedOut));
        }
        let claimed = match claim {
            Claim::TotpStep(step) => tx.accept_totp_step(user_id, step).await?,
            Claim::RecoveryCode(id) => tx.use_recovery_code(id).await?,
        };
        if !claimed {
            drop(tx);
            return self
                .code_failed(identity, login, CodeFailure::Replayed)
                .await;
        }
        tx.append_audit(&NewAudit { flag: &flag, ..row }).await?;
        tx.commit().await?;
        Ok(CodeCheck::Accepted)
    }

    async fn verify_recovery_code(
        &self,
        identity: &LoginIdentity,
        login: &str,
        typed: &str,
    ) -> Result<CodeCheck> {
        let user_id = user_id(identity)?;
        let codes = self.db.unused_recovery_codes(user_id).await?;
        let typed_owned = typed.to_owned();
        // argon2 is slow on purpose: off the async threads.
        let matched = tokio::task::spawn_blocking(move || {
            codes
                .into_iter()
                .find(|(_, hash)| verify_code(&typed_owned, hash))
                .map(|(id, _)| id)
        })
        .await
        .map_err(|e| Error::internal(format!("recovery code check failed: {e}")))?;
        let Some(id) = matched else {
            return self.code_failed(identity, login, CodeFailure::Wrong).await;
        };
        let left = self
            .db
            .recovery_codes_left(user_id)
            .await?
            .saturating_sub(1);
        let extra = format!("recovery_code=used recovery_codes_left={left}");
        self.accept(identity, login, Claim::RecoveryCode(id), &extra)
            .await
    }

    /// The user's lockout end when one is in force; an attempt during it is audited.
    pub(super) async fn lockout_in_force(
        &self,
        identity: &LoginIdentity,
        login: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        let user_id = user_id(identity)?;
        // A plain read first: no write transaction unless there is something to record.
        let until = self
            .db
            .locked_until(user_id)
            .await?
            .filter(|u| *u > Utc::now());
        if let Some(until) = until {
            let detail = login_detail(
                identity,
                login,
                &format!("reason=locked out until {}", until.to_rfc3339()),
            );
            self.append_flagged(login_audit(identity, "refused", &detail), Some(user_id))
                .await;
        }
        Ok(until)
    }

    /// Counts a failed second step; the `auth.lockout_failures`-th within the window locks the
    /// user out for `auth.lockout_secs`.
    pub(super) async fn code_failed(
        &self,
        identity: &LoginIdentity,
        login: &str,
        failure: CodeFailure,
    ) -> Result<CodeCheck> {
        let user_id = user_id(identity)?;
        let auth = &self.config.auth;
        let now = Utc::now();
        let window = Duration::seconds(i64::try_from(auth.lockout_window_secs).unwrap_or(900));
        let detail = login_detail(identity, login, &format!("reason={}", failure.reason()));
        let row = login_audit(identity, "refused", &detail);
        let flag = self.flag_for(&row, Some(user_id)).await;
        let mut tx = self.db.begin().await?;
        // Serialises failures per user, so concurrent wrong codes cannot each count below the limit.
        tx.lock_login_state(user_id).await?;
        let failures = tx.add_second_step_failure(user_id, now - window).await?;
        tx.append_audit(&NewAudit { flag: &flag, ..row }).await?;
        let outcome = if failures >= i64::from(auth.lockout_failures) {
            let until = now + Duration::seconds(i64::try_from(auth.lockout_secs).unwrap_or(900));
            lock_out(&mut tx, identity, user_id, until, failures).await?;
            CodeCheck::LockedOut(until)
        } else {
            CodeCheck::Refused
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

async fn lock_out(
    tx: &mut Tx,
    identity: &LoginIdentity,
    user_id: i64,
    until: DateTime<Utc>,
    failures: i64,
) -> Result<()> {
    tx.set_locked_until(user_id, Some(until)).await?;
    let actor = &identity.actor;
    let detail = format!(
        "failures={failures} until={}; `user unlock {}` lifts it",
        until.to_rfc3339(),
        actor.user
    );
    tx.append_audit(&crate::store::NewAudit {
        actor: &actor.user,
        tenant: &actor.tenant,
        role: actor.role.as_str(),
        key_fingerprint: actor.key_fingerprint.as_deref(),
        source: &actor.source,
        action: super::LOCKOUT_ACTION,
        target: &actor.user,
        result: "locked",
        detail: &detail,
        flag: "lockout",
        ..Default::default()
    })
    .await
}

fn user_id(identity: &LoginIdentity) -> Result<i64> {
    identity
        .actor
        .user_id
        .ok_or_else(|| Error::internal("a login identity without a user"))
}
