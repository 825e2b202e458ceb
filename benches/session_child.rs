//! The session process on its own: start → first prompt, memory per session, bytes written per
//! echoed keystroke and cursor-position queries (`ESC[6n`) per prompt, resize, Tab and notice.
//!
//! Each session is the real `vipanel __session` on a PTY of ours, with one end of a socketpair
//! as descriptor 3 served by the fake daemon of the session tests, exactly as the daemon starts
//! it. A reader thread plays the terminal: it counts the bytes the session writes and answers
//! every cursor-position query at once (row from the line feeds seen, column 1).
//!
//!     cargo bench --bench session_child -- [--runs 30] [--sessions 50] [--binary PATH]
//!
//! `--binary` measures another build of vipanel (for linking experiments). Without `--bench`
//! (which `cargo bench` passes) it does nothing, so `cargo test --all-targets` and nextest skip
//! it; the smoke run in .ci/run is `cargo test --bench session_child -- --bench --runs 2
//! --sessions 2`.

#[path = "../tests/session_support/mod.rs"]
mod session_support;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const ROWS: u16 = 30;
const COLS: u16 = 100;
/// Output is over when the session has written nothing for this long.
const QUIET: Duration = Duration::from_millis(60);
const TIMEOUT: Duration = Duration::from_secs(20);
/// How long an action may take to write its first byte.
const ANSWER_WAIT: Duration = Duration::from_secs(2);
const PROMPT: &str = "alice@acme> ";

struct Options {
    runs: usize,
    sessions: usize,
    binary: String,
}

