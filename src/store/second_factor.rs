//! The second login step's state: TOTP secrets (sealed), the last accepted time step, recovery
//! and enrollment code hashes, failed second steps and temporary lockouts.

use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRow {
    /// Sealed with the daemon's secret key (see `crate::secret`).
    pub secret: String,
    pub last_step: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EnrollCodeRow {
    /// An argon2id hash, or empty when no code is needed (the bootstrap admin).
    pub hash: String,
    pub expires_at: DateTime<Utc>,
    pub created_by: String,
}

impl Db {
    pub async fn totp_of(&self, user_id: i64) -> Result<Option<TotpRow>> {
        let sql = "SELECT secret, last_step FROM user_totp WHERE user_id = $1";
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(user_id).fetch_optional(pool).await)?)
    }

    pub async fn enroll_code_of(&self, user_id: i64) -> Result<Option<EnrollCodeRow>> {
        let sql = "SELECT hash, expires_at, created_by FROM enroll_codes WHERE user_id = $1";
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(user_id).fetch_optional(pool).await)?)
    }

    /// Unused recovery codes `(id, hash)` of a user.
    pub async fn unused_recovery_codes(&self, user_id: i64) -> Result<Vec<(i64, String)>> {
        let sql = "SELECT id, hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL
            ORDER BY id";
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(user_id).fetch_all(pool).await)?)
    }

    /// The temporary lockout recorded for a user, if any (it may have ended).
    pub async fn locked_until(&self, user_id: i64) -> Result<Option<DateTime<Utc>>> {
        let sql = "SELECT locked_until FROM users WHERE id = $1";
        let until: Option<Option<DateTime<Utc>>> =
            on_db!(self, pool => sqlx::query_scalar(sql).bind(user_id).fetch_optional(pool).await)?;
        Ok(until.flatten())
    }

    pub async fn recovery_codes_left(&self, user_id: i64) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL";
        Ok(on_db!(self, pool => sqlx::query_scalar(sql).bind(user_id).fetch_one(pool).await)?)
    }
}

impl Tx {
    /// Stores (or replaces) a user's sealed TOTP secret; no step accepted yet.
    pub async fn set_totp(
        &mut self,
        user_id: i64,
        sealed: &str,
        last_step: Option<i64>,
    ) -> Result<()> {
        self.delete_totp(user_id).await?;
        let sql = "INSERT INTO user_totp (user_id, secret, last_step, enrolled_at)
            VALUES ($1, $2, $3, $4)";
        on_tx!(self, c => sqlx::query(sql).bind(user_id).bind(sealed).bind(last_step)
            .bind(super::now()).execute(c).await.map(drop))?;
        Ok(())
    }

