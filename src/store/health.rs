//! Health checks' outcomes (`health.check` jobs): the verdict, what was seen and when, per site
//! and per server. Written without touching a site's revision or `updated_at`; a site whose
//! verdict changed gets a change mark, so caches of the dashboard's failing count learn of it.

use super::{Db, on_db};
use crate::error::Result;
use chrono::{DateTime, Utc};

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRecord<'a> {
    /// `ok` or `failing`.
    pub health: &'a str,
    /// What was seen (`HTTP 200 in 3 ms`, `connection refused`, …).
    pub detail: &'a str,
    pub at: DateTime<Utc>,
}

impl Db {
    /// Records site `id`'s check; a changed verdict also marks the site changed.
    pub async fn record_site_health(&self, id: i64, record: &HealthRecord<'_>) -> Result<()> {
        // Only the health job writes these columns, one check of a site at a time.
        let read = "SELECT health FROM sites WHERE id = $1";
        let before: Option<Option<String>> = on_db!(self, pool => sqlx::query_scalar(read)
            .bind(id).fetch_optional(pool).await)?;
        let Some(before) = before else {
            return Ok(());
        };
        let sql = "UPDATE sites SET health = $2, health_detail = $3, health_at = $4
                   WHERE id = $1";
        on_db!(self, pool => sqlx::query(sql).bind(id).bind(record.health)
            .bind(record.detail).bind(record.at).execute(pool).await.map(drop))?;
        if before.as_deref() != Some(record.health) {
            self.mark_site_changed(id).await?;
        }
        Ok(())
    }

    /// Records server `id`'s reachability check.
    pub async fn record_server_health(&self, id: i64, record: &HealthRecord<'_>) -> Result<()> {
        let sql = "UPDATE servers SET health = $2, health_detail = $3, health_at = $4
                   WHERE id = $1";
        on_db!(self, pool => sqlx::query(sql).bind(id).bind(record.health)
            .bind(record.detail).bind(record.at).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Sites whose last check failed, on the platform or of one tenant.
    pub async fn count_failing_sites(&self, tenant: Option<i64>) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM sites
                   WHERE health = 'failing' AND ($1 IS NULL OR tenant_id = $1)";
        Ok(on_db!(self, pool => sqlx::query_scalar(sql).bind(tenant).fetch_one(pool).await)?)
    }
}
