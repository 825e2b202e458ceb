//! End-to-end harness: a real `vipanel serve` on port 0 with a temporary data dir, driven by the
//! real OpenSSH client.
//!
//! Every test starts its own [`Daemon`] (own port, own data dir, own keys), so nothing leaks
//! between tests and they may run in parallel. The daemon is killed when the value is dropped.
//!
//! When `ssh` or `ssh-keygen` is missing, [`Daemon::start`] prints why and returns `None` so the
//! test can return early (a skip), unless `VIPANEL_REQUIRE_SERVICES=1`, where it panics.

// Shared by several test binaries over time; not every binary uses every helper.
#![allow(dead_code)]

pub mod hetzner_api;
mod hetzner_catalogue;
pub mod host;
pub mod redis;
mod require;
pub mod tmux;

use serde_json::Value;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the daemon may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one client command (ssh, `vipanel admin`, ssh-keygen) may take before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The login name meaning "whoever owns the key".
pub const PANEL: &str = "panel";

/// Whether the external programs the end-to-end tests drive are installed.
/// Missing ones: panic under `VIPANEL_REQUIRE_SERVICES=1`, else print the reason and say no.
pub fn tools_available() -> bool {
    require::programs_available(
        &[("ssh", "-V"), ("ssh-keygen", "-?")],
        "end-to-end SSH test",
        "apt-get install openssh-client",
    )
}

/// Whether a program is on PATH (for optional parts of a test, like the `sftp` client).
pub fn program_exists(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// An ed25519 key pair made with `ssh-keygen`.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub private: PathBuf,
    pub public: PathBuf,
}

impl Key {
    /// The `ssh-ed25519 AAAA… comment` line.
    pub fn public_line(&self) -> String {
        std::fs::read_to_string(&self.public)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.public.display()))
            .trim()
            .to_owned()
    }

    /// The `.pub` file's bytes (what `ssh … key add < KEY.pub` sends).
    pub fn public_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.public)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.public.display()))
    }

    /// The `SHA256:…` fingerprint, as `ssh-keygen -l` computes it.
    pub fn fingerprint(&self) -> String {
        let out = run_bounded(
            Command::new("ssh-keygen")
                .args(["-l", "-E", "sha256", "-f"])
                .arg(&self.public),
            None,
            "ssh-keygen -l",
        );
        out.expect(0);
        out.stdout
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no fingerprint in {:?}", out.stdout))
            .to_owned()
    }
}

/// What a client command printed and how it exited.
#[derive(Debug, Clone)]
pub struct Run {
    /// What ran, for failure messages.
    pub what: String,
    /// The exit code; -1 when killed by a signal (or by the harness timeout).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing the command and both outputs when it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "`{}` exited {} (expected {code})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}`: stdout is not JSON ({e})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.what, self.stdout, self.stderr
            )
        })
    }

    /// Stderr parsed as JSON (the `-o json` error object).
    #[track_caller]
    pub fn stderr_json(&self) -> Value {
        serde_json::from_str(&self.stderr).unwrap_or_else(|e| {
            panic!(
                "`{}`: stderr is not JSON ({e})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.what, self.stdout, self.stderr
            )
        })
    }
}

/// Quotes command words for the remote side: OpenSSH joins its arguments with spaces and the
/// server splits the line again like a shell, so each word is shell-quoted first.
pub fn remote_line(words: &[&str]) -> String {
    shell_words::join(words)
}

/// The OpenSSH client options every test connection uses (also for `sftp`): this key only, no
/// agent, no host-key prompts, no password prompts, quiet.
pub const CLIENT_OPTIONS: [&str; 12] = [
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
];

