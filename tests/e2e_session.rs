//! End-to-end tests of interactive sessions, daemon side: the real `vipanel serve` and the real
//! OpenSSH client (inside tmux where a terminal must answer), checking the session process from
//! outside: who it runs as, what it holds, that it never outlives its client or the daemon.
//! Also `audit list --follow` over exec.

mod support;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::tmux::{Tmux, wait_until};
use support::{Daemon, Key, PANEL, TtyClient};

const WAIT: Duration = Duration::from_secs(30);

/// Every process whose parent is `parent`: (pid, command line).
fn children(parent: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so parse after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, cmdline.trim().to_owned()));
        }
    }
    found
}

/// The daemon's session processes.
fn sessions_of(d: &Daemon) -> Vec<u32> {
    children(d.pid())
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("__session"))
        .map(|(pid, _)| pid)
        .collect()
}

/// Whether `pid` is a live (not reaped) session process.
fn alive_session(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("__session"))
}

/// An `ssh -tt` client whose stdin the test holds (it answers no terminal queries, which these
/// tests do not need the shell to draw).
struct Client(TtyClient);

impl Client {
    fn start(d: &Daemon, key: &Key, options: &[&str], remote: Option<&str>) -> Client {
        let mut all = vec!["-tt"];
        all.extend_from_slice(options);
        Client(TtyClient::spawn(
            d.ssh_command(key, PANEL, &all, remote, false),
        ))
    }

    fn seen(&self) -> String {
        self.0.seen()
    }

    #[track_caller]
    fn wait_for(&self, d: &Daemon, needle: &str) -> String {
        wait_until(&format!("{needle:?} on the client"), d, || {
            self.seen().contains(needle)
        });
        self.seen()
    }

    /// Waits for the client to exit; its exit code.
    fn wait_exit(&mut self, d: &Daemon) -> i32 {
        let mut status = None;
        wait_until("the ssh client exiting", d, || {
            status = self.0.child.try_wait().expect("wait for ssh");
            status.is_some()
        });
        status.and_then(|s| s.code()).unwrap_or(-1)
    }

    fn kill9(&mut self) {
        self.0.kill9();
    }
}

/// What the session process holds: fds 0, 1, 2 on its PTY, 3 the link; anything else must be
/// its own (its terminal again through /dev/tty, epoll, eventfd, pipes, a duplicate of the
/// link, the socket pairs its terminal library makes for wakeups), never a file or socket of
/// the daemon.
fn check_descriptors(d: &Daemon, pid: u32) {
    let targets = |pid: u32| -> Vec<(u32, String)> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap_or_else(|e| panic!("cannot list /proc/{pid}/fd: {e}"))
            .flatten()
            .filter_map(|e| {
                let fd = e.file_name().to_string_lossy().parse().ok()?;
                let target = std::fs::read_link(e.path()).ok()?;
                Some((fd, target.display().to_string()))
            })
            .collect()
    };
    let child = targets(pid);
    let daemon: Vec<String> = targets(d.pid()).into_iter().map(|(_, t)| t).collect();
    let of = |fd: u32| -> String {
        child
            .iter()
            .find(|(n, _)| *n == fd)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("fd {fd} is not open: {child:?}"))
    };
    for fd in 0..3 {
        assert!(of(fd).starts_with("/dev/pts/"), "fd {fd}: {child:?}");
    }
    let link = of(3);
    assert!(link.starts_with("socket:"), "fd 3 is the link: {child:?}");
    for (fd, target) in &child {
        let own = target.starts_with("/dev/pts/")
            || target == "/dev/tty"
            || *target == link
            || target.starts_with("anon_inode:")
            || target.starts_with("pipe:")
            || target.starts_with("socket:");
        assert!(
            own,
            "fd {fd} -> {target} leaked into the session: {child:?}"
        );
        if target.starts_with("socket:") || target.starts_with('/') && !target.starts_with("/dev/")
        {
            assert!(
                !daemon.contains(target),
                "fd {fd} -> {target} is the daemon's"
            );
        }
    }
    assert!(
        !daemon.contains(&link),
        "the daemon holds the other end of the link, not this one"
    );
}

