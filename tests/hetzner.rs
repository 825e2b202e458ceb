//! The Hetzner Cloud client against the local stand-in of the API (`support::hetzner_api`):
//! the server lifecycle, paginated listings, each error family and its exit code, retries after
//! a rate limit, and the token never showing in errors, `Debug` or the log.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::hetzner_api::{HetznerApi, TOKEN};
use vipanel::error::Error;
use vipanel::provider::{
    Action, ActionStatus, CreateServer, HetznerClient, HetznerOptions, MetricsQuery, Provider,
    ServerStatus,
};

fn options(api: &HetznerApi, token: &str) -> HetznerOptions {
    HetznerOptions {
        endpoint: api.endpoint(),
        token: token.into(),
        max_retries: 3,
        max_retry_wait: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        backoff_base: Duration::from_millis(20),
        per_page: 2,
    }
}

fn provider(api: &HetznerApi) -> Arc<dyn Provider> {
    Arc::new(HetznerClient::new(options(api, TOKEN)).unwrap())
}

fn request(name: &str, server_type: &str) -> CreateServer {
    CreateServer {
        name: name.into(),
        server_type: server_type.into(),
        location: "fsn1".into(),
        image: "ubuntu-24.04".into(),
        ssh_keys: Vec::new(),
    }
}

/// Polls an action until it ends; the stand-in finishes one in two polls.
async fn wait(provider: &dyn Provider, action: Action) -> Action {
    let mut action = action;
    for _ in 0..10 {
        if action.is_done() {
            return action;
        }
        action = provider.action(action.id).await.unwrap();
    }
    panic!("action {} never ended", action.id);
}

fn exit(result: Result<impl std::fmt::Debug, Error>) -> (u8, String) {
    let err = result.unwrap_err();
    (err.kind.exit_code(), err.message)
}

#[tokio::test]
async fn a_server_is_created_listed_rebooted_resized_powered_and_deleted() {
    let api = HetznerApi::start();
    let hz = provider(&api);
    assert_eq!(hz.name(), "hetzner");

    let created = hz.create_server(&request("web1", "cx22")).await.unwrap();
    assert_eq!(created.server.status, ServerStatus::Initializing);
    assert_eq!(created.server.location, "fsn1");
    assert_eq!(created.server.server_type, "cx22");
    assert_eq!(created.action.command, "create_server");
    let password = created
        .root_password
        .clone()
        .expect("no SSH key: a root password");
    assert_eq!(password.expose(), "initial-root-pw");
    assert!(!format!("{created:?}").contains("initial-root-pw"));
    let id = created.server.id;

    let first = hz.action(created.action.id).await.unwrap();
    assert_eq!((first.status, first.progress), (ActionStatus::Running, 50));
    let done = wait(&*hz, first).await;
    assert_eq!((done.status, done.progress), (ActionStatus::Success, 100));
    assert!(done.finished.is_some());
    assert_eq!(hz.server(id).await.unwrap().status, ServerStatus::Running);

    // Five servers over pages of two: three requests, in order.
    api.seed_servers(&["db1", "db2", "mail1", "web2"]);
    let all = hz.servers().await.unwrap();
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web1", "db1", "db2", "mail1", "web2"]);
    let pages: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/servers")
        .map(|r| format!("{}/{}", r.query["page"], r.query["per_page"]))
        .collect();
    assert_eq!(pages, ["1/2", "2/2", "3/2"]);

    let reboot = hz.reboot(id).await.unwrap();
    assert_eq!(reboot.command, "reboot_server");
    wait(&*hz, reboot).await;

    let off = wait(&*hz, hz.power_off(id).await.unwrap()).await;
    assert_eq!(off.status, ActionStatus::Success);
    assert_eq!(hz.server(id).await.unwrap().status, ServerStatus::Off);

    wait(&*hz, hz.resize(id, "cx32").await.unwrap()).await;
    assert_eq!(hz.server(id).await.unwrap().server_type, "cx32");

    wait(&*hz, hz.power_on(id).await.unwrap()).await;
    assert_eq!(hz.server(id).await.unwrap().status, ServerStatus::Running);

    let deleted = hz.delete_server(id).await.unwrap();
    assert_eq!(deleted.command, "delete_server");
    assert_eq!(exit(hz.server(id).await).0, 3);

    let called: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        called,
        [
            "POST /servers".to_owned(),
            format!("POST /servers/{id}/actions/reboot"),
            format!("POST /servers/{id}/actions/poweroff"),
            format!("POST /servers/{id}/actions/change_type"),
            format!("POST /servers/{id}/actions/poweron"),
            format!("DELETE /servers/{id}"),
        ]
    );
    assert!(api.requests().iter().all(|r| r.authorized));
}

