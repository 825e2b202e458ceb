//! `vipanel serve` start-up: configuration, data dir, database and migrations, first-start
//! bootstrap, host key, listening socket, then the SSH daemon and the job workers until
//! SIGTERM/SIGINT.

use crate::config::{Config, TotpMode};
use crate::service::{BootstrapReport, InitialKeySource, Services};
use crate::store::{ConnectOptions, Db};
use anyhow::{Context, Result};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Opens the database named by the configuration and applies pending migrations (under a lock).
pub async fn open_database(config: &Config) -> Result<Db> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(config.data_dir())
        .with_context(|| format!("cannot create data dir {}", config.data_dir().display()))?;
    let db = Db::connect(&ConnectOptions {
        url: config.database_url(),
        pool_size: config.limits.db_pool_size,
        busy_timeout: Duration::from_millis(config.limits.db_busy_timeout_ms),
    })
    .await?;
    let lock = config.data_dir().join("migrate.lock");
    let applied = db.migrate(Some(&lock)).await?;
    if applied > 0 {
        tracing::info!(
            applied,
            backend = db.backend(),
            "database migrations applied"
        );
    }
    Ok(db)
}

/// Where the first admin's keys come from: `VIPANEL_INITIAL_ADMIN_KEYS`, else `$HOME/.ssh`.
pub fn initial_key_source() -> InitialKeySource {
    match std::env::var("VIPANEL_INITIAL_ADMIN_KEYS") {
        Ok(value) if !value.trim().is_empty() => InitialKeySource::Env(value),
        _ => match std::env::var_os("HOME") {
            Some(home) => InitialKeySource::Home(PathBuf::from(home)),
            None => InitialKeySource::None,
        },
    }
}

/// Says what the first-start bootstrap did (on stderr, for the operator).
pub fn report_bootstrap(report: &BootstrapReport) {
    let mut err = std::io::stderr().lock();
    for warning in &report.warnings {
        let _ = writeln!(err, "vipanel: warning: {warning}");
    }
    if !report.created_admin {
        return;
    }
    let _ = writeln!(
        err,
        "vipanel: first start: created tenant `system` and user `admin`"
    );
    for (fingerprint, from) in &report.keys {
        let _ = writeln!(err, "vipanel:   admin key {fingerprint} (from {from})");
    }
    if report.keys.is_empty() {
        let _ = writeln!(
            err,
            "vipanel:   no public key found (VIPANEL_INITIAL_ADMIN_KEYS, ~/.ssh); add one with:\n\
             vipanel:     vipanel admin key add --user admin < ~/.ssh/id_ed25519.pub"
        );
    }
}

/// Runs the daemon until SIGTERM or SIGINT, then drains running commands.
pub async fn serve(config: Config) -> Result<()> {
    if config.auth.totp == TotpMode::Off {
        tracing::warn!(
            "auth.totp = \"off\": logins need only an SSH key. Use this for development and tests only."
        );
    }
    let db = open_database(&config).await?;
    let config = Arc::new(config);
    let services = Services::new(db.clone(), config.clone());
    // Now rather than at the first enrollment: a bad key file is a start-up error (exit 5).
    services.secret_key()?;
    report_bootstrap(&services.bootstrap(&initial_key_source()).await?);
    // A bad [host] layout (say, a sandbox data dir with spaces) is a start-up error too.
    services.applier()?;
    // Before listening: a session account that cannot run the binary is a start-up error.
    let session_account = crate::ssh::session_account::prepare(&config.session)?;
    let (host_key, created) = crate::ssh::host_key::load_or_create(&config.host_key_path())?;
    if created {
        tracing::info!(path = %config.host_key_path().display(), "created a new ed25519 host key");
    }
    let listener = crate::ssh::bind(config.listen_addr()).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "vipanel listening on {addr}")?;
        writeln!(
            out,
            "log in with: ssh -p {} panel@{}",
            addr.port(),
            addr.ip()
        )?;
        out.flush()?;
    }
    let retention = tokio::spawn(retention_loop(services.clone()));
    // Keeps the dashboard cache exact while `vipanel admin` and other nodes write.
    let cache_watcher = services.start_cache_watcher();
    // One signal stops both the SSH side and the job workers, which drain side by side.
    let (signalled, signal_seen) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = signalled.send(true);
    });
    let pool = services.start_job_workers();
    let grace = Duration::from_secs(config.limits.shutdown_grace_secs);
    let mut jobs_signal = signal_seen.clone();
    let jobs_stopped = tokio::spawn(async move {
        let _ = jobs_signal.wait_for(|s| *s).await;
        pool.shutdown(grace).await;
    });
    let mut ssh_signal = signal_seen;
    let collector = tokio::spawn(metrics_collector_loop(services.clone()));
    let rollups = tokio::spawn(metrics_rollup_loop(services.clone()));
    let health = tokio::spawn(health_loop(services.clone()));
    let cloud = tokio::spawn(cloud_loop(services.clone()));
    crate::ssh::serve(
        services.clone(),
        listener,
        host_key,
        session_account,
        async move {
            let _ = ssh_signal.wait_for(|s| *s).await;
        },
    )
    .await?;
    // Commands still running had their grace: what they were running goes back to the queue.
    services.release_inline_jobs().await;
    retention.abort();
    cache_watcher.abort();
    let _ = jobs_stopped.await;
    collector.abort();
    rollups.abort();
    health.abort();
    cloud.abort();
    services.sessions_shutdown().await;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Enqueues the `audit.retention` job of the current period at start, then every
