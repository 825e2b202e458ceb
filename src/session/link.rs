//! The session process's end of the RPC link: a blocking client, a reader thread and a small
//! demultiplexer that routes each reply to whoever waits for its request id.
//!
//! Writes go straight to the socket under a lock (any thread may send). One reader thread reads
//! every [`Reply`] and hands it on: replies with an id go to the [`Pending`] request that asked
//! for them; [`Reply::Notice`] goes to the running foreground command when there is one (so it is
//! printed between its output), otherwise to the notice sink (the line editor's printer), held
//! until a sink is set. When the link ends, every waiter gets [`Event::Closed`] and the closed
//! flag is raised so an idle prompt can end the session. A [`Subscription`] is a waiter too: its
//! [`rpc::Event`]s arrive as they come, for its holder to take when it likes.
//!
//! Nothing here knows about terminals or the command tree.

use crate::rpc::{self, FrameError, PROTOCOL_VERSION, Reply, Request, Topic};
use std::collections::{HashMap, VecDeque};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long the daemon may take to answer the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after the link's end the closed flag is raised.
const CLOSE_GRACE: Duration = Duration::from_millis(300);
/// Notices kept while no sink is set (older ones are dropped first).
const HELD_NOTICES: usize = 64;

/// Who the link is bound to, from [`Reply::Welcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub user: String,
    pub tenant: String,
    pub role: String,
    pub prefix: String,
}

/// What a waiting request receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A reply for this request (or a notice, for the foreground request).
    Reply(Reply),
    /// The user pressed Ctrl-C while this request ran in the foreground.
    Interrupt,
    /// The link ended before the request did.
    Closed,
}

/// Why the link cannot serve a request.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the panel refused the session: {0}")]
    Refused(String),
    #[error("the panel speaks protocol version {0}, this session version {PROTOCOL_VERSION}")]
    Version(u32),
    #[error("the panel's first answer was not a welcome")]
    Unexpected,
    #[error("the panel did not answer in time")]
    Timeout,
    #[error("the link to the panel is closed")]
    Closed,
}

/// A cloneable handle on the link.
#[derive(Clone)]
pub struct Link {
    shared: Arc<Shared>,
}

struct Shared {
    writer: Mutex<UnixStream>,
    router: Mutex<Router>,
    next_id: AtomicU64,
    closed: Arc<AtomicBool>,
}

#[derive(Default)]
struct Router {
    waiting: HashMap<u64, Sender<Event>>,
    foreground: Option<u64>,
    notices: Option<SyncSender<String>>,
    held: VecDeque<String>,
    closed: bool,
}

impl Router {
    fn notice(&mut self, text: String) {
        if let Some(id) = self.foreground
            && let Some(waiter) = self.waiting.get(&id)
            && waiter
                .send(Event::Reply(Reply::Notice { text: text.clone() }))
                .is_ok()
        {
            return;
        }
        let text = match &self.notices {
            Some(sink) => match sink.try_send(text) {
                Ok(()) => return,
                Err(TrySendError::Full(text) | TrySendError::Disconnected(text)) => text,
            },
            None => text,
        };
        if self.held.len() == HELD_NOTICES {
            self.held.pop_front();
        }
        self.held.push_back(text);
    }

    fn route(&mut self, reply: Reply) {
        let (id, last) = match &reply {
            Reply::Notice { text } => return self.notice(text.clone()),
            Reply::Error { id: None, message } => {
                return self.notice(format!("error from the panel: {message}"));
            }
            Reply::Welcome { .. } => return,
            Reply::Output { id, .. } | Reply::Confirm { id, .. } | Reply::Event { id, .. } => {
                (*id, false)
            }
            Reply::Done { id, .. }
            | Reply::Values { id, .. }
            | Reply::History { id, .. }
            | Reply::Error { id: Some(id), .. } => (*id, true),
        };
        let waiter = if last {
            self.waiting.remove(&id)
        } else {
            self.waiting.get(&id).cloned()
        };
        // A reply nobody waits for (a completion that came after its deadline) is dropped.
        if let Some(waiter) = waiter {
            let _ = waiter.send(Event::Reply(reply));
        }
    }

    fn close(&mut self) {
        self.closed = true;
        self.foreground = None;
        for (_, waiter) in self.waiting.drain() {
            let _ = waiter.send(Event::Closed);
        }
    }
}

