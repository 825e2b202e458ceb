//! Harness for the session process: a fake daemon serving the link, and the real
//! `vipanel __session` started on a tmux pane (or, for the benchmark, on a PTY of our own).
//!
//! The fake daemon listens on a Unix socket in a temporary directory. The pane runs a few lines
//! of Perl (always there on Debian: `perl-base` is essential) that connect to it, move the
//! socket to descriptor 3 and exec the session with `VIPANEL_SESSION_FD=3` and a clean
//! environment, as the daemon does: tmux spawns panes from its own server process, so a
//! descriptor cannot be inherited from the test.
//!
//! The fake daemon answers `Hello`, `Run` (echoes the argv, streams for `audit list --follow`
//! until cancelled, asks a confirmation for `site delete` without `--yes`), `Complete` (two site
//! domains), `HistoryList` (an "earlier session"'s lines plus what was added), holds a
//! `Subscribe` open without events, and records every request it received.

#![allow(dead_code)]

#[path = "../support/require.rs"]
mod require;

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use vipanel::rpc::{self, CompletionKind, PROTOCOL_VERSION, Reply, Request};

/// How long a pane may take to show what a test waits for.
pub const SCREEN_TIMEOUT: Duration = Duration::from_secs(15);

pub const SITES: &[&str] = &["example.com", "shop.example.org"];
pub const EARLIER_HISTORY: &[&str] = &["site list", "user show bob"];
/// Sent as a notice, ends the link from the daemon's side.
pub const END_LINK: &str = "\u{0}end the link";

/// Whether tmux and perl are installed; otherwise says why and skips (or fails under
/// `VIPANEL_REQUIRE_SERVICES=1`).
pub fn tools_available() -> bool {
    require::programs_available(
        &[("tmux", "-V"), ("perl", "-v")],
        "the session test",
        "apt-get install tmux perl-base",
    )
}

/// What the fake daemon has seen and can be told to do.
#[derive(Clone, Default)]
pub struct Seen {
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Seen {
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until a request matching `pred` has arrived.
    #[track_caller]
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Request) -> bool) -> Request {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            if let Some(r) = self.requests().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "the fake daemon never saw {what}; it saw {:?}",
                self.requests()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A fake daemon serving one session on a Unix socket.
pub struct FakeDaemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub seen: Seen,
    /// Notices to push to the session now.
    pub notices: mpsc::Sender<String>,
}

impl FakeDaemon {
    pub fn start() -> FakeDaemon {
        let dir = tempfile::Builder::new()
            .prefix("vipanel-session-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("link");
        let listener = UnixListener::bind(&socket).unwrap();
        let seen = Seen::default();
        let (notices, notice_rx) = mpsc::channel();
        let served = seen.clone();
        std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                serve(stream, &served, notice_rx);
            }
        });
        FakeDaemon {
            dir,
            socket,
            seen,
            notices,
        }
    }

    /// Serves an already connected stream instead (the benchmark's socketpair).
    pub fn serve_stream(stream: UnixStream) -> (Seen, mpsc::Sender<String>) {
        let seen = Seen::default();
        let (notices, notice_rx) = mpsc::channel();
        let served = seen.clone();
        std::thread::spawn(move || serve(stream, &served, notice_rx));
        (seen, notices)
    }
}

