//! SSH public keys; a fingerprint belongs to one user only.

use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: i64,
    pub user_id: i64,
    pub user: String,
    pub tenant_id: i64,
    pub tenant: String,
    pub fingerprint: String,
    pub algorithm: String,
    pub public_key: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub automation: bool,
    pub allowed_from: String,
    pub max_role: Option<String>,
}

/// A key with its owner, in one indexed lookup: what login and every command need.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyOwnerRow {
    pub key_id: i64,
    pub user_id: i64,
    pub user: String,
    pub role: String,
    pub locked: bool,
    /// Set while the user is locked out after too many wrong codes.
    pub locked_until: Option<DateTime<Utc>>,
    pub tenant_id: i64,
    pub tenant: String,
    /// Whether the user has enrolled a TOTP authenticator.
    pub has_totp: bool,
    pub automation: bool,
    /// Comma-separated CIDRs an automation key may log in from.
    pub allowed_from: String,
    /// The highest role an automation key acts with.
    pub max_role: Option<String>,
}

/// A key to insert.
#[derive(Debug, Clone, Default)]
pub struct NewKey<'a> {
    pub user_id: i64,
    pub fingerprint: &'a str,
    pub algorithm: &'a str,
    pub public_key: &'a str,
    pub comment: &'a str,
    pub automation: bool,
    pub allowed_from: &'a str,
    pub max_role: Option<&'a str>,
}

/// The common SELECT of this table group, as a literal for `concat!`.
macro_rules! select {
    () => {
        "SELECT k.id, k.user_id, u.name AS \"user\", u.tenant_id, t.name AS tenant, k.fingerprint,
        k.algorithm, k.public_key, k.comment, k.created_at, k.last_used_at, k.automation,
        k.allowed_from, k.max_role
    FROM ssh_keys k JOIN users u ON u.id = k.user_id JOIN tenants t ON t.id = u.tenant_id"
    };
}

impl Db {
    /// Keys filtered by user and/or tenant (`None` = any).
    pub async fn keys(&self, user_id: Option<i64>, tenant_id: Option<i64>) -> Result<Vec<KeyRow>> {
        let sql = concat!(
            select!(),
            " WHERE ($1 IS NULL OR k.user_id = $1) AND ($2 IS NULL OR u.tenant_id = $2)
             ORDER BY u.name, k.created_at, k.id"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as(sql).bind(user_id).bind(tenant_id).fetch_all(pool).await)?,
        )
    }

    pub async fn key_by_fingerprint(&self, fingerprint: &str) -> Result<Option<KeyRow>> {
        let sql = concat!(select!(), " WHERE k.fingerprint = $1");
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(fingerprint).fetch_optional(pool).await)?)
    }

    pub async fn key_owner(&self, fingerprint: &str) -> Result<Option<KeyOwnerRow>> {
        let sql = "SELECT k.id AS key_id, u.id AS user_id, u.name AS \"user\", u.role, u.locked,
                u.locked_until, u.tenant_id, t.name AS tenant,
                EXISTS (SELECT 1 FROM user_totp o WHERE o.user_id = u.id) AS has_totp,
                k.automation, k.allowed_from, k.max_role
            FROM ssh_keys k JOIN users u ON u.id = k.user_id JOIN tenants t ON t.id = u.tenant_id
            WHERE k.fingerprint = $1";
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(fingerprint).fetch_optional(pool).await)?)
    }

    /// Records a successful login with this key (best effort, outside any transaction).
    pub async fn touch_key(&self, id: i64) -> Result<()> {
        let sql = "UPDATE ssh_keys SET last_used_at = $2 WHERE id = $1";
        on_db!(self, pool => sqlx::query(sql).bind(id).bind(super::now()).execute(pool).await.map(drop))?;
        Ok(())
    }
}

impl Tx {
    pub async fn insert_key(&mut self, key: &NewKey<'_>) -> Result<i64> {
        let sql = "INSERT INTO ssh_keys (user_id, fingerprint, algorithm, public_key, comment,
                created_at, automation, allowed_from, max_role)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
        Ok(on_tx!(self, c => sqlx::query_scalar(sql)
            .bind(key.user_id).bind(key.fingerprint).bind(key.algorithm)
            .bind(key.public_key).bind(key.comment).bind(super::now())
            .bind(key.automation).bind(key.allowed_from).bind(key.max_role)
            .fetch_one(c).await)?)
    }

    pub async fn delete_key(&mut self, id: i64) -> Result<u64> {
        let sql = "DELETE FROM ssh_keys WHERE id = $1";
        Ok(
            on_tx!(self, c => sqlx::query(sql).bind(id).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    pub async fn key_exists(&mut self, fingerprint: &str) -> Result<bool> {
        let sql = "SELECT COUNT(*) FROM ssh_keys WHERE fingerprint = $1";
        let n: i64 =
            on_tx!(self, c => sqlx::query_scalar(sql).bind(fingerprint).fetch_one(c).await)?;
        Ok(n > 0)
    }
}
