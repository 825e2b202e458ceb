//! The metrics store at scale: a `server_metrics` table of millions of raw samples, then the
//! queries the daemon and the commands run on it, timed through the store's own API.
//!
//!     cargo bench --bench metrics_store -- [--samples 10000000] [--servers 1000] [--runs 20]
//!         [--database postgres://USER:PASS@127.0.0.1:PORT/DB]
//!
//! Without `--database` it uses SQLite in a temporary directory. With a PostgreSQL URL it creates
//! (and drops at the end) a database of its own next to the one named, which needs CREATEDB.
//! Samples are spread evenly over the servers, 10 s apart, the newest a second ago (1000 servers
//! × 10,000 samples: 27.8 hours each, a little more than the default raw retention). The table
//! is filled by one generating statement per backend: the figures are for reads, roll-ups and
//! pruning, plus single-sample inserts (what the collector does).
//!
//! Without `--bench` (which `cargo bench` passes) it does nothing, so `cargo test --all-targets`
//! skips it; the smoke run in .ci/run is `cargo test --bench metrics_store -- --bench
//! --samples 20000 --servers 10 --runs 2`.

use std::time::Instant;
use vipanel::domain::{MetricValues, Resolution};
use vipanel::store::Db;

mod scratch;
use scratch::{Args, Scratch, execute, timed};

const INTERVAL_MS: i64 = 10_000;
const HOUR_MS: i64 = 3_600_000;

struct Options {
    samples: i64,
    servers: i64,
    runs: usize,
    database: Option<String>,
}

fn options() -> Option<Options> {
    let args = Args::requested()?;
    Some(Options {
        samples: args.number("--samples", 10_000_000),
        servers: args.number("--servers", 1000).max(1),
        runs: args.number("--runs", 20).max(0) as usize,
        database: args.value("--database"),
    })
}

/// Adds `servers` servers and `per_server` samples each, 10 s apart, the newest at `newest`.
async fn fill(db: &Db, servers: i64, per_server: i64, newest: i64) {
    let first = newest - (per_server - 1) * INTERVAL_MS;
    let (make_servers, make_samples) = match db {
        Db::Sqlite(_) => (
            format!(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {servers})
                 INSERT INTO servers (tenant_id, name, provider, status, created_at)
                 SELECT NULL, 'bench' || n, 'bench', 'running', '2026-01-01T00:00:00Z' FROM g"
            ),
            format!(
                "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g
                     WHERE n < {per_server} - 1)
                 INSERT INTO server_metrics (server_id, resolution, at, cpu_pct, load1, load5,
                     load15, mem_used_bytes, mem_total_bytes, disk_used_bytes, disk_total_bytes,
                     net_rx_bytes_per_s, net_tx_bytes_per_s)
                 SELECT s.id, 'raw', {first} + g.n * {INTERVAL_MS}, (g.n % 100) * 1.0, 0.5,
                     0.4, 0.3, 1000000 + g.n, 8000000000, 20000000000, 100000000000,
                     1000.0, 500.0
                 FROM servers s, g ORDER BY s.id, g.n"
            ),
        ),
        Db::Postgres(_) => (
            format!(
                "INSERT INTO servers (tenant_id, name, provider, status, created_at)
                 SELECT NULL, 'bench' || n, 'bench', 'running', now()
                 FROM generate_series(1, {servers}) n"
            ),
            format!(
                "INSERT INTO server_metrics (server_id, resolution, at, cpu_pct, load1, load5,
                     load15, mem_used_bytes, mem_total_bytes, disk_used_bytes, disk_total_bytes,
                     net_rx_bytes_per_s, net_tx_bytes_per_s)
                 SELECT s.id, 'raw', {first} + n * {INTERVAL_MS}, (n % 100) * 1.0, 0.5,
                     0.4, 0.3, 1000000 + n, 8000000000, 20000000000, 100000000000,
                     1000.0, 500.0
                 FROM servers s, generate_series(0, {per_server} - 1) n ORDER BY s.id, n"
            ),
        ),
    };
    execute(db, &make_servers).await;
    execute(db, &make_samples).await;
    execute(db, "ANALYZE").await;
}

