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
