//! The platform jobs the daemon enqueues on a timer: `metrics.rollup`, `audit.retention` and
//! `health.check`. Time is cut into periods of the kind's interval from the Unix epoch, and each
//! period's job has the idempotency key `<kind>/<period start, Unix seconds>`: every node
//! enqueues each period, the first one creates the job, and one worker of any node runs it.
//!
//! These are the daemon's own housekeeping, recorded in the jobs table (`job list --kind …`)
//! rather than the audit trail: a health check a minute would otherwise fill the trail and wake
//! every dashboard's change feed. What a job changes that the trail must show (an `audit.prune`)
//! writes its own row.

use super::{JobView, Services};
use crate::error::Result;
use crate::store::NewJob;
use chrono::{DateTime, Utc};

impl Services {
    /// Enqueues `kind`'s job for the period of `interval_secs` holding `now` (a platform job
    /// created by `@daemon`), or returns the one some node already enqueued for it.
    pub async fn enqueue_periodic(
        &self,
        kind: &str,
        interval_secs: u64,
        now: DateTime<Utc>,
    ) -> Result<JobView> {
        let period = i64::try_from(interval_secs.max(1)).unwrap_or(i64::MAX);
        let start = now.timestamp().div_euclid(period) * period;
        let (max_attempts, timeout_secs) = self.job_limits(kind);
        let payload = serde_json::json!({"period_start": start}).to_string();
        let key = format!("{kind}/{start}");
        let mut tx = self.db.begin().await?;
        let (job, created) = tx
            .enqueue_job(&NewJob {
                kind,
                tenant_id: None,
                created_by: "@daemon",
                payload: &payload,
                max_attempts,
                timeout_secs,
                idempotency_key: Some(&key),
                run_at: None,
                node: None,
            })
            .await?;
        tx.commit().await?;
        if created {
            self.job_wake.notify_one();
            self.ring(super::doorbell::Bell::Jobs);
        }
        Ok(job.into())
    }
}
