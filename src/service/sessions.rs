//! Who is connected: an in-memory registry of the daemon's authenticated connections, behind
//! `session list` and `session kill`.
//!
//! The SSH layer registers each connection once it is fully authenticated
//! ([`Services::session_start`]) and keeps the returned [`SessionGuard`] for the connection's
//! life; dropping the guard ends the session. Killing a session fires its [`KillSignal`], which
//! the SSH layer awaits to disconnect. Start and end are audited in the background
//! (`session.start`, `session.end`) so logins never wait for the audit write.
//!
//! Sessions live in the daemon's memory: `vipanel admin`, another process, has none to show.
//! Nothing here knows about SSH.

use super::audit::record_ok_alone;
use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, Services, Session};
use crate::domain::SessionId;
use crate::error::{Error, Result};
use crate::store::NewAudit;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// The live sessions of this process; cheap to clone (shared).
#[derive(Clone)]
pub struct SessionRegistry {
    /// `None` in processes that serve no connections (`vipanel admin`).
    shared: Option<Arc<Shared>>,
}

struct Shared {
    live: Mutex<HashMap<SessionId, Live>>,
    /// Audit rows being written in the background, so shutdown can wait for them.
    writes: AtomicUsize,
    idle: Notify,
}

struct Live {
    actor: Actor,
    started_at: DateTime<Utc>,
    started: Instant,
    last_command_at: Option<DateTime<Utc>>,
    commands: u64,
    /// `Some(who)` once killed.
    kill: watch::Sender<Option<String>>,
}

impl SessionRegistry {
    /// A registry for a process that serves connections (the daemon, tests).
    pub fn new() -> SessionRegistry {
        SessionRegistry {
            shared: Some(Arc::new(Shared {
                live: Mutex::new(HashMap::new()),
                writes: AtomicUsize::new(0),
                idle: Notify::new(),
            })),
        }
    }

    /// The registry of a process without connections: listing or killing says where sessions
    /// are instead of showing an empty list.
    pub fn elsewhere() -> SessionRegistry {
        SessionRegistry { shared: None }
    }