/// Runs `f` `runs` times; returns the median and the slowest, in ms.
async fn time<F, Fut, T>(runs: usize, f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let times = timed(runs, f).await;
    (times[times.len() / 2], times[times.len() - 1])
}

fn row(what: &str, (median, max): (f64, f64)) {
    println!("| {what} | {median:.2} | {max:.2} |");
}

fn main() {
    let Some(options) = options() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(options));
}

async fn run(options: Options) {
    let scratch = Scratch::open(options.database.as_deref(), "metrics").await;
    let db = scratch.db.clone();
    let per_server = (options.samples / options.servers).max(1);
    let now = vipanel::store::now().timestamp_millis();
    let newest = now - 1000;
    let start = Instant::now();
    fill(&db, options.servers, per_server, newest).await;
    println!(
        "backend {}: {} servers x {per_server} samples = {} rows, filled in {:.1} s",
        db.backend(),
        options.servers,
        options.servers * per_server,
        start.elapsed().as_secs_f64()
    );
    println!();
    println!("| operation | median ms | max ms |");
    println!("|---|---|---|");
    let runs = options.runs;
    row(
        &format!(
            "`server list`'s query: {} servers with their newest sample",
            options.servers
        ),
        time(runs, || db.servers(None)).await,
    );
    let one = db
        .server_by_name("bench1", None)
        .await
        .expect("server")
        .expect("bench1");
    assert_eq!(one.sampled_at, Some(newest), "the newest sample is found");
    row(
        "`server show`'s query",
        time(runs, || db.server_by_name("bench1", None)).await,
    );
    row(
        "one server, last hour, raw, 12 s step (300 points)",
        time(runs, || {
            db.metric_points(one.id, Resolution::Raw, now - HOUR_MS, now, 12_000)
        })
        .await,
    );
    row(
        "one server, last 24 h, raw, 5 min step (288 points)",
        time(runs, || {
            db.metric_points(one.id, Resolution::Raw, now - 24 * HOUR_MS, now, 300_000)
        })
        .await,
    );
    let values = MetricValues {
        cpu_pct: Some(1.0),
        load1: Some(0.5),
        ..MetricValues::default()
    };
    let mut at = newest;
    row(
        "insert one sample",
        time(runs, || {
            at += 1;
            db.insert_metric_sample(one.id, at, &values)
        })
        .await,
    );
    // The first roll-up computes every complete bucket of the raw retention; later ones only
    // each server's newest bucket onwards (the steady state every rollup_interval_secs).
    let raw_from = now - 24 * HOUR_MS;
    for (resolution, label) in [(Resolution::FiveMinutes, "5m"), (Resolution::Hourly, "1h")] {
        let start = Instant::now();
        let rows = db
            .rollup_metrics(resolution, raw_from, now)
            .await
            .expect("roll-up");
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        println!("| first {label} roll-up of 24 h ({rows} rows written) | {ms:.2} | {ms:.2} |");
        row(
            &format!("{label} roll-up again (steady state)"),
            time(runs.min(5), || db.rollup_metrics(resolution, raw_from, now)).await,
        );
    }
    row(
        "one server, last 7 d from 5m roll-ups, 1 h step",
        time(runs, || {
            db.metric_points(
                one.id,
                Resolution::FiveMinutes,
                now - 7 * 24 * HOUR_MS,
                now,
                HOUR_MS,
            )
        })
        .await,
    );
    let start = Instant::now();
    let pruned = db
        .prune_metrics(Resolution::Raw, raw_from)
        .await
        .expect("prune");
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    println!("| prune raw older than 24 h ({pruned} rows) | {ms:.2} | {ms:.2} |");
    row(
        "prune again (nothing to remove)",
        time(runs.min(5), || db.prune_metrics(Resolution::Raw, raw_from)).await,
    );
    scratch.close().await;
}
