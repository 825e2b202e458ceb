//! Business logic per resource. Every public method takes the [`Actor`] it runs as, asks
//! [`policy`] first, validates, writes through one store transaction together with its audit row,
//! and returns plain serializable views.
//!
//! This layer never imports `ssh`, `session`, `command` or any UI crate.

mod actor;
mod audit;
mod audit_retention;
mod audit_trail;
mod bootstrap;
pub mod cache;
mod dashboard;
pub mod doorbell;
mod enrollment;
mod feed;
mod health;
mod identity;
mod job_kinds;
mod job_worker;
mod jobs;
mod keys;
mod metrics;
mod periodic;
pub mod policy;
mod preflight;
mod second_factor;
mod server_jobs;
mod servers;
mod sessions;
pub mod shared_cache;
pub mod shared_penalties;
pub mod shared_state;
mod shell_history;
mod site_apply;
mod site_host;
mod site_jobs;
mod sites;
mod suspicion;
mod tenants;
mod ui;
mod users;
mod views;

pub use actor::Actor;
pub use audit::with_command_line;
pub use audit_trail::AuditQuery;
pub use bootstrap::{BootstrapReport, InitialKeySource};
pub use enrollment::{EnrollRequirement, PendingEnrollment, locked_out_error};
pub use feed::{FeedBatch, FeedRow, change_kind, is_change};
pub use health::HEALTH_CHECK;
pub use identity::{LoginCheck, LoginIdentity, LoginRefusal, SecondStep};
pub use job_kinds::{AUDIT_RETENTION, HOST_RECONCILE, METRICS_ROLLUP};
pub use job_worker::JobPool;
pub use jobs::{JobContext, JobKind, JobQuery, JobRegistry, JobRequest, JobView};
pub use keys::KeyOptions;
pub use metrics::{CloudRefresh, MetricsMaintenance, cloud_samples};
pub use preflight::DeleteTarget;
pub use second_factor::CodeCheck;
pub use server_jobs::{SERVER_CREATE, SERVER_DELETE, SERVER_POWER, SERVER_REBOOT, SERVER_RESIZE};
pub use servers::{ServerChange, ServerCreate};
pub use sessions::{KillSignal, SessionGuard, SessionRegistry};
pub use site_apply::{Applier, BatchReport};
pub use site_host::{PhpInstall, ReconcileReport};
pub use site_jobs::SITE_APPLY;
pub use sites::SiteCreate;
pub use suspicion::{LOCKOUT_ACTION, network_of};
pub use ui::{UiChange, UiExport, UiFileEntry, UiImported, UiRemoved};
pub use users::UserCreate;
pub use views::*;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::provider::{HetznerClient, HetznerOptions, LocalProvider, Provider};
use crate::secret::SecretKey;
use crate::store::Db;
use std::sync::{Arc, OnceLock};

/// Everything a request needs, cheap to clone and shared by every protocol front end.
#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub config: Arc<Config>,
    /// Loaded (or created) on first use; the daemon loads it at start.
    secret_key: Arc<OnceLock<Arc<SecretKey>>>,
    /// The live sessions of this process (see [`SessionRegistry`]).
    pub sessions: SessionRegistry,
    /// Started on first use (it needs the runtime); the daemon starts it at start.
    applier: Arc<OnceLock<Applier>>,
    /// The job kinds this process runs (see [`JobKind`]).
    job_registry: JobRegistry,
    /// Wakes an idle worker when this process enqueues a job.
    job_wake: Arc<tokio::sync::Notify>,
    /// This node's name (`jobs.node`, else the hostname), read once.
    node: Arc<str>,
    /// Jobs commands of this process run themselves (id → worker name), for the shutdown.
    inline_jobs: Arc<std::sync::Mutex<std::collections::HashMap<i64, String>>>,
    /// The configured providers by name, built once: `local` always, `hetzner` when its
    /// token is set.
    providers: Arc<Vec<Arc<dyn Provider>>>,
    /// This process's `dashboard` results (see [`cache`]); on only while its watcher runs.
    pub cache: cache::DashboardCache,
    /// The Redis link when `redis_url` is set (see [`shared_state`]); the daemon starts it.
    pub shared: Option<shared_state::SharedState>,
    /// "Look now" signals for readers of the trail and of jobs (see [`doorbell`]).
    pub doorbells: doorbell::Doorbells,
}