fn serve(stream: UnixStream, seen: &Seen, notices: mpsc::Receiver<String>) {
    let writer = Arc::new(Mutex::new(stream.try_clone().unwrap()));
    let send = {
        let writer = Arc::clone(&writer);
        move |reply: &Reply| {
            let _ = rpc::write_frame(&mut *writer.lock().unwrap(), reply);
        }
    };
    // Notices are pushed from their own thread, whenever the test says; [`END_LINK`] ends the
    // link instead, as a daemon going away does.
    {
        let send = send.clone();
        let writer = Arc::clone(&writer);
        std::thread::spawn(move || {
            for text in notices {
                if text == END_LINK {
                    let _ = writer.lock().unwrap().shutdown(std::net::Shutdown::Both);
                    return;
                }
                send(&Reply::Notice { text });
            }
        });
    }
    let mut history: Vec<String> = EARLIER_HISTORY.iter().map(|s| (*s).to_owned()).collect();
    // The running streaming command: its id and a flag its thread stops at.
    let mut streaming: Option<(u64, Arc<Mutex<bool>>)> = None;
    let mut confirming: Option<u64> = None;
    let mut reader = stream;
    while let Ok(request) = rpc::read_frame::<_, Request>(&mut reader) {
        seen.requests.lock().unwrap().push(request.clone());
        match request {
            Request::Hello { .. } => send(&Reply::Welcome {
                version: PROTOCOL_VERSION,
                user: "alice".into(),
                tenant: "acme".into(),
                role: "owner".into(),
                prefix: "ssh -p 2222 panel@host".into(),
            }),
            Request::Run { id, argv, .. } => {
                let words: Vec<&str> = argv.iter().map(String::as_str).collect();
                match words.as_slice() {
                    ["audit", "list", "--follow"] => {
                        let stop = Arc::new(Mutex::new(false));
                        streaming = Some((id, Arc::clone(&stop)));
                        let send = send.clone();
                        std::thread::spawn(move || {
                            for n in 1.. {
                                if *stop.lock().unwrap() {
                                    break;
                                }
                                send(&Reply::Output {
                                    id,
                                    stdout: format!("event {n}\n"),
                                    stderr: String::new(),
                                });
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        });
                    }
                    ["site", "delete", _] => {
                        confirming = Some(id);
                        send(&Reply::Confirm {
                            id,
                            prompt: "Delete site? This cannot be undone. [y/N] ".into(),
                        });
                    }
                    ["fail"] => send(&Reply::Done {
                        id,
                        exit: 3,
                        stdout: String::new(),
                        stderr: "error: not found\n".into(),
                    }),
                    _ => send(&Reply::Done {
                        id,
                        exit: 0,
                        stdout: format!("ran: {}\n", shell_words::join(&argv)),
                        stderr: String::new(),
                    }),
                }
            }
            Request::Cancel { id } => {
                if let Some((running, stop)) = streaming.take_if(|(r, _)| *r == id) {
                    *stop.lock().unwrap() = true;
                    send(&Reply::Done {
                        id: running,
                        exit: 130,
                        stdout: String::new(),
                        stderr: "cancelled\n".into(),
                    });
                }
            }
            Request::Confirm { id, yes } => {
                if confirming.take() == Some(id) {
                    send(&Reply::Done {
                        id,
                        exit: if yes { 0 } else { 1 },
                        stdout: if yes { "deleted\n" } else { "" }.into(),
                        stderr: if yes { "" } else { "kept\n" }.into(),
                    });
                }
            }
            Request::Complete { id, kind } => {
                let values = match kind {
                    CompletionKind::Sites => SITES.iter().map(|s| (*s).to_owned()).collect(),
                    _ => vec!["alice".into(), "bob".into()],
                };
                send(&Reply::Values { id, values });
            }
            // Held open: the fake daemon has no changes to tell of.
            Request::Subscribe { .. } => {}
            Request::HistoryAdd { line } => history.push(line),
            Request::HistoryList { id, limit } => {
                let skip = history.len().saturating_sub(limit as usize);
                send(&Reply::History {
                    id,
                    lines: history[skip..].to_vec(),
                });
            }
        }
    }
}

/// What [`Pane::start_reporting_exit`] prints before the session's exit status.
const EXIT_MARK: &str = "[session exit status ";

/// A tmux server of its own with one 100x30 pane running the session against `daemon`.
pub struct Pane {
    socket: PathBuf,
    config: PathBuf,
}

/// The wrapper that connects to the fake daemon and becomes the session process.
const WRAPPER: &str = r#"
use IO::Socket::UNIX; use POSIX ();
$^F = 255; # keep the descriptors it opens across exec until they are placed
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]) or die "connect: $!";
my $fd = fileno($s);
if ($fd != 3) { POSIX::dup2($fd, 3) or die "dup2: $!"; POSIX::close($fd); }
my %keep = map { $_ => $ENV{$_} } grep { exists $ENV{$_} } qw(TERM NO_COLOR);
%ENV = (%keep, VIPANEL_SESSION_FD => "3", VIPANEL_SESSION_START => "shell");
exec { $ARGV[1] } $ARGV[1], "__session" or die "exec: $!";
"#;

