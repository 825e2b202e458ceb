//! A local stand-in for the Hetzner Cloud API v1, for tests only: an HTTP/1.1 server on
//! 127.0.0.1 (one std thread per connection, `Connection: close`) speaking the documented
//! paths and JSON shapes.
//!
//! What it models: servers (`initializing` → `running` once the create action ends, `off` /
//! `running` after power actions, a new type after `change_type`); actions whose `progress`
//! advances by 50 on each `GET /actions/{id}` until `success`; listings paginated by
//! `page`/`per_page` with `meta.pagination`; `RateLimit-Limit/Remaining/Reset` on every answer;
//! errors as `{"error": {"code", "message", "details"}}`; 401 for any token but [`TOKEN`];
//! `GET /servers/{id}/metrics` with up to three samples per series, `step` apart (default 60),
//! the last at `end` and none before `start`.
//! Knobs: [`HetznerApi::rate_limit_next`] (the next N requests get 429 with
//! `RateLimit-Reset` = now + 1), [`HetznerApi::fail_next`] (any status and code) and
//! [`HetznerApi::action_duration`] (actions take a time instead of polls, and end by
//! themselves like real ones: their effect lands when due, whoever asks).
//! [`HetznerApi::set_server_status`] changes a server as if from the provider's console.
//! [`HetznerApi::requests`] is the log of what was called (never the token).

use super::hetzner_catalogue::{images, locations, server_json, server_types};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The only token the stand-in accepts.
pub const TOKEN: &str = "hz-test-token-7f3a9c";
const RATE_LIMIT: u32 = 3600;

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    /// Without the `/v1` prefix and without the query.
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub authorized: bool,
    pub status: u16,
}

