//! Jobs end to end: the real `vipanel serve` (sandbox host mode, the default) runs a queued
//! `host reconcile --no-wait` in its worker pool, followed over the real OpenSSH client with
//! `job watch`; a SIGTERM with the pool idle stops the daemon cleanly.
//!
//! Skips (with a printed reason) when the SSH tools are missing, unless
//! `VIPANEL_REQUIRE_SERVICES=1`.

mod support;

use std::time::Duration;
use support::Daemon;

const FAST: &str =
    "[jobs]\npoll_interval_ms = 50\nlease_secs = 3\n[audit]\nfollow_interval_ms = 50\n";

#[test]
fn a_queued_reconcile_runs_and_is_watched_to_its_end() {
    let Some(mut d) = Daemon::builder().config(FAST).start() else {
        return;
    };
    let key = d.admin_key.clone();
    let job = d.ssh_json(&key, &["host", "reconcile", "--no-wait"]);
    assert_eq!(job["kind"], "host.reconcile");
    assert_eq!(job["tenant"], serde_json::Value::Null, "a platform job");
    let id = job["id"].as_i64().expect("a job id").to_string();

    let watched = d.panel(&key, &["job", "watch", &id, "-o", "json"]);
    watched.expect(0);
    let done = watched.json();
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["progress"], 100);
    assert!(
        done["result"]["sites"].is_number(),
        "the reconcile report: {done}"
    );
    assert!(
        watched.stderr.contains(&format!("job {id} succeeded")),
        "progress lines on stderr: {}",
        watched.stderr
    );

    let listed = d.ssh_json(&key, &["job", "list", "--kind", "host.reconcile"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // Plain form: the id alone, for scripts.
    let plain = d.panel(&key, &["host", "reconcile", "--no-wait"]);
    plain.expect(0);
    let second = plain.stdout.trim().to_owned();
    assert!(second.parse::<i64>().is_ok(), "{}", plain.stdout);
    d.panel(&key, &["job", "watch", &second]).expect(0);
    // The synchronous form is unchanged.
    let report = d.ssh_json(&key, &["host", "reconcile"]);
    assert!(report["sites"].is_number(), "{report}");

    d.terminate();
    let status = d.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", d.log());
}

/// A daemon killed with SIGKILL while a job ran leaves it `running` with a lease nobody renews;
/// the next daemon on the same database queues it again at start and runs it. The job is made
/// "running on a dead worker" by hand (no built-in kind runs long enough to kill the daemon
/// mid-way reliably), after a real `kill -9` of the first daemon.
#[test]
fn a_job_of_a_killed_daemon_runs_again_in_the_next_one() {
    let Some(mut first) = Daemon::builder().config("[jobs]\nworkers = 0\n").start() else {
        return;
    };
    let key = first.admin_key.clone();
    let job = first.ssh_json(&key, &["host", "reconcile", "--no-wait"]);
    assert_eq!(job["state"], "queued", "no workers here: {job}");
    let id = job["id"].as_i64().expect("a job id");
    let pid = libc::pid_t::try_from(first.pid()).expect("pid fits pid_t");
    // SAFETY: kill(2) with the pid of the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let status = first.wait_exit(Duration::from_secs(10));
    assert!(!status.success());

    let db_url = format!("sqlite://{}", first.db_path().display());
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let db = vipanel::store::Db::connect(&vipanel::store::ConnectOptions {
            url: db_url.clone(),
            pool_size: 1,
            busy_timeout: Duration::from_secs(5),
        })
        .await
        .expect("open the first daemon's database");
        let vipanel::store::Db::Sqlite(pool) = &db else {
            unreachable!("a sqlite URL")
        };
        sqlx::query(
            "UPDATE jobs SET state = 'running', attempts = 1, worker = 'dead-node-1-0',
             lease_until = '2000-01-01T00:00:00+00:00' WHERE id = $1",
        )
        .bind(id)
        .execute(pool)
        .await
        .expect("mark the job as left running");
        db.close().await;
    });

    let config = format!("database_url = \"{db_url}\"\n{FAST}");
    let Some(second) = Daemon::builder().config(&config).start() else {
        return;
    };
    let watched = second.panel(&key, &["job", "watch", &id.to_string(), "-o", "json"]);
    watched.expect(0);
    let done = watched.json();
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "the killed attempt counted: {done}");
    assert!(
        second.log().contains("lease expired"),
        "the reaper says what it did:\n{}",
        second.log()
    );
}