/// Who the session process runs as and what environment it got.
fn check_identity_and_environment(pid: u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    if support::is_root() {
        let uids = field("Uid");
        let gids = field("Gid");
        assert!(uids.iter().all(|&u| u != 0 && u == uids[0]), "{uids:?}");
        assert!(gids.iter().all(|&g| g != 0 && g == gids[0]), "{gids:?}");
        assert!(field("Groups").is_empty(), "no supplementary groups");
        let passwd = std::fs::read_to_string("/etc/passwd").expect("passwd");
        let account = passwd
            .lines()
            .find(|l| l.split(':').nth(2) == Some(&uids[0].to_string()))
            .expect("the uid has an account");
        assert!(
            account.starts_with("vipanel-t"),
            "the test's account: {account}"
        );
        assert!(account.ends_with(":/usr/sbin/nologin"), "{account}");
    }
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    let mut names: Vec<String> = String::from_utf8_lossy(&environ)
        .split('\0')
        .filter(|v| !v.is_empty())
        .map(|v| v.split('=').next().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    assert!(
        String::from_utf8_lossy(&environ).contains("VIPANEL_SESSION_FD=3"),
        "{names:?}"
    );
    for name in &names {
        assert!(
            [
                "TERM",
                "VIPANEL_SESSION_FD",
                "VIPANEL_SESSION_START",
                "LANG",
                "NO_COLOR",
                "COLORTERM"
            ]
            .contains(&name.as_str())
                || name.starts_with("LC_"),
            "{name} reached the session: {names:?}"
        );
    }
}

#[test]
fn a_plain_login_runs_the_shell_as_the_session_account_and_exits_with_its_status() {
    let Some(d) = Daemon::start() else { return };
    let Some(term) = Tmux::start(&d, &d.admin_key, None) else {
        return;
    };
    // A plain login opens the dashboard; `!` switches to the shell.
    term.wait_for(&d, "1 Overview");
    term.keys(&["!"]);
    term.wait_for(&d, "admin@system> ");
    let pids = sessions_of(&d);
    assert_eq!(pids.len(), 1, "{:?}", children(d.pid()));
    check_identity_and_environment(pids[0]);
    check_descriptors(&d, pids[0]);
    term.type_line("whoami");
    let screen = term.wait_for(&d, "\nadmin\n");
    assert!(screen.contains("admin@system> whoami"), "{screen}");
    // The window size follows the client's.
    let mut resize = term.command();
    resize.args(["resize-window", "-x", "120", "-y", "40"]);
    assert!(resize.status().expect("tmux resize-window").success());
    wait_until("the PTY taking the new size", &d, || {
        pty_size(pids[0]) == Some((120, 40))
    });
    term.type_line("exit");
    assert_eq!(term.wait_exit(&d), 0);
    wait_until("the session process being reaped", &d, || {
        !alive_session(pids[0]) && children(d.pid()).is_empty()
    });
}

/// The size of the session's terminal, read through its fd 0 (as root or the same user).
fn pty_size(pid: u32) -> Option<(u16, u16)> {
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .open(format!("/proc/{pid}/fd/0"))
        .ok()?;
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into ws, which outlives the call.
    let rc = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some((ws.ws_col, ws.ws_row))
}

#[test]
fn kill_9_of_the_client_leaves_no_session_process() {
    let Some(d) = Daemon::start() else { return };
    let mut client = Client::start(&d, &d.admin_key, &[], None);
    wait_until("a session process", &d, || !sessions_of(&d).is_empty());
    let pids = sessions_of(&d);
    assert_eq!(pids.len(), 1);
    client.kill9();
    wait_until("the session process ending", &d, || {
        pids.iter().all(|&p| !alive_session(p)) && children(d.pid()).is_empty()
    });
    d.wait_for_log("reason=Some(ClientGone)", WAIT);
}

#[test]
fn daemon_shutdown_ends_every_session_process() {
    let Some(mut d) = Daemon::start() else { return };
    let one = Client::start(&d, &d.admin_key, &[], None);
    let two = Client::start(&d, &d.admin_key, &[], Some("shell"));
    wait_until("two session processes", &d, || sessions_of(&d).len() == 2);
    let pids = sessions_of(&d);
    d.terminate();
    let status = d.wait_exit(WAIT);
    assert!(status.success(), "{status}");
    // Both were told why, the dashboard and the shell alike.
    for client in [&two, &one] {
        let deadline = std::time::Instant::now() + WAIT;
        while !client.seen().contains("the panel is restarting") {
            assert!(
                std::time::Instant::now() < deadline,
                "never told: {:?}",
                client.seen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for pid in pids {
        assert!(
            !alive_session(pid),
            "session process {pid} outlived the daemon"
        );
    }
    let log = d.log();
    assert_eq!(log.matches("reason=Some(Shutdown)").count(), 2, "{log}");
}

#[test]
fn idle_sessions_are_warned_then_ended() {
    let Some(d) = Daemon::builder()
        .env("VIPANEL_SESSION__IDLE_TIMEOUT_SECS", "3")
        .env("VIPANEL_SESSION__IDLE_WARNING_SECS", "2")
        // Shorter than the session's: while a shell lives, the session's timeout decides.
        .env("VIPANEL_LIMITS__INACTIVITY_TIMEOUT_SECS", "1")
        .start()
    else {
        return;
    };
    let mut client = Client::start(&d, &d.admin_key, &[], None);
    wait_until("a session process", &d, || !sessions_of(&d).is_empty());
    let pid = sessions_of(&d)[0];
    let seen = client.wait_for(&d, "the session ended after 3 s without input");
    assert_ne!(client.wait_exit(&d), 0, "{seen}");
    assert!(!alive_session(pid));
    d.wait_for_log("reason=Some(Idle)", WAIT);
}

#[test]
fn sessions_beyond_the_limits_are_refused() {
    let Some(d) = Daemon::builder()
        .env("VIPANEL_SESSION__MAX_PER_USER", "2")
        .env("VIPANEL_SESSION__MAX_PER_CONNECTION", "1")
        .start()
    else {
        return;
    };
    let a = &d.admin_key;
    // Two shells on one connection: the second is refused.
    let master = d.master(a, PANEL);
    let opts = master.options();
    let _first = Client::start(&d, a, &opts, Some("shell"));
    wait_until("a session process", &d, || sessions_of(&d).len() == 1);
    let mut second = Client::start(&d, a, &opts, Some("shell"));
    assert_eq!(second.wait_exit(&d), 1);
    assert!(
        second.seen().contains("session.max_per_connection"),
        "{}",
        second.seen()
    );
    // A second connection is fine, a third session of the user is not.
    let _other = Client::start(&d, a, &[], None);
    wait_until("two session processes", &d, || sessions_of(&d).len() == 2);
    let mut third = Client::start(&d, a, &[], None);
    assert_eq!(third.wait_exit(&d), 1);
    assert!(
        third.seen().contains("session.max_per_user"),
        "{}",
        third.seen()
    );
    assert_eq!(sessions_of(&d).len(), 2);
}

#[test]
fn shell_without_a_terminal_is_a_usage_error() {
    let Some(d) = Daemon::start() else { return };
    let run = d.panel(&d.admin_key, &["shell"]);
    run.expect(2);
    assert!(run.stderr.contains("ssh -t -p"), "{run:?}");
    assert!(sessions_of(&d).is_empty());
}

/// Reads stdout lines of a running `ssh` as they come.
fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn audit_follow_over_exec_streams_rows_written_after_it_started() {
    let Some(d) = Daemon::builder()
        .env("VIPANEL_AUDIT__FOLLOW_INTERVAL_MS", "50")
        .start()
    else {
        return;
    };
    let line = support::remote_line(&["audit", "list", "--follow", "--limit", "1", "-o", "json"]);
    // -n: stdin at its end at once; the stream goes on anyway.
    let mut cmd = d.ssh_command(&d.admin_key, PANEL, &[], Some(&line), true);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut ssh = cmd.spawn().expect("ssh");
    let rows = lines_of(&mut ssh);
    let first = rows.recv_timeout(WAIT).expect("the newest row first");
    let first: serde_json::Value = serde_json::from_str(&first).expect("JSON Lines");
    d.admin(&["tenant", "create", "streamed"]).expect(0);
    let deadline = Instant::now() + WAIT;
    let mut found = false;
    while !found && Instant::now() < deadline {
        let Ok(line) = rows.recv_timeout(WAIT) else {
            break;
        };
        let row: serde_json::Value = serde_json::from_str(&line).expect("one object a line");
        assert!(row["seq"].as_i64() > first["seq"].as_i64(), "{line}");
        found = row["action"] == "tenant.create" && row["target"] == "streamed";
    }
    assert!(found, "the new row was streamed\n--- log ---\n{}", d.log());
    // The client going away ends the stream; the daemon notices at its next write or close.
    let _ = ssh.kill();
    let _ = ssh.wait();
}

#[test]
fn audit_follow_at_a_terminal_stops_at_ctrl_c_with_exit_0() {
    let Some(d) = Daemon::start() else { return };
    let line = support::remote_line(&["audit", "list", "--follow"]);
    let mut client = Client::start(&d, &d.admin_key, &[], Some(&line));
    client.wait_for(&d, "ACTION");
    client.0.input.write_all(b"\x03").expect("type Ctrl-C");
    assert_eq!(client.wait_exit(&d), 0, "{}", client.seen());
}

#[test]
fn serve_refuses_to_start_when_the_session_account_cannot_run_the_binary() {
    if !support::is_root() {
        eprintln!("skipping: only a daemon started as root runs sessions as another account");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let binary = dir.path().join("vipanel");
    std::fs::copy(env!("CARGO_BIN_EXE_vipanel"), &binary).expect("copy the binary");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let account = format!("vipanel-t{}-x", std::process::id());
    let mut cmd = Command::new(&binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VIPANEL_") {
            cmd.env_remove(&name);
        }
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("VIPANEL_AUTH__TOTP", "off")
        .env("VIPANEL_INITIAL_ADMIN_KEYS", "")
        .env("VIPANEL_SESSION__USER", &account);
    let run = support::run_bounded(&mut cmd, None, "vipanel serve (binary mode 0700)");
    let _ = Command::new("userdel").arg(&account).status();
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("cannot run"), "{}", run.stderr);
    assert!(
        run.stderr.contains("chmod 0755"),
        "the fix is named: {}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("listening"),
        "it never listened: {}",
        run.stdout
    );
}

#[test]
fn the_shell_completes_live_values_recalls_history_and_cancels_a_follow() {
    let Some(d) = Daemon::start() else { return };
    d.panel(&d.admin_key, &["site", "create", "zebra.example.com"])
        .expect(0);
    // An earlier session leaves a line in the history (kept by the daemon).
    {
        let Some(term) = Tmux::start(&d, &d.admin_key, Some("shell")) else {
            return;
        };
        term.wait_for(&d, "admin@system> ");
        term.type_line("tenant list");
        term.wait_for(&d, "USERS");
        term.type_line("exit");
        assert_eq!(term.wait_exit(&d), 0);
    }
    let Some(term) = Tmux::start(&d, &d.admin_key, Some("shell")) else {
        return;
    };
    term.wait_for(&d, "admin@system> ");
    // Up recalls the earlier session's lines (`exit`, then `tenant list`); Ctrl-C clears it.
    term.keys(&["Up"]);
    term.wait_for(&d, "admin@system> exit");
    term.keys(&["Up"]);
    term.wait_for(&d, "admin@system> tenant list");
    term.keys(&["C-c"]);
    // Tab completes a site domain that exists (a live value from the daemon).
    term.keys(&["-l", "site show zeb"]);
    term.keys(&["Tab"]);
    term.wait_for(&d, "site show zebra.example.com");
    term.keys(&["Enter"]);
    term.wait_for(&d, "active");
    // A streaming command runs until Ctrl-C, then the prompt comes back.
    term.type_line("audit list --follow");
    term.wait_for(&d, "site.create");
    term.keys(&["C-c"]);
    // (Counting prompts would not do: earlier ones scroll off the pane.)
    wait_until("the prompt after Ctrl-C", &d, || {
        term.screen().trim_end().ends_with("admin@system>")
    });
    term.type_line("exit");
    assert_eq!(term.wait_exit(&d), 0);
}

/// How long the shell reuses listed completion values (`VALUES_FRESH` in the session's
/// completer): a value seen sooner than this after the cache was filled came from an event.
const VALUES_FRESH: Duration = Duration::from_secs(5);

#[test]
fn a_site_created_by_another_connection_completes_at_once() {
    let Some(d) = Daemon::start() else { return };
    d.panel(&d.admin_key, &["site", "create", "alpha.example.com"])
        .expect(0);
    let Some(term) = Tmux::start(&d, &d.admin_key, Some("shell")) else {
        return;
    };
    term.wait_for(&d, "admin@system> ");
    // Tab fills the cache of site domains (and subscribes to changes): the one site completes.
    term.keys(&["-l", "site show "]);
    term.wait_for(&d, "admin@system> site show ");
    let filled = Instant::now();
    term.keys(&["Tab"]);
    term.wait_for(&d, "admin@system> site show alpha.example.com");
    term.keys(&["C-u"]);
    // Another connection creates a site; the open shell is told of it and asks again.
    d.panel(&d.admin_key, &["site", "create", "beta.example.com"])
        .expect(0);
    let created = filled.elapsed();
    let deadline = Instant::now() + WAIT;
    loop {
        term.keys(&["-l", "site show b"]);
        term.keys(&["Tab"]);
        std::thread::sleep(Duration::from_millis(200));
        if term.screen().contains("site show beta.example.com") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", term.screen());
        // Not told yet: close the empty menu, clear the line, try again.
        term.keys(&["Escape"]);
        term.keys(&["C-u"]);
    }
    let completed = filled.elapsed();
    assert!(
        completed < VALUES_FRESH,
        "completed {completed:?} after the cache was filled (the site was created after \
         {created:?}): the expiry, not the change, refreshed it"
    );
    term.keys(&["C-u"]);
    term.type_line("exit");
    let status = term.wait_exit(&d);
    assert_eq!(status, 0, "{}", term.screen());
}