/// The Redis link `redis_url` asks for, if any (the URL was checked when the config was loaded).
fn shared_state_of(config: &Config) -> Option<shared_state::SharedState> {
    if config.redis_url.is_empty() {
        return None;
    }
    let shown = crate::config::mask_url_password(&config.redis_url);
    match shared_state::SharedState::new(&config.redis_url, &shown, &config.redis_key_prefix) {
        Ok(state) => Some(state),
        Err(err) => {
            tracing::error!(redis = %shown, error = %err, "redis_url is unusable; state is not shared");
            None
        }
    }
}

impl Services {
    pub fn new(db: Db, config: Arc<Config>) -> Services {
        let services = Services {
            db,
            config: config.clone(),
            secret_key: Arc::new(OnceLock::new()),
            sessions: SessionRegistry::new(),
            applier: Arc::new(OnceLock::new()),
            job_registry: JobRegistry::default(),
            job_wake: Arc::new(tokio::sync::Notify::new()),
            node: config.jobs.node_name().into(),
            inline_jobs: Arc::default(),
            providers: Arc::new(providers(&config)),
            cache: cache::DashboardCache::default(),
            shared: shared_state_of(&config),
            doorbells: doorbell::Doorbells::default(),
        };
        if let Some(shared) = &services.shared {
            services
                .cache
                .share_through(shared_cache::SharedCache::new(shared.clone()));
        }
        job_kinds::register_builtin(&services);
        services
    }

    /// This node's name: jobs pinned to it run only here (see [`crate::config::JobsConfig::node`]).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// This process's host applier (see [`Applier`]); a bad `[host]` layout is exit 5.
    pub fn applier(&self) -> Result<Applier> {
        if let Some(applier) = self.applier.get() {
            return Ok(applier.clone());
        }
        let layout = crate::host::HostLayout::from_config(&self.config)?;
        if layout.is_system() && !crate::host::layout::running_as_root() {
            return Err(crate::error::Error::invalid(
                "host.mode = \"system\" writes nginx and PHP-FPM configuration and creates a \
                 system account per site: run vipanel as root, or use host.mode = \"sandbox\"",
            ));
        }
        let host = &self.config.host;
        let applier = Applier::start(
            self.db.clone(),
            layout,
            std::time::Duration::from_millis(host.coalesce_ms),
            std::time::Duration::from_millis(host.coalesce_max_ms),
        );
        Ok(self.applier.get_or_init(|| applier).clone())
    }

    /// The provider called `name`; an unknown or unconfigured one is exit 5 naming those
    /// configured.
    pub fn provider(&self, name: &str) -> Result<Arc<dyn Provider>> {
        self.providers
            .iter()
            .find(|p| p.name() == name)
            .cloned()
            .ok_or_else(|| {
                Error::invalid(format!(
                    "provider {} is unknown or not configured (configured: {})",
                    crate::domain::printable(name),
                    self.provider_names().join(", ")
                ))
            })
    }

    /// The configured providers' names: `local`, then the cloud ones.
    pub fn provider_names(&self) -> Vec<&'static str> {
        self.providers.iter().map(|p| p.name()).collect()
    }

    /// The key that seals TOTP secrets (`auth.secret_key_file`, default in the data dir).
    pub fn secret_key(&self) -> Result<Arc<SecretKey>> {
        if let Some(key) = self.secret_key.get() {
            return Ok(key.clone());
        }
        let key = Arc::new(SecretKey::load_or_create(&self.config.secret_key_path())?);
        Ok(self.secret_key.get_or_init(|| key).clone())
    }
}

/// The providers `config` configures: `local` always, `hetzner` when its token is set (a client
/// that cannot be built is left out with a warning that never shows the token).
fn providers(config: &Config) -> Vec<Arc<dyn Provider>> {
    let mut all: Vec<Arc<dyn Provider>> = vec![Arc::new(LocalProvider)];
    let hetzner = &config.providers.hetzner;
    if !hetzner.token.is_empty() {
        match HetznerClient::new(HetznerOptions::from_config(hetzner)) {
            Ok(client) => all.push(Arc::new(client)),
            Err(err) => tracing::warn!(error = %err.message, "the hetzner provider is not usable"),
        }
    }
    all
}
