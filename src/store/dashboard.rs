//! The counts of `dashboard`: one aggregate per figure, never a list of rows.
//!
//! Each query has a platform form (no filter, so SQLite's min/max and count optimisations and
//! PostgreSQL's index-only scans apply) and a tenant form (an equality on an indexed column).

use super::{Db, on_db};
use crate::error::Result;
use chrono::{DateTime, Utc};

/// Tenants, users, keys and servers in a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct DashboardCounts {
    pub tenants: i64,
    pub users: i64,
    pub keys: i64,
    pub servers: i64,
}

impl Db {
    /// The counts for the platform (`tenant` = `None`) or one tenant (its servers and the
    /// shared ones); `keys_of`: count only that user's keys.
    pub async fn dashboard_counts(
        &self,
        tenant: Option<i64>,
        keys_of: Option<i64>,
    ) -> Result<DashboardCounts> {
        Ok(match tenant {
            None => {
                let sql = "SELECT (SELECT COUNT(*) FROM tenants) AS tenants,
                    (SELECT COUNT(*) FROM users) AS users,
                    (SELECT COUNT(*) FROM ssh_keys k WHERE $1 IS NULL OR k.user_id = $1) AS keys,
                    (SELECT COUNT(*) FROM servers) AS servers";
                on_db!(self, pool => sqlx::query_as(sql).bind(keys_of).fetch_one(pool).await)?
            }
            Some(tenant) => {
                let sql = "SELECT (SELECT COUNT(*) FROM tenants WHERE id = $1) AS tenants,
                    (SELECT COUNT(*) FROM users WHERE tenant_id = $1) AS users,
                    (SELECT COUNT(*) FROM ssh_keys k JOIN users u ON u.id = k.user_id
                        WHERE u.tenant_id = $1 AND ($2 IS NULL OR k.user_id = $2)) AS keys,
                    (SELECT COUNT(*) FROM servers WHERE tenant_id = $1 OR tenant_id IS NULL)
                        AS servers";
                on_db!(self, pool => sqlx::query_as(sql).bind(tenant).bind(keys_of)
                    .fetch_one(pool).await)?
            }
        })
    }

    /// Site counts by status, and when a site was last applied, for the platform or a tenant.
    pub async fn dashboard_sites(
        &self,
        tenant: Option<i64>,
    ) -> Result<(Vec<(String, i64)>, Option<DateTime<Utc>>)> {
        let counts: Vec<(String, i64)>;
        let last: Option<DateTime<Utc>>;
        match tenant {
            None => {
                let sql = "SELECT status, COUNT(*) FROM sites GROUP BY status ORDER BY status";
                counts = on_db!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
                let sql = "SELECT MAX(applied_at) FROM sites";
                last = on_db!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?;
            }
            Some(tenant) => {
                let sql = "SELECT status, COUNT(*) FROM sites WHERE tenant_id = $1
                    GROUP BY status ORDER BY status";
                counts =
                    on_db!(self, pool => sqlx::query_as(sql).bind(tenant).fetch_all(pool).await)?;
                let sql = "SELECT MAX(applied_at) FROM sites WHERE tenant_id = $1";
                last = on_db!(self, pool => sqlx::query_scalar(sql).bind(tenant)
                    .fetch_one(pool).await)?;
            }
        }
        Ok((counts, last))
    }
}
