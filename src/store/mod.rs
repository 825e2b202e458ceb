//! The store: one [`Db`] over SQLite or PostgreSQL, chosen by URL scheme, with per-dialect
//! migrations embedded in the binary.
//!
//! Each query is written once (runtime `query_as` + `FromRow`, `$N` placeholders, which both
//! dialects accept) and run on either backend through the `on_db!` / `on_tx!` macros. Writes go
//! through a [`Tx`] so a change and its audit row commit together. This layer never imports
//! `service`; it returns rows, and the service layer decides what they mean.

mod audit;
mod audit_chain;
mod audit_retention;
mod changes;
mod dashboard;
mod health;
mod jobs;
mod keys;
mod metrics;
mod migrate;
mod networks;
mod second_factor;
mod servers;
mod shell_history;
mod sites;
mod tenants;
mod ui;
mod users;

pub use audit::{AuditFilter, AuditRow, NewAudit};
pub use audit_retention::{AuditPrune, AuditVerdict};
pub use changes::{CHANGES_CHANNEL, ChangeMark};
pub use dashboard::DashboardCounts;
pub use health::HealthRecord;
pub use jobs::{
    JOB_CANCELLED, JOB_FAILED, JOB_QUEUED, JOB_RUNNING, JOB_STATES, JOB_SUCCEEDED, JobEnd,
    JobFilter, JobRow, Lease, NewJob, backoff as job_backoff,
};
pub use keys::{KeyOwnerRow, KeyRow, NewKey};
pub use metrics::MetricPointRow;
pub use second_factor::{EnrollCodeRow, TotpRow};
pub use servers::{NewServer, ServerRow, ServerUpdate};
pub use sites::{ApplyRecord, NewSite, SITE_DELETING, SiteChange, SiteRow};
pub use tenants::TenantRow;
pub use ui::{NewUiPreferences, UiFileRow, UiPreferencesRow};
pub use users::UserRow;

use crate::error::{Error, Result};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Postgres, Sqlite, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// The database handle: a pool of one of the two supported backends.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An open transaction on either backend.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$conn` bound to the pool of whichever backend `$db` is.
macro_rules! on_db {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($conn) => $body,
            $crate::store::Db::Postgres($conn) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the connection of the open transaction `$tx`.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use {on_db, on_tx};

/// Connection settings the store needs from the configuration.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: String,
    pub pool_size: u32,
    pub busy_timeout: Duration,
}

impl Db {
    /// Opens the pool. SQLite: creates the file, WAL mode, busy timeout, foreign keys on.
    pub async fn connect(options: &ConnectOptions) -> Result<Db> {
        let url = options.url.as_str();
        let unreachable = |e: sqlx::Error| {
            Error::unavailable(format!(
                "cannot open the database {}: {e}",
                crate::config::mask_url_password(url)
            ))
        };
        if url.starts_with("sqlite:") {
            if let Some(parent) = sqlite_path(url).and_then(|p| p.parent().map(|p| p.to_owned()))
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(&parent).map_err(|e| {
                    Error::unavailable(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            if let Some(path) = sqlite_path(url) {
                create_private_file(&path)?;
            }
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(unreachable)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(options.busy_timeout)
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(options.pool_size)
                // A local file cannot drop a connection the way a network peer can: skip the
                // ping before every acquire (it was a measurable part of each command).
                .test_before_acquire(false)
                .acquire_timeout(options.busy_timeout.max(Duration::from_secs(5)))
                .connect_with(connect)
                .await
                .map_err(unreachable)?;
            Ok(Db::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(options.pool_size)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(unreachable)?;
            Ok(Db::Postgres(pool))
        }
    }

    /// Which backend this is ("sqlite" or "postgres").
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            // IMMEDIATE takes the write lock up front, so a transaction that reads before it
            // writes waits (busy timeout) instead of failing when another writer commits first.
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A read-only transaction that sees one snapshot of the database throughout (SQLite: a
    /// deferred transaction, whose WAL snapshot is fixed at its first read; PostgreSQL:
    /// REPEATABLE READ). It takes no write lock, so writers are not held up.
    pub async fn begin_read(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN DEFERRED").await?),
            Db::Postgres(pool) => Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await)
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// Creates the database file with mode 0600 if it does not exist (SQLite gives its -wal and
/// -shm files the same mode), whatever the process umask.
fn create_private_file(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::unavailable(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

/// The file path of a `sqlite://PATH` URL (without query parameters).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// The current time, truncated to microseconds so both backends store and return the same value.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
