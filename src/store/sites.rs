//! Sites and their aliases. Domains and aliases are unique across all tenants.

use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SiteRow {
    pub id: i64,
    pub tenant_id: i64,
    pub tenant: String,
    pub server: String,
    pub domain: String,
    pub kind: String,
    pub php_version: Option<String>,
    pub upstream: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether the site should serve (`site enable|disable`).
    pub enabled: bool,
    /// The site's own system account, assigned at creation.
    pub system_user: Option<String>,
    /// Counts changes to what the site should be.
    pub revision: i64,
    /// The revision the host last matched (0: never applied).
    pub applied_revision: i64,
    pub applied_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// With status `deleting`: remove the site's files too (`site delete --purge`).
    pub purge_on_delete: bool,
    /// The last health check: `ok`, `failing`, or `None` (never checked).
    pub health: Option<String>,
    pub health_detail: Option<String>,
    pub health_at: Option<DateTime<Utc>>,
    #[sqlx(skip)]
    pub aliases: Vec<String>,
}

/// The status of a site being removed from the host: the row goes once the host no longer has it.
pub const SITE_DELETING: &str = "deleting";

/// How an apply ended for one site, written back by the applier.
#[derive(Debug, Clone)]
pub enum ApplyRecord<'a> {
    /// The host matches `revision`; the site is now `status` (active or disabled).
    Applied { revision: i64, status: &'a str },
    /// The apply failed: status `error`, and why.
    Failed { error: &'a str },
}

/// A site to insert.
#[derive(Debug, Clone)]
pub struct NewSite<'a> {
    pub tenant_id: i64,
    pub server_id: i64,
    pub domain: &'a str,
    pub kind: &'a str,
    pub php_version: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub status: &'a str,
    pub aliases: &'a [String],
}

/// A change to a site (`site enable|disable|php`, `site delete`'s first step).
#[derive(Debug, Clone, Default)]
pub struct SiteChange {
    pub enabled: Option<bool>,
    pub php_version: Option<String>,
    pub status: Option<&'static str>,
    /// With status `deleting`: whether the files go too.
    pub purge_on_delete: Option<bool>,
}

/// The common SELECT of this table group, as a literal for `concat!`.
macro_rules! select {
    () => {
        "SELECT s.id, s.tenant_id, t.name AS tenant, v.name AS server, s.domain,
        s.kind, s.php_version, s.upstream, s.status, s.created_at, s.updated_at,
        s.enabled, s.system_user, s.revision, s.applied_revision, s.applied_at, s.last_error,
        s.purge_on_delete, s.health, s.health_detail, s.health_at
    FROM sites s JOIN tenants t ON t.id = s.tenant_id JOIN servers v ON v.id = s.server_id"
    };
}

#[derive(sqlx::FromRow)]
struct AliasRow {
    site_id: i64,
    name: String,
}

impl Db {
    /// Sites of one tenant, or of all when `tenant_id` is `None`, with their aliases.
    pub async fn sites(&self, tenant_id: Option<i64>) -> Result<Vec<SiteRow>> {
        let sql = concat!(
            select!(),
            " WHERE ($1 IS NULL OR s.tenant_id = $1) ORDER BY s.domain"
        );
        let mut sites: Vec<SiteRow> =
            on_db!(self, pool => sqlx::query_as(sql).bind(tenant_id).fetch_all(pool).await)?;
        let sql = "SELECT a.site_id, a.name FROM site_aliases a JOIN sites s ON s.id = a.site_id
                   WHERE ($1 IS NULL OR s.tenant_id = $1) ORDER BY a.name";
        let aliases: Vec<AliasRow> =
            on_db!(self, pool => sqlx::query_as(sql).bind(tenant_id).fetch_all(pool).await)?;
        for alias in aliases {
            if let Some(site) = sites.iter_mut().find(|s| s.id == alias.site_id) {
                site.aliases.push(alias.name);
            }
        }
        Ok(sites)
    }

