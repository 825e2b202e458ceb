//! A terminal that answers like a real one: the OpenSSH client inside a tmux server of its own
//! (one per test, on a private socket), read with `capture-pane` and typed into with
//! `send-keys`. The shell around the client prints its exit status ([`EXIT_MARK`]).
//!
//! When tmux is missing, [`Tmux::start`] prints why and returns `None` (a skip), unless
//! `VIPANEL_REQUIRE_SERVICES=1`, where it panics.

use super::{Daemon, Key, PANEL};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for something to show on the screen (or to happen at all).
pub const WAIT: Duration = Duration::from_secs(30);

/// What the shell around the ssh client in tmux prints before the client's exit status.
pub const EXIT_MARK: &str = "[ssh exit status ";

/// The size a terminal gets unless told otherwise.
pub const DEFAULT_SIZE: (u16, u16) = (100, 30);

/// The end of a long daemon log (failure messages stay readable).
fn log_tail(d: &Daemon) -> String {
    let log = d.log();
    let skip = log.chars().count().saturating_sub(6000);
    log.chars().skip(skip).collect()
}

/// Waits until `check` holds (bounded by [`WAIT`]), with `what` and the daemon's log in the
/// failure.
#[track_caller]
pub fn wait_until(what: &str, d: &Daemon, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}\n--- log ---\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How a [`Tmux`] starts: its size and environment variables set for the ssh client alone.
#[derive(Debug, Clone)]
pub struct TmuxOptions {
    pub size: (u16, u16),
    /// Set with `env NAME=VALUE` right before `ssh` (tmux sets `TERM` for its panes itself).
    pub env: Vec<(String, String)>,
}

impl Default for TmuxOptions {
    fn default() -> TmuxOptions {
        TmuxOptions {
            size: DEFAULT_SIZE,
            env: Vec::new(),
        }
    }
}

