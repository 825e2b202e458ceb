//! `server_metrics`: samples of servers, their 5-minute and hourly roll-ups, range reads
//! bucketed by a step, pruning. The newest sample of each server is read with the servers
//! themselves (see `servers.rs`).
//!
//! Times are milliseconds since the Unix epoch. Every read and delete names the primary key's
//! prefix `(server_id, resolution)` and a range of `at`, so each is a search of that key.

use super::{Db, on_db};
use crate::domain::{MetricValues, Resolution};
use crate::error::Result;

/// One point of a range read: the average of the rows in the bucket starting at `at`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MetricPointRow {
    pub at: i64,
    pub cpu_pct: Option<f64>,
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    pub mem_used_bytes: Option<i64>,
    pub mem_total_bytes: Option<i64>,
    pub disk_used_bytes: Option<i64>,
    pub disk_total_bytes: Option<i64>,
    pub net_rx_bytes_per_s: Option<f64>,
    pub net_tx_bytes_per_s: Option<f64>,
    /// Raw samples behind the point.
    pub samples: i64,
}

impl MetricPointRow {
    /// The point's values.
    pub fn values(&self) -> MetricValues {
        MetricValues {
            cpu_pct: self.cpu_pct,
            load1: self.load1,
            load5: self.load5,
            load15: self.load15,
            mem_used_bytes: self.mem_used_bytes,
            mem_total_bytes: self.mem_total_bytes,
            disk_used_bytes: self.disk_used_bytes,
            disk_total_bytes: self.disk_total_bytes,
            net_rx_bytes_per_s: self.net_rx_bytes_per_s,
            net_tx_bytes_per_s: self.net_tx_bytes_per_s,
        }
    }
}

/// The averages of a group of rows, as a literal for `concat!`. PostgreSQL's `REAL` is
/// `float4` and its `AVG` of a `BIGINT` is `numeric`: both are cast so either backend returns
/// `f64` and `i64`.
macro_rules! averages {
    () => {
        "CAST(AVG(cpu_pct) AS DOUBLE PRECISION) AS cpu_pct,
        CAST(AVG(load1) AS DOUBLE PRECISION) AS load1,
        CAST(AVG(load5) AS DOUBLE PRECISION) AS load5,
        CAST(AVG(load15) AS DOUBLE PRECISION) AS load15,
        CAST(ROUND(AVG(mem_used_bytes)) AS BIGINT) AS mem_used_bytes,
        CAST(ROUND(AVG(mem_total_bytes)) AS BIGINT) AS mem_total_bytes,
        CAST(ROUND(AVG(disk_used_bytes)) AS BIGINT) AS disk_used_bytes,
        CAST(ROUND(AVG(disk_total_bytes)) AS BIGINT) AS disk_total_bytes,
        CAST(AVG(net_rx_bytes_per_s) AS DOUBLE PRECISION) AS net_rx_bytes_per_s,
        CAST(AVG(net_tx_bytes_per_s) AS DOUBLE PRECISION) AS net_tx_bytes_per_s"
    };
}

