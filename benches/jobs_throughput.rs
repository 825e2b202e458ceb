//! The job queue's throughput: enqueue N jobs of a harmless kind through the service layer (one
//! transaction each, with its `job.enqueue` audit row, as `job_enqueue` does), then W workers
//! claim and finish them until the queue is empty, through the store calls a daemon's worker
//! makes (`Db::claim_job`, then `Db::finish_job` with success: the job itself does nothing).
//! Prints jobs/s for enqueue and for claim+finish, and the p50/p99 latency of one enqueue, one
//! claim and one finish; then checks that every job ran exactly once (no job claimed twice, all
//! `succeeded` after one attempt) and panics otherwise.
//!
//!     cargo bench --bench jobs_throughput -- [--jobs 2000] [--workers 4] [--pool 10]
//!         [--database postgres://USER:PASS@127.0.0.1:PORT/DB]
//!
//! `--workers` takes a comma-separated list (`1,4`): one round per entry, each enqueueing its own
//! N jobs after the previous round's are done. `--pool` is the pool's size (the daemon's
//! `limits.db_pool_size` defaults to 10). Without `--database` it uses SQLite in a temporary
//! directory. With a PostgreSQL URL it creates (and drops at the end) a database of its own next
//! to the one named, which needs CREATEDB.
//!
//! Without `--bench` (which `cargo bench` passes) it does nothing, so `cargo test --all-targets`
//! skips it; the smoke run in .ci/run is `cargo test --bench jobs_throughput -- --bench
//! --jobs 100 --workers 1,4`.

use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vipanel::config::Config;
use vipanel::service::{Actor, InitialKeySource, JobContext, JobKind, JobRequest, Services};
use vipanel::store::{Db, JobEnd, JobFilter};

mod scratch;
use scratch::{Args, Scratch};

/// The harmless kind enqueued (registered here only).
const KIND: &str = "bench.noop";
/// The lease a claim takes (the daemon's `jobs.lease_secs` defaults to 60).
const LEASE: Duration = Duration::from_secs(60);

struct Options {
    jobs: i64,
    workers: Vec<usize>,
    pool: u32,
    database: Option<String>,
}

fn options() -> Option<Options> {
    let args = Args::requested()?;
    let workers = args
        .value("--workers")
        .unwrap_or_else(|| "4".into())
        .split(',')
        .map(|w| {
            w.trim()
                .parse::<usize>()
                .expect("--workers: numbers, comma-separated")
        })
        .map(|w| w.max(1))
        .collect();
    Some(Options {
        jobs: args.number("--jobs", 2000).max(1),
        workers,
        pool: u32::try_from(args.number("--pool", 10).max(1)).unwrap_or(10),
        database: args.value("--database"),
    })
}

/// Does nothing and succeeds.
struct Noop;

impl JobKind for Noop {
    async fn run(&self, _ctx: JobContext) -> vipanel::error::Result<Value> {
        Ok(Value::Null)
    }
}

fn main() {
    let Some(options) = options() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(options));
}

/// The `p`-th percentile of sorted times.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(mut times: Vec<f64>) -> Vec<f64> {
    times.sort_by(f64::total_cmp);
    times
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

async fn run(o: Options) {
    let scratch = Scratch::open_pool(o.database.as_deref(), "jobs", o.pool).await;
    let db = scratch.db.clone();
    let config = Config {
        data_dir: scratch.dir().join("data"),
        ..Config::default()
    };
    let services = Services::new(db.clone(), Arc::new(config));
    services
        .bootstrap(&InitialKeySource::None)
        .await
        .expect("bootstrap");
    services.register_job_kind(KIND, Noop);
    let admin = Actor::local_admin(services.system_tenant_id().await.expect("system tenant"));

    println!(
        "backend {}: {} jobs per round, pool of {} connections",
        db.backend(),
        o.jobs,
        o.pool
    );
    println!();
    println!(
        "| workers | enqueue jobs/s | enqueue p50 ms | enqueue p99 ms | claim+finish jobs/s \
         | claim p50 ms | claim p99 ms | finish p50 ms | finish p99 ms | empty claims |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &workers in &o.workers {
        round(&services, &admin, o.jobs, workers).await;
    }
    services.db.close().await;
    scratch.close().await;
}

/// What one worker did: the jobs it claimed, its claim and finish times (ms), and how many
/// claims found nothing.
#[derive(Default)]
struct Tally {
    claimed: Vec<i64>,
    claims: Vec<f64>,
    finishes: Vec<f64>,
    empty: usize,
}