impl Link {
    /// Says hello over `stream`, waits for the welcome, then starts the reader thread.
    pub fn connect(stream: UnixStream) -> Result<(Link, Welcome), LinkError> {
        let mut reader = stream.try_clone().map_err(FrameError::from)?;
        reader
            .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(FrameError::from)?;
        let mut writer = stream;
        rpc::write_frame(
            &mut writer,
            &Request::Hello {
                version: PROTOCOL_VERSION,
            },
        )?;
        let welcome = match rpc::read_frame::<_, Reply>(&mut reader) {
            Ok(Reply::Welcome {
                version,
                user,
                tenant,
                role,
                prefix,
            }) => {
                if version != PROTOCOL_VERSION {
                    return Err(LinkError::Version(version));
                }
                Welcome {
                    user,
                    tenant,
                    role,
                    prefix,
                }
            }
            Ok(Reply::Error { message, .. }) => return Err(LinkError::Refused(message)),
            Ok(_) => return Err(LinkError::Unexpected),
            Err(FrameError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(LinkError::Timeout);
            }
            Err(e) => return Err(e.into()),
        };
        reader.set_read_timeout(None).map_err(FrameError::from)?;
        let link = Link {
            shared: Arc::new(Shared {
                writer: Mutex::new(writer),
                router: Mutex::new(Router::default()),
                next_id: AtomicU64::new(1),
                closed: Arc::new(AtomicBool::new(false)),
            }),
        };
        let shared = Arc::clone(&link.shared);
        std::thread::Builder::new()
            .name("link-reader".into())
            .spawn(move || read_loop(reader, &shared))
            .map_err(FrameError::from)?;
        Ok((link, welcome))
    }

    /// Sends one request that expects no reply (history, cancel, confirm answers).
    pub fn send(&self, request: &Request) -> Result<(), LinkError> {
        let mut writer = lock(&self.shared.writer);
        rpc::write_frame(&mut *writer, request).map_err(|e| match e {
            FrameError::Io(_) | FrameError::Closed => LinkError::Closed,
            other => LinkError::Frame(other),
        })
    }

    /// Sends the request `make(id)` under a fresh id and returns the handle its replies arrive on.
    pub fn start(&self, make: impl FnOnce(u64) -> Request) -> Result<Pending, LinkError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel();
        {
            let mut router = self.router();
            if router.closed {
                return Err(LinkError::Closed);
            }
            router.waiting.insert(id, sender);
        }
        let pending = Pending {
            id,
            receiver,
            link: self.clone(),
        };
        self.send(&make(id))?;
        Ok(pending)
    }

    /// Sends the request `make(id)` and waits at most `timeout` for its one reply.
    pub fn call(
        &self,
        make: impl FnOnce(u64) -> Request,
        timeout: Duration,
    ) -> Result<Reply, LinkError> {
        let pending = self.start(make)?;
        match pending.recv_timeout(timeout) {
            Some(Event::Reply(reply)) => Ok(reply),
            Some(Event::Closed) => Err(LinkError::Closed),
            Some(Event::Interrupt) | None => Err(LinkError::Timeout),
        }
    }

    /// Subscribes to `topics`: their events arrive on the returned [`Subscription`] until it is
    /// cancelled or dropped. A refusal (an unknown topic, too many subscriptions) arrives there
    /// too, as its end.
    pub fn subscribe(&self, topics: Vec<Topic>) -> Result<Subscription, LinkError> {
        let pending = self.start(|id| Request::Subscribe { id, topics })?;
        Ok(Subscription {
            pending,
            ended: false,
        })
    }

    /// Where notices go while no command runs in the foreground; held ones are delivered now.
    pub fn set_notice_sink(&self, sink: SyncSender<String>) {
        let mut router = self.router();
        router.notices = Some(sink);
        let held: Vec<String> = router.held.drain(..).collect();
        for text in held {
            router.notice(text);
        }
    }

    /// Notices that arrived while nobody could show them (taken, oldest first).
    pub fn take_held_notices(&self) -> Vec<String> {
        self.router().held.drain(..).collect()
    }

    /// Delivers Ctrl-C to the foreground request, if one runs. Returns whether one did.
    pub fn interrupt(&self) -> bool {
        let router = self.router();
        router
            .foreground
            .and_then(|id| router.waiting.get(&id))
            .is_some_and(|waiter| waiter.send(Event::Interrupt).is_ok())
    }

    /// Ends the link both ways (the reader thread then sees its end).
    pub fn shutdown(&self) {
        let _ = lock(&self.shared.writer).shutdown(std::net::Shutdown::Both);
    }

    /// Raised shortly after the link ends (for the line editor's break signal).
    pub fn closed_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.shared.closed)
    }

    /// Whether the link has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }

    fn router(&self) -> MutexGuard<'_, Router> {
        lock(&self.shared.router)
    }
}