/// Extra settings for a daemon.
///
/// Every daemon starts with `VIPANEL_AUTH__TOTP=off` and `VIPANEL_PENALTIES__ENABLED=false`:
/// tests log in with the bootstrap key and many deliberately fail logins from 127.0.0.1, which
/// per-source penalties would lock out. Health checks are off too
/// (`VIPANEL_HEALTH__INTERVAL_SECS=0`): the Hetzner stand-in hands out documentation addresses,
/// which a test must not connect to; a test of health checks sets the variable itself. A test of penalties calls [`DaemonBuilder::penalties`]
/// (setting `penalties.enabled` in a `.config(..)` file alone is not enough: the environment
/// wins over the file).
#[derive(Debug, Default, Clone)]
pub struct DaemonBuilder {
    env: Vec<(String, String)>,
    config: Option<String>,
    penalties: bool,
}

impl DaemonBuilder {
    /// Keeps per-source penalties on, as in production (the harness turns them off otherwise).
    pub fn penalties(mut self) -> Self {
        self.penalties = true;
        self
    }

    /// Sets an environment variable of the daemon (e.g. `VIPANEL_LIMITS__SHUTDOWN_GRACE_SECS`).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// A TOML configuration file for the daemon (passed with `--config`).
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.into());
        self
    }

    /// Starts the daemon, or `None` (after printing why) when the SSH tools are missing.
    pub fn start(self) -> Option<Daemon> {
        if !tools_available() {
            return None;
        }
        Some(Daemon::spawn(self))
    }
}

/// A running `vipanel serve` with its own temporary data dir and bootstrap admin key.
pub struct Daemon {
    /// Holds the data dir, keys, config and log; removed on drop.
    root: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    /// The key given to the bootstrap user `admin`.
    pub admin_key: Key,
    env: Vec<(String, String)>,
    config_file: Option<PathBuf>,
    stdout_reader: Option<JoinHandle<()>>,
    /// Tenants [`Daemon::user`] already made sure of.
    tenants: Mutex<HashSet<String>>,
    /// The test's own session account (as root), removed at teardown.
    session_user: Option<String>,
}