    pub async fn site_by_domain(&self, domain: &str) -> Result<Option<SiteRow>> {
        let sql = concat!(select!(), " WHERE s.domain = $1");
        let site: Option<SiteRow> =
            on_db!(self, pool => sqlx::query_as(sql).bind(domain).fetch_optional(pool).await)?;
        let Some(mut site) = site else {
            return Ok(None);
        };
        site.aliases = self.site_aliases(site.id).await?;
        Ok(Some(site))
    }

    /// Sites by id (those that still exist), with their aliases.
    pub async fn sites_by_ids(&self, ids: &[i64]) -> Result<Vec<SiteRow>> {
        let mut sites = Vec::with_capacity(ids.len());
        for id in ids {
            let sql = concat!(select!(), " WHERE s.id = $1");
            let site: Option<SiteRow> =
                on_db!(self, pool => sqlx::query_as(sql).bind(*id).fetch_optional(pool).await)?;
            if let Some(mut site) = site {
                site.aliases = self.site_aliases(site.id).await?;
                sites.push(site);
            }
        }
        Ok(sites)
    }

    async fn site_aliases(&self, site_id: i64) -> Result<Vec<String>> {
        let sql = "SELECT site_id, name FROM site_aliases WHERE site_id = $1 ORDER BY name";
        let aliases: Vec<AliasRow> =
            on_db!(self, pool => sqlx::query_as(sql).bind(site_id).fetch_all(pool).await)?;
        Ok(aliases.into_iter().map(|a| a.name).collect())
    }

    /// Writes the outcome of an apply. An `Applied` record never moves `applied_revision`
    /// backwards, and leaves the status of a site being deleted alone.
    pub async fn record_site_apply(&self, id: i64, record: &ApplyRecord<'_>) -> Result<()> {
        let now = super::now();
        match record {
            ApplyRecord::Applied { revision, status } => {
                let sql = "UPDATE sites SET applied_revision = $2, applied_at = $3,
                               last_error = NULL,
                               status = CASE WHEN status = 'deleting' THEN status ELSE $4 END
                           WHERE id = $1 AND applied_revision <= $2";
                on_db!(self, pool => sqlx::query(sql).bind(id).bind(*revision).bind(now)
                    .bind(*status).execute(pool).await.map(drop))?;
            }
            ApplyRecord::Failed { error } => {
                let sql = "UPDATE sites SET last_error = $2,
                               status = CASE WHEN status = 'deleting' THEN status ELSE 'error' END
                           WHERE id = $1";
                on_db!(self, pool => sqlx::query(sql).bind(id).bind(*error)
                    .execute(pool).await.map(drop))?;
            }
        }
        Ok(())
    }

    /// Deletes a site whose removal from the host a crash interrupted (`host reconcile`).
    pub async fn finish_site_deletion(&self, id: i64) -> Result<()> {
        let sql = "DELETE FROM sites WHERE id = $1 AND status = 'deleting'";
        on_db!(self, pool => sqlx::query(sql).bind(id).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// When a site (of one tenant, or any) was last applied to the host.
    pub async fn site_last_applied(&self, tenant_id: Option<i64>) -> Result<Option<DateTime<Utc>>> {
        let sql = "SELECT MAX(applied_at) FROM sites WHERE ($1 IS NULL OR tenant_id = $1)";
        let at: Option<DateTime<Utc>> =
            on_db!(self, pool => sqlx::query_scalar(sql).bind(tenant_id).fetch_one(pool).await)?;
        Ok(at)
    }

    /// Site counts by status for one tenant (or all): `(status, count)`.
    pub async fn site_status_counts(&self, tenant_id: Option<i64>) -> Result<Vec<(String, i64)>> {
        let sql = "SELECT status, COUNT(*) FROM sites WHERE ($1 IS NULL OR tenant_id = $1)
                   GROUP BY status ORDER BY status";
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(tenant_id).fetch_all(pool).await)?)
    }
}

