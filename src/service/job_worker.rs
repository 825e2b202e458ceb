//! The worker pool a daemon runs (`[jobs] workers`): each worker claims a due job, runs its
//! kind under the job's timeout while renewing its lease, and records how the attempt ended.
//! A reaper puts back running jobs whose lease expired (a daemon that died), at start and
//! every lease.
//!
//! A command that enqueues a job and waits for it (`site.apply`) may run it itself
//! ([`Services::run_job_inline`]): the same attempt, lease and ending as a worker's, so the job
//! row is the one record of the work whoever runs it, and a process without workers
//! (`vipanel admin`) still gets its answer.
//!
//! Shutdown ([`JobPool::shutdown`]): workers stop claiming at once; running jobs get the grace
//! period to finish, after which they are stopped mid-way and put back in the queue at once,
//! the interrupted attempt counted (so the next run knows it resumes work, and
//! a job that never gets through still runs out of attempts). A daemon killed outright leaves its jobs to the reaper
//! of this or another daemon, which queues them again once their lease expired.

use super::Services;
use super::jobs::JobContext;
use crate::store::{JobEnd, JobRow, Lease};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The running workers and reaper of this process.
pub struct JobPool {
    services: Services,
    stop: watch::Sender<bool>,
    workers: Vec<(JoinHandle<()>, Arc<Current>)>,
    reaper: JoinHandle<()>,
}

/// The job a worker runs now (0: none), and the worker's name.
struct Current {
    name: String,
    job: AtomicI64,
}

impl Services {
    /// Starts `jobs.workers` workers and the reaper (call once, in the daemon).
    pub fn start_job_workers(&self) -> JobPool {
        let (stop, watch) = watch::channel(false);
        let workers = (0..self.config.jobs.workers)
            .map(|n| {
                let current = Arc::new(Current {
                    name: worker_name(self.node(), &n.to_string()),
                    job: AtomicI64::new(0),
                });
                let worker = Worker {
                    services: self.clone(),
                    current: current.clone(),
                    stop: watch.clone(),
                };
                (tokio::spawn(worker.run()), current)
            })
            .collect();
        let reaper = tokio::spawn(reap_loop(self.clone()));
        JobPool {
            services: self.clone(),
            stop,
            workers,
            reaper,
        }
    }

    /// Runs queued job `id` in this task, as a worker of this process would (a command that
    /// enqueued a job and waits for it). `false`: a worker claimed it first; wait for the row.
    pub(super) async fn run_job_inline(&self, id: i64) -> crate::error::Result<bool> {
        let name = worker_name(self.node(), "cmd");
        let lease = Duration::from_secs(self.config.jobs.lease_secs);
        let Some(job) = self.db.claim_job_by_id(id, &name, lease).await? else {
            return Ok(false);
        };
        self.inline(|jobs| jobs.insert(id, name.clone()));
        run_job(self, &name, job, lease).await;
        self.inline(|jobs| jobs.remove(&id));
        Ok(true)
    }

    fn inline<T>(&self, f: impl FnOnce(&mut std::collections::HashMap<i64, String>) -> T) -> T {
        let mut jobs = self
            .inline_jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut jobs)
    }

    /// At shutdown, once running commands had their grace: puts the jobs they still run back in
    /// the queue at once (the interrupted attempt counted), for the node's next daemon.
    pub async fn release_inline_jobs(&self) {
        let jobs: Vec<(i64, String)> = self.inline(|jobs| jobs.drain().collect());
        for (id, worker) in jobs {
            self.release_after_grace(id, &worker).await;
        }
    }

    /// Puts job `id`, still `worker`'s after the shutdown grace, back in the queue.
    async fn release_after_grace(&self, id: i64, worker: &str) {
        match self.db.release_job(id, worker).await {
            Ok(true) => {
                self.ring(super::doorbell::Bell::Jobs);
                tracing::warn!(
                    job = id,
                    "the job did not finish within the shutdown grace; put back in the queue"
                );
            }
            Ok(false) => {}
            Err(err) => tracing::warn!(
                job = id,
                error = %err,
                "cannot put the job back; it is queued again when its lease expires"
            ),
        }
    }
}

/// `<node>-<pid>-<which>`: tells the workers of nodes and processes apart in `job show`.
fn worker_name(node: &str, which: &str) -> String {
    format!("{node}-{}-{which}", std::process::id())
}

impl JobPool {
    /// Stops claiming, waits up to `grace` for running jobs, then stops the rest and puts them
    /// back in the queue, due at once (the interrupted attempt counted).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        self.reaper.abort();
        let deadline = tokio::time::Instant::now() + grace;
        for (worker, current) in self.workers {
            let abort = worker.abort_handle();
            if tokio::time::timeout_at(deadline, worker).await.is_ok() {
                continue;
            }
            abort.abort();
            let id = current.job.load(Ordering::SeqCst);
            if id == 0 {
                continue;
            }
            self.services.release_after_grace(id, &current.name).await;
        }
    }
}