#[derive(Default)]
struct State {
    servers: BTreeMap<u64, Value>,
    actions: BTreeMap<u64, Value>,
    /// What a running action does to its server when it ends: (server id, field, value).
    effects: BTreeMap<u64, (u64, &'static str, Value)>,
    next_id: u64,
    rate_limited: u32,
    failures: VecDeque<(u16, String)>,
    remaining: u32,
    log: Vec<Logged>,
    /// `Some`: actions end this long after they start (progress by time), not after 2 polls.
    action_duration: Option<Duration>,
    started: BTreeMap<u64, Instant>,
}

/// The running stand-in; stops when dropped.
pub struct HetznerApi {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HetznerApi {
    pub fn start() -> HetznerApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Hetzner stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        let state = Arc::new(Mutex::new(State {
            next_id: 1,
            remaining: RATE_LIMIT,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || serve_connection(stream, &state));
                }
            })
        };
        HetznerApi {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The base URL to give the client, like `http://127.0.0.1:PORT/v1`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The next `n` requests get 429 `rate_limit_exceeded` with `RateLimit-Reset` = now + 1.
    pub fn rate_limit_next(&self, n: u32) {
        self.lock().rate_limited = n;
    }

    /// The next request gets this status and error code (queued: call again for more).
    pub fn fail_next(&self, status: u16, code: &str) {
        self.lock().failures.push_back((status, code.to_owned()));
    }

    /// From now on, actions take `duration` (progress by elapsed time) and end by themselves.
    pub fn action_duration(&self, duration: Duration) {
        self.lock().action_duration = Some(duration);
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    /// Adds servers directly (running, `cx22` in `fsn1`), as if created earlier.
    pub fn seed_servers(&self, names: &[&str]) {
        let mut state = self.lock();
        for name in names {
            let id = state.take_id();
            let server = server_json(id, name, "cx22", "fsn1", "ubuntu-24.04", "running");
            state.servers.insert(id, server);
        }
    }

    /// Sets a server's status as if it changed by itself (powered off from the provider's own
    /// console, say). Returns whether a server of that name exists.
    pub fn set_server_status(&self, name: &str, status: &str) -> bool {
        let mut state = self.lock();
        match state.servers.values_mut().find(|s| s["name"] == name) {
            Some(server) => {
                server["status"] = json!(status);
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for HetznerApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl State {
    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A new running action on a server; `effect` is applied to the server when it succeeds.
    fn start_action(&mut self, command: &str, server: u64, effect: (&'static str, Value)) -> Value {
        let id = self.take_id();
        let action = json!({
            "id": id, "command": command, "status": "running", "progress": 0,
            "started": now_rfc3339(), "finished": null,
            "resources": [{"id": server, "type": "server"}], "error": null,
        });
        self.actions.insert(id, action.clone());
        self.effects.insert(id, (server, effect.0, effect.1));
        self.started.insert(id, Instant::now());
        action
    }

    /// With [`HetznerApi::action_duration`]: ends every action whose time has come and sets
    /// the progress of the others.
    fn settle(&mut self) {
        let Some(duration) = self.action_duration else {
            return;
        };
        let running: Vec<u64> = self
            .actions
            .iter()
            .filter(|(_, a)| a["status"] == "running")
            .map(|(id, _)| *id)
            .collect();
        for id in running {
            let elapsed = self.started.get(&id).map_or(duration, Instant::elapsed);
            let progress = (elapsed.as_millis() * 100 / duration.as_millis().max(1)).min(100);
            if progress >= 100 {
                self.finish_action(id);
            } else if let Some(action) = self.actions.get_mut(&id) {
                action["progress"] = json!(progress);
            }
        }
    }

    fn finish_action(&mut self, id: u64) {
        let Some(action) = self.actions.get_mut(&id) else {
            return;
        };
        action["progress"] = json!(100);
        action["status"] = json!("success");
        action["finished"] = json!(now_rfc3339());
        if let Some((server, field, value)) = self.effects.remove(&id)
            && let Some(server) = self.servers.get_mut(&server)
        {
            server[field] = value;
        }
    }

    /// A poll: progress +50; at 100 the action succeeds and its effect lands.
    fn poll_action(&mut self, id: u64) -> Option<Value> {
        if self.action_duration.is_some() {
            self.settle();
            return self.actions.get(&id).cloned();
        }
        let action = self.actions.get_mut(&id)?;
        if action["status"] == "running" {
            let progress = action["progress"].as_u64().unwrap_or(0) + 50;
            action["progress"] = json!(progress.min(100));
            if progress >= 100 {
                self.finish_action(id);
            }
        }
        self.actions.get(&id).cloned()
    }
}

fn serve_connection(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), parse_query(query)),
        None => (target.clone(), BTreeMap::new()),
    };
    let path = path.strip_prefix("/v1").unwrap_or(&path).to_owned();
    let authorized = headers.get("authorization").map(String::as_str)
        == Some(format!("Bearer {TOKEN}").as_str());

    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let now = unix_now();
    let (status, reply, reset) = if !authorized {
        let e = error(401, "unauthorized", "unable to authenticate");
        (e.0, e.1, now + 60)
    } else if state.rate_limited > 0 {
        state.rate_limited -= 1;
        state.remaining = 0;
        let e = error(
            429,
            "rate_limit_exceeded",
            "limit of 3600 requests per hour reached",
        );
        (e.0, e.1, now + 1)
    } else if let Some((status, code)) = state.failures.pop_front() {
        let e = error(status, &code, &format!("simulated {code}"));
        (e.0, e.1, now + 60)
    } else {
        state.remaining = state.remaining.saturating_sub(1).max(1);
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        state.settle();
        let (status, reply) = route(&mut state, &method, &path, &query, &body);
        (status, reply, now + 60)
    };
    state.log.push(Logged {
        method,
        path,
        query,
        authorized,
        status,
    });
    let remaining = state.remaining;
    drop(state);

    let text = reply.to_string();
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\nRateLimit-Limit: {RATE_LIMIT}\r\nRateLimit-Remaining: {remaining}\r\n\
         RateLimit-Reset: {reset}\r\n\r\n{text}",
        reason(status),
        text.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

fn route(
    state: &mut State,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> (u16, Value) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["servers"]) => {
            let all: Vec<Value> = state.servers.values().cloned().collect();
            paginate("servers", &all, query)
        }
        ("POST", ["servers"]) => create_server(state, body),
        ("GET", ["server_types"]) => paginate("server_types", &server_types(), query),
        ("GET", ["locations"]) => paginate("locations", &locations(), query),
        ("GET", ["images"]) => paginate("images", &images(), query),
        ("GET", ["actions", id]) => match id.parse().ok().and_then(|id| state.poll_action(id)) {
            Some(action) => (200, json!({"action": action})),
            None => error(404, "not_found", "action not found"),
        },
        (_, ["servers", id, rest @ ..]) => {
            let Some(id) = id
                .parse::<u64>()
                .ok()
                .filter(|id| state.servers.contains_key(id))
            else {
                return error(404, "not_found", "server not found");
            };
            server_route(state, method, id, rest, query, body)
        }
        _ => error(404, "not_found", "no such route"),
    }
}

fn server_route(
    state: &mut State,
    method: &str,
    id: u64,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    body: &Value,
) -> (u16, Value) {
    let (command, effect) = match (method, rest) {
        ("GET", []) => return (200, json!({"server": state.servers[&id]})),
        ("DELETE", []) => {
            state.servers.remove(&id);
            let action = state.start_action("delete_server", id, ("status", json!("deleting")));
            return (200, json!({"action": action}));
        }
        ("GET", ["metrics"]) => return metrics(query),
        ("POST", ["actions", "reboot"]) => ("reboot_server", ("status", json!("running"))),
        ("POST", ["actions", "poweron"]) => ("start_server", ("status", json!("running"))),
        ("POST", ["actions", "poweroff"]) => ("stop_server", ("status", json!("off"))),
        ("POST", ["actions", "change_type"]) => {
            let Some(name) = body["server_type"].as_str() else {
                return invalid_field("server_type", "is required");
            };
            let Some(kind) = server_types().into_iter().find(|t| t["name"] == name) else {
                return invalid_field("server_type", "unknown server type");
            };
            ("change_server_type", ("server_type", kind))
        }
        _ => return error(404, "not_found", "no such route"),
    };
    let action = state.start_action(command, id, effect);
    (201, json!({"action": action}))
}

fn create_server(state: &mut State, body: &Value) -> (u16, Value) {
    let field = |name: &str| body[name].as_str().filter(|s| !s.is_empty());
    let Some(name) = field("name") else {
        return invalid_field("name", "is required");
    };
    if state.servers.values().any(|s| s["name"] == name) {
        return (
            409,
            json!({"error": {"code": "uniqueness_error", "message": "server name is already used",
                   "details": {"fields": [{"name": "name"}]}}}),
        );
    }
    let (Some(kind), Some(location), Some(image)) =
        (field("server_type"), field("location"), field("image"))
    else {
        return invalid_field(
            "server_type",
            "server_type, location and image are required",
        );
    };
    if !server_types().iter().any(|t| t["name"] == kind) {
        return invalid_field("server_type", "unknown server type");
    }
    if !locations().iter().any(|l| l["name"] == location) {
        return invalid_field("location", "unknown location");
    }
    let id = state.take_id();
    let server = server_json(id, name, kind, location, image, "initializing");
    state.servers.insert(id, server.clone());
    let action = state.start_action("create_server", id, ("status", json!("running")));
    let password = body["ssh_keys"]
        .as_array()
        .is_none_or(|keys| keys.is_empty())
        .then_some("initial-root-pw");
    (
        201,
        json!({"server": server, "action": action, "next_actions": [], "root_password": password}),
    )
}

fn metrics(query: &BTreeMap<String, String>) -> (u16, Value) {
    let (Some(types), Some(start), Some(end)) =
        (query.get("type"), query.get("start"), query.get("end"))
    else {
        return invalid_field("type", "type, start and end are required");
    };
    let step: u64 = query.get("step").and_then(|s| s.parse().ok()).unwrap_or(60);
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.timestamp())
    };
    let (Some(from), Some(to)) = (parse(start), parse(end)) else {
        return invalid_field("start", "start and end must be RFC 3339 times");
    };
    // Up to three samples, `step` apart, the last one at `end`, none before `start`.
    let times: Vec<i64> = (0..3)
        .map(|i| to - (2 - i) * step as i64)
        .filter(|t| *t >= from)
        .collect();
    let mut series = serde_json::Map::new();
    for kind in types.split(',') {
        let names: &[&str] = match kind {
            "cpu" => &["cpu"],
            "disk" => &[
                "disk.0.iops.read",
                "disk.0.iops.write",
                "disk.0.bandwidth.read",
                "disk.0.bandwidth.write",
            ],
            "network" => &[
                "network.0.pps.in",
                "network.0.pps.out",
                "network.0.bandwidth.in",
                "network.0.bandwidth.out",
            ],
            _ => return invalid_field("type", "unknown metric type"),
        };
        for name in names {
            let values: Vec<Value> = times
                .iter()
                .enumerate()
                .map(|(i, t)| json!([*t as f64, format!("{}.5", i + 1)]))
                .collect();
            series.insert((*name).to_owned(), json!({"values": values}));
        }
    }
    (
        200,
        json!({"metrics": {"start": start, "end": end, "step": step, "time_series": series}}),
    )
}

fn paginate(key: &str, all: &[Value], query: &BTreeMap<String, String>) -> (u16, Value) {
    let number = |name: &str, default: usize| {
        query
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let (page, per_page) = (number("page", 1), number("per_page", 25).min(50));
    let last = all.len().div_ceil(per_page).max(1);
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let pagination = json!({
        "page": page, "per_page": per_page,
        "previous_page": if page > 1 { json!(page - 1) } else { Value::Null },
        "next_page": if page < last { json!(page + 1) } else { Value::Null },
        "last_page": last, "total_entries": all.len(),
    });
    (200, json!({key: items, "meta": {"pagination": pagination}}))
}

fn error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"code": code, "message": message, "details": {}}}),
    )
}

fn invalid_field(field: &str, message: &str) -> (u16, Value) {
    (
        400,
        json!({"error": {"code": "invalid_input", "message": "invalid input in field",
               "details": {"fields": [{"name": field, "messages": [message]}]}}}),
    )
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":").replace("%2C", ",")))
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        423 => "Locked",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}
