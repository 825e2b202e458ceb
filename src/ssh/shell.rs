//! One interactive session: `pty-req` + `shell` (or `exec shell` with a PTY). After the
//! login-time enrollment when the user must enroll, the daemon spawns `/proc/self/exe
//! __session` on a new PTY with the session's link as fd 3, serves the link (`link.rs`) as the
//! connection's actor, and relays bytes between the SSH channel and the PTY master until the
//! process exits; its exit status goes back to the client.
//!
//! A session ends from outside when the channel closes or the connection drops (client gone),
//! when the user typed nothing for `session.idle_timeout_secs` (warned `idle_warning_secs`
//! before), or at daemon shutdown ("the panel is restarting"). Then the process group gets
//! SIGHUP, SIGKILL after `session.hangup_grace_ms`, and is reaped. A dropped [`Process`] kills
//! and (through tokio's orphan reaper) reaps it too: no orphan, whatever path ends the task.

use super::exec::ChannelIo;
use super::link::{self, Link, Notices, Outbox};
use super::pty::{self, Account, PtyMaster, WinSize};
use super::session_account::SELF_EXE;
use crate::command::{Invocation, Outcome};
use crate::service::{Actor, Services};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What a session is told when the daemon shuts down.
const RESTARTING: &str = "the panel is restarting; log in again in a moment";

/// Shared by every connection: who sessions run as, how many each user has, and the shutdown
/// signal.
pub struct Sessions {
    account: Option<Account>,
    per_user: Mutex<HashMap<i64, u32>>,
    closing: watch::Sender<bool>,
}

impl Sessions {
    pub fn new(account: Option<Account>) -> Sessions {
        Sessions {
            account,
            per_user: Mutex::new(HashMap::new()),
            closing: watch::channel(false).0,
        }
    }

    /// Ends every session: "the panel is restarting", then hang-up (shutdown).
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Takes a session slot for `user_id`, or says why not.
    fn take(
        self: &Arc<Self>,
        user_id: Option<i64>,
        on_connection: &Arc<AtomicU32>,
        limits: &crate::config::SessionConfig,
    ) -> Result<Slot, String> {
        if *self.closing.borrow() {
            return Err(RESTARTING.into());
        }
        let user = user_id.unwrap_or(-1);
        // Both counts are checked and taken under one lock, so two shells starting at once on
        // one connection cannot both pass.
        let mut per_user = self.per_user.lock().unwrap_or_else(PoisonError::into_inner);
        if on_connection.load(Ordering::SeqCst) >= limits.max_per_connection {
            return Err(format!(
                "this connection already has {} interactive sessions (session.max_per_connection); \
                 close one first",
                limits.max_per_connection
            ));
        }
        let count = per_user.entry(user).or_default();
        if *count >= limits.max_per_user {
            return Err(format!(
                "you already have {} interactive sessions open (session.max_per_user); close one \
                 first",
                limits.max_per_user
            ));
        }
        *count += 1;
        on_connection.fetch_add(1, Ordering::SeqCst);
        Ok(Slot {
            sessions: self.clone(),
            user,
            on_connection: on_connection.clone(),
        })
    }
}

/// One session's place in the per-user and per-connection counts, freed on drop.
struct Slot {
    sessions: Arc<Sessions>,
    user: i64,
    on_connection: Arc<AtomicU32>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.on_connection.fetch_sub(1, Ordering::SeqCst);
        let mut per_user = self
            .sessions
            .per_user
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_user.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_user.remove(&self.user);
            }
        }
    }
}

/// Everything a session needs from the handler.
pub struct ShellStart {
    pub services: Services,
    pub actor: Actor,
    pub invocation: Invocation,
    pub enrollment: Option<super::enroll::Enrollment>,
    pub io: ChannelIo,
    /// `TERM` and the other environment variables the client sent (already filtered).
    pub env: Vec<(String, String)>,
    /// The terminal size: from the `pty-req`, then every `window-change`.
    pub size: watch::Receiver<WinSize>,
    /// Bytes received from the client and not yet written to the PTY.
    pub backlog: Arc<AtomicUsize>,
    pub sessions: Arc<Sessions>,
    pub on_connection: Arc<AtomicU32>,
    pub tracker: super::CommandTracker,
}

/// Why the relay stopped before the process exited by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    ClientGone,
    Idle,
    Shutdown,
}