fn options() -> Option<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets`, nextest's `--list`: nothing to do here.
        return None;
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    Some(Options {
        runs: value("--runs").and_then(|v| v.parse().ok()).unwrap_or(30),
        sessions: value("--sessions")
            .and_then(|v| v.parse().ok())
            .unwrap_or(50),
        binary: value("--binary").unwrap_or_else(|| env!("CARGO_BIN_EXE_vipanel").to_owned()),
    })
}

/// What the terminal has seen.
#[derive(Default)]
struct Screen {
    bytes: AtomicUsize,
    queries: AtomicUsize,
    text: Mutex<Vec<u8>>,
    last_output: Mutex<Option<Instant>>,
}

/// One session on a PTY of ours.
struct Session {
    child: Child,
    master: File,
    screen: Arc<Screen>,
    notices: mpsc::Sender<String>,
    started: Instant,
}

impl Session {
    fn start(binary: &str, colour: bool) -> Session {
        let (child_end, daemon_end) = UnixStream::pair().unwrap();
        let (_seen, notices) = session_support::FakeDaemon::serve_stream(daemon_end);
        let (master, slave) = openpty();
        let mut command = Command::new(binary);
        command
            .arg("__session")
            .env_clear()
            .env("TERM", "xterm-256color")
            .env("VIPANEL_SESSION_FD", "3")
            // The shell, as `ssh -t … shell` starts it (a plain login opens the dashboard,
            // measured by benches/tui_bytes.sh).
            .env("VIPANEL_SESSION_START", "shell")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
        if !colour {
            command.env("NO_COLOR", "1");
        }
        let link = child_end.as_raw_fd();
        let tty = slave.as_raw_fd();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(tty, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // dup2 leaves the copy open across exec; the same number needs the flag cleared.
                let placed = if link == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(link, 3)
                };
                if placed < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let child = command.spawn().unwrap();
        drop(slave);
        drop(child_end);
        let master = File::from(master);
        let screen = Arc::new(Screen::default());
        let reader = master.try_clone().unwrap();
        let answer = master.try_clone().unwrap();
        let seen = Arc::clone(&screen);
        std::thread::spawn(move || play_terminal(reader, answer, &seen));
        Session {
            child,
            master,
            screen,
            notices,
            started,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn type_bytes(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Waits until the text (escapes removed) contains `needle`; returns when it did.
    fn wait_for(&self, needle: &str) -> Instant {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = strip_escapes(&self.screen.text.lock().unwrap());
            if text.contains(needle) {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "no {needle:?} in {text:?}");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Waits until the session has written nothing for [`QUIET`].
    fn settle(&self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let last = *self.screen.last_output.lock().unwrap();
            if last.is_some_and(|t| t.elapsed() >= QUIET) {
                return;
            }
            assert!(Instant::now() < deadline, "the session never went quiet");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Bytes and queries counted while `action` runs and the session settles after it.
    fn measure(&mut self, action: impl FnOnce(&mut Session)) -> (usize, usize) {
        self.settle();
        let bytes = self.screen.bytes.load(Ordering::SeqCst);
        let queries = self.screen.queries.load(Ordering::SeqCst);
        action(self);
        // Wait for the first byte of the answer (or give up: some keys write nothing), then
        // for the end of it.
        let deadline = Instant::now() + ANSWER_WAIT;
        while self.screen.bytes.load(Ordering::SeqCst) == bytes && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        self.settle();
        (
            self.screen.bytes.load(Ordering::SeqCst) - bytes,
            self.screen.queries.load(Ordering::SeqCst) - queries,
        )
    }

    fn resize(&self, rows: u16, cols: u16) {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the struct we pass; the kernel signals the foreground.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0);
    }

    /// Memory figures of the session process, in kB.
    fn memory(&self) -> Memory {
        let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.pid())).unwrap();
        let field = |name: &str| -> u64 {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss: field("Rss:"),
            pss: field("Pss:"),
            private_dirty: field("Private_Dirty:"),
        }
    }

    /// Types `exit` and returns the exit status.
    fn exit(mut self) -> i32 {
        self.type_bytes(b"exit\r");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the session did not exit");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Private dirty and PSS (kB) of a process by mapping: the binary's sections by permissions,
/// the heap, thread stacks and other anonymous memory.
fn breakdown(pid: u32) -> Vec<(String, u64, u64)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut rows: Vec<(String, u64, u64)> = Vec::new();
    let mut current = String::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            let perms = fields.next().unwrap_or_default().to_owned();
            let path = fields.nth(3).unwrap_or("[anonymous]");
            let name = path.rsplit('/').next().unwrap_or(path);
            current = format!("{name} {perms}");
            continue;
        }
        let value = fields
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let slot = match first {
            "Private_Dirty:" => 1,
            "Pss:" => 2,
            _ => continue,
        };
        let row = match rows.iter_mut().position(|r| r.0 == current) {
            Some(i) => &mut rows[i],
            None => {
                rows.push((current.clone(), 0, 0));
                rows.last_mut().unwrap()
            }
        };
        if slot == 1 {
            row.1 += value;
        } else {
            row.2 += value;
        }
    }
    rows.retain(|r| r.1 > 0 || r.2 >= 16);
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
    rows
}

#[derive(Clone, Copy)]
struct Memory {
    rss: u64,
    pss: u64,
    private_dirty: u64,
}

fn openpty() -> (OwnedFd, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: ROWS,
        ws_col: COLS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors we then own.
    unsafe {
        let rc = libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        );
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(slave, libc::F_SETFD, libc::FD_CLOEXEC);
        (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
    }
}

/// Reads the session's output, answering cursor-position queries like a terminal.
fn play_terminal(mut reader: File, mut answer: File, screen: &Screen) {
    let mut buf = [0u8; 8192];
    let mut tail: Vec<u8> = Vec::new();
    let mut row: usize = 1;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        screen.bytes.fetch_add(n, Ordering::SeqCst);
        screen.text.lock().unwrap().extend_from_slice(chunk);
        *screen.last_output.lock().unwrap() = Some(Instant::now());
        row = (row + chunk.iter().filter(|&&b| b == b'\n').count()).min(usize::from(ROWS));
        // A query may straddle two reads: scan the end of the last one with this one.
        let mut scan = std::mem::take(&mut tail);
        scan.extend_from_slice(chunk);
        let queries = scan.windows(4).filter(|w| w == b"\x1b[6n").count();
        tail = scan[scan.len().saturating_sub(3)..].to_vec();
        for _ in 0..queries {
            screen.queries.fetch_add(1, Ordering::SeqCst);
            let _ = answer.write_all(format!("\x1b[{row};1R").as_bytes());
        }
    }
}

/// The text without escape sequences (CSI, OSC, two-byte ones).
fn strip_escapes(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median_u64(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// Start → prompt times (ms) and memory of single sessions, one after the other.
fn start_runs(options: &Options) -> (Vec<f64>, Vec<Memory>, usize) {
    let mut times = Vec::new();
    let mut memory = Vec::new();
    let mut queries = 0;
    for _ in 0..options.runs {
        let session = Session::start(&options.binary, true);
        let shown = session.wait_for(PROMPT);
        times.push((shown - session.started).as_secs_f64() * 1000.0);
        session.settle();
        queries = session.screen.queries.load(Ordering::SeqCst);
        memory.push(session.memory());
        assert_eq!(session.exit(), 0);
    }
    (times, memory, queries)
}

/// Round trips and bytes of one session's typical use.
fn interaction(options: &Options, colour: bool) -> Vec<(&'static str, usize, usize)> {
    let mut s = Session::start(&options.binary, colour);
    s.wait_for(PROMPT);
    let mut rows = Vec::new();
    let first = (s.screen.bytes.load(Ordering::SeqCst), 0);
    s.settle();
    rows.push((
        "start → first prompt",
        first.0,
        s.screen.queries.load(Ordering::SeqCst),
    ));
    let mut key_bytes = 0;
    let mut key_queries = 0;
    let typed = "site list";
    for c in typed.bytes() {
        let (b, q) = s.measure(|s| s.type_bytes(&[c]));
        key_bytes += b;
        key_queries += q;
    }
    rows.push((
        "per echoed keystroke (`site list`, mean)",
        key_bytes / typed.len(),
        key_queries / typed.len(),
    ));
    let (b, q) = s.measure(|s| s.type_bytes(b"\r"));
    rows.push(("Enter: run, output, next prompt", b, q));
    let (b, q) = s.measure(|s| s.type_bytes(b"site show ex\t"));
    rows.push(("typing `site show ex` + Tab (one match)", b, q));
    let (b, q) = s.measure(|s| s.type_bytes(b"\x15"));
    rows.push(("Ctrl-U (clear the line)", b, q));
    let (b, q) = s.measure(|s| s.type_bytes(b"site \t"));
    rows.push(("typing `site ` + Tab (menu of verbs)", b, q));
    let (b, q) = s.measure(|s| s.type_bytes(b"\x1b"));
    rows.push(("Esc (close the menu)", b, q));
    let (b, q) = s.measure(|s| s.type_bytes(b"\x15\x1b[A"));
    rows.push(("Ctrl-U, Up (history)", b, q));
    let (b, q) = s.measure(|s| s.resize(24, 80));
    rows.push(("resize to 80x24", b, q));
    let (b, q) = s.measure(|s| {
        s.notices.send("The panel is restarting.".into()).unwrap();
    });
    rows.push(("a notice above the prompt", b, q));
    let (b, q) = s.measure(|s| s.type_bytes(b"\x15\x0c"));
    rows.push(("Ctrl-U, Ctrl-L (clear the screen)", b, q));
    assert_eq!(s.exit(), 0);
    rows
}

/// Memory of `n` sessions open at once.
fn concurrent(options: &Options) -> Vec<Memory> {
    let sessions: Vec<Session> = (0..options.sessions)
        .map(|_| Session::start(&options.binary, true))
        .collect();
    for s in &sessions {
        s.wait_for(PROMPT);
    }
    for s in &sessions {
        s.settle();
    }
    let memory = sessions.iter().map(Session::memory).collect();
    if let Some(first) = sessions.first() {
        println!(
            "\none of them, by mapping:\n\n| mapping | private dirty kB | PSS kB |\n| --- | ---: | ---: |"
        );
        for (name, dirty, pss) in breakdown(first.pid()) {
            println!("| {name} | {dirty} | {pss} |");
        }
    }
    for s in sessions {
        assert_eq!(s.exit(), 0);
    }
    memory
}

fn main() {
    let Some(options) = options() else {
        return;
    };
    println!("binary: {}", options.binary);
    // A binary fresh from the linker sits dirty in the page cache until written back, and would
    // count as the lone session's private dirty memory.
    // SAFETY: sync() takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let (mut times, memory, queries) = start_runs(&options);
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "\nstart → first prompt over {} runs: median {:.2} ms, min {:.2}, max {:.2}; \
         {queries} cursor query before it",
        options.runs,
        median(&mut times),
        sorted.first().unwrap_or(&f64::NAN),
        sorted.last().unwrap_or(&f64::NAN),
    );
    let pick =
        |f: fn(&Memory) -> u64, m: &[Memory]| median_u64(&m.iter().map(f).collect::<Vec<_>>());
    println!(
        "one session alone (median): RSS {} kB, PSS {} kB, private dirty {} kB",
        pick(|m| m.rss, &memory),
        pick(|m| m.pss, &memory),
        pick(|m| m.private_dirty, &memory)
    );
    let many = concurrent(&options);
    println!(
        "{} sessions at once (median per session): RSS {} kB, PSS {} kB, private dirty {} kB; \
         PSS max {} kB",
        options.sessions,
        pick(|m| m.rss, &many),
        pick(|m| m.pss, &many),
        pick(|m| m.private_dirty, &many),
        many.iter().map(|m| m.pss).max().unwrap_or(0)
    );
    for colour in [true, false] {
        println!(
            "\n{}\n\n| action | bytes written | cursor queries |\n| --- | ---: | ---: |",
            if colour {
                "colour (TERM=xterm-256color)"
            } else {
                "NO_COLOR=1"
            }
        );
        for (action, bytes, queries) in interaction(&options, colour) {
            println!("| {action} | {bytes} | {queries} |");
        }
    }
}
