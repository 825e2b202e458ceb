//! Users: one tenant and one role each; names unique across tenants.

use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub tenant_id: i64,
    pub tenant: String,
    pub name: String,
    pub role: String,
    pub locked: bool,
    pub created_at: DateTime<Utc>,
    pub keys: i64,
}

/// The common SELECT of this table group, as a literal for `concat!`.
macro_rules! select {
    () => {
        "SELECT u.id, u.tenant_id, t.name AS tenant, u.name, u.role, u.locked,
        u.created_at, (SELECT COUNT(*) FROM ssh_keys k WHERE k.user_id = u.id) AS keys
    FROM users u JOIN tenants t ON t.id = u.tenant_id"
    };
}

impl Db {
    /// Users of one tenant, or of all tenants when `tenant_id` is `None`.
    pub async fn users(&self, tenant_id: Option<i64>) -> Result<Vec<UserRow>> {
        let sql = concat!(
            select!(),
            " WHERE ($1 IS NULL OR u.tenant_id = $1) ORDER BY t.name, u.name"
        );
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(tenant_id).fetch_all(pool).await)?)
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        let sql = concat!(select!(), " WHERE u.name = $1");
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(name).fetch_optional(pool).await)?)
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>> {
        let sql = concat!(select!(), " WHERE u.id = $1");
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    pub async fn count_users(&self) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM users";
        Ok(on_db!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?)
    }
}

impl Tx {
    pub async fn insert_user(&mut self, tenant_id: i64, name: &str, role: &str) -> Result<i64> {
        let sql = "INSERT INTO users (tenant_id, name, role, locked, created_at)
                   VALUES ($1, $2, $3, FALSE, $4) RETURNING id";
        Ok(on_tx!(self, c => sqlx::query_scalar(sql)
            .bind(tenant_id).bind(name).bind(role).bind(super::now())
            .fetch_one(c).await)?)
    }

    pub async fn delete_user(&mut self, id: i64) -> Result<u64> {
        let sql = "DELETE FROM users WHERE id = $1";
        Ok(
            on_tx!(self, c => sqlx::query(sql).bind(id).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    pub async fn set_user_role(&mut self, id: i64, role: &str) -> Result<u64> {
        let sql = "UPDATE users SET role = $2 WHERE id = $1";
        Ok(
            on_tx!(self, c => sqlx::query(sql).bind(id).bind(role).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    pub async fn set_user_locked(&mut self, id: i64, locked: bool) -> Result<u64> {
        let sql = "UPDATE users SET locked = $2 WHERE id = $1";
        Ok(
            on_tx!(self, c => sqlx::query(sql).bind(id).bind(locked).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    /// Admins other than `except`: guards against removing the last one.
    pub async fn count_other_admins(&mut self, except: i64) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM users WHERE role = 'admin' AND NOT locked AND id <> $1";
        Ok(on_tx!(self, c => sqlx::query_scalar(sql).bind(except).fetch_one(c).await)?)
    }
}
