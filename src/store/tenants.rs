//! Tenants: customer accounts. `system` holds the platform admins.

use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub users: i64,
    pub sites: i64,
}

/// The common SELECT of this table group, as a literal for `concat!`.
macro_rules! select {
    () => {
        "SELECT t.id, t.name, t.created_at,
        (SELECT COUNT(*) FROM users u WHERE u.tenant_id = t.id) AS users,
        (SELECT COUNT(*) FROM sites s WHERE s.tenant_id = t.id) AS sites
    FROM tenants t"
    };
}

impl Db {
    /// Every tenant, or only the one with id `only`.
    pub async fn tenants(&self, only: Option<i64>) -> Result<Vec<TenantRow>> {
        let sql = concat!(
            select!(),
            " WHERE ($1 IS NULL OR t.id = $1) ORDER BY t.name"
        );
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(only).fetch_all(pool).await)?)
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<TenantRow>> {
        let sql = concat!(select!(), " WHERE t.name = $1");
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(name).fetch_optional(pool).await)?)
    }
}

impl Tx {
    pub async fn insert_tenant(&mut self, name: &str) -> Result<i64> {
        let sql = "INSERT INTO tenants (name, created_at) VALUES ($1, $2) RETURNING id";
        Ok(
            on_tx!(self, c => sqlx::query_scalar(sql).bind(name).bind(super::now()).fetch_one(c).await)?,
        )
    }

    pub async fn delete_tenant(&mut self, id: i64) -> Result<u64> {
        let sql = "DELETE FROM tenants WHERE id = $1";
        let done = on_tx!(self, c => sqlx::query(sql).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(done)
    }
}
