//! `dashboard` at scale: an admin's view of a platform of many servers, sites and metric
//! samples, uncached and cached, timed in-process through the service layer; plus the newest
//! sample of every server (`Db::servers`, what `server list` reads) and the storage per sample.
//!
//!     cargo bench --bench dashboard -- [--servers 10000] [--sites 100000]
//!         [--samples 10000000] [--tenants 100] [--runs 200]
//!         [--database postgres://USER:PASS@127.0.0.1:PORT/DB]
//!
//! Without `--database` it uses SQLite in a temporary directory. With a PostgreSQL URL it creates
//! (and drops at the end) a database of its own next to the one named, which needs CREATEDB.
//! The rows are made by one generating `INSERT … SELECT` per table, inside the database.
//!
//! Without `--bench` (which `cargo bench` passes) it does nothing, so `cargo test --all-targets`
//! skips it; the smoke run in .ci/run is `cargo test --bench dashboard -- --bench --servers 20
//! --sites 200 --samples 2000 --runs 5`.

use std::sync::Arc;
use std::time::{Duration, Instant};
use vipanel::config::Config;
use vipanel::service::{Actor, InitialKeySource, Services};
use vipanel::store::Db;

mod scratch;
use scratch::{Args, Scratch, execute, timed};

struct Options {
    servers: i64,
    sites: i64,
    samples: i64,
    tenants: i64,
    runs: usize,
    database: Option<String>,
}

fn options() -> Option<Options> {
    let args = Args::requested()?;
    let number = |name: &str, default: i64| args.number(name, default).max(1);
    Some(Options {
        servers: number("--servers", 10_000),
        sites: number("--sites", 100_000),
        samples: number("--samples", 10_000_000),
        tenants: number("--tenants", 100),
        runs: number("--runs", 200) as usize,
        database: args.value("--database"),
    })
}

async fn scalar(db: &Db, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    let done = match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    };
    done.unwrap_or_else(|e| panic!("{e}"))
}

/// A row-number generator `g(n)` from `from` to `to`, and the time literal, per backend.
fn series(db: &Db, from: i64, to: i64) -> String {
    match db {
        Db::Sqlite(_) => format!(
            "WITH RECURSIVE g(n) AS (SELECT {from} UNION ALL SELECT n + 1 FROM g WHERE n < {to}) "
        ),
        Db::Postgres(_) => format!("WITH g(n) AS (SELECT generate_series({from}, {to})) "),
    }
}

fn stamp(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => "'2026-01-01T00:00:00Z'",
        Db::Postgres(_) => "now()",
    }
}

/// Tenants with an owner each, servers spread over the tenants, sites over tenants and
/// servers (a tenth pending, a tenth in error, the rest active), `samples` raw samples spread
/// over the servers, 10 s apart.
async fn fill(db: &Db, o: &Options) -> Duration {
    let started = Instant::now();
    let at = stamp(db);
    let (tenants, servers, sites) = (o.tenants, o.servers, o.sites);
    execute(
        db,
        &format!(
            "{}INSERT INTO tenants (name, created_at) SELECT 'bt' || n, {at} FROM g",
            series(db, 1, tenants)
        ),
    )
    .await;
    let t0 = scalar(db, "SELECT MIN(id) FROM tenants WHERE name LIKE 'bt%'").await;
    execute(
        db,
        &format!(
            "{}INSERT INTO users (tenant_id, name, role, created_at)
             SELECT {t0} + n - 1, 'bu' || n, 'owner', {at} FROM g",
            series(db, 1, tenants)
        ),
    )
    .await;
    execute(
        db,
        &format!(
            "{}INSERT INTO servers (tenant_id, name, provider, status, created_at)
             SELECT {t0} + n % {tenants}, 'bench' || n, 'bench', 'running', {at} FROM g",
            series(db, 1, servers)
        ),
    )
    .await;
    let s0 = scalar(db, "SELECT MIN(id) FROM servers WHERE provider = 'bench'").await;
    execute(
        db,
        &format!(
            "{}INSERT INTO sites (tenant_id, server_id, domain, kind, status, created_at,
                 updated_at, applied_at)
             SELECT {t0} + n % {tenants}, {s0} + n % {servers}, 's' || n || '.bench.test',
                 'static', CASE n % 10 WHEN 0 THEN 'pending' WHEN 1 THEN 'error'
                     ELSE 'active' END, {at}, {at},
                 CASE WHEN n % 10 = 0 THEN NULL ELSE {at} END
             FROM g",
            series(db, 1, sites)
        ),
    )
    .await;
    let per_server = (o.samples / servers).max(1);
    let newest = chrono::Utc::now().timestamp_millis();
    let first = newest - (per_server - 1) * 10_000;
    execute(
        db,
        &format!(
            "{}INSERT INTO server_metrics (server_id, resolution, at, cpu_pct, load1, load5,
                 load15, mem_used_bytes, mem_total_bytes, disk_used_bytes, disk_total_bytes,
                 net_rx_bytes_per_s, net_tx_bytes_per_s)
             SELECT s.id, 'raw', {first} + g.n * 10000, (g.n % 100) * 1.0, 0.5, 0.4, 0.3,
                 1000000 + g.n, 8000000000, 20000000000, 100000000000, 1000.0, 500.0
             FROM servers s, g WHERE s.provider = 'bench' ORDER BY s.id, g.n",
            series(db, 0, per_server - 1)
        ),
    )
    .await;
    execute(db, "ANALYZE").await;
    started.elapsed()
}