/// Runs one interactive session to its end and finishes the channel.
pub async fn run(start: ShellStart) {
    let ShellStart {
        services,
        actor,
        invocation,
        enrollment,
        mut io,
        env,
        size,
        backlog,
        sessions,
        on_connection,
        tracker,
    } = start;
    let refuse = |message: String| Outcome {
        stdout: Vec::new(),
        stderr: format!("vipanel: {message}\n").into_bytes(),
        exit: 1,
    };
    let format = crate::command::Format::Table;
    if let Some(enrollment) = enrollment {
        let fresh = !enrollment.done.load(Ordering::SeqCst);
        if let Err(err) = enrollment.run(&services, &mut io, &invocation).await {
            return io
                .finish(crate::command::output::render_error(&err, format))
                .await;
        }
        // The recovery codes were just shown: the dashboard's screen would cover them at once.
        if fresh
            && io
                .read_line("Press Enter when you have stored them. ", 64)
                .await
                .is_none()
        {
            return io
                .finish(refuse("the session ended before it started".into()))
                .await;
        }
    }
    // What enrollment read went through the same counter; the relay starts from nothing.
    backlog.store(0, Ordering::SeqCst);
    let actor = match services.refresh_actor(&actor).await {
        Ok(actor) => actor,
        Err(err) => {
            return io
                .finish(crate::command::output::render_error(&err, format))
                .await;
        }
    };
    let limits = &services.config.session;
    let _slot = match sessions.take(actor.user_id, &on_connection, limits) {
        Ok(slot) => slot,
        Err(why) => return io.finish(refuse(why)).await,
    };
    let spawned = spawn(&env, *size.borrow(), sessions.account);
    let (master, mut process, link_stream) = match spawned {
        Ok(parts) => parts,
        Err(err) => {
            tracing::error!(error = %err, "cannot start a session process");
            return io
                .finish(refuse(format!(
                    "cannot start the interactive session: {err}"
                )))
                .await;
        }
    };
    tracing::info!(user = %actor.user, pid = process.pid, "interactive session started");
    let outbox = Outbox::new();
    let notices = outbox.notices();
    let link = Link {
        services: services.clone(),
        actor: actor.clone(),
        invocation,
        tracker,
    };
    let link_task = tokio::spawn(link::serve(link, link_stream, outbox));
    let master = Arc::new(master);
    let (typed, last_input) = watch::channel(Instant::now());
    let stdin = std::mem::replace(&mut io.stdin, mpsc::unbounded_channel().1);
    let input = tokio::spawn(feed_input(stdin, master.clone(), backlog, typed));
    let mut relay = Relay {
        services: &services,
        io: &io,
        master: &master,
        size,
        last_input,
        notices,
        closing: sessions.closing.subscribe(),
    };
    let ended = relay.run(&mut process).await;
    input.abort();
    let grace = Duration::from_millis(limits.hangup_grace_ms);
    let status = relay.finish(&mut process, ended, grace).await;
    // The child is gone, so the link sees its end and cleans up (streams, subscriptions); the
    // abort is only for a link that does not notice in time. In the background: the client's
    // exit status must not wait for it.
    tokio::spawn(async move {
        let mut link_task = link_task;
        if tokio::time::timeout(Duration::from_secs(5), &mut link_task)
            .await
            .is_err()
        {
            link_task.abort();
        }
    });
    tracing::info!(user = %actor.user, pid = process.pid, status, reason = ?ended, "interactive session ended");
    let mut outcome = Outcome {
        exit: u8::try_from(status).unwrap_or(255),
        ..Outcome::default()
    };
    if ended == Some(Ended::Idle) {
        outcome.stderr = format!(
            "\r\nvipanel: the session ended after {} without input\r\n",
            span(Duration::from_secs(limits.idle_timeout_secs))
        )
        .into_bytes();
    }
    // Said by the daemon itself too: the dashboard's screen is gone with its process, and the
    // notice on the link may not have been shown.
    if ended == Some(Ended::Shutdown) {
        outcome.stderr = format!("\r\nvipanel: {RESTARTING}\r\n").into_bytes();
    }
    io.finish(outcome).await;
}

/// Opens the PTY and the link and spawns the process.
fn spawn(
    env: &[(String, String)],
    size: WinSize,
    account: Option<Account>,
) -> std::io::Result<(PtyMaster, Process, tokio::net::UnixStream)> {
    // The terminal stays the daemon's (root's, mode 0620 group tty): the session process uses
    // only the descriptors it inherits, so other sessions under the same account cannot open it.
    let (master, slave) = pty::open(size)?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let ours = tokio::net::UnixStream::from_std(ours)?;
    let mut env = env.to_vec();
    env.push(("VIPANEL_SESSION_FD".into(), "3".into()));
    let child = pty::spawn(
        &pty::SessionCommand {
            program: SELF_EXE,
            args: &["__session"],
            env: &env,
            account,
        },
        slave,
        theirs.into(),
    )?;
    let pid = child.id().unwrap_or(0);
    Ok((master, Process { child, pid }, ours))
}