#[tokio::test]
async fn types_with_prices_locations_images_and_metrics() {
    let api = HetznerApi::start();
    let hz = provider(&api);
    let types = hz.server_types().await.unwrap();
    assert_eq!(types.len(), 5);
    let cx22 = types.iter().find(|t| t.name == "cx22").unwrap();
    assert_eq!((cx22.cores, cx22.memory_gb, cx22.disk_gb), (2, 4.0, 40));
    assert_eq!(cx22.prices.len(), 3);
    assert_eq!(cx22.prices[0].location, "fsn1");
    assert_eq!(cx22.prices[0].hourly_net, "0.0060");
    assert_eq!(hz.locations().await.unwrap().len(), 5);
    let images = hz.images().await.unwrap();
    assert_eq!(images.len(), 4);
    assert_eq!(images[0].name.as_deref(), Some("ubuntu-24.04"));
    assert_eq!(images[0].kind, "system");

    api.seed_servers(&["web1"]);
    let id = hz.servers().await.unwrap()[0].id;
    let query = MetricsQuery {
        start: "2026-11-27T10:00:00Z".parse().unwrap(),
        end: "2026-11-27T11:00:00Z".parse().unwrap(),
        step_secs: Some(60),
    };
    let metrics = hz.metrics(id, &query).await.unwrap();
    assert_eq!(metrics.step_secs, 60.0);
    for series in ["cpu", "disk.0.iops.read", "network.0.bandwidth.out"] {
        assert_eq!(metrics.series[series].len(), 3, "{series}");
    }
    assert_eq!(metrics.series["cpu"][0].value, 1.5);
    let asked = api.requests().pop().unwrap();
    assert_eq!(asked.path, format!("/servers/{id}/metrics"));
    assert_eq!(asked.query["type"], "cpu,disk,network");
    assert_eq!(asked.query["start"], "2026-11-27T10:00:00Z");
    assert_eq!(asked.query["step"], "60");

    let backwards = MetricsQuery {
        start: query.end,
        end: query.start,
        step_secs: None,
    };
    assert_eq!(exit(hz.metrics(id, &backwards).await).0, 5);
}

#[tokio::test]
async fn each_error_family_has_its_exit_code() {
    let api = HetznerApi::start();
    let hz = provider(&api);
    hz.create_server(&request("web1", "cx22")).await.unwrap();

    let (code, message) = exit(hz.create_server(&request("web2", "cx999")).await);
    assert_eq!(code, 5, "{message}");
    assert!(
        message.contains("server_type: unknown server type"),
        "{message}"
    );
    assert_eq!(exit(hz.server(999).await).0, 3);
    let (code, message) = exit(hz.create_server(&request("web1", "cx22")).await);
    assert_eq!(code, 4, "{message}");
    assert!(message.contains("uniqueness_error"), "{message}");

    for (status, code, expected) in [
        (423, "locked", 4),
        (403, "resource_limit_exceeded", 4),
        (403, "forbidden", 6),
        (503, "maintenance", 8),
        (500, "server_error", 8),
        (400, "json_error", 5),
    ] {
        api.fail_next(status, code);
        assert_eq!(exit(hz.reboot(1).await).0, expected, "{status} {code}");
    }

    let wrong = HetznerClient::new(options(&api, "not-the-token")).unwrap();
    let (code, message) = exit(wrong.servers().await);
    assert_eq!(code, 8);
    assert!(
        message.contains("refused the configured token"),
        "{message}"
    );
    assert!(!api.requests().last().unwrap().authorized);

    // Rate limited with no retries left: unavailable, and only one request was made.
    let mut no_retry = options(&api, TOKEN);
    no_retry.max_retries = 0;
    let impatient = HetznerClient::new(no_retry).unwrap();
    let before = api.requests().len();
    api.rate_limit_next(1);
    assert_eq!(exit(impatient.locations().await).0, 8);
    assert_eq!(api.requests().len(), before + 1);

    // Nothing listens: unavailable too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut gone = options(&api, TOKEN);
    gone.endpoint = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let (code, message) = exit(HetznerClient::new(gone).unwrap().locations().await);
    assert_eq!(code, 8, "{message}");
    assert!(
        message.contains("cannot reach the Hetzner API"),
        "{message}"
    );
}

