//! The host applier of this process: one task that applies sites to the host, coalescing bursts.
//!
//! Every change to a site (create, enable, disable, PHP version, alias, delete, `site apply`)
//! and `host reconcile` is a request to this task. It waits until no new request came for
//! `host.coalesce_ms` (never longer than `host.coalesce_max_ms` after the first), then reads
//! what each site should be from the database (so a batch always applies the newest state),
//! runs one apply for the whole batch ([`crate::host::apply`]: one validation, one reload per
//! master), writes each site's outcome back (applied revision, status, error) and answers every
//! waiting caller. Another process (`vipanel admin`) has an applier of its own; the host
//! layer's file lock keeps their applies from interleaving.

use crate::domain::{DomainName, PhpVersion, Upstream};
use crate::error::{Error, Result};
use crate::host::{self, Backend, Desired, HostLayout, Item, SiteInput};
use crate::store::{ApplyRecord, Db, SITE_DELETING, SiteRow};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// The status of a site serving.
pub const STATUS_ACTIVE: &str = "active";
/// The status of a site answering 503 (`site disable`).
pub const STATUS_DISABLED: &str = "disabled";

/// What a request asks for.
#[derive(Debug, Clone)]
enum Job {
    /// These sites (by id), as the database has them when the batch runs; `force` validates
    /// and reloads even when no managed file changed.
    Sites { ids: Vec<i64>, force: bool },
    /// Every site, and remove what belongs to none (`host reconcile`).
    Reconcile,
}

struct Request {
    job: Job,
    reply: oneshot::Sender<Arc<BatchReport>>,
}

/// How one batch went, shared by every request in it.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Per site id: applied, or why not.
    pub results: HashMap<i64, std::result::Result<(), String>>,
    /// Sites in the batch.
    pub sites: usize,
    pub host: HostChanges,
    /// Set when the batch could not run at all (database error).
    pub error: Option<String>,
}

/// What a batch changed on the host (part of `host reconcile`'s answer).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct HostChanges {
    /// Files written or removed (0: the host already matched the database).
    pub changed: usize,
    pub nginx_reloaded: bool,
    pub php_reloaded: Vec<String>,
    /// Managed files and site accounts that belonged to no site, removed.
    pub orphans_removed: Vec<String>,
    /// Sites whose interrupted deletion was finished.
    pub deletions_finished: Vec<String>,
}

/// A handle to this process's applier task.
#[derive(Clone)]
pub struct Applier {
    tx: mpsc::UnboundedSender<Request>,
    pub layout: Arc<HostLayout>,
}

impl Applier {
    /// Starts the task (on the current tokio runtime).
    pub fn start(
        db: Db,
        layout: HostLayout,
        coalesce: Duration,
        coalesce_max: Duration,
    ) -> Applier {
        let layout = Arc::new(layout);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(db, layout.clone(), rx, coalesce, coalesce_max));
        Applier { tx, layout }
    }

    /// Applies these sites and waits for the outcome; `force` validates and reloads even when
    /// no managed file changed (`site apply`, after an include hook changed).
    pub async fn sites(&self, ids: Vec<i64>, force: bool) -> Result<Arc<BatchReport>> {
        self.ask(Job::Sites { ids, force }).await
    }

    /// Rebuilds every site from the database and waits for the outcome.
    pub async fn reconcile(&self) -> Result<Arc<BatchReport>> {
        self.ask(Job::Reconcile).await
    }

    async fn ask(&self, job: Job) -> Result<Arc<BatchReport>> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { job, reply })
            .map_err(|_| Error::unavailable("the host applier has stopped"))?;
        answer
            .await
            .map_err(|_| Error::unavailable("the host applier stopped before answering"))
    }
}