/// A request in flight: its replies arrive here until it is dropped.
pub struct Pending {
    id: u64,
    receiver: Receiver<Event>,
    link: Link,
}

impl Pending {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Makes this the foreground request: it receives notices and Ctrl-C until dropped.
    pub fn set_foreground(&self) {
        self.link.router().foreground = Some(self.id);
    }

    /// The next event; [`Event::Closed`] once the link has ended.
    pub fn recv(&self) -> Event {
        self.receiver.recv().unwrap_or(Event::Closed)
    }

    /// The next event within `timeout`, `None` when none came.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        match self.receiver.recv_timeout(timeout) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Event::Closed),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut router = self.link.router();
        router.waiting.remove(&self.id);
        if router.foreground == Some(self.id) {
            router.foreground = None;
        }
    }
}

/// How a subscription ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEnd {
    /// Cancelled by this side ([`Reply::Done`]).
    Cancelled,
    /// Refused or ended by the daemon ([`Reply::Error`]): an unknown topic, the user locked.
    Refused(String),
    /// The link ended.
    Closed,
}

/// A subscription on the link (see [`Link::subscribe`]); cancelled when dropped.
pub struct Subscription {
    pending: Pending,
    ended: bool,
}

impl Subscription {
    pub fn id(&self) -> u64 {
        self.pending.id
    }

    /// The next event, waiting for it.
    pub fn recv(&mut self) -> Result<rpc::Event, SubscriptionEnd> {
        let event = self.pending.recv();
        self.take(event)
    }

    /// The next event that has already arrived, if any.
    pub fn try_recv(&mut self) -> Option<Result<rpc::Event, SubscriptionEnd>> {
        if self.ended {
            return Some(Err(SubscriptionEnd::Closed));
        }
        match self.pending.receiver.try_recv() {
            Ok(event) => Some(self.take(event)),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(self.take(Event::Closed)),
        }
    }

    /// The next event within `timeout`, `None` when none came.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Option<Result<rpc::Event, SubscriptionEnd>> {
        let event = self.pending.recv_timeout(timeout)?;
        Some(self.take(event))
    }

    /// Asks the daemon to end the subscription; it ends with [`SubscriptionEnd::Cancelled`]
    /// once the events already sent are taken.
    pub fn cancel(&self) -> Result<(), LinkError> {
        self.pending.link.send(&Request::Cancel {
            id: self.pending.id,
        })
    }

    fn take(&mut self, event: Event) -> Result<rpc::Event, SubscriptionEnd> {
        let end = match event {
            Event::Reply(Reply::Event { event, .. }) => return Ok(*event),
            Event::Reply(Reply::Done { .. }) => SubscriptionEnd::Cancelled,
            Event::Reply(Reply::Error { message, .. }) => SubscriptionEnd::Refused(message),
            Event::Reply(_) | Event::Interrupt | Event::Closed => SubscriptionEnd::Closed,
        };
        self.ended = true;
        Err(end)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.ended && !self.pending.link.is_closed() {
            let _ = self.cancel();
        }
    }
}

fn read_loop(mut reader: UnixStream, shared: &Shared) {
    loop {
        match rpc::read_frame::<_, Reply>(&mut reader) {
            Ok(reply) => lock(&shared.router).route(reply),
            Err(err) => {
                if !matches!(err, FrameError::Closed) {
                    lock(&shared.router).notice(format!("the link to the panel failed: {err}"));
                }
                lock(&shared.router).close();
                // The line editor checks the flag before it prints queued notices: give it the
                // time to show the last ones ("the panel is restarting") first.
                std::thread::sleep(CLOSE_GRACE);
                shared.closed.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it; the router's state is
/// still consistent (every change is a single insert or remove), so keep going.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
