//! Jobs: the kinds of work the queue runs ([`JobKind`], registered by name in a
//! [`JobRegistry`]), what a running job may do ([`JobContext`]), and the `job …` commands'
//! services (enqueue, list, show, cancel, retry) with their RBAC and audit rows.
//!
//! A job belongs to a tenant (its users see it: viewers read, operators and above cancel and
//! retry) or to the platform (`tenant_id` NULL: admins only). The worker pool that claims and
//! runs jobs lives in `job_worker.rs`.

use super::policy::{self, Verb};
use super::{Actor, Services};
use crate::error::{Error, Result};
use crate::store::{JobFilter, JobRow, Lease, NewJob, Tx};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One kind of job: what a worker runs for jobs of that kind. Register it with
/// [`Services::register_job_kind`].
pub trait JobKind: Send + Sync + 'static {
    /// Runs one attempt. `Ok(value)`: the job succeeded with `value` as its result; `Err`: this
    /// attempt failed (retried with backoff while attempts remain). Long work should call
    /// [`JobContext::progress`] now and then and stop early when [`JobContext::cancelled`].
    fn run(&self, ctx: JobContext) -> impl Future<Output = Result<Value>> + Send;

    /// How long one attempt may take; `None`: `jobs.default_timeout_secs`.
    fn timeout(&self) -> Option<Duration> {
        None
    }
}

type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<Value>> + Send + 'a>>;

/// [`JobKind`] behind a pointer (its `run` returns an opaque future, so it is not `dyn` itself).
trait ErasedKind: Send + Sync {
    fn run_boxed(&self, ctx: JobContext) -> RunFuture<'_>;
    fn timeout(&self) -> Option<Duration>;
}

impl<K: JobKind> ErasedKind for K {
    fn run_boxed(&self, ctx: JobContext) -> RunFuture<'_> {
        Box::pin(self.run(ctx))
    }
    fn timeout(&self) -> Option<Duration> {
        JobKind::timeout(self)
    }
}

/// The job kinds this process knows, by name (`host.reconcile`, …).
#[derive(Clone, Default)]
pub struct JobRegistry {
    kinds: Arc<RwLock<BTreeMap<String, Arc<dyn ErasedKind>>>>,
}

impl JobRegistry {
    fn insert(&self, name: &str, kind: Arc<dyn ErasedKind>) {
        if let Ok(mut kinds) = self.kinds.write() {
            kinds.insert(name.to_owned(), kind);
        }
    }