struct Worker {
    services: Services,
    current: Arc<Current>,
    stop: watch::Receiver<bool>,
}

impl Worker {
    async fn run(mut self) {
        let poll = Duration::from_millis(self.services.config.jobs.poll_interval_ms);
        let lease = Duration::from_secs(self.services.config.jobs.lease_secs);
        loop {
            if *self.stop.borrow() {
                return;
            }
            let node = self.services.node();
            match self
                .services
                .db
                .claim_job(&self.current.name, node, lease)
                .await
            {
                Ok(Some(job)) => {
                    self.current.job.store(job.id, Ordering::SeqCst);
                    run_job(&self.services, &self.current.name, job, lease).await;
                    self.current.job.store(0, Ordering::SeqCst);
                    continue;
                }
                Ok(None) => {}
                Err(err) => tracing::error!(error = %err, "cannot claim a job"),
            }
            tokio::select! {
                _ = self.stop.changed() => {}
                () = self.services.job_wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// Runs one claimed attempt of `job` as `worker` and records how it ended.
async fn run_job(services: &Services, worker: &str, job: JobRow, lease: Duration) {
    let id = job.id;
    tracing::info!(job = id, kind = %job.kind, attempt = job.attempts, "job started");
    let cancel = Arc::new(AtomicBool::new(job.cancel_requested));
    let ctx = JobContext {
        id,
        kind: job.kind.clone(),
        tenant_id: job.tenant_id,
        created_by: job.created_by.clone(),
        payload: serde_json::from_str(&job.payload).unwrap_or(serde_json::Value::Null),
        attempt: job.attempts,
        services: services.clone(),
        worker: worker.to_owned(),
        lease,
        cancel: cancel.clone(),
    };
    let timeout = Duration::from_secs(u64::try_from(job.timeout_secs.max(1)).unwrap_or(1));
    let outcome = match services.job_registry().runner(&job.kind) {
        None => Err(format!(
            "unknown job kind {:?} (this daemon knows: {})",
            job.kind,
            services.job_registry().names().join(", ")
        )),
        Some(run) => {
            let attempt = tokio::time::timeout(timeout, run(ctx));
            tokio::select! {
                ended = attempt => match ended {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(err)) => Err(err.message),
                    Err(_) => Err(format!("timed out after {} s", timeout.as_secs())),
                },
                () = keep_lease(services, worker, id, lease, &cancel) => {
                    Err("the job is no longer this worker's (its lease expired)".into())
                }
            }
        }
    };
    let result_text;
    let end = match &outcome {
        Ok(value) => {
            result_text = value.to_string();
            JobEnd::Succeeded {
                result: &result_text,
            }
        }
        Err(_) if cancel.load(Ordering::SeqCst) => JobEnd::Cancelled,
        Err(error) => JobEnd::Failed {
            error,
            backoff_base: Duration::from_secs(services.config.jobs.backoff_base_secs),
        },
    };
    let finished = services.db.finish_job(id, worker, &end).await;
    services.ring(super::doorbell::Bell::Jobs);
    match finished {
        Ok(Some(row)) => {
            tracing::info!(job = id, state = %row.state, error = row.error.as_deref().unwrap_or(""), "job attempt ended");
        }
        Ok(None) => tracing::warn!(job = id, "job was no longer this worker's at its end"),
        Err(err) => tracing::error!(job = id, error = %err, "cannot record a job's end"),
    }
}

/// Renews the lease every third of it, noting cancel requests; returns once it is lost.
async fn keep_lease(
    services: &Services,
    worker: &str,
    id: i64,
    lease: Duration,
    cancel: &AtomicBool,
) {
    let mut every = tokio::time::interval(lease / 3);
    every.tick().await;
    loop {
        every.tick().await;
        match services.db.renew_job_lease(id, worker, lease, None).await {
            Ok(Lease::Held { cancel: asked }) => {
                if asked {
                    cancel.store(true, Ordering::SeqCst);
                }
            }
            Ok(Lease::Lost) => return,
            Err(err) => tracing::warn!(job = id, error = %err, "cannot renew a job's lease"),
        }
    }
}

/// Queues again the running jobs whose lease expired, at start and every `jobs.lease_secs`.
async fn reap_loop(services: Services) {
    let mut every = tokio::time::interval(
        Duration::from_secs(services.config.jobs.lease_secs).max(Duration::from_secs(1)),
    );
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match services.db.requeue_expired_jobs(crate::store::now()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(
                    jobs = n,
                    "put back jobs whose worker stopped (lease expired)"
                );
                services.job_wake.notify_one();
                services.ring(super::doorbell::Bell::Jobs);
            }
            Err(err) => tracing::error!(error = %err, "cannot requeue expired jobs"),
        }
    }
}
