//! The durable job queue: enqueue (idempotent by key), claim (one claimer per job), leases,
//! progress, finishing with retries and exponential backoff, cancel, retry, and putting back
//! running jobs whose lease expired (their daemon died).
//!
//! Claiming is one transaction: PostgreSQL locks the chosen row with `FOR UPDATE SKIP LOCKED`,
//! so concurrent claimers pass over each other's rows; SQLite's `BEGIN IMMEDIATE` serialises
//! the whole claim. Every change by a worker names that worker and the `running` state, so a
//! worker whose job was requeued behind its back (its lease expired) changes nothing.

use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};
use std::time::Duration;

pub const JOB_QUEUED: &str = "queued";
pub const JOB_RUNNING: &str = "running";
pub const JOB_SUCCEEDED: &str = "succeeded";
pub const JOB_FAILED: &str = "failed";
pub const JOB_CANCELLED: &str = "cancelled";
/// Every job state, in lifecycle order.
pub const JOB_STATES: [&str; 5] = [
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_CANCELLED,
];

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub tenant_id: Option<i64>,
    /// The tenant's name (`None`: a platform job).
    pub tenant: Option<String>,
    pub created_by: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub worker: Option<String>,
    pub timeout_secs: i64,
    pub idempotency_key: Option<String>,
    pub cancel_requested: bool,
    pub progress: i64,
    pub message: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Only workers of this node claim it (`None`: any node's).
    pub node: Option<String>,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub tenant_id: Option<i64>,
    pub created_by: &'a str,
    /// JSON text.
    pub payload: &'a str,
    pub max_attempts: i64,
    pub timeout_secs: i64,
    /// A second enqueue with the same key returns the first job instead of a new one.
    pub idempotency_key: Option<&'a str>,
    /// Not before this time (`None`: now).
    pub run_at: Option<DateTime<Utc>>,
    /// Only workers of this node may claim it (`None`: any node's).
    pub node: Option<&'a str>,
}

/// Which jobs `jobs` lists, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this tenant's jobs (`None`: every job, platform ones included).
    pub tenant_id: Option<i64>,
    pub state: Option<String>,
    pub kind: Option<String>,
    pub limit: i64,
}

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone)]
pub enum JobEnd<'a> {
    /// Done; `result` is JSON text.
    Succeeded { result: &'a str },
    /// This attempt failed: queued again after a backoff while attempts remain, else failed.
    Failed {
        error: &'a str,
        backoff_base: Duration,
    },
    /// The job stopped because it was asked to (`job cancel`).
    Cancelled,
}

/// What a lease renewal learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Still ours; `cancel` says whether someone asked the job to stop.
    Held { cancel: bool },
    /// No longer ours (requeued after the lease expired, or finished elsewhere).
    Lost,
}

macro_rules! select {
    () => {
        "SELECT j.id, j.kind, j.tenant_id, t.name AS tenant, j.created_by, j.payload, j.state,
            j.attempts, j.max_attempts, j.run_at, j.lease_until, j.worker, j.timeout_secs,
            j.idempotency_key, j.cancel_requested, j.progress, j.message, j.result, j.error,
            j.created_at, j.updated_at, j.finished_at, j.node
        FROM jobs j LEFT JOIN tenants t ON t.id = j.tenant_id"
    };
}

/// The delay before attempt `attempts + 1` after `attempts` failed ones: base · 2^(attempts-1),
/// at most a day.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    base.saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(86_400))
}

fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::days(1))
}

