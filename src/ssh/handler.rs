//! The russh handler of one connection: authentication, then channel requests.
//!
//! Identity is bound only in `auth_publickey`, which russh calls after it verified the key's
//! signature; `auth_publickey_offered` merely says whether a key is worth signing with. When the
//! user has an authenticator, the key step is a partial success that leaves only
//! keyboard-interactive, whose `Verification code: ` answer must come on this same connection for
//! the same login name (russh itself does not enforce the order). A user without one is let in
//! to enroll first (see `enroll.rs`). Anything other than shell, exec, pty-req, window-change and
//! a few `env` names is refused.

use super::enroll::Enrollment;
use super::exec::{self, ChannelIo};
use super::pty::WinSize;
use super::shell::{self, Sessions};
use super::tracker::CommandTracker;
use crate::command::Invocation;
use crate::service::{CodeCheck, LoginCheck, LoginIdentity, SecondStep, Services};
use russh::MethodKind;
use russh::server::{
    Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use tokio::sync::{mpsc, watch};

/// The keyboard-interactive prompt for the second step.
const CODE_PROMPT: &str = "Verification code: ";

/// Environment variables a client may set (everything else is refused); they reach the
/// session process, and `LC_*` too.
const ALLOWED_ENV: [&str; 4] = ["TERM", "LANG", "NO_COLOR", "COLORTERM"];
/// `TERM` of a session whose client named none (or an odd one).
const DEFAULT_TERM: &str = "xterm-256color";

/// What every connection shares.
#[derive(Clone)]
pub struct Shared {
    pub services: Services,
    pub admission: std::sync::Arc<super::admission::Admission>,
    pub tracker: CommandTracker,
    /// Refused keys are audited at most this often daemon-wide, so a flood of key probes from
    /// many addresses cannot hold the database's write lock against real logins.
    pub refusal_audit: std::sync::Arc<std::sync::Mutex<super::penalties::LogBudget>>,
    /// Interactive sessions of every connection (limits, account, shutdown).
    pub sessions: Arc<Sessions>,
}

/// Per-connection state.
pub struct Connection {
    shared: Shared,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    identity: Option<LoginIdentity>,
    /// A key accepted for this login name, waiting for its code.
    key_step: Option<(String, LoginIdentity)>,
    /// The user has no authenticator yet: every channel enrolls it first.
    enrollment: Option<Enrollment>,
    /// A lockout notice was shown; the next keyboard-interactive answer is refused.
    lockout_shown: bool,
    channels: HashMap<ChannelId, ChannelState>,
    /// This connection's pre-authentication slot, freed at authentication.
    pending: std::sync::Arc<super::admission::Pending>,
    /// The live session (`session list`), from full authentication on; dropped with us.
    session: Option<crate::service::SessionGuard>,
    /// Interactive sessions open on this connection (`session.max_per_connection`).
    shells: Arc<AtomicU32>,
}

struct ChannelState {
    pty: bool,
    started: bool,
    /// An interactive session runs on this channel: its input is relayed to a PTY.
    interactive: bool,
    /// `TERM` from the pty-req.
    term: Option<String>,
    /// Environment variables the client set (allowed names only).
    env: Vec<(String, String)>,
    /// The terminal size (pty-req, then window-change), for an interactive session.
    size: watch::Sender<WinSize>,
    /// Set by a `signal` request; dropped with the state when the channel closes, which a
    /// running command or session notices.
    stop: watch::Sender<bool>,
    /// Input of an interactive session not yet written to its PTY.
    backlog: Arc<AtomicUsize>,
    stdin: Option<mpsc::UnboundedSender<Vec<u8>>>,
    stdin_rx: Option<mpsc::UnboundedReceiver<Vec<u8>>>,
    stdin_bytes: usize,
    /// The command's task once started; a finished one frees the channel's slot even when
    /// russh does not report the close (it skips the callback when we closed first).
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ChannelState {
    fn finished(&self) -> bool {
        self.task.as_ref().is_some_and(|t| t.is_finished())
    }
}

impl Connection {
    pub fn new(
        shared: Shared,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        pending: std::sync::Arc<super::admission::Pending>,
    ) -> Connection {
        Connection {
            shared,
            peer,
            local,
            identity: None,
            key_step: None,
            enrollment: None,
            lockout_shown: false,
            channels: HashMap::new(),
            pending,
            session: None,
            shells: Arc::default(),
        }
    }

    /// Checks a key for `login`; a refusal is recorded in the audit trail in the background
    /// (the client learns nothing beyond "denied"). A lookup failure refuses.
    async fn check_key(&self, login: &str, key: &russh::keys::PublicKey) -> Option<LoginIdentity> {
        let fingerprint = crate::domain::SshPublicKey::fingerprint_of(key);
        let source = self.peer.map(|p| p.ip());
        match self
            .shared
            .services
            .login_check(login, &fingerprint, source)
            .await
        {
            Ok(LoginCheck::Accepted(identity)) => Some(identity),
            Ok(refused) => {
                tracing::info!(login, peer = %self.source(), "public key refused");
                let allowed = self
                    .shared
                    .refusal_audit
                    .lock()
                    .map(|mut budget| budget.take(std::time::Instant::now()))
                    .unwrap_or(None);
                if let Some(skipped) = allowed {
                    let services = self.shared.services.clone();
                    let (login, source) = (login.to_owned(), self.source());
                    tokio::spawn(async move {
                        services
                            .login_refused(&login, &refused, &source, skipped)
                            .await
                    });
                }
                None
            }
            Err(err) => {
                tracing::error!(error = %err, "key lookup failed during login");
                None
            }
        }
    }

    /// The connection is authenticated as `identity` (every required step passed, or the key of
    /// a user who must enroll first): records the login, binds the identity and frees the
    /// pre-authentication slot (an enrolling connection keeps it until it has enrolled).
    /// `recorded`: the login's audit row was already written (with the accepted code).
    fn authenticated(&mut self, identity: LoginIdentity, login: &str, recorded: bool) {
        tracing::info!(user = %identity.actor.user, source = %identity.actor.source, "login");
        let services = self.shared.services.clone();
        let (row, name) = (identity.clone(), login.to_owned());
        // In the background: the login is not delayed by the audit write.
        tokio::spawn(async move { services.login_succeeded(&row, &name, recorded).await });
        if identity.second_step == SecondStep::Enroll {
            // Not yet authenticated: the slot and a (longer) deadline stay until it enrolls.
            self.pending.enrolling();
            self.enrollment = Some(Enrollment {
                identity: identity.clone(),
                login: login.to_owned(),
                done: Default::default(),
                pending: self.pending.clone(),
            });
        } else {
            self.pending.authenticated();
        }
        self.identity = Some(identity);
    }

    /// A refused code: the client may try again (keyboard-interactive stays open) until
    /// `limits.max_auth_attempts` is reached.
    fn code_refused(&self) -> Auth {
        self.pending.auth_failed();
        Auth::Reject {
            proceed_with_methods: Some(russh::MethodSet::from(
                &[MethodKind::KeyboardInteractive][..],
            )),
            partial_success: false,
        }
    }

    fn source(&self) -> String {
        self.peer
            .map_or_else(|| "unknown".into(), |p| p.to_string())
    }

    /// `ssh -p PORT panel@ADDRESS`, as the client reached us, for help examples.
    fn invocation(&self) -> Invocation {
        let prefix = match self.local {
            Some(addr) if addr.port() == 22 => format!("ssh panel@{}", addr.ip()),
            Some(addr) => format!("ssh -p {} panel@{}", addr.port(), addr.ip()),
            None => "ssh panel@HOST".into(),
        };
        Invocation { prefix }
    }

    /// Starts `line` on `channel` (`None`: a shell request). With a PTY, a shell request or the
    /// command `shell` starts an interactive session; without one, a shell request shows the
    /// welcome text and every line runs in-process.
    fn start(
        &mut self,
        channel: ChannelId,
        line: Option<String>,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let invocation = self.invocation();
        let (Some(identity), Some(state)) = (&self.identity, self.channels.get_mut(&channel))
        else {
            return session.channel_failure(channel);
        };
        let Some(stdin) = state.stdin_rx.take().filter(|_| !state.started) else {
            return session.channel_failure(channel);
        };
        state.started = true;
        session.channel_success(channel)?;
        let io = ChannelIo {
            handle: session.handle(),
            channel,
            pty: state.pty,
            stdin,
            stop: state.stop.subscribe(),
            stdin_ended: false,
        };
        let services = self.shared.services.clone();
        let actor = identity.actor.clone();
        let enrollment = self.enrollment.clone();
        let running = self.shared.tracker.start();
        // No command: the dashboard; `shell` or `tui`: that one (then the other is a key away).
        let interactive = line.as_deref().map_or(Some("tui"), |l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                ["shell"] => Some("shell"),
                ["tui"] => Some("tui"),
                _ => None,
            }
        });
        let wants_shell = interactive.is_some();
        if state.pty && wants_shell {
            state.interactive = true;
            let mut env = vec![(
                "TERM".to_owned(),
                state
                    .term
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TERM.to_owned()),
            )];
            env.extend(state.env.iter().filter(|(k, _)| k != "TERM").cloned());
            env.push((
                "VIPANEL_SESSION_START".to_owned(),
                interactive.unwrap_or("tui").to_owned(),
            ));
            tracing::debug!(user = %actor.user, "interactive session");
            let start = shell::ShellStart {
                services,
                actor,
                invocation,
                enrollment,
                io,
                env,
                size: state.size.subscribe(),
                backlog: state.backlog.clone(),
                sessions: self.shared.sessions.clone(),
                on_connection: self.shells.clone(),
                tracker: self.shared.tracker.clone(),
            };
            state.task = Some(tokio::spawn(async move {
                shell::run(start).await;
                drop(running);
            }));
            return Ok(());
        }
        let line = line.unwrap_or_default();
        // Only the command words: arguments may one day carry secrets.
        let words: Vec<&str> = line.split_whitespace().take(2).collect();
        tracing::debug!(user = %actor.user, command = %words.join(" "), "exec");
        state.task = Some(tokio::spawn(async move {
            exec::run(services, actor, line, io, invocation, enrollment).await;
            drop(running);
        }));
        Ok(())
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.check_key(user, offer.public_key).await {
            Some(_) => Auth::Accept,
            None => {
                self.pending.auth_failed();
                Auth::reject()
            }
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Some(mut identity) = self.check_key(user, key.public_key).await else {
            self.pending.auth_failed();
            return Ok(Auth::reject());
        };
        identity.actor.source = self.source();
        if identity.second_step == SecondStep::Code {
            self.key_step = Some((user.to_owned(), identity));
            return Ok(Auth::Reject {
                proceed_with_methods: Some(russh::MethodSet::from(
                    &[MethodKind::KeyboardInteractive][..],
                )),
                partial_success: true,
            });
        }
        self.authenticated(identity, user, false);
        Ok(Auth::Accept)
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        // Only after this connection's key step, for the same login name.
        let Some((login, identity)) = self.key_step.clone().filter(|(l, _)| l == user) else {
            self.pending.auth_failed();
            return Ok(Auth::reject());
        };
        let Some(mut answers) = response else {
            return Ok(code_prompt());
        };
        if std::mem::take(&mut self.lockout_shown) {
            // The client was told about the lockout; nothing is left to try on this
            // connection (an empty method list would make OpenSSH start over).
            return Err(russh::Error::Disconnect);
        }
        let typed = answers
            .next()
            .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
            .unwrap_or_default();
        let services = self.shared.services.clone();
        match services.verify_second_step(&identity, &login, &typed).await {
            Ok(CodeCheck::Accepted) => {
                self.key_step = None;
                self.authenticated(identity, &login, true);
                Ok(Auth::Accept)
            }
            Ok(CodeCheck::Refused) => {
                // Slow down guessing; a good code is answered at once.
                let delay = services.config.auth.code_failure_delay_ms;
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                Ok(self.code_refused())
            }
            Ok(CodeCheck::LockedOut(until)) => {
                tracing::warn!(user = %identity.actor.user, peer = %self.source(), "login locked out");
                self.pending.auth_failed();
                self.lockout_shown = true;
                Ok(Auth::Partial {
                    name: "".into(),
                    instructions: crate::service::locked_out_error(&identity.actor.user, until)
                        .message
                        .into(),
                    prompts: Vec::new().into(),
                })
            }
            Err(err) => {
                tracing::error!(error = %err, "second step failed");
                Ok(self.code_refused())
            }
        }
    }

    /// Called once every required step passed: registers the session, and disconnects the
    /// connection when `session kill` ends it.
    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        if let Some(identity) = &self.identity {
            let guard = self.shared.services.session_start(&identity.actor);
            let (killed, handle) = (guard.kill_signal(), session.handle());
            tokio::spawn(async move {
                if let Some(by) = killed.killed().await {
                    let reason = format!("session killed by {by}");
                    let bye = russh::Disconnect::ByApplication;
                    let _ = handle.disconnect(bye, reason, "en".into()).await;
                }
            });
            self.session = Some(guard);
        }
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Requests and data reach us through the handler callbacks; the Channel object is not used.
        self.channels.retain(|_, state| !state.finished());
        let max_channels = usize::try_from(
            self.shared
                .services
                .config
                .limits
                .max_channels_per_connection,
        )
        .unwrap_or(10);
        if self.identity.is_none() || self.channels.len() >= max_channels {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        let id = channel.id();
        let (tx, rx) = mpsc::unbounded_channel();
        self.channels.insert(
            id,
            ChannelState {
                pty: false,
                started: false,
                interactive: false,
                term: None,
                env: Vec::new(),
                size: watch::channel(WinSize::from_request(0, 0)).0,
                stop: watch::channel(false).0,
                backlog: Arc::default(),
                stdin: Some(tx),
                stdin_rx: Some(rx),
                stdin_bytes: 0,
                task: None,
            },
        );
        reply.accept().await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(state) if !state.started => {
                state.pty = true;
                state.term = is_term_name(term).then(|| term.to_owned());
                state.size.send_replace(WinSize::from_request(cols, rows));
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(state) = self.channels.get(&channel) {
            state.size.send_replace(WinSize::from_request(cols, rows));
        }
        session.channel_success(channel)
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        _signal: russh::Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Stops a streaming command (`audit list --follow`); nothing else listens.
        if let Some(state) = self.channels.get(&channel) {
            state.stop.send_replace(true);
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let allowed = (ALLOWED_ENV.contains(&name) || is_locale_name(name)) && is_env_value(value);
        match self.channels.get_mut(&channel) {
            Some(state) if allowed && !state.started => {
                if name == "TERM" {
                    state.term = is_term_name(value).then(|| value.to_owned());
                } else if state.env.len() < 32 {
                    state.env.retain(|(k, _)| k != name);
                    state.env.push((name.to_owned(), value.to_owned()));
                }
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, None, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match String::from_utf8(data.to_vec()) {
            Ok(line) => self.start(channel, Some(line), session),
            Err(_) => session.channel_failure(channel),
        }
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single: bool,
        _protocol: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        _path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let limit = usize::try_from(self.shared.services.config.limits.max_stdin_bytes)
            .unwrap_or(usize::MAX);
        if let Some(state) = self.channels.get_mut(&channel)
            && let Some(tx) = &state.stdin
        {
            if state.interactive {
                // Keystrokes have no total limit, but what waits for the PTY is bounded: a
                // session process that stops reading cannot make the daemon buffer without end.
                if state.backlog.load(Ordering::SeqCst) + data.len() <= limit {
                    state.backlog.fetch_add(data.len(), Ordering::SeqCst);
                    let _ = tx.send(data.to_vec());
                }
                return Ok(());
            }
            // Past the limit (plus one byte, so the reader can tell) the rest is dropped.
            if state.stdin_bytes <= limit {
                let take = data.len().min(limit + 1 - state.stdin_bytes);
                state.stdin_bytes += take;
                let _ = tx.send(data[..take].to_vec());
            }
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(state) = self.channels.get_mut(&channel) {
            state.stdin = None;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }
}

/// A `TERM` value worth passing on: a short terminal name (`xterm-256color`, `screen.xterm`).
fn is_term_name(term: &str) -> bool {
    !term.is_empty()
        && term.len() <= 64
        && term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
}

/// `LC_ALL`, `LC_CTYPE`, …
fn is_locale_name(name: &str) -> bool {
    name.strip_prefix("LC_").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 32
            && rest.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    })
}

/// A value passed on to the session process's environment: short, printable.
fn is_env_value(value: &str) -> bool {
    value.len() <= 256 && !value.chars().any(char::is_control)
}

/// The one prompt of the second step, not echoed.
fn code_prompt() -> Auth {
    Auth::Partial {
        name: "".into(),
        instructions: "".into(),
        prompts: vec![(CODE_PROMPT.into(), false)].into(),
    }
}