/// Copies the client's keystrokes to the PTY, noting when the user last typed.
async fn feed_input(
    mut stdin: mpsc::UnboundedReceiver<Vec<u8>>,
    master: Arc<PtyMaster>,
    backlog: Arc<AtomicUsize>,
    typed: watch::Sender<Instant>,
) {
    while let Some(bytes) = stdin.recv().await {
        // Saturating: what enrollment read was counted too, and the count restarts from zero.
        let _ = backlog.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |queued| {
            Some(queued.saturating_sub(bytes.len()))
        });
        // The terminal's own answers (to the shell's cursor-position queries) are not typing:
        // else the idle warning's repaint would answer itself and reset the idle timer.
        if !only_cursor_reports(&bytes) {
            typed.send_replace(Instant::now());
        }
        if master.write_all(&bytes).await.is_err() {
            break;
        }
    }
}

/// Whether `bytes` holds nothing but cursor-position reports (`ESC [ row ; col R`).
fn only_cursor_reports(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let Some(tail) = rest.strip_prefix(b"\x1b[") else {
            return false;
        };
        let Some(end) = tail.iter().position(|&b| b == b'R') else {
            return false;
        };
        let (numbers, after) = tail.split_at(end);
        let mut parts = numbers.split(|&b| b == b';');
        let digits =
            |p: Option<&[u8]>| p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
        if !(digits(parts.next()) && digits(parts.next()) && parts.next().is_none()) {
            return false;
        }
        rest = &after[1..];
    }
    true
}

struct Relay<'a> {
    services: &'a Services,
    io: &'a ChannelIo,
    master: &'a PtyMaster,
    size: watch::Receiver<WinSize>,
    last_input: watch::Receiver<Instant>,
    notices: Notices,
    closing: watch::Receiver<bool>,
}

impl Relay<'_> {
    /// Relays until the process exits (`None`) or the session is ended from outside.
    async fn run(&mut self, process: &mut Process) -> Option<Ended> {
        let limits = &self.services.config.session;
        let idle = (limits.idle_timeout_secs > 0).then(|| {
            (
                Duration::from_secs(limits.idle_timeout_secs),
                Duration::from_secs(limits.idle_warning_secs),
            )
        });
        // russh closes a connection without traffic after limits.inactivity_timeout_secs. While a
        // shell lives, its own idle timeout (when set) decides instead: the connection is nudged
        // well within that time by an empty data message, which resets russh's timer and puts
        // nothing on the wire. With no idle timeout, russh's applies.
        let inactivity = Duration::from_secs(self.services.config.limits.inactivity_timeout_secs);
        let mut nudge = tokio::time::interval(inactivity / 3);
        nudge.reset();
        let mut output_open = true;
        let mut buf = vec![0u8; 16 * 1024];
        let mut warned_at: Option<Instant> = None;
        loop {
            let last = *self.last_input.borrow();
            if warned_at.is_some_and(|w| last > w) {
                warned_at = None;
            }
            let deadline = idle.map(|(timeout, warning)| match warned_at {
                None => last + timeout.saturating_sub(warning),
                Some(_) => last + timeout,
            });
            tokio::select! {
                _ = process.child.wait() => return None,
                read = self.master.read(&mut buf), if output_open => match read {
                    Ok(n) if n > 0 => {
                        // A client that stopped reading (its window full) must not hold off
                        // the shutdown or the idle end while the output waits for it.
                        let io = self.io;
                        let bytes = buf.get(..n).unwrap_or_default().to_vec();
                        let idle_end = idle.map(|(timeout, _)| last + timeout);
                        let sent = tokio::select! {
                            sent = io.handle.data(io.channel, bytes) => sent.is_ok(),
                            _ = self.closing.changed() => return Some(Ended::Shutdown),
                            () = sleep_until(idle_end) => return Some(Ended::Idle),
                        };
                        if !sent {
                            return Some(Ended::ClientGone);
                        }
                    }
                    _ => output_open = false,
                },
                changed = self.size.changed() => match changed {
                    Ok(()) => {
                        let size = *self.size.borrow_and_update();
                        let _ = self.master.resize(size);
                    }
                    // The channel's state is gone: closed, or the connection dropped.
                    Err(_) => return Some(Ended::ClientGone),
                },
                _ = self.closing.changed() => {
                    self.notices.send(RESTARTING);
                    return Some(Ended::Shutdown);
                }
                () = sleep_until(deadline) => {
                    if *self.last_input.borrow() > last {
                        continue;
                    }
                    if warned_at.is_none() && let Some((timeout, warning)) = idle {
                        warned_at = Some(Instant::now());
                        self.notices.send(format!(
                            "no input for {}: this session ends in {} unless you type something",
                            span(timeout.saturating_sub(warning)),
                            span(warning)
                        ));
                    } else {
                        return Some(Ended::Idle);
                    }
                }
                _ = nudge.tick(), if idle.is_some() => {
                    let _ = self.io.handle.data(self.io.channel, Vec::new()).await;
                }
            }
        }
    }
}