/// Serialises the check-then-insert of site names on PostgreSQL (SQLite's `BEGIN IMMEDIATE`
/// already does): a domain and another site's alias live in two tables, so no unique index
/// alone keeps one name from being taken twice by two concurrent transactions.
const PG_SITE_NAMES_LOCK: &str = "SELECT pg_advisory_xact_lock(7406001)";

impl Tx {
    /// Holds the site-name lock until this transaction ends (call before `hostname_taken`).
    pub async fn lock_site_names(&mut self) -> Result<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query(PG_SITE_NAMES_LOCK).execute(&mut **t).await?;
        }
        Ok(())
    }

    /// Whether a name is taken, as a site domain or as any site's alias.
    pub async fn hostname_taken(&mut self, name: &str) -> Result<bool> {
        let sql = "SELECT (SELECT COUNT(*) FROM sites WHERE domain = $1)
                        + (SELECT COUNT(*) FROM site_aliases WHERE name = $1)";
        let n: i64 = on_tx!(self, c => sqlx::query_scalar(sql).bind(name).fetch_one(c).await)?;
        Ok(n > 0)
    }

    pub async fn insert_site(&mut self, site: &NewSite<'_>) -> Result<i64> {
        let now = super::now();
        let sql = "INSERT INTO sites (tenant_id, server_id, domain, kind, php_version, upstream,
                       status, created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id";
        let id: i64 = on_tx!(self, c => sqlx::query_scalar(sql)
            .bind(site.tenant_id).bind(site.server_id).bind(site.domain).bind(site.kind)
            .bind(site.php_version).bind(site.upstream).bind(site.status).bind(now)
            .fetch_one(c).await)?;
        let sql = "INSERT INTO site_aliases (site_id, name) VALUES ($1, $2)";
        for alias in site.aliases {
            on_tx!(self, c => sqlx::query(sql).bind(id).bind(alias).execute(c).await.map(drop))?;
        }
        Ok(id)
    }

    /// Names the site's system account (assigned right after insert, from its id).
    pub async fn set_site_user(&mut self, id: i64, user: &str) -> Result<()> {
        let sql = "UPDATE sites SET system_user = $2 WHERE id = $1";
        on_tx!(self, c => sqlx::query(sql).bind(id).bind(user).execute(c).await.map(drop))?;
        Ok(())
    }

    /// Changes what a site should be; bumps its revision. `None` leaves a field alone.
    pub async fn update_site(&mut self, id: i64, change: &SiteChange) -> Result<()> {
        let now = super::now();
        let sql = "UPDATE sites SET
                       enabled = COALESCE($2, enabled),
                       php_version = COALESCE($3, php_version),
                       status = COALESCE($4, status),
                       purge_on_delete = COALESCE($6, purge_on_delete),
                       revision = revision + 1, updated_at = $5
                   WHERE id = $1";
        on_tx!(self, c => sqlx::query(sql).bind(id).bind(change.enabled).bind(change.php_version.as_deref())
            .bind(change.status).bind(now).bind(change.purge_on_delete).execute(c).await.map(drop))?;
        Ok(())
    }

    pub async fn add_site_alias(&mut self, id: i64, name: &str) -> Result<()> {
        let sql = "INSERT INTO site_aliases (site_id, name) VALUES ($1, $2)";
        on_tx!(self, c => sqlx::query(sql).bind(id).bind(name).execute(c).await.map(drop))?;
        Ok(())
    }

    /// Removes an alias of the site; whether it had it.
    pub async fn remove_site_alias(&mut self, id: i64, name: &str) -> Result<bool> {
        let sql = "DELETE FROM site_aliases WHERE site_id = $1 AND name = $2";
        let n = on_tx!(self, c => sqlx::query(sql).bind(id).bind(name).execute(c).await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn delete_site(&mut self, id: i64) -> Result<u64> {
        let sql = "DELETE FROM sites WHERE id = $1";
        Ok(
            on_tx!(self, c => sqlx::query(sql).bind(id).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }
}
