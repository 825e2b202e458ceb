//! Site changes as jobs. Every change of a site (create, enable, disable, PHP version, alias,
//! delete, `site apply`) commits together with a `site.apply` job naming the site, pinned to
//! this node (`jobs.node`: the machine whose nginx and PHP-FPM it changes). The command then
//! runs that job itself ([`Services::run_job_inline`], through this process's coalescing
//! [`super::Applier`]) and answers from the job's outcome.
//!
//! The job row is what makes the apply durable: when the daemon dies mid-apply, the job is left
//! `running` with a lease nobody renews, and the next daemon of the node queues it again and
//! runs it. A retry always validates and reloads (`force`), because the killed attempt may have
//! written files that already match and never reloaded. Applying is idempotent (files are
//! compared before they are written, accounts made only when missing), so a second run has no
//! second effect.

use super::Services;
use super::jobs::{JobContext, JobKind};
use crate::domain::DomainName;
use crate::error::{Error, Result};
use crate::store::{JobRow, NewJob, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// The job every site change enqueues.
pub const SITE_APPLY: &str = "site.apply";

/// How often a command whose job a worker took looks at the job row without a ring.
const WAIT_POLL: Duration = Duration::from_millis(50);

/// A `site.apply` job's payload.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    sites: Vec<Target>,
    /// Validate and reload even when no managed file changed (`site apply`).
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Target {
    id: i64,
    domain: String,
}

/// A `site.apply` job's result: which sites the host took, and which it refused and why.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Outcome {
    applied: Vec<String>,
    failed: Vec<Failure>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Failure {
    domain: String,
    error: String,
}

/// The `site.apply` kind: applies the payload's sites as the database has them when it runs.
/// An apply the host refused (a validator's error) is an outcome, recorded on the site and in
/// the result, not a failed attempt: retrying it would fail the same way. A failed attempt is
/// one that could not apply at all (database, applier), and is retried with backoff.
pub(super) struct SiteApply;

impl JobKind for SiteApply {
    async fn run(&self, ctx: JobContext) -> Result<Value> {
        let payload: Payload = serde_json::from_value(ctx.payload.clone())
            .map_err(|e| Error::invalid(format!("bad {SITE_APPLY} payload: {e}")))?;
        // A retry follows an attempt that may have died between writing and reloading.
        let force = payload.force || ctx.attempt > 1;
        ctx.progress(10, "applying to the host").await?;
        let ids = payload.sites.iter().map(|t| t.id).collect();
        let report = ctx.services.applier()?.sites(ids, force).await?;
        if let Some(e) = &report.error {
            return Err(Error::unavailable(format!("cannot apply to the host: {e}")));
        }
        let mut outcome = Outcome::default();
        for target in payload.sites {
            match report.results.get(&target.id) {
                Some(Err(why)) => outcome.failed.push(Failure {
                    domain: target.domain,
                    error: why.clone(),
                }),
                // Applied, or the row is gone (a deletion another job finished).
                _ => outcome.applied.push(target.domain),
            }
        }
        ctx.progress(100, "applied").await?;
        serde_json::to_value(outcome)
            .map_err(|e| Error::internal(format!("cannot encode the outcome: {e}")))
    }
}

impl Services {
    /// Enqueues the `site.apply` job for `sites` (of tenant `tenant_id`) in the transaction of
    /// the change that asks for it, so the change and its apply commit together. No audit row:
    /// the change's own row records it.
    pub(super) async fn enqueue_site_apply(
        &self,
        tx: &mut Tx,
        created_by: &str,
        tenant_id: i64,
        sites: &[(i64, DomainName)],
        force: bool,
    ) -> Result<i64> {
        let payload = Payload {
            sites: sites
                .iter()
                .map(|(id, domain)| Target {
                    id: *id,
                    domain: domain.as_str().to_owned(),
                })
                .collect(),
            force,
        };
        let payload = serde_json::to_string(&payload)
            .map_err(|e| Error::internal(format!("cannot encode the payload: {e}")))?;
        let (max_attempts, timeout_secs) = self.job_limits(SITE_APPLY);
        let node = self.node();
        let (job, _) = tx
            .enqueue_job(&NewJob {
                kind: SITE_APPLY,
                tenant_id: Some(tenant_id),
                created_by,
                payload: &payload,
                max_attempts,
                timeout_secs,
                idempotency_key: None,
                run_at: None,
                node: Some(node),
            })
            .await?;
        Ok(job.id)
    }

    /// Runs (or, when a worker took it first, waits for) `site.apply` job `id` enqueued by
    /// this caller, and turns its outcome into the command's: the first site the host refused
    /// is exit 8 with the validator's message.
    pub(super) async fn finish_site_apply(&self, id: i64) -> Result<()> {
        self.run_job_inline(id).await?;
        let job = self.settled_job(id).await?;
        match job.state.as_str() {
            "succeeded" => {
                let outcome: Outcome = job
                    .result
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or_default();
                match outcome.failed.into_iter().next() {
                    None => Ok(()),
                    Some(Failure { domain, error }) => Err(Error::unavailable(format!(
                        "applying site {domain} to the host failed; its previous configuration \
                         is still in place:\n{error}\nFix the cause, then run `site apply {domain}`."
                    ))),
                }
            }
            "cancelled" => Err(Error::conflict(format!(
                "the apply (job {id}) was cancelled; run `site apply DOMAIN` to apply the change"
            ))),
            "queued" => Err(Error::unavailable(format!(
                "cannot apply to the host: {}\nThe apply is job {id}, queued to try again at \
                 {}; follow it with `job watch {id}`.",
                job.error.as_deref().unwrap_or("the attempt failed"),
                job.run_at.format("%H:%M:%S UTC")
            ))),
            _ => Err(Error::unavailable(format!(
                "cannot apply to the host: {} (job {id})",
                job.error.as_deref().unwrap_or("the job failed")
            ))),
        }
    }

    /// Job `id` once it has ended or an attempt of it failed (queued again for a retry). Waits
    /// at most the job's timeout and one lease (what a worker that took it may need, or take to
    /// be reaped); then the command answers that the apply goes on as that job.
    async fn settled_job(&self, id: i64) -> Result<JobRow> {
        let mut jobs = self.doorbells.listen(super::doorbell::Bell::Jobs);
        let started = tokio::time::Instant::now();
        loop {
            let job = self
                .db
                .job(id)
                .await?
                .ok_or_else(|| Error::internal(format!("job {id} disappeared")))?;
            let settled = match job.state.as_str() {
                "running" => false,
                "queued" => job.attempts > 0,
                _ => true,
            };
            if settled {
                return Ok(job);
            }
            let limit = Duration::from_secs(
                u64::try_from(job.timeout_secs).unwrap_or(0) + self.config.jobs.lease_secs,
            );
            if started.elapsed() > limit {
                return Err(Error::unavailable(format!(
                    "the apply (job {id}) has not ended after {} s; it goes on as that job: \
                     follow it with `job watch {id}`",
                    limit.as_secs()
                )));
            }
            super::doorbell::ring_or(&mut jobs, WAIT_POLL).await;
        }
    }
}