impl Relay<'_> {
    /// Sends `buf[..n]` to the client; false when the connection is gone.
    async fn forward(&self, buf: &[u8], n: usize) -> bool {
        let bytes = buf.get(..n).unwrap_or_default().to_vec();
        self.io.handle.data(self.io.channel, bytes).await.is_ok()
    }

    /// Waits for the process to exit (after hanging it up when the session was `ended` from
    /// outside) while its last output still reaches the client, and returns its exit status.
    async fn finish(&self, process: &mut Process, ended: Option<Ended>, grace: Duration) -> i32 {
        let mut buf = vec![0u8; 16 * 1024];
        let exited = async {
            match ended {
                None => process.wait().await,
                Some(why) => {
                    if why != Ended::ClientGone {
                        // A moment for the process to show the notice it was just sent.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    process.hang_up(grace).await
                }
            }
        };
        tokio::pin!(exited);
        let mut output_open = ended != Some(Ended::ClientGone);
        let status = loop {
            tokio::select! {
                status = &mut exited => break status,
                read = self.master.read(&mut buf), if output_open => match read {
                    // Bounded: a client that stopped reading does not delay the hang-up.
                    Ok(n) if n > 0 => output_open = tokio::time::timeout(DRAIN * 5, self.forward(&buf, n))
                        .await
                        .unwrap_or(false),
                    _ => output_open = false,
                },
            }
        };
        // What the process wrote just before it exited.
        while output_open {
            match tokio::time::timeout(DRAIN, self.master.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    output_open = tokio::time::timeout(DRAIN * 5, self.forward(&buf, n))
                        .await
                        .unwrap_or(false)
                }
                _ => break,
            }
        }
        status
    }
}

/// How long output may still trickle in after the process exited.
const DRAIN: Duration = Duration::from_millis(200);

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The session process. Dropped while alive, it is killed (SIGKILL to its process group) and
/// tokio reaps it.
struct Process {
    child: tokio::process::Child,
    pid: u32,
}

impl Process {
    /// Waits for the exit; the status as a shell reports it (128 + signal when killed).
    async fn wait(&mut self) -> i32 {
        match self.child.wait().await {
            Ok(status) => exit_code(status),
            Err(_) => 255,
        }
    }

    /// SIGHUP, then SIGKILL after `grace`; reaped before this returns.
    async fn hang_up(&mut self, grace: Duration) -> i32 {
        if let Ok(Some(status)) = self.child.try_wait() {
            return exit_code(status);
        }
        pty::signal_group(self.pid, libc::SIGHUP);
        if let Ok(status) = tokio::time::timeout(grace, self.child.wait()).await {
            return status.map_or(255, exit_code);
        }
        pty::signal_group(self.pid, libc::SIGKILL);
        self.wait().await
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            pty::signal_group(self.pid, libc::SIGKILL);
        }
    }
}

/// `15 min`, `90 s`.
fn span(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

#[cfg(test)]
mod tests {
    use super::only_cursor_reports;

    #[test]
    fn cursor_reports_are_not_typing() {
        assert!(only_cursor_reports(b"\x1b[12;1R"));
        assert!(only_cursor_reports(b"\x1b[1;1R\x1b[30;100R"));
        for typed in [
            &b""[..],
            b"a",
            b"\x1b[A",
            b"\x1b[12;1Rx",
            b"\x1b[;1R",
            b"\x1b[1;2;3R",
            b"\x1b[12;1",
        ] {
            assert!(!only_cursor_reports(typed), "{typed:?}");
        }
    }
}
