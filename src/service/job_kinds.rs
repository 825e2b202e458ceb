//! The job kinds the panel ships, registered by [`register_builtin`]: `host.reconcile` and the
//! `server.*` kinds of `server_jobs.rs`.

use super::Services;
use super::jobs::{JobContext, JobKind};
use crate::error::Result;
use serde_json::Value;

/// The name of the job `host reconcile --no-wait` enqueues.
pub const HOST_RECONCILE: &str = "host.reconcile";

/// Registers every built-in kind.
pub(super) fn register_builtin(services: &Services) {
    services.register_job_kind(HOST_RECONCILE, HostReconcile);
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
