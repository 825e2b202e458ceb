//! Servers: the panel host itself (`local`, no tenant) and, later, cloud servers of tenants;
//! each read with its newest metric sample.

use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRow {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub tenant: Option<String>,
    pub name: String,
    pub provider: String,
    pub provider_id: Option<String>,
    pub status: String,
    pub server_type: Option<String>,
    pub location: Option<String>,
    pub image: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sites: i64,
    /// The newest raw sample (all `None` when the server has none), in milliseconds.
    pub sampled_at: Option<i64>,
    pub cpu_pct: Option<f64>,
    pub load1: Option<f64>,
    pub mem_used_bytes: Option<i64>,
    pub mem_total_bytes: Option<i64>,
    pub disk_used_bytes: Option<i64>,
    pub disk_total_bytes: Option<i64>,
}

/// The common SELECT of this table group, with the newest raw sample of each server, as a
/// literal for `concat!`; `sqlite` or `postgres` picks how that sample is found.
///
/// SQLite: a correlated `MAX(at)` over the primary key's prefix `(server_id, 'raw')`, which
/// SQLite's min/max optimisation answers with one probe of the key; `EXPLAIN QUERY PLAN`:
/// `SEARCH m USING PRIMARY KEY (server_id=? AND resolution=? AND at=?)` and, for the
/// subquery, `SEARCH mx USING PRIMARY KEY (server_id=? AND resolution=?)`.
/// PostgreSQL: a `LATERAL` subquery ordered by `at DESC LIMIT 1`; `EXPLAIN`: `Limit -> Index
/// Scan Backward using server_metrics_pkey (server_id = s.id AND resolution = 'raw')` per
/// server. Either way the cost is one index probe per server, whatever the table holds.
/// (docs/metrics.md shows both plans.)
macro_rules! select {
    (sqlite) => {
        concat!(
            select!(columns),
            " LEFT JOIN server_metrics m ON m.server_id = s.id AND m.resolution = 'raw'
            AND m.at = (SELECT MAX(mx.at) FROM server_metrics mx
                WHERE mx.server_id = s.id AND mx.resolution = 'raw')"
        )
    };
    (postgres) => {
        concat!(
            select!(columns),
            " LEFT JOIN LATERAL (SELECT mx.at, mx.cpu_pct, mx.load1, mx.mem_used_bytes,
                mx.mem_total_bytes, mx.disk_used_bytes, mx.disk_total_bytes
            FROM server_metrics mx WHERE mx.server_id = s.id AND mx.resolution = 'raw'
            ORDER BY mx.at DESC LIMIT 1) m ON TRUE"
        )
    };
    (columns) => {
        "SELECT s.id, s.tenant_id, t.name AS tenant, s.name, s.provider, s.provider_id,
        s.status, s.server_type, s.location, s.image, s.ipv4, s.ipv6, s.created_at,
        (SELECT COUNT(*) FROM sites x WHERE x.server_id = s.id
            AND ($1 IS NULL OR x.tenant_id = $1)) AS sites,
        m.at AS sampled_at, CAST(m.cpu_pct AS DOUBLE PRECISION) AS cpu_pct,
        CAST(m.load1 AS DOUBLE PRECISION) AS load1, m.mem_used_bytes, m.mem_total_bytes,
        m.disk_used_bytes, m.disk_total_bytes
    FROM servers s LEFT JOIN tenants t ON t.id = s.tenant_id"
    };
}

/// `select!` for the backend of `$db`, followed by `$rest`.
macro_rules! select_for {
    ($db:expr, $rest:literal) => {
        match $db {
            Db::Sqlite(_) => concat!(select!(sqlite), $rest),
            Db::Postgres(_) => concat!(select!(postgres), $rest),
        }
    };
}

impl Db {
    /// Servers visible to a tenant: its own and the shared ones (no tenant). `None` = all.
    /// Site counts are limited to the same tenant.
    pub async fn servers(&self, tenant_id: Option<i64>) -> Result<Vec<ServerRow>> {
        let sql = select_for!(
            self,
            " WHERE ($1 IS NULL OR s.tenant_id IS NULL OR s.tenant_id = $1) ORDER BY s.id"
        );
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(tenant_id).fetch_all(pool).await)?)
    }

    pub async fn server_by_name(
        &self,
        name: &str,
        tenant_id: Option<i64>,
    ) -> Result<Option<ServerRow>> {
        let sql = select_for!(self, " WHERE s.name = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as(sql).bind(tenant_id).bind(name).fetch_optional(pool).await)?,
        )
    }

    /// The plan of [`Db::servers`] as the backend reports it (`EXPLAIN QUERY PLAN` details on
    /// SQLite, `EXPLAIN` lines on PostgreSQL): tests and docs/metrics.md check that the newest
    /// sample of each server is a search of the primary key.
    pub async fn explain_servers(&self) -> Result<Vec<String>> {
        let sql = select_for!(
            self,
            " WHERE ($1 IS NULL OR s.tenant_id IS NULL OR s.tenant_id = $1) ORDER BY s.id"
        );
        Ok(match self {
            Db::Sqlite(pool) => {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                        .bind(None::<i64>)
                        .fetch_all(pool)
                        .await?;
                rows.into_iter().map(|r| r.3).collect()
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
                    .bind(None::<i64>)
                    .fetch_all(pool)
                    .await?
            }
        })
    }
}

impl Tx {
    /// Creates the `local` server (the panel host) if it is missing. Returns its id.
    pub async fn ensure_local_server(&mut self) -> Result<i64> {
        let find = "SELECT id FROM servers WHERE name = 'local'";
        let found: Option<i64> =
            on_tx!(self, c => sqlx::query_scalar(find).fetch_optional(c).await)?;
        if let Some(id) = found {
            return Ok(id);
        }
        let sql = "INSERT INTO servers (tenant_id, name, provider, status, created_at)
                   VALUES (NULL, 'local', 'local', 'running', $1) RETURNING id";
        Ok(on_tx!(self, c => sqlx::query_scalar(sql).bind(super::now()).fetch_one(c).await)?)
    }
}
