//! `server …` end to end: the real `vipanel serve` with `[providers.hetzner]` pointed at the
//! local stand-in of the Hetzner API (`support::hetzner_api`, on 127.0.0.1), driven over the
//! real OpenSSH client. Changes run as jobs in the daemon's worker pool; a daemon killed with
//! SIGKILL in the middle of a create leaves a job that the next daemon finishes without
//! ordering the server twice.
//!
//! Skips (with a printed reason) when the SSH tools are missing, unless
//! `VIPANEL_REQUIRE_SERVICES=1`.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::Daemon;
use support::hetzner_api::{HetznerApi, TOKEN};

fn config(api: &HetznerApi, extra: &str) -> String {
    format!(
        "[jobs]\npoll_interval_ms = 50\nlease_secs = 3\nbackoff_base_secs = 1\n\
         [audit]\nfollow_interval_ms = 50\n\
         [providers.hetzner]\nendpoint = \"{}\"\ntoken = \"{TOKEN}\"\naction_poll_ms = 100\n\
         max_retry_wait_secs = 5\n{extra}",
        api.endpoint()
    )
}

fn creates(api: &HetznerApi) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/servers")
        .count()
}

#[test]
fn servers_are_created_changed_and_deleted_through_jobs() {
    let api = HetznerApi::start();
    let Some(d) = Daemon::builder().config(&config(&api, "")).start() else {
        return;
    };
    let key = d.admin_key.clone();
    let op = d.user("acme", "oscar", "operator");
    let viewer = d.user("acme", "vera", "viewer");

    // --no-wait: the job, then `job watch` to its end.
    let job = d.ssh_json(
        &op,
        &[
            "server",
            "create",
            "web1",
            "--provider",
            "hetzner",
            "--type",
            "cx22",
            "--location",
            "fsn1",
            "--image",
            "ubuntu-24.04",
            "--no-wait",
        ],
    );
    assert_eq!(job["kind"], "server.create", "{job}");
    assert_eq!(job["tenant"], "acme", "{job}");
    let id = job["id"].as_i64().expect("a job id").to_string();
    let watched = d.panel(&op, &["job", "watch", &id, "-o", "json"]);
    watched.expect(0);
    assert_eq!(watched.json()["state"], "succeeded");
    assert!(watched.stderr.contains("creating"), "{}", watched.stderr);
    let shown = d.ssh_json(&viewer, &["server", "show", "web1"]);
    assert_eq!(shown["status"], "running", "{shown}");
    assert_eq!(shown["provider"], "hetzner");
    assert_eq!(shown["tenant"], "acme");
    assert!(shown["ipv4"].is_string(), "{shown}");

    // Waited: the command ends with the server, progress on stderr.
    let created = d.panel(
        &op,
        &[
            "server",
            "create",
            "web2",
            "--provider",
            "hetzner",
            "--type",
            "cx22",
            "--location",
            "nbg1",
            "--image",
            "debian-12",
            "-o",
            "json",
        ],
    );
    created.expect(0);
    let web2 = created.json();
    assert_eq!(web2["name"], "web2");
    assert_eq!(web2["status"], "running", "{web2}");
    assert!(created.stderr.contains("succeeded"), "{}", created.stderr);
    let listed = d.ssh_json(&viewer, &["server", "list"]);
    let names: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"web1") && names.contains(&"web2"),
        "{listed}"
    );

    // A viewer reads but does not change; a name taken is a conflict.
    d.panel(&viewer, &["server", "reboot", "web2"]).expect(6);
    d.panel(
        &op,
        &[
            "server",
            "create",
            "web2",
            "--provider",
            "hetzner",
            "--type",
            "cx22",
            "--location",
            "nbg1",
            "--image",
            "debian-12",
        ],
    )
    .expect(4);

    let rebooted = d.ssh_json(&op, &["server", "reboot", "web2"]);
    assert_eq!(rebooted["status"], "running", "{rebooted}");
    // Resize asks first; without a terminal --yes is needed.
    d.panel(&op, &["server", "resize", "web2", "cx32"])
        .expect(2);
    let resized = d.ssh_json(&op, &["server", "resize", "web2", "cx32", "--yes"]);
    assert_eq!(resized["type"], "cx32", "{resized}");
    assert_eq!(resized["status"], "running", "powered on again: {resized}");
    let off = d.ssh_json(&op, &["server", "power", "web2", "off"]);
    assert_eq!(off["status"], "off", "{off}");
    let on = d.ssh_json(&op, &["server", "power", "web2", "on"]);
    assert_eq!(on["status"], "running", "{on}");
    d.panel(&op, &["server", "delete", "web2"]).expect(2);
    let deleted = d.ssh_json(&op, &["server", "delete", "web2", "--yes"]);
    assert_eq!(deleted["deleted"], "web2", "{deleted}");
    d.panel(&op, &["server", "show", "web2"]).expect(3);
    let left: Vec<Value> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| Value::String(r.path))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");

    // The provider's errors keep their exit codes through a command (422 → 5).
    api.fail_next(422, "invalid_input");
    d.panel(&op, &["server", "types"]).expect(5);
    let types = d.ssh_json(&viewer, &["server", "types"]);
    assert!(types.as_array().is_some_and(|t| !t.is_empty()), "{types}");
    let locations = d.ssh_json(&viewer, &["server", "locations"]);
    assert!(locations.as_array().is_some_and(|l| !l.is_empty()));
    let images = d.ssh_json(&viewer, &["server", "images", "--provider", "hetzner"]);
    assert!(images.as_array().is_some_and(|i| !i.is_empty()));
    // Unknown providers name the configured ones; the panel host refuses changes.
    let unknown = d.panel(&op, &["server", "types", "--provider", "aws"]);
    unknown.expect(5);
    assert!(
        unknown.stderr.contains("local, hetzner"),
        "{}",
        unknown.stderr
    );
    let local = d.panel(&key, &["server", "power", "local", "off"]);
    local.expect(5);
    assert!(local.stderr.contains("panel host"), "{}", local.stderr);

    // The token is in no log line and no audit row.
    let audit = d.panel(&key, &["audit", "list", "--limit", "10000", "-o", "json"]);
    audit.expect(0);
    assert!(
        audit.stdout.contains("server.create"),
        "the changes are audited"
    );
    assert!(
        audit
            .stdout
            .contains("provider=hetzner type=cx22 location=fsn1")
    );
    assert!(
        !audit.stdout.contains(TOKEN),
        "the token is in the audit trail"
    );
    assert!(!d.log().contains(TOKEN), "the token is in the daemon's log");
    assert!(api.requests().iter().all(|r| r.authorized));
}