#[tokio::test]
async fn rate_limits_conflicts_and_gateway_errors_are_retried() {
    let api = HetznerApi::start();
    let hz = provider(&api);

    // 429 with RateLimit-Reset = now + 1: the client waits for it, then succeeds. Its own
    // backoff (30 s) exceeds the wait budget (5 s), so only the header can explain the retry.
    let mut patient = options(&api, TOKEN);
    patient.backoff_base = Duration::from_secs(30);
    let patient = HetznerClient::new(patient).unwrap();
    api.rate_limit_next(1);
    assert_eq!(patient.locations().await.unwrap().len(), 5);
    let statuses: Vec<u16> = api.requests().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..], [429, 200, 200, 200]);

    // A conflict on a POST is retried; a 502 on a POST is not (it may have taken effect).
    let created = hz.create_server(&request("web1", "cx22")).await.unwrap();
    let id = created.server.id;
    api.fail_next(409, "conflict");
    hz.reboot(id).await.unwrap();
    api.fail_next(502, "bad_gateway");
    assert_eq!(exit(hz.reboot(id).await).0, 8);
    // A 504 on a GET is retried.
    api.fail_next(504, "timeout");
    hz.server(id).await.unwrap();

    // More failures than retries: the last error is returned after max_retries + 1 calls.
    let before = api.requests().len();
    for _ in 0..4 {
        api.fail_next(409, "conflict");
    }
    assert_eq!(exit(hz.reboot(id).await).0, 4);
    assert_eq!(api.requests().len(), before + 4);
}

/// A writer shared with the test: everything the subscriber formats lands in the buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_token_never_shows_in_errors_debug_or_the_log() {
    let api = HetznerApi::start();
    let secret = "hz-wrong-but-secret-9d8e7f";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut shown = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            for token in [secret, TOKEN] {
                let client = HetznerClient::new(options(&api, token)).unwrap();
                shown.push(format!("{client:?}"));
                if token == TOKEN {
                    api.rate_limit_next(1);
                    api.fail_next(403, "forbidden");
                }
                let err = client.servers().await.unwrap_err();
                shown.push(format!("{err} {err:?}"));
                let err = client
                    .create_server(&request("x", "nope"))
                    .await
                    .unwrap_err();
                shown.push(format!("{err} {err:?}"));
            }
        })
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("Hetzner API call failed"), "{log}");
    assert!(log.contains("status=401"), "{log}");
    assert!(log.contains("retry later"), "{log}");
    for text in shown.iter().chain([&log]) {
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }
    assert!(shown[0].contains("***"), "{}", shown[0]);
}

/// The stand-in itself answers in the documented shapes: `meta.pagination` and the
/// rate-limit headers (checked with a bare HTTP client, not through ours).
#[test]
fn the_stand_in_speaks_the_documented_pagination_and_headers() {
    let api = HetznerApi::start();
    api.seed_servers(&["a", "b", "c", "d", "e"]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(format!("{}/servers?page=2&per_page=2", api.endpoint()))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    for header in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
        let value = response.headers().get(header).unwrap().to_str().unwrap();
        assert!(value.parse::<u64>().is_ok(), "{header}: {value}");
    }
    let body: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["servers"].as_array().unwrap().len(), 2);
    assert_eq!(
        body["meta"]["pagination"],
        serde_json::json!({"page": 2, "per_page": 2, "previous_page": 1, "next_page": 3,
                           "last_page": 3, "total_entries": 5})
    );

    let mut refused = agent
        .get(format!("{}/servers", api.endpoint()))
        .call()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let body: serde_json::Value =
        serde_json::from_str(&refused.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["error"]["message"].is_string() && body["error"]["details"].is_object());
}

#[test]
fn options_come_from_the_configuration() {
    let config = vipanel::config::HetznerConfig {
        token: "t".into(),
        endpoint: "http://127.0.0.1:9/v1/".into(),
        max_retries: 2,
        max_retry_wait_secs: 7,
        timeout_secs: 3,
        action_poll_ms: 500,
    };
    let options = HetznerOptions::from_config(&config);
    assert_eq!(options.endpoint, "http://127.0.0.1:9/v1");
    assert_eq!(options.max_retries, 2);
    assert_eq!(options.max_retry_wait, Duration::from_secs(7));
    assert_eq!(options.timeout, Duration::from_secs(3));
    assert_eq!(options.per_page, 50);
    let empty = vipanel::config::HetznerConfig::default();
    let err = HetznerClient::new(HetznerOptions::from_config(&empty)).unwrap_err();
    assert_eq!(err.kind.exit_code(), 5);
    assert!(err.message.contains("providers.hetzner.token"), "{err}");
}
