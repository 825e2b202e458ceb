//! What the store benchmarks (`dashboard`, `jobs_throughput`, `metrics_store`) share: their flags, a scratch
//! database (SQLite in a temporary directory, or a PostgreSQL database of their own created next
//! to the one named and dropped at the end), and timing a call many times.

use std::path::Path;
use std::time::{Duration, Instant};
use vipanel::store::{ConnectOptions, Db};

/// The command line, when `--bench` (which `cargo bench` passes) is on it: without it a bench
/// does nothing, so `cargo test --all-targets` skips it.
pub struct Args(Vec<String>);

impl Args {
    pub fn requested() -> Option<Args> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        args.iter().any(|a| a == "--bench").then_some(Args(args))
    }

    /// The value after `name`.
    pub fn value(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .cloned()
    }

    /// The number after `name`, or `default`.
    pub fn number(&self, name: &str, default: i64) -> i64 {
        self.value(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

pub async fn connect(url: &str) -> Db {
    connect_pool(url, 4).await
}

/// Like [`connect`] with `pool_size` connections at most.
pub async fn connect_pool(url: &str, pool_size: u32) -> Db {
    Db::connect(&ConnectOptions {
        url: url.to_owned(),
        pool_size,
        busy_timeout: Duration::from_secs(30),
    })
    .await
    .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

pub async fn execute(db: &Db, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    let done = match db {
        Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
    };
    done.unwrap_or_else(|e| panic!("{e}"));
}

/// A migrated database of the bench's own, and the temporary directory beside it.
pub struct Scratch {
    pub db: Db,
    dir: tempfile::TempDir,
    /// PostgreSQL: the URL of the database named on the command line, and ours.
    postgres: Option<(String, String)>,
}

impl Scratch {
    /// SQLite in the temporary directory without `database`; else a PostgreSQL database
    /// `vipanel_bench_<name>_<pid>` next to the one named (needs CREATEDB).
    #[allow(dead_code)] // each bench compiles this module; not every one picks its pool size
    pub async fn open(database: Option<&str>, name: &str) -> Scratch {
        Scratch::open_pool(database, name, 4).await
    }

    /// Like [`Scratch::open`], its pool holding `pool_size` connections at most.
    pub async fn open_pool(database: Option<&str>, name: &str, pool_size: u32) -> Scratch {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, postgres) = match database {
            None => (
                format!("sqlite://{}", dir.path().join("bench.db").display()),
                None,
            ),
            Some(url) => {
                let ours = format!("vipanel_bench_{name}_{}", std::process::id());
                let admin = connect(url).await;
                execute(&admin, &format!("CREATE DATABASE {ours}")).await;
                admin.close().await;
                let (base, _) = url.rsplit_once('/').expect("a URL ending in /DATABASE");
                (format!("{base}/{ours}"), Some((url.to_owned(), ours)))
            }
        };
        let db = connect_pool(&url, pool_size).await;
        db.migrate(Some(&dir.path().join("migrate.lock")))
            .await
            .expect("migrate");
        Scratch { db, dir, postgres }
    }

    #[allow(dead_code)] // each bench compiles this module; not every one reads the directory
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Closes the database and drops ours on PostgreSQL (the directory goes with `self`).
    pub async fn close(self) {
        self.db.close().await;
        if let Some((url, ours)) = self.postgres {
            let admin = connect(&url).await;
            execute(
                &admin,
                &format!("DROP DATABASE IF EXISTS {ours} WITH (FORCE)"),
            )
            .await;
            admin.close().await;
        }
    }
}

/// Runs `f` `runs` times (at least once); the times in ms, sorted.
#[allow(dead_code)] // each bench compiles this module; not every one times a call this way
pub async fn timed<F, Fut, T>(runs: usize, mut f: F) -> Vec<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times: Vec<f64> = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        std::hint::black_box(f().await);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times
}
