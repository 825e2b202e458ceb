//! Two nodes, one database and one Redis: two real `vipanel serve` daemons on different ports
//! and data dirs share one PostgreSQL database (a fresh one per test, as `db_support` makes
//! them), one Redis (`.ci/run`'s, under a key prefix per test, or a test's own), one SSH
//! host key file and one secret key file (`VIPANEL_DATABASE_URL`, `VIPANEL_HOST_KEY_FILE`,
//! `VIPANEL_AUTH__SECRET_KEY_FILE`), each with its own data dir. Node A starts first and creates
//! the host key in the test's shared directory; the secret key is made there at its first use
//! (by `vipanel admin totp enroll` with the same settings). Node B starts on the same paths.
//! A's bootstrap admin key (the database's first admin) is used on both nodes.
//!
//! A job's `worker` column names its worker (`HOST-PID-N`) only while it runs (a finished job's
//! is NULL), so which node ran a job is read from the daemons' logs (`job started job=N …`),
//! and the column is sampled while the jobs run to see both nodes' workers in it.
//!
//! Skips (with a printed reason) without PostgreSQL (`VIPANEL_TEST_POSTGRES_URL`), Redis
//! (`VIPANEL_TEST_REDIS_URL`), the SSH tools, tmux or sshpass, unless
//! `VIPANEL_REQUIRE_SERVICES=1`, where each of those fails the test.

mod db_support;
mod support;

use db_support::TestDb;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::redis::{self, RedisServer};
use support::tmux::{Tmux, TmuxOptions};
use support::{CLIENT_OPTIONS, Daemon, Key, Master, Run, run_bounded};
use vipanel::secret::Totp;
use vipanel::store::Db;

/// Quick queue and change feeds: an idle worker looks for jobs every 50 ms, subscriptions of
/// interactive sessions look for new audit rows every 200 ms (the default is 500).
const FAST: &str =
    "[jobs]\npoll_interval_ms = 50\nlease_secs = 10\n[audit]\nfollow_interval_ms = 200\n";

/// How long a wait for the other node may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// Two daemons on one database; the daemons are stopped before the database is dropped.
struct Nodes {
    a: Option<Daemon>,
    b: Option<Daemon>,
    db: Option<TestDb>,
    rt: tokio::runtime::Runtime,
    /// The shared host key and secret key files.
    shared: tempfile::TempDir,
    /// Both nodes' Redis and key prefix.
    redis: (String, String),
}

impl Nodes {
    /// Starts node A, then node B on A's database and key files, both with the config `toml`
    /// and the extra environment `env`; `None` (after printing why) when PostgreSQL or the SSH
    /// tools are missing.
    fn start(toml: &str, env: &[(&str, &str)]) -> Option<Nodes> {
        Nodes::start_with(toml, env, &[])
    }