impl Pane {
    /// Starts the session on a new tmux server; `env` is added to the session's environment.
    pub fn start(daemon: &FakeDaemon, env: &[(&str, &str)]) -> Pane {
        Pane::start_with(daemon, env, false)
    }

    /// Starts the session under the shell tmux runs commands with, which prints the session's
    /// exit status when it ends ([`Pane::wait_exit`]). tmux's own `pane_dead_status` is not
    /// used: tmux 3.3 sometimes reports a pane dead without its status, or misses the exit.
    pub fn start_reporting_exit(daemon: &FakeDaemon) -> Pane {
        Pane::start_with(daemon, &[], true)
    }

    fn start_with(daemon: &FakeDaemon, env: &[(&str, &str)], report_exit: bool) -> Pane {
        let dir = daemon.dir.path();
        let socket = dir.join("tmux");
        let config = dir.join("tmux.conf");
        std::fs::write(
            &config,
            "set -g status off\nset -g remain-on-exit on\nset -g default-terminal tmux-256color\n\
             set -g history-limit 2000\n",
        )
        .unwrap();
        let wrapper = dir.join("wrapper.pl");
        std::fs::write(&wrapper, WRAPPER).unwrap();
        let pane = Pane { socket, config };
        let mut command = vec!["env".to_owned(), "-u".to_owned(), "NO_COLOR".to_owned()];
        command.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        command.extend([
            "perl".to_owned(),
            wrapper.display().to_string(),
            daemon.socket.display().to_string(),
            env!("CARGO_BIN_EXE_vipanel").to_owned(),
        ]);
        let mut line = shell_words::join(&command);
        if report_exit {
            line.push_str(&format!("; echo \"{EXIT_MARK}$?]\""));
        }
        pane.tmux(&["new-session", "-d", "-x", "100", "-y", "30", &line]);
        pane
    }

    /// Runs a tmux command against this server.
    pub fn tmux(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Types keys (`send-keys` names: `Enter`, `Tab`, `Up`, `C-c`, …).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types text literally.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "0", "-l", "--", text]);
    }

    /// The visible screen, lines joined with `\n`, trailing spaces trimmed.
    pub fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", "0"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The visible screen with colour escapes (`capture-pane -e`).
    pub fn screen_with_escapes(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-e", "-t", "0"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `pred`, then returns it.
    #[track_caller]
    pub fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; the screen is:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the screen shows `needle`.
    #[track_caller]
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait(&format!("{needle:?}"), |s| s.contains(needle))
    }

    /// The last non-empty line of the screen.
    pub fn last_line(&self) -> String {
        self.screen()
            .lines()
            .rev()
            .find(|l| !l.is_empty())
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the last non-empty line is exactly `line`.
    #[track_caller]
    pub fn wait_last_line(&self, line: &str) -> String {
        self.wait(&format!("a last line {line:?}"), |s| {
            s.lines().rev().find(|l| !l.is_empty()) == Some(line)
        })
    }

    /// The session process's exit status, once it has ended (the pane must have been started
    /// with [`Pane::start_reporting_exit`]).
    #[track_caller]
    pub fn wait_exit(&self) -> i32 {
        let screen = self.wait("the session's end", |s| s.contains(EXIT_MARK));
        let status = screen
            .split(EXIT_MARK)
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .unwrap_or_default();
        status
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no exit status on the screen:\n{screen}"))
    }

    /// The process id of the pane's process (the session, once the wrapper has exec'd).
    pub fn pid(&self) -> u32 {
        let out = self.tmux(&["display-message", "-p", "-t", "0", "#{pane_pid}"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