impl Db {
    /// Records one raw sample of a server taken at `at_ms`. A second sample at the same
    /// millisecond is ignored.
    pub async fn insert_metric_sample(
        &self,
        server_id: i64,
        at_ms: i64,
        v: &MetricValues,
    ) -> Result<()> {
        let sql = "INSERT INTO server_metrics (server_id, resolution, at, cpu_pct, load1, load5,
                load15, mem_used_bytes, mem_total_bytes, disk_used_bytes, disk_total_bytes,
                net_rx_bytes_per_s, net_tx_bytes_per_s, samples)
            VALUES ($1, 'raw', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)
            ON CONFLICT (server_id, resolution, at) DO NOTHING";
        on_db!(self, pool => sqlx::query(sql)
            .bind(server_id)
            .bind(at_ms)
            .bind(v.cpu_pct)
            .bind(v.load1)
            .bind(v.load5)
            .bind(v.load15)
            .bind(v.mem_used_bytes)
            .bind(v.mem_total_bytes)
            .bind(v.disk_used_bytes)
            .bind(v.disk_total_bytes)
            .bind(v.net_rx_bytes_per_s)
            .bind(v.net_tx_bytes_per_s)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// A server's rows of one resolution with `from_ms <= at < to_ms`, averaged over buckets of
    /// `step_ms` (aligned to the epoch), oldest first. `samples` sums the rows' own counts.
    pub async fn metric_points(
        &self,
        server_id: i64,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<MetricPointRow>> {
        let sql = concat!(
            "SELECT (at / $4) * $4 AS at, ",
            averages!(),
            ", CAST(SUM(samples) AS BIGINT) AS samples
            FROM server_metrics
            WHERE server_id = $1 AND resolution = $2 AND at >= $3 AND at < $5
            GROUP BY 1 ORDER BY 1"
        );
        let step_ms = step_ms.max(1);
        Ok(on_db!(self, pool => sqlx::query_as(sql)
            .bind(server_id)
            .bind(resolution.as_str())
            .bind(from_ms)
            .bind(step_ms)
            .bind(to_ms)
            .fetch_all(pool)
            .await)?)
    }

    /// Computes the roll-ups of one resolution from the raw samples: every complete bucket
    /// (ending at or before `now_ms`) that starts at or after `raw_kept_from_ms` (so all its raw
    /// samples are still there) and is not older than the server's newest roll-up (which is
    /// computed again). Written with an upsert, so running it twice (or on two nodes) changes
    /// nothing. Returns the rows written. Joined from `servers`, the read is a range search of
    /// the primary key per server rather than a scan of the table (SQLite's plan:
    /// `SEARCH r USING PRIMARY KEY (server_id=? AND resolution=? AND at>? AND at<?)`).
    pub async fn rollup_metrics(
        &self,
        resolution: Resolution,
        raw_kept_from_ms: i64,
        now_ms: i64,
    ) -> Result<u64> {
        let Some(bucket) = resolution.bucket_ms() else {
            return Ok(0);
        };
        // The first bucket whose every sample is kept, and the end of the last complete one.
        let from = raw_kept_from_ms.div_euclid(bucket) * bucket
            + if raw_kept_from_ms.rem_euclid(bucket) == 0 {
                0
            } else {
                bucket
            };
        let to = now_ms.div_euclid(bucket) * bucket;
        if from >= to {
            return Ok(0);
        }
        // Each server's newest roll-up is looked up once (MATERIALIZED keeps either planner
        // from folding the lookup into the join, where it would run once per raw row).
        let sql = concat!(
            "WITH b AS MATERIALIZED (
                SELECT s.id, COALESCE((SELECT MAX(o.at) FROM server_metrics o
                    WHERE o.server_id = s.id AND o.resolution = $1), 0) AS rolled
                FROM servers s)
            INSERT INTO server_metrics (server_id, resolution, at, cpu_pct, load1, load5,
                load15, mem_used_bytes, mem_total_bytes, disk_used_bytes, disk_total_bytes,
                net_rx_bytes_per_s, net_tx_bytes_per_s, samples)
            SELECT r.server_id, $1, (r.at / $2) * $2, ",
            averages!(),
            ", COUNT(*)
            FROM b JOIN server_metrics r ON r.server_id = b.id
            WHERE r.resolution = 'raw'
                AND r.at >= (CASE WHEN b.rolled > $3 THEN b.rolled ELSE $3 END) AND r.at < $4
            GROUP BY r.server_id, 3
            ON CONFLICT (server_id, resolution, at) DO UPDATE SET
                cpu_pct = excluded.cpu_pct, load1 = excluded.load1, load5 = excluded.load5,
                load15 = excluded.load15, mem_used_bytes = excluded.mem_used_bytes,
                mem_total_bytes = excluded.mem_total_bytes,
                disk_used_bytes = excluded.disk_used_bytes,
                disk_total_bytes = excluded.disk_total_bytes,
                net_rx_bytes_per_s = excluded.net_rx_bytes_per_s,
                net_tx_bytes_per_s = excluded.net_tx_bytes_per_s, samples = excluded.samples"
        );
        let done = on_db!(self, pool => sqlx::query(sql)
            .bind(resolution.as_str())
            .bind(bucket)
            .bind(from)
            .bind(to)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// Deletes the rows of one resolution older than `before_ms`, server by server through the
    /// primary key (`server_id IN (…)` keeps it a search, not a scan of the table).
    pub async fn prune_metrics(&self, resolution: Resolution, before_ms: i64) -> Result<u64> {
        let sql = "DELETE FROM server_metrics
            WHERE server_id IN (SELECT id FROM servers) AND resolution = $1 AND at < $2";
        let done = on_db!(self, pool => sqlx::query(sql)
            .bind(resolution.as_str())
            .bind(before_ms)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// The id of the panel host's server `local`, if bootstrap made it.
    pub async fn local_server_id(&self) -> Result<Option<i64>> {
        let sql = "SELECT id FROM servers WHERE name = 'local'";
        Ok(on_db!(self, pool => sqlx::query_scalar(sql).fetch_optional(pool).await)?)
    }
}