/// `audit.prune_interval_secs` (nothing when `audit.retention_days` is 0); the job pool of any
/// node runs it.
async fn retention_loop(services: Services) {
    let settings = &services.config.audit;
    if settings.retention_days == 0 {
        tracing::info!("audit.retention_days = 0: audit rows are kept forever");
        return;
    }
    let kind = crate::service::AUDIT_RETENTION;
    periodic_loop(services.clone(), kind, settings.prune_interval_secs).await;
}

/// Enqueues `kind`'s job of the current period at start, then every `interval_secs` (see
/// `service/periodic.rs`). A failed enqueue is logged and tried again at the next interval.
async fn periodic_loop(services: Services, kind: &'static str, interval_secs: u64) {
    let mut every = tokio::time::interval(Duration::from_secs(interval_secs.max(1)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The first tick is immediate: the job at start.
        every.tick().await;
        match services
            .enqueue_periodic(kind, interval_secs, crate::store::now())
            .await
        {
            Ok(job) => tracing::debug!(job = job.id, kind, "periodic job enqueued"),
            Err(err) => tracing::error!(error = %err, kind, "cannot enqueue a periodic job"),
        }
    }
}

/// Samples the panel host (server `local`) every `metrics.interval_ms` and stores each sample
/// (nothing when `metrics.enabled` is false). The first reading only primes the CPU and network
/// counters. A failed write is logged, and the next sample is taken as usual.
async fn metrics_collector_loop(services: Services) {
    let settings = services.config.metrics.clone();
    if !settings.enabled {
        tracing::info!("metrics.enabled = false: the panel host is not sampled");
        return;
    }
    let server_id = match services.db.local_server_id().await {
        Ok(Some(id)) => id,
        Ok(None) => {
            tracing::error!("no server `local`: the panel host is not sampled");
            return;
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot find server `local`: the panel host is not sampled");
            return;
        }
    };
    let mut sampler = Some(crate::metrics::Sampler::new(std::path::Path::new(
        &settings.disk_path,
    )));
    let mut every = tokio::time::interval(Duration::from_millis(settings.interval_ms));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(mut current) = sampler.take() else {
            return;
        };
        // /proc reads are quick, but statvfs on a hung network file system is not.
        let taken = tokio::task::spawn_blocking(move || {
            let values = current.sample();
            (current, values)
        })
        .await;
        let values = match taken {
            Ok((current, values)) => {
                sampler = Some(current);
                values
            }
            Err(err) => {
                tracing::error!(error = %err, "the metrics sampler failed; sampling stops");
                return;
            }
        };
        let Some(values) = values else { continue };
        if let Err(err) = services
            .record_local_metrics(server_id, crate::store::now(), &values)
            .await
        {
            tracing::warn!(error = %err, "cannot store a metrics sample");
        }
    }
}

/// Enqueues the `health.check` job of the current period at start, then every
/// `health.interval_secs` (nothing when 0); the job pool of any node runs it.
async fn health_loop(services: Services) {
    let interval = services.config.health.interval_secs;
    if interval == 0 {
        tracing::info!("health.interval_secs = 0: sites and servers are not checked");
        return;
    }
    periodic_loop(services, crate::service::HEALTH_CHECK, interval).await;
}

/// Enqueues the `metrics.rollup` job of the current period at start, then every
/// `metrics.rollup_interval_secs`; the job pool runs it (roll-ups, then pruning). A failed
/// enqueue is logged and tried again at the next interval.
async fn metrics_rollup_loop(services: Services) {
    let interval = services.config.metrics.rollup_interval_secs;
    periodic_loop(services, crate::service::METRICS_ROLLUP, interval).await;
}

/// Every `metrics.cloud_interval_secs` (and at start; never when 0): refreshes each cloud
/// server's status and addresses from its provider and stores the metrics of the running ones.
/// A failure is logged and the next pass runs as usual.
async fn cloud_loop(services: Services) {
    let secs = services.config.metrics.cloud_interval_secs;
    if secs == 0 {
        tracing::info!("metrics.cloud_interval_secs = 0: cloud servers are not refreshed");
        return;
    }
    let mut every = tokio::time::interval(Duration::from_secs(secs));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match services.refresh_cloud_servers(crate::store::now()).await {
            Ok(done) => tracing::debug!(
                refreshed = done.refreshed,
                samples = done.samples,
                failed = done.failed,
                "cloud servers refreshed"
            ),
            Err(err) => tracing::error!(error = %err, "cannot refresh cloud servers"),
        }
    }
}

/// Resolves at the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
