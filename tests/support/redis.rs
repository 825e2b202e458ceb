//! Redis for the tests: the one `.ci/run` starts (`VIPANEL_TEST_REDIS_URL`), or a private
//! `redis-server` a test starts, stops and restarts itself (to take Redis away mid-run).
//!
//! Both skip (printing why) when unavailable, unless `VIPANEL_REQUIRE_SERVICES=1`. Tests sharing
//! the CI Redis keep apart by a key prefix of their own ([`key_prefix`]).

use super::require;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `VIPANEL_TEST_REDIS_URL`, or `None` (a skip) when it is unset.
pub fn test_redis_url() -> Option<String> {
    match std::env::var("VIPANEL_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            require::cannot_run("this test needs Redis: VIPANEL_TEST_REDIS_URL is not set");
            None
        }
    }
}

/// A `redis_key_prefix` no other test (or test process) uses.
pub fn key_prefix() -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    format!(
        "vipanel-t{}-{}:",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// `HOST:PORT` of a `redis://HOST:PORT/…` URL without a password (the tests' own).
fn address(url: &str) -> String {
    let rest = url.strip_prefix("redis://").unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

fn encode(words: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        out.extend_from_slice(format!("${}\r\n{word}\r\n", word.len()).as_bytes());
    }
    out
}

/// Sends one command to the Redis at `url` and returns the first line of its reply
/// (`+PONG`, `:1`, `$5`, …), or `None` when it cannot be reached.
pub fn command(url: &str, words: &[&str]) -> Option<String> {
    let mut stream = TcpStream::connect(address(url)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(&encode(words)).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    Some(line.trim_end().to_owned())
}

/// Waits until the Redis at `url` holds `key` (another process writes it in the background).
pub fn wait_for_key(url: &str, key: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while command(url, &["EXISTS", key]).as_deref() != Some(":1") {
        assert!(
            Instant::now() < deadline,
            "Redis at {url} never got the key {key}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `redis-server` of the test's own on 127.0.0.1 (no persistence, own temp dir), killed on
/// drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one on a free port, or `None` (a skip) when `redis-server` is not installed.
    pub fn start() -> Option<RedisServer> {
        if !require::programs_available(
            &[("redis-server", "--version")],
            "this test",
            "apt-get install redis-server",
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("vipanel-redis-")
            .tempdir()
            .expect("temp dir");
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
        };
        for _ in 0..5 {
            server.port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Starts the server on its port; true once it answers PING.
    fn spawn(&mut self) -> bool {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).expect("log file");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--dir",
            ])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if command(&self.url(), &["PING"]).as_deref() == Some("+PONG") {
                return true;
            }
            if let Some(child) = self.child.as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: a Redis that hangs, its port still
    /// accepting connections.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().expect("redis-server runs").id();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Kills the server (like a crash: no goodbye to its clients) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing is persisted).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The port may linger a moment after the kill.
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a frozen server too.
        self.stop();
    }
}
