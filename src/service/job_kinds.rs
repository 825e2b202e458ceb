//! The job kinds the panel ships, registered by [`register_builtin`]: `host.reconcile`,
//! `metrics.rollup`, `audit.retention`, `health.check` (`health.rs`), `site.apply`
//! (`site_jobs.rs`) and the `server.*` kinds of `server_jobs.rs`.

use super::Services;
use super::jobs::{JobContext, JobKind};
use crate::error::Result;
use serde_json::Value;

/// The name of the job `host reconcile --no-wait` enqueues.
pub const HOST_RECONCILE: &str = "host.reconcile";

/// The name of the job the daemon enqueues every `metrics.rollup_interval_secs`.
pub const METRICS_ROLLUP: &str = "metrics.rollup";

/// The name of the job the daemon enqueues every `audit.prune_interval_secs`.
pub const AUDIT_RETENTION: &str = "audit.retention";

/// Registers every built-in kind.
pub(super) fn register_builtin(services: &Services) {
    services.register_job_kind(HOST_RECONCILE, HostReconcile);
    services.register_job_kind(METRICS_ROLLUP, MetricsRollup);
    services.register_job_kind(AUDIT_RETENTION, AuditRetention);
    services.register_job_kind(super::health::HEALTH_CHECK, super::health::HealthCheck);
    services.register_job_kind(super::site_jobs::SITE_APPLY, super::site_jobs::SiteApply);
    super::server_jobs::register(services);
}

/// `host reconcile` as a job: rebuilds every site from the database (the report is the
/// result). The host apply is one step, so a cancel asked while it runs applies only before it.
struct HostReconcile;

impl JobKind for HostReconcile {
    async fn run(&self, ctx: JobContext) -> Result<Value> {
        ctx.progress(5, "waiting for the applier").await?;
        if ctx.cancelled() {
            return Err(crate::error::Error::conflict("cancelled before the apply"));
        }
        let report = ctx.services.reconcile_host().await?;
        ctx.progress(100, "reconciled").await?;
        serde_json::to_value(report)
            .map_err(|e| crate::error::Error::internal(format!("cannot encode the report: {e}")))
    }
}

/// Metric roll-ups then pruning ([`Services::metrics_maintenance`]) as of the time it runs.
/// Idempotent, so a retry or a second job of the same period changes nothing more.
struct MetricsRollup;

impl JobKind for MetricsRollup {
    async fn run(&self, ctx: JobContext) -> Result<Value> {
        let done = ctx
            .services
            .metrics_maintenance(crate::store::now())
            .await?;
        ctx.progress(100, "rolled up and pruned").await?;
        Ok(serde_json::json!({"rolled_up": done.rolled_up, "pruned": done.pruned}))
    }
}

/// The audit retention ([`Services::audit_prune_scheduled`]) as of the time it runs, as
/// `@daemon`: rows past `audit.retention_days` go behind a checkpoint, with an `audit.prune`
/// row when any went. Idempotent: a second run finds nothing more to prune.
struct AuditRetention;

impl JobKind for AuditRetention {
    async fn run(&self, ctx: JobContext) -> Result<Value> {
        let system = ctx.services.system_tenant_id().await?;
        let pruned = ctx
            .services
            .audit_prune_scheduled(&super::Actor::daemon(system))
            .await?;
        ctx.progress(100, "applied the retention").await?;
        if pruned.rows > 0 {
            tracing::info!(
                rows = pruned.rows,
                through_seq = pruned.through_seq,
                retention_days = pruned.retention_days,
                "pruned old audit rows behind a checkpoint"
            );
        }
        Ok(serde_json::json!({"pruned": pruned.rows, "through_seq": pruned.through_seq}))
    }
}