/// Runs `f` `runs` times; returns p50 and p99 in ms.
async fn time<F, Fut, T>(runs: usize, f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let times = timed(runs, f).await;
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

fn row(what: &str, (p50, p99): (f64, f64)) {
    println!("| {what} | {p50:.3} | {p99:.3} |");
}

fn main() {
    let Some(o) = options() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(o));
}

async fn run(o: Options) {
    let scratch = Scratch::open(o.database.as_deref(), "dash").await;
    let (db, dir) = (scratch.db.clone(), scratch.dir());
    // Sites are not applied here; the data dir (and the secret key in it) stay in the temp dir.
    let config = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    let services = Services::new(db.clone(), Arc::new(config));
    services
        .bootstrap(&InitialKeySource::None)
        .await
        .expect("bootstrap");
    let admin = Actor::local_admin(services.system_tenant_id().await.expect("system tenant"));

    let filled = fill(&db, &o).await;
    let samples = scalar(&db, "SELECT COUNT(*) FROM server_metrics").await;
    let storage = match &db {
        Db::Sqlite(_) => {
            execute(&db, "PRAGMA wal_checkpoint(TRUNCATE)").await;
            // The table's own pages, when SQLite has the dbstat table; else the whole file.
            let pages = match &db {
                Db::Sqlite(pool) => sqlx::query_scalar::<_, i64>(
                    "SELECT SUM(pgsize) FROM dbstat WHERE name = 'server_metrics'",
                )
                .fetch_one(pool)
                .await
                .ok(),
                Db::Postgres(_) => None,
            };
            match pages {
                Some(bytes) => (bytes, "dbstat: server_metrics pages"),
                None => {
                    let file = dir.join("bench.db");
                    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
                    (bytes as i64, "whole database file")
                }
            }
        }
        Db::Postgres(_) => (
            scalar(&db, "SELECT pg_total_relation_size('server_metrics')").await,
            "pg_total_relation_size",
        ),
    };
    let dash = services.dashboard(&admin).await.expect("dashboard");
    println!(
        "backend {}: {} servers, {} sites, {} samples, {} tenants; filled in {:.1} s",
        db.backend(),
        dash.servers,
        dash.sites,
        samples,
        dash.tenants,
        filled.as_secs_f64()
    );
    println!(
        "storage per sample: {:.1} bytes ({}, {} bytes)",
        storage.0 as f64 / samples.max(1) as f64,
        storage.1,
        storage.0
    );
    println!("| what (admin, all tenants) | p50 ms | p99 ms |");
    println!("|---|---|---|");
    // No watcher: the cache is off, every call reads the database.
    row(
        "dashboard, uncached",
        time(o.runs, || services.dashboard(&admin)).await,
    );
    let watcher = services.start_cache_watcher();
    let until = Instant::now() + Duration::from_secs(10);
    while !services.cache.is_live() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(services.cache.is_live(), "the cache watcher did not start");
    services.dashboard(&admin).await.expect("fill");
    let before = services.cache.stats();
    row(
        "dashboard, cached",
        time(o.runs, || services.dashboard(&admin)).await,
    );
    let after = services.cache.stats();
    assert_eq!(
        after.hits - before.hits,
        o.runs as u64,
        "every cached call hit"
    );
    watcher.abort();
    let runs = (o.runs / 10).max(2);
    row(
        "newest sample of every server (Db::servers)",
        time(runs, || db.servers(None)).await,
    );
    for line in db.explain_servers().await.unwrap_or_default() {
        println!("    plan: {line}");
    }
    scratch.close().await;
}
