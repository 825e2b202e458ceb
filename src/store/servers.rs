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
    /// The last reachability check: `ok`, `failing`, or `None` (never checked).
    pub health: Option<String>,
    pub health_detail: Option<String>,
    pub health_at: Option<DateTime<Utc>>,
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
        s.health, s.health_detail, s.health_at,
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

    /// One server by its row id (jobs keep the id; the name may be reused after a delete).
    pub async fn server_by_id(&self, id: i64) -> Result<Option<ServerRow>> {
        let sql = select_for!(self, " WHERE s.id = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as(sql).bind(None::<i64>).bind(id).fetch_optional(pool).await)?,
        )
    }

    /// Records what the provider says about a server: its id there (once known), status, type
    /// and addresses. `None` fields keep their stored value.
    pub async fn update_server(&self, id: i64, update: &ServerUpdate<'_>) -> Result<()> {
        let sql = "UPDATE servers SET provider_id = COALESCE($2, provider_id),
                       status = COALESCE($3, status), server_type = COALESCE($4, server_type),
                       ipv4 = COALESCE($5, ipv4), ipv6 = COALESCE($6, ipv6)
                   WHERE id = $1";
        on_db!(self, pool => sqlx::query(sql).bind(id).bind(update.provider_id)
            .bind(update.status).bind(update.server_type).bind(update.ipv4).bind(update.ipv6)
            .execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Removes a server row (its metric samples go with it).
    pub async fn delete_server(&self, id: i64) -> Result<bool> {
        let sql = "DELETE FROM servers WHERE id = $1";
        let done = on_db!(self, pool => sqlx::query(sql).bind(id).execute(pool).await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
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

/// What a job learnt from the provider about a server (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ServerUpdate<'a> {
    pub provider_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub server_type: Option<&'a str>,
    pub ipv4: Option<&'a str>,
    pub ipv6: Option<&'a str>,
}

/// A cloud server row to insert (`server create`), before the provider knows it.
#[derive(Debug, Clone)]
pub struct NewServer<'a> {
    pub tenant_id: i64,
    pub name: &'a str,
    pub provider: &'a str,
    pub status: &'a str,
    pub server_type: &'a str,
    pub location: &'a str,
    pub image: &'a str,
}

impl Tx {
    /// Inserts a cloud server row; a name already used is a conflict. Returns its id.
    pub async fn insert_server(&mut self, server: &NewServer<'_>) -> Result<i64> {
        let find = "SELECT id FROM servers WHERE name = $1";
        let found: Option<i64> =
            on_tx!(self, c => sqlx::query_scalar(find).bind(server.name).fetch_optional(c).await)?;
        if found.is_some() {
            return Err(crate::error::Error::conflict(format!(
                "server {} already exists",
                server.name
            )));
        }
        let sql = "INSERT INTO servers (tenant_id, name, provider, status, server_type, location,
                       image, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
        Ok(
            on_tx!(self, c => sqlx::query_scalar(sql).bind(server.tenant_id).bind(server.name)
            .bind(server.provider).bind(server.status).bind(server.server_type)
            .bind(server.location).bind(server.image).bind(super::now())
            .fetch_one(c).await)?,
        )
    }

    /// Sets a server's status (a change asked for: `deleting`).
    pub async fn set_server_status(&mut self, id: i64, status: &str) -> Result<()> {
        let sql = "UPDATE servers SET status = $2 WHERE id = $1";
        on_tx!(self, c => sqlx::query(sql).bind(id).bind(status).execute(c).await.map(drop))?;
        Ok(())
    }

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