    fn get(&self, name: &str) -> Option<Arc<dyn ErasedKind>> {
        self.kinds.read().ok()?.get(name).cloned()
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.kinds
            .read()
            .map(|k| k.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// What runs one attempt of a job of `kind` (`None`: not registered here).
    pub(super) fn runner(&self, kind: &str) -> Option<RunnerFn> {
        let handler = self.get(kind)?;
        Some(Arc::new(move |ctx| {
            let handler = handler.clone();
            Box::pin(async move { handler.run_boxed(ctx).await })
        }))
    }
}

pub(super) type RunnerFn =
    Arc<dyn Fn(JobContext) -> Pin<Box<dyn Future<Output = Result<Value>> + Send>> + Send + Sync>;

/// What a running job sees: its row, the services, progress reporting and cancellation.
#[derive(Clone)]
pub struct JobContext {
    pub id: i64,
    pub kind: String,
    pub tenant_id: Option<i64>,
    /// The user who enqueued it.
    pub created_by: String,
    /// The payload given at enqueue (JSON).
    pub payload: Value,
    /// Which attempt this is (1 for the first).
    pub attempt: i64,
    pub services: Services,
    pub(super) worker: String,
    pub(super) lease: Duration,
    pub(super) cancel: Arc<AtomicBool>,
}

impl JobContext {
    /// Records progress (`pct` 0–100 and a short message) and renews the lease. An error here
    /// means the job is no longer this worker's (its lease expired): stop.
    pub async fn progress(&self, pct: u8, message: &str) -> Result<()> {
        let message: String = message.chars().take(300).collect();
        let lease = self
            .services
            .db
            .renew_job_lease(
                self.id,
                &self.worker,
                self.lease,
                Some((i64::from(pct.min(100)), &message)),
            )
            .await?;
        match lease {
            Lease::Held { cancel } => {
                if cancel {
                    self.cancel.store(true, Ordering::SeqCst);
                }
                self.services.ring(super::doorbell::Bell::Jobs);
                Ok(())
            }
            Lease::Lost => Err(Error::conflict(format!(
                "job {} is no longer this worker's (its lease expired)",
                self.id
            ))),
        }
    }

    /// Whether someone asked the job to stop (`job cancel`). Checked at the job's checkpoints;
    /// learnt at each lease renewal and each [`progress`](Self::progress).
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// A job as commands show it (the JSON contract of `job …`).
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    /// `null`: a platform job.
    pub tenant: Option<String>,
    pub created_by: String,
    pub state: String,
    pub progress: i64,
    pub message: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub payload: Value,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub idempotency_key: Option<String>,
    pub timeout_secs: i64,
    pub run_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub worker: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Only workers of this node run it (`null`: any node's).
    pub node: Option<String>,
}

impl From<JobRow> for JobView {
    fn from(row: JobRow) -> Self {
        let json = |text: &str| serde_json::from_str(text).unwrap_or(Value::String(text.into()));
        JobView {
            id: row.id,
            kind: row.kind,
            tenant: row.tenant,
            created_by: row.created_by,
            state: row.state,
            progress: row.progress,
            message: row.message,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            payload: json(&row.payload),
            result: row.result.as_deref().map(json),
            error: row.error,
            cancel_requested: row.cancel_requested,
            idempotency_key: row.idempotency_key,
            timeout_secs: row.timeout_secs,
            run_at: row.run_at,
            lease_until: row.lease_until,
            worker: row.worker,
            created_at: row.created_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
            node: row.node,
        }
    }
}

impl JobView {
    /// Whether the job will not change any more by itself.
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

/// A job to enqueue from a service.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// A registered kind's name.
    pub kind: String,
    /// The tenant it belongs to (`None`: a platform job, admins only).
    pub tenant_id: Option<i64>,
    pub payload: Value,
    /// A second request with the same key returns the first job.
    pub idempotency_key: Option<String>,
    /// Not before this time (`None`: now).
    pub run_at: Option<DateTime<Utc>>,
    /// Only workers of this node may run it (`None`: any node's); work on this machine's host
    /// names [`crate::config::JobsConfig::node_name`].
    pub node: Option<String>,
}

/// `job list`'s filters.
#[derive(Debug, Clone)]
pub struct JobQuery {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub limit: i64,
}

impl Services {
    /// Makes `kind` runnable under `name` (a kind registered twice: the last wins).
    pub fn register_job_kind<K: JobKind>(&self, name: &str, kind: K) {
        self.job_registry.insert(name, Arc::new(kind));
    }

    /// The registered kinds.
    pub fn job_registry(&self) -> &JobRegistry {
        &self.job_registry
    }

    /// Enqueues a job as `actor` (audited as `job.enqueue`): tenant jobs need an operator or
    /// above of that tenant, platform jobs an admin.
    pub async fn job_enqueue(&self, actor: &Actor, request: JobRequest) -> Result<JobView> {
        let target = request.kind.clone();
        self.audited(actor, "job.enqueue", &target, async {
            let mut tx = self.db.begin().await?;
            let job = self.job_enqueue_in(&mut tx, actor, &request).await?;
            tx.commit().await?;
            self.job_wake.notify_one();
            self.ring(super::doorbell::Bell::Jobs);
            Ok(job.into())
        })
        .await
    }

    /// Like [`job_enqueue`](Self::job_enqueue) inside the caller's transaction (the job and the
    /// change that asks for it commit together). Writes the `job.enqueue` audit row.
    pub async fn job_enqueue_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        request: &JobRequest,
    ) -> Result<JobRow> {
        policy::check_job(actor, Verb::Write, request.tenant_id, "job")?;
        if self.job_registry.get(&request.kind).is_none() {
            return Err(Error::invalid(format!(
                "unknown job kind {:?} (known: {})",
                request.kind,
                self.job_registry.names().join(", ")
            )));
        }
        let (max_attempts, timeout_secs) = self.job_limits(&request.kind);
        let payload = request.payload.to_string();
        let (job, created) = tx
            .enqueue_job(&NewJob {
                kind: &request.kind,
                tenant_id: request.tenant_id,
                created_by: &actor.user,
                payload: &payload,
                max_attempts,
                timeout_secs,
                idempotency_key: request.idempotency_key.as_deref(),
                run_at: request.run_at,
                node: request.node.as_deref(),
            })
            .await?;
        if created {
            let tenant = job.tenant.clone().unwrap_or_else(|| actor.tenant.clone());
            let detail = format!("job {} ({})", job.id, job.kind);
            super::audit::record_ok(tx, actor, &tenant, "job.enqueue", &job.kind, &detail).await?;
        }
        Ok(job)
    }

    /// A new job of `kind`'s attempts (`jobs.max_attempts`) and timeout in seconds (the kind's
    /// own, else `jobs.default_timeout_secs`), as the `jobs` row stores them.
    pub(super) fn job_limits(&self, kind: &str) -> (i64, i64) {
        let jobs = &self.config.jobs;
        let timeout = self
            .job_registry
            .get(kind)
            .and_then(|k| k.timeout())
            .map_or(jobs.default_timeout_secs, |t| t.as_secs().max(1));
        (
            i64::from(jobs.max_attempts),
            i64::try_from(timeout).unwrap_or(i64::MAX),
        )
    }

    /// `job list`: the actor's tenant's jobs (admins: every job), newest first.
    pub async fn job_list(&self, actor: &Actor, query: &JobQuery) -> Result<Vec<JobView>> {
        let filter = JobFilter {
            tenant_id: readable_jobs(actor)?,
            state: query.state.clone(),
            kind: query.kind.clone(),
            limit: query.limit,
        };
        Ok(self
            .db
            .jobs(&filter)
            .await?
            .into_iter()
            .map(JobView::from)
            .collect())
    }

    /// The jobs `actor` may see (its tenant's; admins: all) changed at or after `since`, oldest
    /// change first, at most `limit` (the `jobs` topic of subscriptions).
    pub async fn jobs_changed_since(
        &self,
        actor: &Actor,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<JobView>> {
        let tenant = readable_jobs(actor)?;
        Ok(self
            .db
            .jobs_changed_since(tenant, since, limit)
            .await?
            .into_iter()
            .map(JobView::from)
            .collect())
    }

    /// `job show`, `job watch`: one job the actor may see (another tenant's: not found).
    pub async fn job_show(&self, actor: &Actor, id: i64) -> Result<JobView> {
        let job = self.db.job(id).await?;
        visible(actor, job, id, Verb::Read).map(JobView::from)
    }

    /// `job cancel`: a queued job is cancelled at once, a running one asked to stop at its next
    /// checkpoint. A finished job is a conflict (exit 4).
    pub async fn job_cancel(&self, actor: &Actor, id: i64) -> Result<JobView> {
        self.audited(actor, "job.cancel", &format!("job {id}"), async {
            let mut tx = self.db.begin().await?;
            let job = visible(actor, tx.job(id).await?, id, Verb::Write)?;
            if !matches!(job.state.as_str(), "queued" | "running") {
                return Err(super::audit::conflict(format!(
                    "job {id} is already {}",
                    job.state
                )));
            }
            let job = tx.cancel_job(id).await?.ok_or_else(|| not_found(id))?;
            let tenant = job.tenant.clone().unwrap_or_else(|| actor.tenant.clone());
            let detail = if job.state == "cancelled" {
                "cancelled while queued"
            } else {
                "asked the running job to stop"
            };
            let target = format!("job {id}");
            super::audit::record_ok(&mut tx, actor, &tenant, "job.cancel", &target, detail).await?;
            tx.commit().await?;
            self.ring(super::doorbell::Bell::Jobs);
            Ok(job.into())
        })
        .await
    }

    /// `job retry`: a failed or cancelled job is queued again, its attempts reset.
    pub async fn job_retry(&self, actor: &Actor, id: i64) -> Result<JobView> {
        self.audited(actor, "job.retry", &format!("job {id}"), async {
            let mut tx = self.db.begin().await?;
            let job = visible(actor, tx.job(id).await?, id, Verb::Write)?;
            if !matches!(job.state.as_str(), "failed" | "cancelled") {
                return Err(super::audit::conflict(format!(
                    "job {id} is {}: only failed or cancelled jobs are retried",
                    job.state
                )));
            }
            let job = tx.retry_job(id).await?.ok_or_else(|| not_found(id))?;
            let tenant = job.tenant.clone().unwrap_or_else(|| actor.tenant.clone());
            let target = format!("job {id}");
            let detail = format!("{} queued again", job.kind);
            super::audit::record_ok(&mut tx, actor, &tenant, "job.retry", &target, &detail).await?;
            tx.commit().await?;
            self.job_wake.notify_one();
            self.ring(super::doorbell::Bell::Jobs);
            Ok(job.into())
        })
        .await
    }
}

/// Which jobs `actor` may list: its tenant's (`Some`), or every job for admins (`None`).
fn readable_jobs(actor: &Actor) -> Result<Option<i64>> {
    policy::check(
        actor,
        policy::Resource::Job,
        Verb::Read,
        policy::Owner::Tenant(actor.tenant_id),
        "jobs",
    )?;
    Ok((!actor.is_admin()).then_some(actor.tenant_id))
}

fn not_found(id: i64) -> Error {
    policy::not_found(&format!("job {id}"))
}

/// The job if `actor` may `verb` it; a hidden job reads as not found.
fn visible(actor: &Actor, job: Option<JobRow>, id: i64, verb: Verb) -> Result<JobRow> {
    let job = job.ok_or_else(|| not_found(id))?;
    policy::check_job(actor, verb, job.tenant_id, &format!("job {id}"))?;
    Ok(job)
}
