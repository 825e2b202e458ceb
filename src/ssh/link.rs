//! The daemon's side of a session's link: serving the requests of one `vipanel __session`
//! process (framing and messages in `crate::rpc`).
//!
//! Every request runs as the [`Actor`] bound to the link when the daemon spawned the process,
//! re-read before each request (`refresh_actor`, as for exec). Nothing a frame says can change
//! it: the messages name no user, tenant or role, and unknown fields are refused. The process
//! is not trusted: a malformed, oversized or unknown frame, a second `hello`, or anything before
//! `hello` ends the link (an `error` reply first, when it can still be written); the child then
//! reads EOF. Requests run concurrently, each in its own task, at most `session.max_requests`
//! at once, so a slow one never holds up a `cancel` or a `confirm`. Subscriptions (`subscribe`)
//! are served beside them by one poller task per link (`super::subscriptions`).

use super::subscriptions::{self, Feed, Refusal};
use crate::command::{self, CommandIo, Invocation};
use crate::error::{Error, Result};
use crate::rpc::{self, CompletionKind, FrameError, PROTOCOL_VERSION, Reply, Request};
use crate::service::{Actor, Services};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

/// Replies waiting to be written; a child that stops reading holds up its own requests only.
const OUTBOX: usize = 64;
/// Output larger than this goes out as `output` frames before `done`, so no frame nears the
/// frame limit.
const CHUNK: usize = 1024 * 1024;
/// How long the replies still queued may take to be written once the link ends.
const FLUSH: Duration = Duration::from_secs(1);

/// What a link serves, and as whom.
pub struct Link {
    pub services: Services,
    /// Bound when the session process was spawned; never taken from the link.
    pub actor: Actor,
    /// The `ssh …` prefix the client reached the daemon with (help texts, the welcome).
    pub invocation: Invocation,
    pub tracker: super::CommandTracker,
}

/// The queue of replies of one link, made before it is served so notices can be sent into it.
pub struct Outbox {
    tx: mpsc::Sender<Reply>,
    rx: mpsc::Receiver<Reply>,
}

impl Outbox {
    pub fn new() -> Outbox {
        let (tx, rx) = mpsc::channel(OUTBOX);
        Outbox { tx, rx }
    }

    /// A handle for notices to the session's user.
    pub fn notices(&self) -> Notices {
        Notices(self.tx.clone())
    }
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new()
    }
}

/// Sends notices (idle warning, "the panel is restarting") to a session.
#[derive(Clone)]
pub struct Notices(mpsc::Sender<Reply>);

impl Notices {
    /// Queues `text`; false when the link is gone or its queue is full.
    pub fn send(&self, text: impl Into<String>) -> bool {
        self.0.try_send(Reply::Notice { text: text.into() }).is_ok()
    }
}

/// How a link ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEnd {
    /// The session process closed it.
    Closed,
    /// The process broke the protocol (the reason); the daemon closed the link.
    Refused(String),
}

/// A request running on the link: how to stop it, and where its confirmation goes.
struct Running {
    cancel: watch::Sender<bool>,
    confirm: Option<oneshot::Sender<bool>>,
}

type Table = Arc<Mutex<HashMap<u64, Running>>>;

fn lock(table: &Table) -> std::sync::MutexGuard<'_, HashMap<u64, Running>> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves the link on `stream` until the session process closes it or breaks the protocol.
pub async fn serve(link: Link, stream: UnixStream, outbox: Outbox) -> LinkEnd {
    let (mut input, output) = stream.into_split();
    let Outbox { tx, rx } = outbox;
    let mut writer = tokio::spawn(write_loop(output, rx));
    let link = Arc::new(link);
    let table: Table = Arc::default();
    let feed = Arc::new(Feed::default());
    let end = read_loop(&link, &mut input, &tx, &table, &feed).await;
    match &end {
        LinkEnd::Closed => tracing::debug!(user = %link.actor.user, "session link closed"),
        LinkEnd::Refused(why) => {
            tracing::warn!(user = %link.actor.user, reason = %why, "session link refused")
        }
    }
    // Streaming requests stop; the others finish (a change is never cut in half).
    for running in lock(&table).values() {
        running.cancel.send_replace(true);
    }
    feed.close();
    drop(tx);
    drop(input);
    if tokio::time::timeout(FLUSH, &mut writer).await.is_err() {
        writer.abort();
    }
    end
}