    /// Stores a first authenticator; false when the user already has one (nothing changed).
    pub async fn insert_first_totp(
        &mut self,
        user_id: i64,
        sealed: &str,
        last_step: i64,
    ) -> Result<bool> {
        let sql = "INSERT INTO user_totp (user_id, secret, last_step, enrolled_at)
            VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO NOTHING";
        let n = on_tx!(self, c => sqlx::query(sql).bind(user_id).bind(sealed).bind(last_step)
            .bind(super::now()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Spends the enrollment code with this hash if it is still the user's live one.
    pub async fn spend_enroll_code(&mut self, user_id: i64, hash: &str) -> Result<bool> {
        let sql = "DELETE FROM enroll_codes WHERE user_id = $1 AND hash = $2 AND expires_at > $3";
        let n = on_tx!(self, c => sqlx::query(sql).bind(user_id).bind(hash).bind(super::now())
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Removes a user's TOTP secret and recovery codes; returns whether a secret existed.
    pub async fn delete_totp(&mut self, user_id: i64) -> Result<bool> {
        let sql = "DELETE FROM recovery_codes WHERE user_id = $1";
        on_tx!(self, c => sqlx::query(sql).bind(user_id).execute(c).await.map(drop))?;
        let sql = "DELETE FROM user_totp WHERE user_id = $1";
        let n = on_tx!(self, c => sqlx::query(sql).bind(user_id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Records `step` as the last accepted one, only if it is newer than the last: false means
    /// the step (or a later one) was already used — a replay.
    pub async fn accept_totp_step(&mut self, user_id: i64, step: i64) -> Result<bool> {
        let sql = "UPDATE user_totp SET last_step = $2
            WHERE user_id = $1 AND (last_step IS NULL OR last_step < $2)";
        let n = on_tx!(self, c => sqlx::query(sql).bind(user_id).bind(step).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn replace_recovery_codes(&mut self, user_id: i64, hashes: &[String]) -> Result<()> {
        let sql = "DELETE FROM recovery_codes WHERE user_id = $1";
        on_tx!(self, c => sqlx::query(sql).bind(user_id).execute(c).await.map(drop))?;
        let sql = "INSERT INTO recovery_codes (user_id, hash) VALUES ($1, $2)";
        for hash in hashes {
            on_tx!(self, c => sqlx::query(sql).bind(user_id).bind(hash).execute(c).await.map(drop))?;
        }
        Ok(())
    }

    /// Marks a recovery code used; false when it already was (a concurrent login took it).
    pub async fn use_recovery_code(&mut self, id: i64) -> Result<bool> {
        let sql = "UPDATE recovery_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL";
        let n = on_tx!(self, c => sqlx::query(sql).bind(id).bind(super::now()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Stores the one live enrollment code of a user (replacing an older one).
    pub async fn set_enroll_code(
        &mut self,
        user_id: i64,
        hash: &str,
        expires_at: DateTime<Utc>,
        created_by: &str,
    ) -> Result<()> {
        self.delete_enroll_code(user_id).await?;
        let sql = "INSERT INTO enroll_codes (user_id, hash, expires_at, created_by, created_at)
            VALUES ($1, $2, $3, $4, $5)";
        on_tx!(self, c => sqlx::query(sql).bind(user_id).bind(hash).bind(expires_at)
            .bind(created_by).bind(super::now()).execute(c).await.map(drop))?;
        Ok(())
    }

    pub async fn delete_enroll_code(&mut self, user_id: i64) -> Result<()> {
        let sql = "DELETE FROM enroll_codes WHERE user_id = $1";
        on_tx!(self, c => sqlx::query(sql).bind(user_id).execute(c).await.map(drop))?;
        Ok(())
    }

    /// Records a failed second step; returns the user's failures at or after `since`.
    pub async fn add_second_step_failure(
        &mut self,
        user_id: i64,
        since: DateTime<Utc>,
    ) -> Result<i64> {
        let sql = "INSERT INTO second_step_failures (user_id, at) VALUES ($1, $2)";
        on_tx!(self, c => sqlx::query(sql).bind(user_id).bind(super::now()).execute(c).await.map(drop))?;
        let sql = "SELECT COUNT(*) FROM second_step_failures WHERE user_id = $1 AND at >= $2";
        Ok(on_tx!(self, c => sqlx::query_scalar(sql).bind(user_id).bind(since).fetch_one(c).await)?)
    }

    /// Sets or lifts (`None`) a temporary lockout; lifting also forgets the failures.
    pub async fn set_locked_until(
        &mut self,
        user_id: i64,
        until: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let sql = "UPDATE users SET locked_until = $2 WHERE id = $1";
        on_tx!(self, c => sqlx::query(sql).bind(user_id).bind(until).execute(c).await.map(drop))?;
        if until.is_none() {
            let sql = "DELETE FROM second_step_failures WHERE user_id = $1";
            on_tx!(self, c => sqlx::query(sql).bind(user_id).execute(c).await.map(drop))?;
        }
        Ok(())
    }

    /// Takes the user's row for the rest of the transaction (PostgreSQL: `FOR UPDATE`; SQLite's
    /// write transactions already exclude each other) and returns its lockout: so checking the
    /// lockout, claiming a code and counting a failure are serialised per user.
    pub async fn lock_login_state(&mut self, user_id: i64) -> Result<Option<DateTime<Utc>>> {
        let until: Option<Option<DateTime<Utc>>> = match self {
            Tx::Postgres(t) => {
                let sql = "SELECT locked_until FROM users WHERE id = $1 FOR UPDATE";
                sqlx::query_scalar(sql)
                    .bind(user_id)
                    .fetch_optional(&mut **t)
                    .await?
            }
            Tx::Sqlite(t) => {
                let sql = "SELECT locked_until FROM users WHERE id = $1";
                sqlx::query_scalar(sql)
                    .bind(user_id)
                    .fetch_optional(&mut **t)
                    .await?
            }
        };
        Ok(until.flatten())
    }

    /// The lockout in force for a user, read inside the transaction.
    pub async fn locked_until(&mut self, user_id: i64) -> Result<Option<DateTime<Utc>>> {
        let sql = "SELECT locked_until FROM users WHERE id = $1";
        let until: Option<Option<DateTime<Utc>>> =
            on_tx!(self, c => sqlx::query_scalar(sql).bind(user_id).fetch_optional(c).await)?;
        Ok(until.flatten())
    }
}