    fn live(&self) -> Result<MutexGuard<'_, HashMap<SessionId, Live>>> {
        let shared = self.shared.as_ref().ok_or_else(|| {
            Error::unavailable(
                "sessions live in the running daemon: run `session list` and `session kill` over SSH",
            )
        })?;
        Ok(shared.live.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs an audit write in the background, counted until it is done.
    fn spawn_write(
        &self,
        write: impl Future<Output = ()> + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let shared = self.shared.clone()?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        shared.writes.fetch_add(1, Ordering::SeqCst);
        Some(runtime.spawn(async move {
            write.await;
            if shared.writes.fetch_sub(1, Ordering::SeqCst) == 1 {
                shared.idle.notify_waiters();
            }
        }))
    }

    /// Waits (at most `limit`) until no background audit write is pending.
    async fn writes_done(&self, limit: Duration) {
        let Some(shared) = &self.shared else { return };
        let wait = async {
            loop {
                let idle = shared.idle.notified();
                if shared.writes.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(limit, wait).await.is_err() {
            tracing::warn!("audit rows of sessions still pending at shutdown");
        }
    }
}

impl Default for SessionRegistry {
    fn default() -> Self {
        SessionRegistry::new()
    }
}

/// Held by the SSH layer for as long as the connection lives; dropping it ends the session.
pub struct SessionGuard {
    services: Services,
    id: SessionId,
    kill: watch::Receiver<Option<String>>,
    /// The background write of `session.start`, which `session.end` waits for.
    start_row: Option<tokio::task::JoinHandle<()>>,
}

impl SessionGuard {
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Resolves when the session is killed (see [`KillSignal::killed`]).
    pub fn kill_signal(&self) -> KillSignal {
        KillSignal(self.kill.clone())
    }
}

/// Fires when the session is killed.
pub struct KillSignal(watch::Receiver<Option<String>>);

impl KillSignal {
    /// `Some(who)` when the session was killed by `who`; `None` when it ended otherwise.
    pub async fn killed(mut self) -> Option<String> {
        loop {
            if let Some(by) = self.0.borrow_and_update().clone() {
                return Some(by);
            }
            // An error: the session ended (its sender went with it).
            self.0.changed().await.ok()?;
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let ended = self
            .services
            .sessions
            .live()
            .ok()
            .and_then(|mut live| live.remove(&self.id));
        // Gone already: ended at shutdown, which recorded it.
        let Some(ended) = ended else { return };
        let (services, id, start_row) = (
            self.services.clone(),
            self.id.clone(),
            self.start_row.take(),
        );
        self.services.sessions.spawn_write(async move {
            if let Some(start_row) = start_row {
                let _ = start_row.await;
            }
            services.record_session_end(&id, &ended, None).await;
        });
    }
}

impl Services {
    /// Registers a fully authenticated connection of `actor` and records `session.start` in
    /// the background. Keep the guard while the connection lives.
    pub fn session_start(&self, actor: &Actor) -> SessionGuard {
        let (kill_tx, kill) = watch::channel(None);
        let id = match self.sessions.live() {
            Ok(mut live) => {
                let mut id = SessionId::random();
                while live.contains_key(&id) {
                    id = SessionId::random();
                }
                live.insert(
                    id.clone(),
                    Live {
                        actor: actor.clone(),
                        started_at: crate::store::now(),
                        started: Instant::now(),
                        last_command_at: None,
                        commands: 0,
                        kill: kill_tx,
                    },
                );
                id
            }
            Err(_) => SessionId::random(),
        };
        let (services, row_actor, row_id) = (self.clone(), actor.clone(), id.clone());
        let start_row = self.sessions.spawn_write(async move {
            services
                .record_session_row(&row_actor, "session.start", &row_id, "")
                .await;
        });
        SessionGuard {
            services: self.clone(),
            id,
            kill,
            start_row,
        }
    }

    /// Counts a command run on the session `actor` came in on (matched by user and source).
    pub fn session_command(&self, actor: &Actor) {
        let Ok(mut live) = self.sessions.live() else {
            return;
        };
        if let Some(session) = live
            .values_mut()
            .find(|s| s.actor.source == actor.source && s.actor.user_id == actor.user_id)
        {
            session.commands += 1;
            session.last_command_at = Some(crate::store::now());
        }
    }

    /// `session list`: admins see every session, owners their tenant's, everyone else its own.
    pub fn session_list(&self, actor: &Actor) -> Result<Vec<Session>> {
        policy::check(
            actor,
            Resource::Session,
            Verb::Read,
            Owner::Tenant(actor.tenant_id),
            "session",
        )?;
        let live = self.sessions.live()?;
        let mut shown: Vec<Session> = live
            .iter()
            .filter(|(_, s)| {
                actor.is_admin()
                    || (actor.role >= crate::domain::Role::Owner
                        && s.actor.tenant_id == actor.tenant_id)
                    || (s.actor.user_id.is_some() && s.actor.user_id == actor.user_id)
            })
            .map(|(id, s)| view(id, s, actor))
            .collect();
        shown.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(shown)
    }

    /// `session kill ID`: disconnects another session (owners: of their tenant; admins: any).
    pub async fn session_kill(&self, actor: &Actor, id: &SessionId) -> Result<Session> {
        self.audited(actor, "session.kill", id.as_str(), async {
            let target = self.session_to_kill(actor, id)?;
            let detail = format!("user={} source={}", target.user, target.source);
            record_ok_alone(
                self,
                actor,
                &target.tenant,
                "session.kill",
                id.as_str(),
                &detail,
            )
            .await?;
            let live = self.sessions.live()?;
            if let Some(session) = live.get(id) {
                session.kill.send_replace(Some(actor.user.clone()));
            }
            Ok(target)
        })
        .await
    }

    /// The checks of `session kill` (also run before asking for confirmation): the role may
    /// kill sessions (else 6), the session exists in the actor's view (else 3), and it is not
    /// the one the command runs on (else 4).
    pub(super) fn session_to_kill(&self, actor: &Actor, id: &SessionId) -> Result<Session> {
        policy::check(
            actor,
            Resource::Session,
            Verb::Write,
            Owner::Tenant(actor.tenant_id),
            "session",
        )?;
        let what = format!("session {id}");
        let live = self.sessions.live()?;
        let session = live.get(id).ok_or_else(|| policy::not_found(&what))?;
        policy::check(
            actor,
            Resource::Session,
            Verb::Write,
            Owner::Tenant(session.actor.tenant_id),
            &what,
        )?;
        let shown = view(id, session, actor);
        if shown.current {
            return Err(super::audit::conflict(format!(
                "session {id} is the one this command runs on: log out instead"
            )));
        }
        Ok(shown)
    }

    /// At shutdown: records `session.end` for every session still open and waits (bounded)
    /// for the session rows being written in the background.
    pub async fn sessions_shutdown(&self) {
        let limit = Duration::from_secs(5);
        self.sessions.writes_done(limit).await;
        let ended: Vec<(SessionId, Live)> = match self.sessions.live() {
            Ok(mut live) => live.drain().collect(),
            Err(_) => return,
        };
        for (id, session) in ended {
            self.record_session_end(&id, &session, Some("ended=shutdown"))
                .await;
        }
    }

    async fn record_session_end(&self, id: &SessionId, session: &Live, extra: Option<&str>) {
        let mut detail = format!(
            "duration={}s commands={}",
            session.started.elapsed().as_secs(),
            session.commands
        );
        if let Some(by) = session.kill.borrow().as_deref() {
            detail.push_str(&format!(" killed_by={by}"));
        }
        if let Some(extra) = extra {
            detail.push(' ');
            detail.push_str(extra);
        }
        self.record_session_row(&session.actor, "session.end", id, &detail)
            .await;
    }

    async fn record_session_row(&self, actor: &Actor, action: &str, id: &SessionId, detail: &str) {
        let row = NewAudit {
            actor: &actor.user,
            tenant: &actor.tenant,
            role: actor.role.as_str(),
            key_fingerprint: actor.key_fingerprint.as_deref(),
            source: &actor.source,
            action,
            target: id.as_str(),
            result: "ok",
            detail,
            ..NewAudit::default()
        };
        if let Err(err) = self.db.append_audit(&row).await {
            tracing::error!(error = %err, action, "cannot write a session's audit row");
        }
    }
}

fn view(id: &SessionId, s: &Live, viewer: &Actor) -> Session {
    Session {
        id: id.to_string(),
        user: s.actor.user.clone(),
        tenant: s.actor.tenant.clone(),
        role: s.actor.role.to_string(),
        source: s.actor.source.clone(),
        key_fingerprint: s.actor.key_fingerprint.clone(),
        started_at: s.started_at,
        last_command_at: s.last_command_at,
        commands: s.commands,
        current: s.actor.user_id == viewer.user_id && s.actor.source == viewer.source,
    }
}