async fn write_loop(mut output: OwnedWriteHalf, mut rx: mpsc::Receiver<Reply>) {
    while let Some(reply) = rx.recv().await {
        if rpc::write_frame_async(&mut output, &reply).await.is_err() {
            break;
        }
    }
}

async fn read_loop(
    link: &Arc<Link>,
    input: &mut OwnedReadHalf,
    tx: &mpsc::Sender<Reply>,
    table: &Table,
    feed: &Arc<Feed>,
) -> LinkEnd {
    let refuse = |why: String| async move {
        let _ = tx
            .send(Reply::Error {
                id: None,
                message: why.clone(),
            })
            .await;
        LinkEnd::Refused(why)
    };
    match rpc::read_frame_async::<_, Request>(input).await {
        Ok(Request::Hello { version }) if version == PROTOCOL_VERSION => {
            match link.services.refresh_actor(&link.actor).await {
                Ok(actor) => {
                    let welcome = Reply::Welcome {
                        version: PROTOCOL_VERSION,
                        user: actor.user,
                        tenant: actor.tenant,
                        role: actor.role.to_string(),
                        prefix: link.invocation.prefix.clone(),
                    };
                    if tx.send(welcome).await.is_err() {
                        return LinkEnd::Closed;
                    }
                }
                Err(err) => return refuse(err.message).await,
            }
        }
        Ok(Request::Hello { version }) => {
            return refuse(format!(
                "protocol version {version} is not spoken here (the daemon speaks \
                 {PROTOCOL_VERSION}); the session process and the daemon differ"
            ))
            .await;
        }
        Ok(_) => return refuse("the first message must be hello".into()).await,
        Err(FrameError::Closed) => return LinkEnd::Closed,
        Err(err) => return refuse(err.to_string()).await,
    }
    let permits = Arc::new(Semaphore::new(
        usize::try_from(link.services.config.session.max_requests).unwrap_or(16),
    ));
    // History lines are stored one after the other, in the order typed, by one task.
    let (history, lines) = mpsc::channel(OUTBOX);
    tokio::spawn(store_history(link.clone(), lines));
    loop {
        let request = match rpc::read_frame_async::<_, Request>(input).await {
            Ok(request) => request,
            Err(FrameError::Closed) => return LinkEnd::Closed,
            // The session exited with replies it had not read yet (a dashboard quitting while
            // an event was on its way): an end, not a protocol error.
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return LinkEnd::Closed;
            }
            Err(err) => return refuse(err.to_string()).await,
        };
        let id = request_id(&request);
        match request {
            Request::Hello { .. } => return refuse("hello was already said".into()).await,
            Request::Cancel { id } => {
                if let Some(running) = lock(table).get(&id) {
                    running.cancel.send_replace(true);
                } else {
                    feed.cancel(id);
                }
            }
            Request::Subscribe { id, topics } => {
                let accepted = match feed.check(id, &topics) {
                    Ok(()) if lock(table).contains_key(&id) => {
                        Err(Refusal::Request(format!("request {id} is still running")))
                    }
                    // The head is read here, before the next frame: what happens from now on is
                    // seen.
                    Ok(()) => subscriptions::start(&link.services, &link.actor)
                        .await
                        .map_err(|err| {
                            Refusal::Request(format!("cannot subscribe: {}", err.message))
                        }),
                    Err(refusal) => Err(refusal),
                };
                match accepted {
                    Ok(head) => {
                        if feed.insert(id, &topics, head) {
                            let poller =
                                subscriptions::poll(link.clone(), feed.clone(), tx.clone());
                            tokio::spawn(poller);
                        }
                    }
                    Err(Refusal::Request(message)) => {
                        let _ = tx
                            .send(Reply::Error {
                                id: Some(id),
                                message,
                            })
                            .await;
                    }
                    Err(Refusal::Link(why)) => return refuse(why).await,
                }
            }
            Request::Confirm { id, yes } => {
                if let Some(answer) = lock(table).get_mut(&id).and_then(|r| r.confirm.take()) {
                    let _ = answer.send(yes);
                }
            }
            Request::HistoryAdd { line } => {
                if history.try_send(line).is_err() {
                    tracing::debug!("shell history line dropped: too many waiting");
                }
            }
            request => {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    if let Some(id) = id {
                        let message = format!(
                            "too many requests in flight (session.max_requests = {})",
                            link.services.config.session.max_requests
                        );
                        let _ = tx
                            .send(Reply::Error {
                                id: Some(id),
                                message,
                            })
                            .await;
                    }
                    continue;
                };
                if let Request::Run { id, .. } = &request
                    && (feed.has(*id) || !register(table, *id))
                {
                    let message = format!("request {id} is still running");
                    let _ = tx
                        .send(Reply::Error {
                            id: Some(*id),
                            message,
                        })
                        .await;
                    continue;
                }
                let (link, tx, table) = (link.clone(), tx.clone(), table.clone());
                tokio::spawn(async move {
                    let _counted = link.tracker.start();
                    serve_request(&link, request, &tx, &table).await;
                    drop(permit);
                });
            }
        }
    }
}