async fn round(services: &Services, admin: &Actor, jobs: i64, workers: usize) {
    let db = &services.db;
    // Enqueue, one job at a time, as `job_enqueue` does for a caller.
    let mut enqueues = Vec::with_capacity(jobs as usize);
    let mut ids = Vec::with_capacity(jobs as usize);
    let start = Instant::now();
    for n in 0..jobs {
        let at = Instant::now();
        let job = services
            .job_enqueue(
                admin,
                JobRequest {
                    kind: KIND.into(),
                    tenant_id: None,
                    payload: json!({ "n": n }),
                    idempotency_key: None,
                    run_at: None,
                    node: None,
                },
            )
            .await
            .expect("enqueue");
        enqueues.push(ms(at));
        ids.push(job.id);
    }
    let enqueue_secs = start.elapsed().as_secs_f64();
    let (first, last) = (ids[0], ids[ids.len() - 1]);

    // Drain: each worker claims and finishes until a claim finds nothing and no job is queued.
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move { drain(db, format!("bench-{workers}-{w}")).await })
        })
        .collect();
    let mut tally = Tally::default();
    for handle in handles {
        let t = handle.await.expect("worker");
        tally.claimed.extend(t.claimed);
        tally.claims.extend(t.claims);
        tally.finishes.extend(t.finishes);
        tally.empty += t.empty;
    }
    let drain_secs = start.elapsed().as_secs_f64();

    verify(db, first, last, jobs, &tally.claimed).await;
    let enqueues = sorted(enqueues);
    let claims = sorted(tally.claims);
    let finishes = sorted(tally.finishes);
    println!(
        "| {workers} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        jobs as f64 / enqueue_secs,
        pct(&enqueues, 0.5),
        pct(&enqueues, 0.99),
        jobs as f64 / drain_secs,
        pct(&claims, 0.5),
        pct(&claims, 0.99),
        pct(&finishes, 0.5),
        pct(&finishes, 0.99),
        tally.empty,
    );
}

/// One worker: claim, finish with success, until the queue is empty.
async fn drain(db: Db, name: String) -> Tally {
    let mut tally = Tally::default();
    loop {
        let at = Instant::now();
        let claimed = db.claim_job(&name, "bench", LEASE).await.expect("claim");
        tally.claims.push(ms(at));
        let Some(job) = claimed else {
            tally.empty += 1;
            // On PostgreSQL a claim skips rows other claimers hold: nothing for us does not
            // mean nothing queued.
            let queued = db
                .jobs(&JobFilter {
                    state: Some("queued".into()),
                    limit: 1,
                    ..JobFilter::default()
                })
                .await
                .expect("queued jobs");
            if queued.is_empty() {
                return tally;
            }
            tokio::task::yield_now().await;
            continue;
        };
        assert_eq!(job.kind, KIND, "only the bench's jobs are queued");
        let at = Instant::now();
        let end = JobEnd::Succeeded { result: "null" };
        let done = db.finish_job(job.id, &name, &end).await.expect("finish");
        tally.finishes.push(ms(at));
        let done = done.expect("the job is still this worker's");
        assert_eq!(done.state, "succeeded");
        tally.claimed.push(job.id);
    }
}

/// Every job of the round ran exactly once: claimed by one worker once, `succeeded` after one
/// attempt, none left in another state.
async fn verify(db: &Db, first: i64, last: i64, jobs: i64, claimed: &[i64]) {
    let unique: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(
        unique.len(),
        claimed.len(),
        "a job was claimed more than once"
    );
    assert_eq!(claimed.len() as i64, jobs, "jobs claimed");
    let sql = "SELECT state, COUNT(*), MIN(attempts), MAX(attempts) FROM jobs
               WHERE id BETWEEN $1 AND $2 GROUP BY state";
    let rows: Vec<(String, i64, i64, i64)> = match db {
        Db::Sqlite(pool) => {
            sqlx::query_as(sql)
                .bind(first)
                .bind(last)
                .fetch_all(pool)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_as(sql)
                .bind(first)
                .bind(last)
                .fetch_all(pool)
                .await
        }
    }
    .expect("count jobs by state");
    assert_eq!(
        rows,
        vec![("succeeded".to_owned(), jobs, 1, 1)],
        "every job succeeded after exactly one attempt (state, count, min, max attempts)"
    );
}
