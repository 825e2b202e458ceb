//! The worker pool a daemon runs (`[jobs] workers`): each worker claims a due job, runs its
//! kind under the job's timeout while renewing its lease, and records how the attempt ended.
//! A reaper puts back running jobs whose lease expired (a daemon that died), at start and
//! every lease.
//!
//! Shutdown ([`JobPool::shutdown`]): workers stop claiming at once; running jobs get the grace
//! period to finish, after which they are dropped mid-way and keep their lease, so the reaper
//! of this or another daemon queues them again once it expires.

use super::Services;
use super::jobs::JobContext;
use crate::store::{JobEnd, JobRow, Lease};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The running workers and reaper of this process.
pub struct JobPool {
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    reaper: JoinHandle<()>,
}

impl Services {
    /// Starts `jobs.workers` workers and the reaper (call once, in the daemon).
    pub fn start_job_workers(&self) -> JobPool {
        let (stop, watch) = watch::channel(false);
        let node = format!("{}-{}", hostname(), std::process::id());
        let workers = (0..self.config.jobs.workers)
            .map(|n| {
                let worker = Worker {
                    services: self.clone(),
                    name: format!("{node}-{n}"),
                    stop: watch.clone(),
                };
                tokio::spawn(worker.run())
            })
            .collect();
        let reaper = tokio::spawn(reap_loop(self.clone()));
        JobPool {
            stop,
            workers,
            reaper,
        }
    }
}

impl JobPool {
    /// Stops claiming, waits up to `grace` for running jobs, then drops the rest (their leases
    /// expire and they are queued again).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        self.reaper.abort();
        let deadline = tokio::time::Instant::now() + grace;
        for worker in self.workers {
            let abort = worker.abort_handle();
            if tokio::time::timeout_at(deadline, worker).await.is_err() {
                abort.abort();
                tracing::warn!(
                    "a job did not finish within the shutdown grace; it will be requeued when its lease expires"
                );
            }
        }
    }
}

struct Worker {
    services: Services,
    name: String,
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
            match self.services.db.claim_job(&self.name, lease).await {
                Ok(Some(job)) => {
                    self.run_job(job, lease).await;
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

    async fn run_job(&self, job: JobRow, lease: Duration) {
        let services = &self.services;
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
            worker: self.name.clone(),
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
                    () = self.keep_lease(id, lease, &cancel) => {
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
        match services.db.finish_job(id, &self.name, &end).await {
            Ok(Some(row)) => {
                tracing::info!(job = id, state = %row.state, error = row.error.as_deref().unwrap_or(""), "job attempt ended");
            }
            Ok(None) => tracing::warn!(job = id, "job was no longer this worker's at its end"),
            Err(err) => tracing::error!(job = id, error = %err, "cannot record a job's end"),
        }
    }

    /// Renews the lease every third of it, noting cancel requests; returns once it is lost.
    async fn keep_lease(&self, id: i64, lease: Duration, cancel: &AtomicBool) {
        let mut every = tokio::time::interval(lease / 3);
        every.tick().await;
        loop {
            every.tick().await;
            match self
                .services
                .db
                .renew_job_lease(id, &self.name, lease, None)
                .await
            {
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
            }
            Err(err) => tracing::error!(error = %err, "cannot requeue expired jobs"),
        }
    }
}

/// This machine's name, to tell workers of different nodes apart in `job show`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}