async fn run(
    db: Db,
    layout: Arc<HostLayout>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    coalesce: Duration,
    coalesce_max: Duration,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let until = Instant::now() + coalesce_max;
        loop {
            let quiet = (Instant::now() + coalesce).min(until);
            tokio::select! {
                next = rx.recv() => match next {
                    Some(request) => batch.push(request),
                    None => break,
                },
                () = tokio::time::sleep_until(quiet) => break,
            }
        }
        let mode = host::Mode {
            full: batch.iter().any(|r| matches!(r.job, Job::Reconcile)),
            force: batch
                .iter()
                .any(|r| matches!(r.job, Job::Sites { force: true, .. })),
            keep: Default::default(),
        };
        let mut ids: Vec<i64> = batch
            .iter()
            .flat_map(|r| match &r.job {
                Job::Sites { ids, .. } => ids.clone(),
                Job::Reconcile => Vec::new(),
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let report = Arc::new(run_batch(&db, &layout, mode, &ids).await);
        for request in batch {
            let _ = request.reply.send(report.clone());
        }
    }
}

async fn run_batch(
    db: &Db,
    layout: &Arc<HostLayout>,
    mut mode: host::Mode,
    ids: &[i64],
) -> BatchReport {
    // The lock first, then the rows: another process's apply that read older rows has ended.
    let locking = layout.clone();
    let lock = match tokio::task::spawn_blocking(move || host::lock(&locking)).await {
        Ok(Ok(lock)) => lock,
        Ok(Err(e)) => return failed_batch(e),
        Err(e) => return failed_batch(format!("the apply task failed: {e}")),
    };
    let full = mode.full;
    let rows = if full {
        db.sites(None).await
    } else {
        db.sites_by_ids(ids).await
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return failed_batch(e.to_string()),
    };
    let mut report = BatchReport {
        sites: rows.len(),
        ..BatchReport::default()
    };
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        match desired(layout, row) {
            Ok(desired) => items.push(Item {
                key: row.id,
                desired,
            }),
            Err(e) => {
                // Never an orphan: its files and account stay as they are.
                mode.keep.insert(row.domain.clone());
                mode.keep.extend(row.system_user.clone());
                report.results.insert(row.id, Err(e.message));
            }
        }
    }
    let started = std::time::Instant::now();
    let layout_for_task = layout.clone();
    let outcome =
        tokio::task::spawn_blocking(move || host::apply(&layout_for_task, &lock, &items, &mode))
            .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            report.error = Some(format!("the apply task failed: {e}"));
            return report;
        }
    };
    tracing::info!(
        sites = rows.len(),
        changed = outcome.changed,
        nginx_reloaded = outcome.nginx_reloaded,
        ms = started.elapsed().as_millis() as u64,
        "host apply"
    );
    report.host.changed = outcome.changed;
    report.host.nginx_reloaded = outcome.nginx_reloaded;
    report.host.php_reloaded = outcome.php_reloaded.iter().map(|v| v.to_string()).collect();
    report.host.orphans_removed = outcome.orphans_removed;
    report.results.extend(outcome.results);
    let mut touched = std::collections::BTreeSet::new();
    for row in &rows {
        let Some(result) = report.results.get(&row.id) else {
            continue;
        };
        let written = match result {
            Ok(()) if row.status == SITE_DELETING => {
                // The host no longer has the site: the row goes too. In a reconcile, this was
                // a deletion a crash interrupted.
                match db.finish_site_deletion(row.id).await {
                    Ok(()) if full => report.host.deletions_finished.push(row.domain.clone()),
                    Ok(()) => {}
                    Err(e) => tracing::error!(site = row.domain, "{e}"),
                }
                Ok(())
            }
            Ok(()) => {
                let status = if row.enabled {
                    STATUS_ACTIVE
                } else {
                    STATUS_DISABLED
                };
                db.record_site_apply(
                    row.id,
                    &ApplyRecord::Applied {
                        revision: row.revision,
                        status,
                    },
                )
                .await
            }
            Err(e) => {
                db.record_site_apply(row.id, &ApplyRecord::Failed { error: e })
                    .await
            }
        };
        if let Err(e) = written {
            tracing::error!(site = row.domain, "cannot record the apply: {e}");
        }
        touched.insert(row.tenant_id);
    }
    // No audit row records an apply's outcome: a change mark per tenant tells the caches of
    // every process (docs/cache.md), after the outcome is written.
    for tenant_id in touched {
        if let Err(e) = db.mark_tenant_sites_changed(tenant_id).await {
            tracing::error!(tenant_id, "cannot mark the apply's sites as changed: {e}");
        }
    }
    report
}

fn failed_batch(error: String) -> BatchReport {
    BatchReport {
        error: Some(error),
        ..BatchReport::default()
    }
}

/// What the host should have for a site row.
fn desired(layout: &HostLayout, row: &SiteRow) -> Result<Desired> {
    let domain = DomainName::parse(&row.domain)?;
    let user = match &row.system_user {
        Some(name) => host::AccountName::parse(name)?,
        None => layout.site_user(row.id)?,
    };
    if row.status == SITE_DELETING {
        return Ok(Desired::Absent {
            domain,
            user: Some(user),
            purge: row.purge_on_delete,
        });
    }
    let backend = match row.kind.as_str() {
        "php" => Backend::Php(PhpVersion::parse(row.php_version.as_deref().unwrap_or(""))?),
        "static" => Backend::Static,
        "proxy" => Backend::Proxy(Upstream::parse(row.upstream.as_deref().unwrap_or(""))?),
        other => return Err(Error::invalid(format!("unknown site type {other}"))),
    };
    let aliases = row
        .aliases
        .iter()
        .map(|a| DomainName::parse(a))
        .collect::<Result<Vec<_>>>()?;
    let spec = layout.site_spec(&SiteInput {
        domain,
        aliases,
        backend,
        enabled: row.enabled,
        user,
    })?;
    Ok(Desired::Present(Box::new(spec)))
}