/// Registers a running request; false when its id is taken.
fn register(table: &Table, id: u64) -> bool {
    let mut running = lock(table);
    if running.contains_key(&id) {
        return false;
    }
    let (cancel, _) = watch::channel(false);
    running.insert(
        id,
        Running {
            cancel,
            confirm: None,
        },
    );
    true
}

fn request_id(request: &Request) -> Option<u64> {
    match request {
        Request::Run { id, .. }
        | Request::Cancel { id }
        | Request::Confirm { id, .. }
        | Request::Complete { id, .. }
        | Request::Subscribe { id, .. }
        | Request::HistoryList { id, .. } => Some(*id),
        Request::Hello { .. } | Request::HistoryAdd { .. } => None,
    }
}

async fn serve_request(link: &Link, request: Request, tx: &mpsc::Sender<Reply>, table: &Table) {
    let services = &link.services;
    match request {
        Request::Run { id, argv, tty } => {
            let cancel = match lock(table).get(&id) {
                Some(running) => running.cancel.subscribe(),
                None => return,
            };
            let mut io = LinkIo {
                id,
                tty,
                tx: tx.clone(),
                cancel,
                table: table.clone(),
            };
            let outcome = match services.refresh_actor(&link.actor).await {
                Ok(actor) => command::run(services, &actor, &argv, &mut io, &link.invocation).await,
                Err(err) => command::output::render_error(&err, command::requested_format(&argv)),
            };
            lock(table).remove(&id);
            let mut stdout = text(outcome.stdout, tty);
            while stdout.len() > CHUNK {
                let rest = stdout.split_off(floor_char_boundary(&stdout, CHUNK));
                let part = std::mem::replace(&mut stdout, rest);
                let output = Reply::Output {
                    id,
                    stdout: part,
                    stderr: String::new(),
                };
                if tx.send(output).await.is_err() {
                    return;
                }
            }
            let done = Reply::Done {
                id,
                exit: outcome.exit,
                stdout,
                stderr: text(outcome.stderr, tty),
            };
            let _ = tx.send(done).await;
        }
        Request::Complete { id, kind } => {
            let values = match services.refresh_actor(&link.actor).await {
                Ok(actor) => completions(services, &actor, kind).await,
                Err(_) => Vec::new(),
            };
            let _ = tx.send(Reply::Values { id, values }).await;
        }
        Request::HistoryList { id, limit } => {
            let history = match services.refresh_actor(&link.actor).await {
                Ok(actor) => services.shell_history(&actor, limit).await,
                Err(err) => Err(err),
            };
            let lines = match history {
                Ok(lines) => lines,
                Err(err) => {
                    let message = format!("cannot read the history: {}", err.message);
                    let _ = tx
                        .send(Reply::Error {
                            id: Some(id),
                            message,
                        })
                        .await;
                    return;
                }
            };
            let _ = tx.send(Reply::History { id, lines }).await;
        }
        Request::Hello { .. }
        | Request::Cancel { .. }
        | Request::Confirm { .. }
        | Request::Subscribe { .. }
        | Request::HistoryAdd { .. } => {}
    }
}