impl Daemon {
    /// Starts a daemon with the default test settings (TOTP off, penalties off).
    pub fn start() -> Option<Daemon> {
        DaemonBuilder::default().start()
    }

    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    fn spawn(builder: DaemonBuilder) -> Daemon {
        let root = tempfile::Builder::new()
            .prefix("vipanel-e2e-")
            .tempdir()
            .expect("cannot create a temp dir");
        std::fs::create_dir(root.path().join("keys")).expect("cannot create keys dir");
        let admin_key = make_key(&root.path().join("keys"), "admin");
        let config_file = builder.config.as_ref().map(|text| {
            let path = root.path().join("vipanel.toml");
            std::fs::write(&path, text).expect("cannot write the config file");
            path
        });
        let mut env = vec![
            (
                "VIPANEL_INITIAL_ADMIN_KEYS".to_owned(),
                admin_key.public.display().to_string(),
            ),
            ("VIPANEL_AUTH__TOTP".to_owned(), "off".to_owned()),
            ("VIPANEL_HEALTH__INTERVAL_SECS".to_owned(), "0".to_owned()),
        ];
        if !builder.penalties {
            env.push(("VIPANEL_PENALTIES__ENABLED".to_owned(), "false".to_owned()));
        }
        // As root, `serve` creates its session account at start: each daemon gets one of its
        // own with a test prefix, removed when the daemon is dropped, so the machine keeps none.
        let session_user = (is_root()
            && !builder
                .env
                .iter()
                .any(|(k, _)| k == "VIPANEL_SESSION__USER"))
        .then(test_account_name);
        if let Some(name) = &session_user {
            env.push(("VIPANEL_SESSION__USER".to_owned(), name.clone()));
        }
        env.extend(builder.env);
        let log_path = root.path().join("daemon.log");
        let log = File::create(&log_path).expect("cannot create the daemon log");
        let mut cmd = vipanel_command(&env, config_file.as_deref());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(root.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("cannot start vipanel serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        // Reads stdout for the whole life of the daemon, so it never blocks on a full pipe.
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut daemon = Daemon {
            root,
            child: Some(child),
            port: 0,
            admin_key,
            env,
            config_file,
            stdout_reader: Some(stdout_reader),
            tenants: Mutex::new(HashSet::new()),
            session_user,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("vipanel listening on ") {
                        let addr: std::net::SocketAddr = addr
                            .trim()
                            .parse()
                            .unwrap_or_else(|e| panic!("bad listen line {line:?}: {e}"));
                        break addr.port();
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => daemon.start_failed(
                    &format!("did not print `vipanel listening on` within {START_TIMEOUT:?}"),
                    &seen,
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    daemon.start_failed("closed stdout (exited?) before listening", &seen)
                }
            }
        };
        daemon.port = port;
        daemon
    }

    fn start_failed(&mut self, why: &str, stdout: &[String]) -> ! {
        let status = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        panic!(
            "vipanel serve {why} (status: {status:?})\n--- stdout ---\n{}\n--- stderr (log) ---\n{}",
            stdout.join("\n"),
            self.log()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("vipanel.db")
    }

    /// Everything the daemon wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("daemon.log")).unwrap_or_default()
    }

    /// Makes a new ed25519 key pair (not registered anywhere).
    pub fn new_key(&self, name: &str) -> Key {
        make_key(&self.root.path().join("keys"), name)
    }

    /// `ssh -p PORT -i KEY … LOGIN@127.0.0.1 'WORDS…'` with no stdin.
    pub fn ssh(&self, key: &Key, login: &str, words: &[&str]) -> Run {
        self.ssh_with(key, login, &[], Some(&remote_line(words)), None)
    }

    /// Like [`Daemon::ssh`], with `stdin` fed to the remote command.
    pub fn ssh_stdin(&self, key: &Key, login: &str, words: &[&str], stdin: &[u8]) -> Run {
        self.ssh_with(key, login, &[], Some(&remote_line(words)), Some(stdin))
    }

    /// `ssh` as `panel@`: the common case.
    pub fn panel(&self, key: &Key, words: &[&str]) -> Run {
        self.ssh(key, PANEL, words)
    }

    /// `ssh` as `panel@`, asserting exit 0 and parsing stdout as JSON (`-o json` is added).
    #[track_caller]
    pub fn ssh_json(&self, key: &Key, words: &[&str]) -> Value {
        let mut words = words.to_vec();
        words.extend(["-o", "json"]);
        let run = self.panel(key, &words);
        run.expect(0);
        run.json()
    }

    /// The general form: extra ssh `options` (like `-tt`), the remote command line exactly as
    /// given (`None`: no command, a shell request) and optional stdin (`None`: `-n`).
    pub fn ssh_with(
        &self,
        key: &Key,
        login: &str,
        options: &[&str],
        remote: Option<&str>,
        stdin: Option<&[u8]>,
    ) -> Run {
        let mut cmd = self.ssh_command(key, login, options, remote, stdin.is_none());
        let what = format!(
            "ssh {} {login}@ {}",
            options.join(" "),
            remote.unwrap_or("(no command)")
        );
        run_bounded(&mut cmd, stdin, &what)
    }

    /// The `ssh` command line with the harness's options; `no_stdin` adds `-n`.
    pub fn ssh_command(
        &self,
        key: &Key,
        login: &str,
        options: &[&str],
        remote: Option<&str>,
        no_stdin: bool,
    ) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-p", &self.port.to_string(), "-i"])
            .arg(&key.private)
            .args(CLIENT_OPTIONS)
            .args(["-o", "ConnectTimeout=20"]);
        // No connection sharing, unless the caller passes its own ControlPath (a [`Master`]).
        if !options.iter().any(|o| o.starts_with("ControlPath=")) {
            cmd.args(["-o", "ControlMaster=no", "-o", "ControlPath=none"]);
        }
        if no_stdin {
            cmd.arg("-n");
        }
        cmd.args(options).arg(format!("{login}@127.0.0.1"));
        if let Some(remote) = remote {
            cmd.arg(remote);
        }
        cmd.env_remove("SSH_AUTH_SOCK");
        cmd
    }

    /// Starts `ssh … WORDS` as `panel@` with its stdin kept open (a pipe) and returns at once.
    pub fn spawn_ssh(&self, key: &Key, words: &[&str]) -> PendingSsh {
        self.spawn_ssh_with(key, PANEL, &[], words)
    }

    /// Like [`Daemon::spawn_ssh`], with a login name and extra ssh `options` (like `-L …`).
    pub fn spawn_ssh_with(
        &self,
        key: &Key,
        login: &str,
        options: &[&str],
        words: &[&str],
    ) -> PendingSsh {
        let line = remote_line(words);
        let mut cmd = self.ssh_command(key, login, options, Some(&line), false);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start ssh");
        let stdin = child.stdin.take();
        let stdout = reader_thread(child.stdout.take());
        let stderr = reader_thread(child.stderr.take());
        PendingSsh {
            what: format!("ssh {} {login}@ {line}", options.join(" ")),
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Opens one SSH connection (an OpenSSH control master, `ssh -M -N`) that later commands
    /// can share with [`Master::options`]: several commands on one connection.
    pub fn master(&self, key: &Key, login: &str) -> Master {
        let control = self.root.path().join(format!("cm-{}-{}", key.name, login));
        let path_option = format!("ControlPath={}", control.display());
        let mut cmd = self.ssh_command(
            key,
            login,
            &["-M", "-N", "-o", &path_option, "-o", "ControlPersist=no"],
            None,
            true,
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start the ssh control master");
        let stderr = reader_thread(child.stderr.take());
        let deadline = Instant::now() + START_TIMEOUT;
        while !control.exists() {
            if let Some(status) = child.try_wait().expect("cannot wait for ssh") {
                let err = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
                panic!("the ssh control master exited ({status}) before listening: {err}");
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("the ssh control master did not open {}", control.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Master { child, path_option }
    }

    /// `vipanel admin --data-dir DIR WORDS…`: the command tree run locally as the built-in admin.
    pub fn admin(&self, words: &[&str]) -> Run {
        self.admin_stdin(words, None)
    }

    /// Like [`Daemon::admin`], with stdin.
    pub fn admin_stdin(&self, words: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut cmd = vipanel_command(&self.env, self.config_file.as_deref());
        cmd.arg("admin")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(words);
        run_bounded(
            &mut cmd,
            stdin,
            &format!("vipanel admin {}", words.join(" ")),
        )
    }

    /// `vipanel admin WORDS… -o json`, asserting exit 0.
    #[track_caller]
    pub fn admin_json(&self, words: &[&str]) -> Value {
        let mut words = words.to_vec();
        words.extend(["-o", "json"]);
        let run = self.admin(&words);
        run.expect(0);
        run.json()
    }

    /// Creates `tenant` (unless it exists) and user `name` in it with `role` and a new key.
    /// Admins go to tenant `system` whatever `tenant` says.
    pub fn user(&self, tenant: &str, name: &str, role: &str) -> Key {
        let tenant = if role == "admin" { "system" } else { tenant };
        let first_time = self
            .tenants
            .lock()
            .expect("tenant set")
            .insert(tenant.to_owned());
        if first_time && tenant != "system" {
            // Exit 4: the test made it itself.
            let created = self.admin(&["tenant", "create", tenant]);
            assert!(
                created.code == 0 || created.code == 4,
                "cannot create tenant {tenant}: {created:?}"
            );
        }
        let key = self.new_key(name);
        let line = key.public_line();
        self.admin(&[
            "user", "create", name, "--role", role, "--tenant", tenant, "--key", &line,
        ])
        .expect(0);
        key
    }

    /// Sends SIGTERM to the daemon (only the process this harness started).
    pub fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        assert!(pid > 0, "the daemon is not running");
        // SAFETY: kill(2) with our own child's pid and a valid signal number.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {pid} failed");
    }

    /// Waits (bounded) for the daemon to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("the daemon was started");
        loop {
            if let Some(status) = child.try_wait().expect("cannot wait for the daemon") {
                self.child = None;
                if let Some(reader) = self.stdout_reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "vipanel serve did not exit within {timeout:?}\n--- log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until the daemon's port refuses TCP connections (after SIGTERM).
    pub fn wait_until_refusing(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            if Instant::now() >= deadline {
                panic!(
                    "port {} still accepts connections after {timeout:?}\n--- log ---\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until the daemon's log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            if Instant::now() >= deadline {
                panic!(
                    "the daemon log never showed {needle:?} within {timeout:?}\n--- log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A runtime and a connection to the daemon's SQLite file, as anyone with the file has.
    fn open_db(&self) -> (tokio::runtime::Runtime, sqlx::SqliteConnection) {
        use sqlx::ConnectOptions;
        let path = self.db_path();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let conn = rt.block_on(async {
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .busy_timeout(Duration::from_secs(10))
                .connect()
                .await
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
        });
        (rt, conn)
    }

    /// Runs raw SQL statements on the daemon's SQLite file, as someone with access to the file
    /// could (for tamper tests). Returns the first error, if any.
    pub fn raw_sql(&self, statements: &[&str]) -> Result<(), String> {
        let (rt, mut conn) = self.open_db();
        rt.block_on(async {
            for sql in statements {
                sqlx::query(sqlx::AssertSqlSafe(*sql))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    /// Every row of `audit_log`, oldest first, read straight from the SQLite database.
    pub fn audit_rows(&self) -> Vec<AuditRow> {
        use sqlx::Row;
        let (rt, mut conn) = self.open_db();
        rt.block_on(async {
            let rows = sqlx::query(
                "SELECT actor, tenant, role, key_fingerprint, source, action, target, result, detail
                 FROM audit_log ORDER BY id",
            )
            .fetch_all(&mut conn)
            .await
            .expect("cannot read audit_log");
            rows.iter()
                .map(|r| AuditRow {
                    actor: r.get("actor"),
                    tenant: r.get("tenant"),
                    role: r.get("role"),
                    key_fingerprint: r.get("key_fingerprint"),
                    source: r.get("source"),
                    action: r.get("action"),
                    target: r.get("target"),
                    result: r.get("result"),
                    detail: r.get("detail"),
                })
                .collect()
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- vipanel serve log (port {}) ---\n{}--- end of log ---",
                self.port,
                self.log()
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.stdout_reader.take() {
            let _ = reader.join();
        }
        if let Some(name) = self.session_user.take() {
            remove_account(&name);
        }
    }
}

/// Whether the tests run as root (then the daemon runs session processes as an account).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A session account name of this test process, unique per daemon, with the test prefix.
fn test_account_name() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("vipanel-t{}-{n}", std::process::id())
}

/// Removes a test session account (if the daemon created it). Its last processes may take a
/// moment to go after the daemon was killed, and userdel refuses while they live.
fn remove_account(name: &str) {
    let exists = |name: &str| {
        std::fs::read_to_string("/etc/passwd")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(':').next() == Some(name))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while exists(name) {
        let done = Command::new("userdel")
            .arg(name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if done || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One row of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub actor: String,
    pub tenant: String,
    pub role: String,
    pub key_fingerprint: Option<String>,
    pub source: String,
    pub action: String,
    pub target: String,
    pub result: String,
    pub detail: String,
}

/// A shared SSH connection made by [`Daemon::master`]; closed (its process killed) on drop.
pub struct Master {
    child: Child,
    path_option: String,
}

impl Master {
    /// The ssh options that send a command through this connection.
    pub fn options(&self) -> [&str; 4] {
        ["-o", &self.path_option, "-o", "ControlMaster=no"]
    }

    /// Waits (bounded) for the master's `ssh` to exit, e.g. after the server disconnected it;
    /// `None` when it is still running at the deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot wait for ssh") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `ssh` started with [`Daemon::spawn_ssh`], its stdin still open.
pub struct PendingSsh {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

impl PendingSsh {
    /// Writes `input` to the remote command's stdin, closes it, and waits (bounded) for the end.
    pub fn finish(mut self, input: &[u8]) -> Run {
        if let Some(mut stdin) = self.stdin.take() {
            // The remote side may already have gone; the exit code tells.
            let _ = stdin.write_all(input);
        }
        let pid = self.child.id();
        let status = wait_bounded(self.child, pid, &self.what);
        Run {
            what: self.what,
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&self.stdout.join().unwrap_or_default()).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr.join().unwrap_or_default()).into_owned(),
        }
    }
}

/// `vipanel` with a clean `VIPANEL_*` environment plus `env`.
fn vipanel_command(env: &[(String, String)], config: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vipanel"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VIPANEL_") {
            cmd.env_remove(&name);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(path) = config {
        cmd.env("VIPANEL_CONFIG", path);
    }
    cmd
}

/// Makes an ed25519 key pair `dir/name` (and `.pub`) with `ssh-keygen`.
pub fn make_key(dir: &Path, name: &str) -> Key {
    let private = dir.join(name);
    let out = run_bounded(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(format!("{name}@e2e"))
            .arg("-f")
            .arg(&private),
        None,
        "ssh-keygen",
    );
    out.expect(0);
    Key {
        name: name.to_owned(),
        public: private.with_extension("pub"),
        private,
    }
}

fn reader_thread<R: Read + Send + 'static>(source: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut source) = source {
            let _ = source.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Waits for `child` at most [`COMMAND_TIMEOUT`], killing it (by its pid) when it overstays.
fn wait_bounded(mut child: Child, pid: u32, what: &str) -> ExitStatus {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(status) => status.unwrap_or_else(|e| panic!("cannot wait for `{what}`: {e}")),
        Err(_) => {
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: kill(2) on the child this harness spawned and has not reaped yet.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            panic!("`{what}` did not finish within {COMMAND_TIMEOUT:?}; killed it");
        }
    }
}

/// Runs `cmd` to its end (bounded: killed after a minute), feeding `stdin` (or /dev/null) and capturing both outputs.
pub fn run_bounded(cmd: &mut Command, stdin: Option<&[u8]>, what: &str) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
    let writer = child.stdin.take().map(|mut pipe| {
        let input = stdin.unwrap_or_default().to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let stdout = reader_thread(child.stdout.take());
    let stderr = reader_thread(child.stderr.take());
    let pid = child.id();
    let status = wait_bounded(child, pid, what);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Run {
        what: what.to_owned(),
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned(),
    }
}

/// An `ssh -tt` client driven like a person at a terminal: everything it prints (stdout and
/// stderr, in arrival order) is collected, and lines are typed into its stdin. Killed on drop.
pub struct TtyClient {
    pub child: Child,
    pub input: ChildStdin,
    seen: std::sync::Arc<Mutex<String>>,
}

impl TtyClient {
    /// Starts `cmd` (an ssh command line with `-tt`) with its three streams piped.
    pub fn spawn(mut cmd: Command) -> TtyClient {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start ssh -tt");
        let input = child.stdin.take().expect("stdin");
        let seen = std::sync::Arc::new(Mutex::new(String::new()));
        for mut source in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = source.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    seen.lock()
                        .expect("seen")
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        TtyClient { child, input, seen }
    }

    /// Everything printed so far, as sent.
    pub fn seen(&self) -> String {
        self.seen.lock().expect("seen").clone()
    }

    /// Everything printed so far, as a terminal shows it: control sequences removed.
    pub fn text(&self) -> String {
        without_escapes(&self.seen())
    }

    /// Types `line` and Enter (a carriage return, as a terminal in raw mode sends it).
    pub fn type_line(&mut self, line: &str) {
        self.input
            .write_all(format!("{line}\r").as_bytes())
            .expect("type into ssh");
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TtyClient {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What a terminal shows as text: control sequences (colours, cursor moves) removed.
pub fn without_escapes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters, then one final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}