#[test]
fn a_create_interrupted_by_kill_9_orders_the_server_once() {
    let api = HetznerApi::start();
    api.action_duration(Duration::from_secs(6));
    let Some(mut first) = Daemon::builder().config(&config(&api, "")).start() else {
        return;
    };
    let key = first.admin_key.clone();
    let job = first.ssh_json(
        &key,
        &[
            "server",
            "create",
            "slow1",
            "--provider",
            "hetzner",
            "--type",
            "cx22",
            "--location",
            "fsn1",
            "--image",
            "ubuntu-24.04",
            "--no-wait",
        ],
    );
    let id = job["id"].as_i64().expect("a job id").to_string();
    // Running, and the order has reached the provider: the daemon dies mid-job.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = first.ssh_json(&key, &["job", "show", &id]);
        if shown["state"] == "running" && creates(&api) == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the job never ran: {shown}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = libc::pid_t::try_from(first.pid()).expect("pid fits pid_t");
    // SAFETY: kill(2) with the pid of the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let status = first.wait_exit(Duration::from_secs(10));
    assert!(!status.success());

    let db_url = format!("sqlite://{}", first.db_path().display());
    let config = format!("database_url = \"{db_url}\"\n{}", config(&api, ""));
    let Some(second) = Daemon::builder().config(&config).start() else {
        return;
    };
    let watched = second.panel(&key, &["job", "watch", &id, "-o", "json"]);
    watched.expect(0);
    let done = watched.json();
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(done["attempts"].as_i64() >= Some(2), "{done}");
    assert_eq!(creates(&api), 1, "ordered once: {:?}", api.requests());
    let shown = second.ssh_json(&key, &["server", "show", "slow1"]);
    assert_eq!(shown["status"], "running", "{shown}");
    assert!(shown["ipv4"].is_string(), "{shown}");
}

#[test]
fn cloud_servers_are_refreshed_and_their_metrics_stored_by_the_daemon() {
    let api = HetznerApi::start();
    let extra = "[metrics]\ncloud_interval_secs = 1\n";
    let Some(d) = Daemon::builder().config(&config(&api, extra)).start() else {
        return;
    };
    let key = d.admin_key.clone();
    let created = d.panel(
        &key,
        &[
            "server",
            "create",
            "web1",
            "--provider",
            "hetzner",
            "--type",
            "cx22",
            "--location",
            "fsn1",
            "--image",
            "ubuntu-24.04",
            "-o",
            "json",
        ],
    );
    created.expect(0);
    assert_eq!(created.json()["status"], "running");

    // The provider's samples arrive without anyone asking: CPU and network, nothing else.
    let deadline = Instant::now() + Duration::from_secs(30);
    let points = loop {
        let points = d.ssh_json(&key, &["metrics", "web1", "--since", "5m"]);
        let got = points.as_array().expect("a list of points");
        if got.iter().any(|p| p["cpu_pct"].is_number()) {
            break points;
        }
        assert!(Instant::now() < deadline, "no metrics from the provider");
        std::thread::sleep(Duration::from_millis(200));
    };
    let point = points
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["cpu_pct"].is_number())
        .unwrap();
    assert_eq!(point["resolution"], "raw", "{point}");
    assert!(point["net_rx_bytes_per_s"].is_number(), "{point}");
    assert!(point["net_tx_bytes_per_s"].is_number(), "{point}");
    assert!(point["mem_used_bytes"].is_null(), "{point}");
    assert!(point["load1"].is_null(), "{point}");
    assert!(
        api.requests()
            .iter()
            .any(|r| r.path.ends_with("/metrics") && r.query.contains_key("start")),
        "{:?}",
        api.requests()
    );

    // A provider error is logged (never the token) and the loop goes on. Powered off at the
    // provider: `server list` follows without a `server show`.
    api.fail_next(500, "server_error");
    assert!(api.set_server_status("web1", "off"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = d.ssh_json(&key, &["server", "list"]);
        let web1 = listed
            .as_array()
            .expect("a list")
            .iter()
            .find(|s| s["name"] == "web1")
            .cloned()
            .expect("web1 listed");
        if web1["status"] == "off" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the status never followed: {web1}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let log = d.log();
    assert!(
        log.contains("from its provider"),
        "the failure is logged:\n{log}"
    );
    assert!(!log.contains(TOKEN), "the token is never logged");

    // The daemon enqueued the roll-up of the current period at start; a worker ran it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = d.ssh_json(&key, &["job", "list", "--kind", "metrics.rollup"]);
        let jobs = jobs.as_array().expect("a list").clone();
        if jobs.iter().any(|j| j["state"] == "succeeded") {
            assert!(jobs.iter().all(|j| j["tenant"].is_null()), "{jobs:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no metrics.rollup job ran: {jobs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