async fn store_history(link: Arc<Link>, mut lines: mpsc::Receiver<String>) {
    while let Some(line) = lines.recv().await {
        if !keep_in_history(&line) {
            continue;
        }
        // A user locked or removed meanwhile keeps no more history.
        let stored = match link.services.refresh_actor(&link.actor).await {
            Ok(actor) => link.services.shell_history_add(&actor, &line).await,
            Err(err) => Err(err),
        };
        if let Err(err) = stored {
            tracing::warn!(error = %err, "cannot store a shell history line");
        }
    }
}

/// Names the actor may see, through the same service calls (and so the same policy) as the
/// `list` commands; a role that may not list a kind gets none.
async fn completions(services: &Services, actor: &Actor, kind: CompletionKind) -> Vec<String> {
    let names = match kind {
        CompletionKind::Sites => services
            .site_list(actor, None)
            .await
            .map(|all| all.into_iter().map(|s| s.domain).collect()),
        CompletionKind::Servers => services
            .server_list(actor)
            .await
            .map(|all| all.into_iter().map(|s| s.name).collect()),
        CompletionKind::Users => services
            .user_list(actor, None)
            .await
            .map(|all| all.into_iter().map(|u| u.name).collect()),
        CompletionKind::Tenants => services
            .tenant_list(actor)
            .await
            .map(|all| all.into_iter().map(|t| t.name).collect()),
    };
    names.unwrap_or_default()
}

/// Whether a typed line may go to the history: it splits like a command line and carries no
/// secret (as the audit trail's masking decides).
pub fn keep_in_history(line: &str) -> bool {
    match shell_words::split(line) {
        Ok(argv) => !argv.is_empty() && !command::mask::carries_secret(&argv),
        Err(_) => false,
    }
}

/// Command output as text for the link; at a terminal with CRLF line ends.
fn text(bytes: Vec<u8>, tty: bool) -> String {
    let bytes = if tty {
        super::exec::crlf(&bytes)
    } else {
        bytes
    };
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// A command's caller on the link: no stdin, confirmations asked through the child, output
/// streamed as `output` frames, stopped by `cancel` (or the end of the link).
struct LinkIo {
    id: u64,
    tty: bool,
    tx: mpsc::Sender<Reply>,
    cancel: watch::Receiver<bool>,
    table: Table,
}

impl CommandIo for LinkIo {
    fn has_tty(&self) -> bool {
        self.tty
    }

    async fn read_stdin(&mut self, _limit: usize) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }

    async fn confirm(&mut self, prompt: &str) -> Result<bool> {
        let (answer, answered) = oneshot::channel();
        match lock(&self.table).get_mut(&self.id) {
            Some(running) => running.confirm = Some(answer),
            None => return Ok(false),
        }
        let ask = Reply::Confirm {
            id: self.id,
            prompt: prompt.to_owned(),
        };
        if self.tx.send(ask).await.is_err() {
            return Ok(false);
        }
        tokio::select! {
            yes = answered => Ok(yes.unwrap_or(false)),
            () = self.stopped() => Ok(false),
        }
    }

    async fn stream(&mut self, stdout: Vec<u8>) -> Result<()> {
        let output = Reply::Output {
            id: self.id,
            stdout: text(stdout, self.tty),
            stderr: String::new(),
        };
        self.tx
            .send(output)
            .await
            .map_err(|_| Error::unavailable("the session went away"))
    }

    async fn stream_stderr(&mut self, stderr: Vec<u8>) -> Result<()> {
        let output = Reply::Output {
            id: self.id,
            stdout: String::new(),
            stderr: text(stderr, self.tty),
        };
        self.tx
            .send(output)
            .await
            .map_err(|_| Error::unavailable("the session went away"))
    }

    async fn stopped(&mut self) {
        loop {
            if *self.cancel.borrow_and_update() {
                return;
            }
            if self.cancel.changed().await.is_err() {
                return;
            }
        }
    }
}
