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
    #[sqlx(skip)]
    pub aliases: Vec<String>,
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

/// The common SELECT of this table group, as a literal for `concat!`.
macro_rules! select {
    () => {
        "SELECT s.id, s.tenant_id, t.name AS tenant, v.name AS server, s.domain,
        s.kind, s.php_version, s.upstream, s.status, s.created_at, s.updated_at
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
        let sql = "SELECT site_id, name FROM site_aliases WHERE site_id = $1 ORDER BY name";
        let aliases: Vec<AliasRow> =
            on_db!(self, pool => sqlx::query_as(sql).bind(site.id).fetch_all(pool).await)?;
        site.aliases = aliases.into_iter().map(|a| a.name).collect();
        Ok(Some(site))
    }

    /// Site counts by status for one tenant (or all): `(status, count)`.
    pub async fn site_status_counts(&self, tenant_id: Option<i64>) -> Result<Vec<(String, i64)>> {
        let sql = "SELECT status, COUNT(*) FROM sites WHERE ($1 IS NULL OR tenant_id = $1)
                   GROUP BY status ORDER BY status";
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(tenant_id).fetch_all(pool).await)?)
    }
}

impl Tx {
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

    pub async fn delete_site(&mut self, id: i64) -> Result<u64> {
        let sql = "DELETE FROM sites WHERE id = $1";
        Ok(
            on_tx!(self, c => sqlx::query(sql).bind(id).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }
}