impl TmuxOptions {
    pub fn size(mut self, cols: u16, rows: u16) -> TmuxOptions {
        self.size = (cols, rows);
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> TmuxOptions {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The ssh client (`ssh -t`) inside a tmux server of its own, removed on drop.
pub struct Tmux {
    socket: String,
    size: (u16, u16),
}

/// Sockets handed out in this process (several terminals may talk to one daemon).
static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Tmux {
    /// A [`DEFAULT_SIZE`] terminal running `ssh -t` as `panel@` (`remote`: the command, `None`
    /// for an interactive login); `None` (after printing why) when tmux is missing.
    pub fn start(d: &Daemon, key: &Key, remote: Option<&str>) -> Option<Tmux> {
        Tmux::start_with(d, key, remote, TmuxOptions::default())
    }

    /// Like [`Tmux::start`], with a size and environment.
    pub fn start_with(
        d: &Daemon,
        key: &Key,
        remote: Option<&str>,
        options: TmuxOptions,
    ) -> Option<Tmux> {
        if !super::program_exists("tmux") {
            if std::env::var("VIPANEL_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("tmux is missing; VIPANEL_REQUIRE_SERVICES=1 forbids skipping");
            }
            eprintln!("skipping: this test needs tmux (apt-get install tmux)");
            return None;
        }
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("vipanel-e2e-{}-{}-{serial}", std::process::id(), d.port());
        let ssh = d.ssh_command(key, PANEL, &["-t"], remote, false);
        // Under a shell that prints the client's exit status ([`Tmux::wait_exit`]).
        let mut words = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("\"$@\"; echo \"{EXIT_MARK}$?]\""),
            "sh".to_owned(),
        ];
        if !options.env.is_empty() {
            words.push("env".to_owned());
            words.extend(options.env.iter().map(|(n, v)| format!("{n}={v}")));
        }
        words.push(ssh.get_program().to_string_lossy().into_owned());
        words.extend(ssh.get_args().map(|a| a.to_string_lossy().into_owned()));
        let tmux = Tmux {
            socket,
            size: options.size,
        };
        let (cols, rows) = options.size;
        let mut cmd = tmux.command();
        cmd.args(["new-session", "-d", "-x", &cols.to_string()])
            .args(["-y", &rows.to_string()])
            .args(&words)
            .env_remove("SSH_AUTH_SOCK");
        assert!(cmd.status().expect("tmux").success(), "tmux new-session");
        let mut keep = tmux.command();
        keep.args(["set-option", "-g", "remain-on-exit", "on"]);
        assert!(keep.status().expect("tmux").success());
        Some(tmux)
    }

    /// A `tmux` command for this server.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd
    }

    /// The size the terminal started with.
    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    /// The visible screen, lines wrapped by the terminal joined again (for line-based output).
    pub fn screen(&self) -> String {
        self.capture(&["-J"])
    }

    /// The visible screen row by row, exactly as the terminal shows it (for full-screen
    /// programs, whose rows must not be joined).
    pub fn rows(&self) -> Vec<String> {
        self.capture(&[]).lines().map(str::to_owned).collect()
    }

    fn capture(&self, extra: &[&str]) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p"])
            .args(extra)
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `check` holds for the screen's rows; the failure shows `what`, the last
    /// screen and the end of the daemon's log. Returns the rows that passed.
    #[track_caller]
    pub fn wait_rows(
        &self,
        d: &Daemon,
        what: &str,
        mut check: impl FnMut(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let rows = self.rows();
            if check(&rows) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not happen within {WAIT:?}\n--- screen ---\n{}\n--- log (end) ---\n{}",
                rows.join("\n"),
                log_tail(d)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `needle` shows on the screen; the screen.
    #[track_caller]
    pub fn wait_for(&self, d: &Daemon, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not show within {WAIT:?}\n--- screen ---\n{screen}\n--- log (end) \
                 ---\n{}",
                log_tail(d)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `line` and Enter.
    pub fn type_line(&self, line: &str) {
        let mut cmd = self.command();
        cmd.args(["send-keys", "-l", line]);
        assert!(cmd.status().expect("tmux send-keys").success());
        let mut enter = self.command();
        enter.args(["send-keys", "Enter"]);
        assert!(enter.status().expect("tmux send-keys").success());
    }

    /// Types `text` as it is (no key names).
    pub fn type_text(&self, text: &str) {
        self.keys(&["-l", text]);
    }

    /// Sends tmux key names (`Up`, `Tab`, `C-c`, `Enter`).
    pub fn keys(&self, keys: &[&str]) {
        let mut cmd = self.command();
        cmd.arg("send-keys").args(keys);
        assert!(cmd.status().expect("tmux send-keys").success());
    }

    /// Sends Escape alone, then waits a little: an Escape followed at once by another key
    /// reads as Alt and that key.
    pub fn escape(&self) {
        self.keys(&["Escape"]);
        std::thread::sleep(Duration::from_millis(150));
    }

    /// The exit status of the ssh client, once it exited, as the shell around it printed it
    /// (tmux's own `pane_dead_status` is sometimes missing when the pane is already dead).
    /// The scrollback is searched too: tmux's "Pane is dead" line, written on the last row,
    /// scrolls a mark printed on the first row (a client that left an empty screen) out of view.
    #[track_caller]
    pub fn wait_exit(&self, d: &Daemon) -> i32 {
        let deadline = Instant::now() + WAIT;
        let text = loop {
            let text = self.capture(&["-J", "-S", "-"]);
            if text.contains(EXIT_MARK) {
                break text;
            }
            assert!(
                Instant::now() < deadline,
                "the ssh client did not exit within {WAIT:?}\n--- screen ---\n{}\n--- log (end) \
                 ---\n{}",
                self.screen(),
                log_tail(d)
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        text.rsplit_once(EXIT_MARK)
            .and_then(|(_, rest)| rest.split_once(']'))
            .and_then(|(status, _)| status.parse().ok())
            .unwrap_or(-1)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
        // The server leaves its socket file behind (`-L NAME`: tmux-UID/NAME in TMUX_TMPDIR).
        let dir = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let socket = std::path::Path::new(&dir)
            .join(format!("tmux-{uid}"))
            .join(&self.socket);
        let _ = std::fs::remove_file(socket);
    }
}