    /// Like [`Nodes::start`], with `b_env` for node B only. Both nodes use `.ci/run`'s Redis
    /// under a prefix of the test's own, unless `env` names a `VIPANEL_REDIS_URL`.
    fn start_with(toml: &str, env: &[(&str, &str)], b_env: &[(&str, &str)]) -> Option<Nodes> {
        if !support::tools_available() {
            return None;
        }
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !env.iter().any(|(k, _)| k == "VIPANEL_REDIS_URL") {
            env.push(("VIPANEL_REDIS_URL".into(), redis::test_redis_url()?));
        }
        let prefix = redis::key_prefix();
        env.push(("VIPANEL_REDIS_KEY_PREFIX".into(), prefix.clone()));
        let redis_url = env
            .iter()
            .find(|(k, _)| k == "VIPANEL_REDIS_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let db = rt.block_on(db_support::postgres())?;
        let url = db.postgres_url().expect("a PostgreSQL test database");
        let shared = tempfile::Builder::new()
            .prefix("vipanel-nodes-")
            .tempdir()
            .expect("a shared temp dir");
        let host_key = shared.path().join("ssh_host_ed25519_key");
        let secret_key = shared.path().join("secret.key");
        let node = |extra: &[(&str, &str)]| {
            let mut builder = Daemon::builder()
                .config(toml)
                .env("VIPANEL_DATABASE_URL", &url)
                .env("VIPANEL_HOST_KEY_FILE", &host_key.display().to_string())
                .env(
                    "VIPANEL_AUTH__SECRET_KEY_FILE",
                    &secret_key.display().to_string(),
                );
            for (name, value) in &env {
                builder = builder.env(name, value);
            }
            for (name, value) in extra {
                builder = builder.env(name, value);
            }
            builder.start()
        };
        let mut nodes = Nodes {
            a: None,
            b: None,
            db: Some(db),
            rt,
            shared,
            redis: (redis_url, prefix),
        };
        nodes.a = Some(node(&[])?);
        assert!(host_key.exists(), "node A created the shared host key");
        nodes.b = Some(node(b_env)?);
        Some(nodes)
    }

    fn a(&self) -> &Daemon {
        self.a.as_ref().expect("node A")
    }

    fn b(&self) -> &Daemon {
        self.b.as_ref().expect("node B")
    }

    /// The bootstrap admin's key (A's: the database's first admin), valid on both nodes.
    fn admin(&self) -> Key {
        self.a().admin_key.clone()
    }

    fn host_key_file(&self) -> PathBuf {
        self.shared.path().join("ssh_host_ed25519_key")
    }

    /// The shared database's pool, for direct queries.
    fn pool(&self) -> &sqlx::PgPool {
        match &self.db.as_ref().expect("the test database").db {
            Db::Postgres(pool) => pool,
            _ => unreachable!("a PostgreSQL test database"),
        }
    }

    /// Runs `sql` (one row of `T`s) on the shared database.
    fn query_one<T>(&self, sql: &'static str) -> T
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        self.rt
            .block_on(sqlx::query_as::<_, T>(sql).fetch_one(self.pool()))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn query_all<T>(&self, sql: &'static str) -> Vec<T>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        self.rt
            .block_on(sqlx::query_as::<_, T>(sql).fetch_all(self.pool()))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        // The daemons go first (their logs are printed on a failure), then the database.
        drop(self.a.take());
        drop(self.b.take());
        if let Some(db) = self.db.take() {
            self.rt.block_on(db.finish());
        }
    }
}

/// The SHA256 fingerprints of the host keys a daemon presents, as `ssh-keyscan` records them.
fn scanned_fingerprints(d: &Daemon) -> Vec<String> {
    let scan = run_bounded(
        Command::new("ssh-keyscan").args(["-p", &d.port().to_string(), "127.0.0.1"]),
        None,
        "ssh-keyscan",
    );
    scan.expect(0);
    assert!(
        !scan.stdout.trim().is_empty(),
        "ssh-keyscan saw no host key on port {}: {}",
        d.port(),
        scan.stderr
    );
    let listed = run_bounded(
        Command::new("ssh-keygen").args(["-l", "-E", "sha256", "-f", "-"]),
        Some(scan.stdout.as_bytes()),
        "ssh-keygen -l -f -",
    );
    listed.expect(0);
    let mut prints: Vec<String> = listed
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    prints.sort();
    prints
}

/// The fingerprint of a key file (`ssh-keygen -l` reads private keys too).
fn file_fingerprint(path: &Path) -> String {
    let out = run_bounded(
        Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(path),
        None,
        "ssh-keygen -l -f HOSTKEY",
    );
    out.expect(0);
    out.stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

fn domains(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("site list -o json is an array: {list}"))
        .iter()
        .map(|s| s["domain"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_site_created_on_one_node_is_listed_on_the_other() {
    let Some(nodes) = Nodes::start(FAST, &[]) else {
        return;
    };
    let key = nodes.admin();
    let (a, b) = (nodes.a(), nodes.b());
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());

    // The dashboard: B's count is right the moment A's change has returned, though both nodes
    // share the cached counts in Redis.
    for node in [a, b] {
        node.wait_for_log("Redis connected", WAIT);
        assert_eq!(node.ssh_json(&key, &["dashboard"])["sites"], 0);
    }
    let (url, prefix) = &nodes.redis;
    assert_eq!(
        redis::command(url, &["EXISTS", &format!("{prefix}dash:*:-")]).as_deref(),
        Some(":1"),
        "the platform's counts are stored in Redis"
    );
    a.panel(&key, &["site", "create", "x.example", "--type", "static"])
        .expect(0);
    assert_eq!(b.ssh_json(&key, &["dashboard"])["sites"], 1);
    let on_b = b.ssh_json(&key, &["site", "list"]);
    assert_eq!(domains(&on_b), ["x.example"], "B lists A's site: {on_b}");
    let site = &on_b[0];
    assert_eq!(site["type"], "static", "{site}");
    // And the other way round.
    b.panel(&key, &["site", "create", "y.example", "--type", "static"])
        .expect(0);
    let mut on_a = domains(&a.ssh_json(&key, &["site", "list"]));
    on_a.sort();
    assert_eq!(on_a, ["x.example", "y.example"]);

    // One host key: a client that knows one node knows the other.
    let (from_a, from_b) = (scanned_fingerprints(a), scanned_fingerprints(b));
    assert_eq!(from_a, from_b, "both nodes present the same host key");
    assert_eq!(
        from_a,
        [file_fingerprint(&nodes.host_key_file())],
        "the shared host key file's key"
    );
    assert!(
        !b.data_dir().join("ssh_host_ed25519_key").exists(),
        "B made no host key of its own"
    );
}

/// The dashboard's domains on the Sites table (rows between the tab bar and the bottom bar).
fn shown_domains(rows: &[String]) -> Vec<String> {
    rows.iter()
        .skip(1)
        .filter_map(|r| {
            r.split_whitespace()
                .find(|w| w.ends_with(".example"))
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn an_interactive_session_on_one_node_shows_a_change_from_the_other_within_a_second() {
    let Some(nodes) = Nodes::start(FAST, &[]) else {
        return;
    };
    let key = nodes.admin();
    let (a, b) = (nodes.a(), nodes.b());
    a.panel(
        &key,
        &["site", "create", "first.example", "--type", "static"],
    )
    .expect(0);
    // No periodic refresh: only the change feed can bring the new site to B's screen.
    b.panel(&key, &["ui", "refresh", "3600"]).expect(0);
    let options = TmuxOptions::default().size(120, 40);
    let Some(term) = Tmux::start_with(b, &key, None, options) else {
        return;
    };
    term.wait_rows(b, "the Overview on B", |rows| {
        rows.first().is_some_and(|r| r.contains("1 Overview"))
    });
    term.keys(&["3"]);
    term.wait_rows(b, "B's Sites table with first.example", |rows| {
        rows.iter().skip(1).any(|r| r.contains(" Sites 1 "))
            && shown_domains(rows) == ["first.example"]
    });

    let started = Instant::now();
    a.panel(
        &key,
        &["site", "create", "second.example", "--type", "static"],
    )
    .expect(0);
    // The site is committed once the command on A has returned.
    let committed = Instant::now();
    let rows = term.wait_rows(b, "second.example on B's screen", |rows| {
        shown_domains(rows).iter().any(|d| d == "second.example")
    });
    let seen = Instant::now();
    let latency = seen - committed;
    eprintln!(
        "cross-node latency: {} ms from A's command returning to B's screen ({} ms from \
         starting the command on A; audit.follow_interval_ms = 200)",
        latency.as_millis(),
        (seen - started).as_millis()
    );
    assert!(
        latency < Duration::from_secs(1),
        "B showed A's site {latency:?} after it was committed (want < 1 s)\n{}",
        rows.join("\n")
    );
    let mut shown = shown_domains(&rows);
    shown.sort();
    assert_eq!(
        shown,
        ["first.example", "second.example"],
        "{}",
        rows.join("\n")
    );
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Logs in to `d` with `key` and answers `Verification code: ` with `code` (as e2e_login.rs:
/// keyboard-interactive needs BatchMode off; one code prompt at most).
fn login_with_code(d: &Daemon, key: &Key, code: &str) -> Run {
    let mut cmd = Command::new("sshpass");
    cmd.args(["-P", "Verification code", "-p", code, "ssh"])
        .args(["-F", "/dev/null", "-p", &d.port().to_string(), "-i"])
        .arg(&key.private);
    let mut words = CLIENT_OPTIONS.chunks(2);
    for pair in words.by_ref() {
        if !pair[1].starts_with("BatchMode") && !pair[1].starts_with("LogLevel") {
            cmd.args(pair);
        }
    }
    cmd.args(["-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"])
        .args(["-o", "ControlMaster=no", "-o", "ControlPath=none", "-n"])
        .arg("panel@127.0.0.1")
        .arg("whoami")
        .env_remove("SSH_AUTH_SOCK");
    run_bounded(
        &mut cmd,
        None,
        &format!("sshpass … ssh -p {} whoami", d.port()),
    )
}

/// The `login.lockout` rows of `user` in the shared audit trail.
fn lockouts(nodes: &Nodes) -> Vec<(String, String)> {
    nodes.query_all::<(String, String)>(
        "SELECT target, detail FROM audit_log WHERE action = 'login.lockout' ORDER BY id",
    )
}

#[test]
fn failed_logins_spread_over_both_nodes_hit_one_lockout() {
    if !support::program_exists("sshpass") {
        assert!(
            std::env::var("VIPANEL_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "sshpass is required (VIPANEL_REQUIRE_SERVICES=1)"
        );
        eprintln!("skipping: sshpass is not installed");
        return;
    }
    // Not the default 5: the lockout must come at the configured count.
    const THRESHOLD: usize = 4;
    let config =
        format!("{FAST}[auth]\nlockout_failures = {THRESHOLD}\ncode_failure_delay_ms = 0\n");
    let Some(nodes) = Nodes::start(&config, &[("VIPANEL_AUTH__TOTP", "required")]) else {
        return;
    };
    let (a, b) = (nodes.a(), nodes.b());
    // A user with a provisioned authenticator, made on A (its `admin` uses the shared
    // database and secret key file).
    let key = a.user("acme", "lena", "operator");
    let enrollment = a.admin_json(&["totp", "enroll", "lena"]);
    let secret = enrollment["secret"].as_str().expect("secret");
    let totp = Totp::from_base32(secret).expect("base32 secret");
    let t = now();
    let good = totp.code_at(t);
    let wrong = if good == "000000" { "111111" } else { "000000" };

    // Wrong codes, alternating A, B, A, …: no lockout before the THRESHOLD-th in all.
    let node_of = |i: usize| {
        if i.is_multiple_of(2) {
            (a, "A")
        } else {
            (b, "B")
        }
    };
    for i in 0..THRESHOLD {
        assert!(
            lockouts(&nodes).is_empty(),
            "locked out after {i} wrong codes (threshold {THRESHOLD}): {:?}",
            lockouts(&nodes)
        );
        let (node, name) = node_of(i);
        let run = login_with_code(node, &key, wrong);
        assert_eq!(run.code, 255, "wrong code #{} on {name}: {run:?}", i + 1);
    }
    let locked = lockouts(&nodes);
    assert_eq!(locked.len(), 1, "one lockout: {locked:?}");
    assert_eq!(locked[0].0, "lena");
    assert!(
        locked[0].1.contains(&format!("failures={THRESHOLD} ")),
        "the lockout came at the configured count: {locked:?}"
    );
    let failures: (i64,) = nodes.query_one(
        "SELECT count(*) FROM audit_log WHERE actor = 'lena' AND result = 'refused'
         AND detail LIKE '%wrong code%'",
    );
    assert_eq!(
        failures.0, THRESHOLD as i64,
        "every wrong code was counted once"
    );

    // Locked out on both nodes: even the right code is refused, and the client is told why.
    for (node, name) in [(a, "A"), (b, "B")] {
        let run = login_with_code(node, &key, &good);
        assert_eq!(
            run.code, 255,
            "the right code on {name} while locked: {run:?}"
        );
        assert!(
            run.stderr.contains("lena is locked out until"),
            "{name} says why: {}",
            run.stderr
        );
    }
    // Unlocked on one node, the right code (of a new time step) works on the other.
    a.admin(&["user", "unlock", "lena"]).expect(0);
    let run = login_with_code(b, &key, &totp.code_at(t + 30));
    run.expect(0);
    assert_eq!(run.stdout.trim(), "lena");
}

/// Enqueues `count` reconcile jobs through `d` over one shared SSH connection, four at a time.
fn enqueue_reconciles(d: &Daemon, key: &Key, count: usize) -> Vec<i64> {
    let master: Master = d.master(key, support::PANEL);
    let line = support::remote_line(&["host", "reconcile", "--no-wait"]);
    let per_thread = count / 4;
    assert_eq!(per_thread * 4, count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (master, line) = (&master, &line);
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|_| {
                            let mut cmd = d.ssh_command(
                                key,
                                support::PANEL,
                                &master.options(),
                                Some(line),
                                true,
                            );
                            let run = run_bounded(&mut cmd, None, "host reconcile --no-wait");
                            run.expect(0);
                            run.stdout
                                .trim()
                                .parse::<i64>()
                                .unwrap_or_else(|e| panic!("a job id, not {:?}: {e}", run.stdout))
                        })
                        .collect::<Vec<i64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("an enqueueing thread"))
            .collect()
    })
}

/// The ids of the jobs a node's log says it started (`job started job=N kind=K attempt=A`),
/// with their attempt numbers.
fn started_in_log(d: &Daemon, kind: &str) -> Vec<(i64, i64)> {
    let field = |line: &str, name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_owned)
    };
    d.log()
        .lines()
        .filter(|l| l.contains("job started") && field(l, "kind=").as_deref() == Some(kind))
        .map(|l| {
            let number = |name| {
                field(l, name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in {l:?}"))
            };
            (number("job="), number("attempt="))
        })
        .collect()
}

#[test]
fn jobs_enqueued_from_both_nodes_each_run_exactly_once() {
    const JOBS: usize = 200;
    // Four workers a node (the default is two): the 200 jobs take half the time.
    let config = FAST.replacen("[jobs]\n", "[jobs]\nworkers = 4\n", 1);
    let Some(nodes) = Nodes::start(&config, &[]) else {
        return;
    };
    let key = nodes.admin();
    let (a, b) = (nodes.a(), nodes.b());
    // While the jobs run, the `worker` column of running jobs is sampled: it names the claiming
    // worker (HOST-PID-N) only while a job runs; a finished job's `worker` is NULL again.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let (from_a, from_b, running_workers, ran) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let rows: Vec<(String,)> = nodes.query_all(
                    "SELECT DISTINCT worker FROM jobs WHERE worker IS NOT NULL
                     AND kind = 'host.reconcile'",
                );
                seen.extend(rows.into_iter().map(|(w,)| w));
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        // `host reconcile --no-wait` has no idempotency key: each call is a new job.
        let on_a = scope.spawn(|| enqueue_reconciles(a, &key, JOBS / 2));
        let on_b = scope.spawn(|| enqueue_reconciles(b, &key, JOBS / 2));
        let from_a = on_a.join().expect("enqueue on A");
        let from_b = on_b.join().expect("enqueue on B");
        eprintln!(
            "{JOBS} jobs enqueued in {} ms",
            started.elapsed().as_millis()
        );
        let deadline = Instant::now() + WAIT;
        loop {
            let (total, finished): (i64, i64) = nodes.query_one(
                "SELECT count(*), count(*) FILTER (WHERE state IN ('succeeded', 'failed', 'cancelled'))
                 FROM jobs WHERE kind = 'host.reconcile'",
            );
            assert_eq!(total, JOBS as i64, "the test's reconcile jobs");
            if finished == total {
                break;
            }
            if Instant::now() >= deadline {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("{finished} of {total} jobs finished within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let ran = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let running_workers = sampler.join().expect("the worker sampler");
        (from_a, from_b, running_workers, ran)
    });
    let mut ids: Vec<i64> = from_a.iter().chain(&from_b).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), JOBS, "{JOBS} distinct jobs");

    let states: Vec<(String, i64, i64)> = nodes.query_all(
        "SELECT state, attempts, count(*) FROM jobs WHERE kind = 'host.reconcile'
         GROUP BY state, attempts ORDER BY state",
    );
    assert_eq!(
        states,
        [("succeeded".to_owned(), 1, JOBS as i64)],
        "every job succeeded at its first attempt"
    );

    // Each job was started exactly once, by one node or the other (the daemons' logs).
    let (ran_a, ran_b) = (
        started_in_log(a, "host.reconcile"),
        started_in_log(b, "host.reconcile"),
    );
    let mut all: Vec<i64> = ran_a.iter().chain(&ran_b).map(|(id, _)| *id).collect();
    all.sort_unstable();
    assert_eq!(all, ids, "every job started once, on one node only");
    assert!(
        ran_a.iter().chain(&ran_b).all(|(_, attempt)| *attempt == 1),
        "first attempts only"
    );
    assert!(
        !ran_a.is_empty() && !ran_b.is_empty(),
        "both nodes ran jobs: A {}, B {}",
        ran_a.len(),
        ran_b.len()
    );

    // The `worker` column named workers of both nodes (HOST-PID-N: the PID is the daemon's).
    let pid_of = |worker: &str| {
        worker
            .rsplit_once('-')
            .and_then(|(node, _)| node.rsplit_once('-'))
            .map(|(_, pid)| pid.to_owned())
            .unwrap_or_default()
    };
    let pids: std::collections::BTreeSet<String> =
        running_workers.iter().map(|w| pid_of(w)).collect();
    let want: std::collections::BTreeSet<String> =
        [a.pid().to_string(), b.pid().to_string()].into();
    assert_eq!(
        pids, want,
        "the running jobs' workers were A's and B's: {running_workers:?}"
    );
    let crossed = |ran: &[(i64, i64)], enqueued: &[i64]| {
        ran.iter().filter(|(id, _)| !enqueued.contains(id)).count()
    };
    eprintln!(
        "{JOBS} jobs all finished {} ms after the first enqueue; A ran {} ({} enqueued on B), \
         B ran {} ({} enqueued on A); workers seen running: {running_workers:?}",
        ran.as_millis(),
        ran_a.len(),
        crossed(&ran_a, &from_a),
        ran_b.len(),
        crossed(&ran_b, &from_b)
    );
}

/// `job watch ID` on node B of a queued job (nobody runs jobs here), cancelled through node A
/// once the watch has run for a second: how long after the cancel returned B's watch ended.
/// B looks at the job by itself only every 10 s (`audit.follow_interval_ms`), at 0, 10 s, …
/// after the watch started, so an end well within a second can only come from A's ring.
fn cancel_on_a_seen_by_b(nodes: &Nodes) -> Duration {
    let key = nodes.admin();
    let (a, b) = (nodes.a(), nodes.b());
    let job = a.ssh_json(&key, &["host", "reconcile", "--no-wait"]);
    let id = job["id"].as_i64().expect("a job id").to_string();
    let watch = b.spawn_ssh(&key, &["job", "watch", &id]);
    std::thread::sleep(Duration::from_secs(1));
    a.panel(&key, &["job", "cancel", &id, "--yes"]).expect(0);
    let cancelled = Instant::now();
    let watched = watch.finish(b"");
    let took = cancelled.elapsed();
    // `job watch` of a cancelled job: exit 4, the job on stdout.
    assert_eq!(watched.code, 4, "{watched:?}");
    assert!(watched.stdout.contains("cancelled"), "{watched:?}");
    took
}

/// Job events (enqueue, progress, end, cancel) reach the other node through Redis: B's
/// `job watch` ends within a second of a cancel on A although it polls every 10 s. With Redis
/// stopped, commands and logins keep working on both nodes and the watch still ends, at B's
/// own next poll. Restarted, Redis carries the events again; neither node was restarted.
#[test]
fn job_events_reach_the_other_node_through_redis_and_again_after_it_returns() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let config = "[jobs]\nworkers = 0\n[audit]\nfollow_interval_ms = 10000\n";
    let url = redis.url();
    let env = [("VIPANEL_REDIS_URL", url.as_str())];
    let Some(nodes) = Nodes::start(config, &env) else {
        return;
    };
    let (a, b) = (nodes.a(), nodes.b());
    a.wait_for_log("Redis connected", WAIT);
    b.wait_for_log("Redis connected", WAIT);

    let took = cancel_on_a_seen_by_b(&nodes);
    eprintln!(
        "cancel on A seen by B's job watch after {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "through Redis: {took:?}");

    redis.stop();
    let key = nodes.admin();
    a.panel(
        &key,
        &["site", "create", "down.example", "--type", "static"],
    )
    .expect(0);
    let listed = b.ssh_json(&key, &["site", "list"]);
    assert!(
        domains(&listed).contains(&"down.example".to_owned()),
        "{listed}"
    );
    let took = cancel_on_a_seen_by_b(&nodes);
    eprintln!(
        "with Redis down: B's watch ended {} ms after the cancel (its own poll)",
        took.as_millis()
    );
    a.wait_for_log("Redis unreachable", WAIT);

    redis.restart();
    // A noticed (its publishes failed); B, which published nothing, need not have. B's
    // subscription is remade on its own backoff (at most 2 s after Redis came back).
    a.wait_for_log("Redis reachable again", WAIT);
    let deadline = Instant::now() + WAIT;
    loop {
        let took = cancel_on_a_seen_by_b(&nodes);
        if took < Duration::from_secs(1) {
            eprintln!("after Redis came back: {} ms", took.as_millis());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events never went through Redis again\n{}",
            b.log()
        );
    }
}