impl Tx {
    /// Enqueues a job; with an idempotency key already used, returns that job instead.
    /// `true` when a new job was created.
    pub async fn enqueue_job(&mut self, job: &NewJob<'_>) -> Result<(JobRow, bool)> {
        let now = super::now();
        let sql = "INSERT INTO jobs (kind, tenant_id, created_by, payload, state, max_attempts,
                       run_at, timeout_secs, idempotency_key, created_at, updated_at, node)
                   VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $9, $10)
                   ON CONFLICT DO NOTHING RETURNING id";
        let id: Option<i64> = on_tx!(self, c => sqlx::query_scalar(sql)
            .bind(job.kind).bind(job.tenant_id).bind(job.created_by).bind(job.payload)
            .bind(job.max_attempts).bind(job.run_at.unwrap_or(now)).bind(job.timeout_secs)
            .bind(job.idempotency_key).bind(now).bind(job.node)
            .fetch_optional(c).await)?;
        let row: JobRow = match (id, job.idempotency_key) {
            (Some(id), _) => {
                let sql = concat!(select!(), " WHERE j.id = $1");
                on_tx!(self, c => sqlx::query_as(sql).bind(id).fetch_one(c).await)?
            }
            (None, key) => {
                let sql = concat!(select!(), " WHERE j.idempotency_key = $1");
                on_tx!(self, c => sqlx::query_as(sql).bind(key).fetch_one(c).await)?
            }
        };
        let created = id.is_some();
        Ok((row, created))
    }

    pub async fn job(&mut self, id: i64) -> Result<Option<JobRow>> {
        let sql = concat!(select!(), " WHERE j.id = $1");
        Ok(on_tx!(self, c => sqlx::query_as(sql).bind(id).fetch_optional(c).await)?)
    }

    /// `job cancel`: a queued job is cancelled at once; a running one is asked to stop at its
    /// next checkpoint. Returns the job as it is now (`None`: no such job).
    pub async fn cancel_job(&mut self, id: i64) -> Result<Option<JobRow>> {
        let now = super::now();
        let sql = "UPDATE jobs SET
                       state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
                       finished_at = CASE WHEN state = 'queued' THEN $2 ELSE finished_at END,
                       cancel_requested = CASE WHEN state = 'running' THEN TRUE
                                               ELSE cancel_requested END,
                       updated_at = $2
                   WHERE id = $1 AND state IN ('queued', 'running')";
        on_tx!(self, c => sqlx::query(sql).bind(id).bind(now).execute(c).await.map(drop))?;
        self.job(id).await
    }

    /// Marks queued job `id` running for `worker` (one more attempt, leased until
    /// `now + lease`); `None` when it was not queued any more.
    async fn take_job(
        &mut self,
        id: i64,
        worker: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<JobRow>> {
        let sql = "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $2,
                       worker = $3, progress = 0, message = NULL, updated_at = $4
                   WHERE id = $1 AND state = 'queued'";
        let taken = on_tx!(self, c => sqlx::query(sql).bind(id).bind(later(now, lease))
            .bind(worker).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        if taken == 0 {
            return Ok(None);
        }
        self.job(id).await
    }

    /// `job retry`: a failed or cancelled job is queued again now, its attempts reset.
    pub async fn retry_job(&mut self, id: i64) -> Result<Option<JobRow>> {
        let now = super::now();
        let sql = "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, lease_until = NULL,
                       worker = NULL, cancel_requested = FALSE, progress = 0, message = NULL,
                       result = NULL, error = NULL, finished_at = NULL, updated_at = $2
                   WHERE id = $1 AND state IN ('failed', 'cancelled')";
        on_tx!(self, c => sqlx::query(sql).bind(id).bind(now).execute(c).await.map(drop))?;
        self.job(id).await
    }
}

impl Db {
    pub async fn job(&self, id: i64) -> Result<Option<JobRow>> {
        let sql = concat!(select!(), " WHERE j.id = $1");
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Jobs of one tenant (`None`: every job) changed at or after `since`, oldest change first,
    /// at most `limit` (the `jobs` topic of subscriptions).
    pub async fn jobs_changed_since(
        &self,
        tenant_id: Option<i64>,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<JobRow>> {
        let sql = concat!(
            select!(),
            " WHERE j.updated_at >= $1 AND ($2 IS NULL OR j.tenant_id = $2)
              ORDER BY j.updated_at, j.id LIMIT $3"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as(sql).bind(since).bind(tenant_id).bind(limit)
            .fetch_all(pool).await)?,
        )
    }

    /// Jobs, newest first, filtered.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<JobRow>> {
        let sql = concat!(
            select!(),
            " WHERE ($1 IS NULL OR j.tenant_id = $1) AND ($2 IS NULL OR j.state = $2)
              AND ($3 IS NULL OR j.kind = $3) ORDER BY j.id DESC LIMIT $4"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as(sql).bind(filter.tenant_id)
            .bind(filter.state.as_deref()).bind(filter.kind.as_deref()).bind(filter.limit)
            .fetch_all(pool).await)?,
        )
    }

    /// Takes the next due queued job for `worker` of `node` (jobs pinned to another node are
    /// passed over): running, one more attempt, leased for `lease`. Each job is claimed by one
    /// claimer only.
    pub async fn claim_job(
        &self,
        worker: &str,
        node: &str,
        lease: Duration,
    ) -> Result<Option<JobRow>> {
        let now = super::now();
        // A plain read first: idle polls take no write lock (SQLite's is the whole database).
        let due = "SELECT id FROM jobs WHERE state = 'queued' AND run_at <= $1
                   AND (node IS NULL OR node = $2) LIMIT 1";
        let any: Option<i64> = on_db!(self, pool => sqlx::query_scalar(due).bind(now).bind(node)
            .fetch_optional(pool).await)?;
        if any.is_none() {
            return Ok(None);
        }
        let mut tx = self.begin().await?;
        let pick = match &tx {
            Tx::Sqlite(_) => {
                "SELECT id FROM jobs WHERE state = 'queued' AND run_at <= $1
                 AND (node IS NULL OR node = $2) ORDER BY run_at, id LIMIT 1"
            }
            Tx::Postgres(_) => {
                "SELECT id FROM jobs WHERE state = 'queued' AND run_at <= $1
                 AND (node IS NULL OR node = $2) ORDER BY run_at, id LIMIT 1
                 FOR UPDATE SKIP LOCKED"
            }
        };
        let id: Option<i64> = on_tx!(&mut tx, c => sqlx::query_scalar(pick).bind(now).bind(node)
            .fetch_optional(c).await)?;
        let Some(id) = id else {
            return Ok(None);
        };
        let job = tx.take_job(id, worker, lease, now).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Takes job `id` for `worker` if it is still queued (the caller that enqueued it runs it
    /// itself); `None` when another worker was first.
    pub async fn claim_job_by_id(
        &self,
        id: i64,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<JobRow>> {
        let now = super::now();
        let mut tx = self.begin().await?;
        let job = tx.take_job(id, worker, lease, now).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Extends `worker`'s lease on a running job, with its progress when given.
    pub async fn renew_job_lease(
        &self,
        id: i64,
        worker: &str,
        lease: Duration,
        progress: Option<(i64, &str)>,
    ) -> Result<Lease> {
        let now = super::now();
        let sql = "UPDATE jobs SET lease_until = $3, updated_at = $4,
                       progress = COALESCE($5, progress), message = COALESCE($6, message)
                   WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING cancel_requested";
        let cancel: Option<bool> = on_db!(self, pool => sqlx::query_scalar(sql).bind(id)
            .bind(worker).bind(later(now, lease)).bind(now)
            .bind(progress.map(|p| p.0.clamp(0, 100))).bind(progress.map(|p| p.1))
            .fetch_optional(pool).await)?;
        Ok(match cancel {
            Some(cancel) => Lease::Held { cancel },
            None => Lease::Lost,
        })
    }

    /// Records how `worker`'s attempt ended; `None` when the job is no longer the worker's.
    pub async fn finish_job(
        &self,
        id: i64,
        worker: &str,
        end: &JobEnd<'_>,
    ) -> Result<Option<JobRow>> {
        let now = super::now();
        let mut tx = self.begin().await?;
        let Some(job) = tx.job(id).await? else {
            return Ok(None);
        };
        if job.state != JOB_RUNNING || job.worker.as_deref() != Some(worker) {
            return Ok(None);
        }
        let (state, result, error, run_at) = match end {
            JobEnd::Succeeded { result } => (JOB_SUCCEEDED, Some(*result), None, job.run_at),
            JobEnd::Cancelled => (JOB_CANCELLED, None, None, job.run_at),
            JobEnd::Failed { error, .. } if job.cancel_requested => {
                (JOB_CANCELLED, None, Some(*error), job.run_at)
            }
            JobEnd::Failed {
                error,
                backoff_base,
            } if job.attempts < job.max_attempts => (
                JOB_QUEUED,
                None,
                Some(*error),
                later(now, backoff(*backoff_base, job.attempts)),
            ),
            JobEnd::Failed { error, .. } => (JOB_FAILED, None, Some(*error), job.run_at),
        };
        let finished = (state != JOB_QUEUED).then_some(now);
        let progress = if state == JOB_SUCCEEDED {
            100
        } else {
            job.progress
        };
        let sql = "UPDATE jobs SET state = $2, result = $3, error = $4, run_at = $5,
                       finished_at = $6, lease_until = NULL, worker = NULL, updated_at = $7,
                       progress = $8
                   WHERE id = $1";
        on_tx!(&mut tx, c => sqlx::query(sql).bind(id).bind(state).bind(result).bind(error)
            .bind(run_at).bind(finished).bind(now).bind(progress).execute(c).await.map(drop))?;
        let job = tx.job(id).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Puts `worker`'s running job back in the queue, due now, with no backoff (a daemon
    /// shutting down). The interrupted attempt stays counted: the next run knows it resumes
    /// work (`site.apply` then reloads even when its files already match). `false` when it was
    /// no longer the worker's.
    pub async fn release_job(&self, id: i64, worker: &str) -> Result<bool> {
        let now = super::now();
        let sql = "UPDATE jobs SET state = 'queued', run_at = $3,
                       lease_until = NULL, worker = NULL, updated_at = $3,
                       message = 'stopped by a daemon shutdown; queued again'
                   WHERE id = $1 AND worker = $2 AND state = 'running'";
        let released = on_db!(self, pool => sqlx::query(sql).bind(id).bind(worker).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(released == 1)
    }

    /// Puts back running jobs whose lease expired before `now` (their worker died): queued
    /// again while attempts remain, else failed; cancelled when a cancel was asked. Returns
    /// how many.
    pub async fn requeue_expired_jobs(&self, now: DateTime<Utc>) -> Result<u64> {
        let sql = "UPDATE jobs SET
                       state = CASE WHEN cancel_requested THEN 'cancelled'
                                    WHEN attempts < max_attempts THEN 'queued'
                                    ELSE 'failed' END,
                       finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts
                                          THEN $1 ELSE NULL END,
                       error = 'the worker stopped without finishing (lease expired)',
                       lease_until = NULL, worker = NULL, run_at = $1, updated_at = $1
                   WHERE state = 'running' AND lease_until < $1";
        Ok(
            on_db!(self, pool => sqlx::query(sql).bind(now).execute(pool).await
            .map(|r| r.rows_affected()))?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 1), Duration::from_secs(10));
        assert_eq!(backoff(base, 2), Duration::from_secs(20));
        assert_eq!(backoff(base, 4), Duration::from_secs(80));
        assert_eq!(backoff(base, 0), Duration::from_secs(10));
        assert_eq!(backoff(base, 1000), Duration::from_secs(86_400));
    }
}
