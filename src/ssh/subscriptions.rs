//! Subscriptions on a session's link: `subscribe` requests, served by one poller per link.
//!
//! A subscription names topics (`changes`, `audit`; see `crate::rpc::Topic`) and receives
//! `event` replies until the child cancels it (`done`) or the daemon ends it (`error`). Every
//! subscription of a link is fed by one task, started with the first and ended with the last:
//! like `audit list --follow` it polls the audit trail for rows above the last `seq` it read,
//! every `audit.follow_interval_ms`, so rows written by any process show up. Each poll first
//! reads the trail's head (one indexed query: an idle shell costs no more); when the trail
//! moved, and at least every 10 s, it re-reads the actor bound to the link (`refresh_actor`)
//! before reading the new rows. Locking or deleting a user, removing a key or changing a role
//! each add a row, so a user locked or deleted, or a login key removed, ends every subscription
//! of the link with an `error` at the next poll; a changed role applies to the next rows. What
//! each row shows to whom is decided by the service (`Services::feed_next`: the audit scope of
//! `audit list`, and the changes the actor may see).
//!
//! The `jobs` topic follows the jobs the actor may see (its tenant's; admins: all): the poller
//! reads the jobs changed since it last looked (less [`JOBS_SKEW`], for the clocks of other
//! nodes and commits that land late) and sends a [`JobEvent`] for each whose state, progress or
//! message is new to it. It looks when the jobs doorbell rings (this node's jobs, and other
//! nodes' through Redis) and at every poll.
//!
//! A subscription sees the rows after the trail's head when its `subscribe` was read (the link
//! reads that head before the next frame), so a change made after a later request's answer is
//! never missed. The poller is the only writer of a subscription's replies after it is
//! accepted, so its events never come after its `done`. At most [`MAX_SUBSCRIPTIONS`] per
//! link, apart from `session.max_requests` (a subscription lasts as long as the shell and holds
//! no command).

use super::link::Link;
use crate::error::Result;
use crate::rpc::{Change, Event, JobEvent, MAX_TOPICS, Reply, Topic};
use crate::service::{Actor, FeedRow, Services, change_kind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// Subscriptions one link may hold at once.
pub const MAX_SUBSCRIPTIONS: usize = 4;
/// Rows read per query while catching up.
const BATCH: i64 = 500;
/// How often the actor is re-read while the trail does not move (when it moves, at once).
const RECHECK: Duration = Duration::from_secs(10);
/// How far back each look at the jobs reaches before the newest change it saw.
const JOBS_SKEW: chrono::Duration = chrono::Duration::seconds(2);
/// Jobs read per look.
const JOBS_BATCH: i64 = 200;

/// Why a `subscribe` is not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Answered with an `error` for the request; the link goes on.
    Request(String),
    /// A protocol error: the link ends.
    Link(String),
}

/// The subscriptions of one link.
#[derive(Default)]
pub struct Feed {
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    subs: HashMap<u64, Sub>,
    /// A poller task runs for this link.
    polling: bool,
    /// The link ended: the poller stops without a word.
    closed: bool,
}

#[derive(Debug, Clone, Copy)]
struct Sub {
    changes: bool,
    audit: bool,
    jobs: bool,
    /// The `seq` of the last row this subscription has been shown (or passed over): the
    /// trail's head when it was accepted, so it sees what happens from then on.
    seen: i64,
    cancelled: bool,
}

impl Feed {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `id` names a subscription of this link.
    pub fn has(&self, id: u64) -> bool {
        self.state().subs.contains_key(&id)
    }

    /// Whether subscription `id` to `topics` may be accepted.
    pub fn check(&self, id: u64, topics: &[Topic]) -> Result<(), Refusal> {
        if topics.len() > MAX_TOPICS {
            return Err(Refusal::Link(format!(
                "a subscription names at most {MAX_TOPICS} topics, not {}",
                topics.len()
            )));
        }
        let available = || {
            Topic::AVAILABLE
                .iter()
                .map(Topic::name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if topics.is_empty() {
            return Err(Refusal::Request(format!(
                "name the topics to subscribe to: {}",
                available()
            )));
        }
        if let Some(topic) = topics.iter().find(|t| !t.is_available()) {
            let later = matches!(topic, Topic::Jobs | Topic::Logs);
            return Err(Refusal::Request(format!(
                "topic {} is {}; the topics are: {}",
                crate::domain::printable(topic.name()),
                if later {
                    "not available yet"
                } else {
                    "unknown"
                },
                available()
            )));
        }
        let state = self.state();
        if state.subs.contains_key(&id) {
            return Err(Refusal::Request(format!("request {id} is still running")));
        }
        if state.subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(Refusal::Request(format!(
                "too many subscriptions on this session (at most {MAX_SUBSCRIPTIONS})"
            )));
        }
        Ok(())
    }

    /// Adds subscription `id` (checked), to be shown the rows after `head`; returns whether a
    /// poller must be started for it.
    pub fn insert(&self, id: u64, topics: &[Topic], head: i64) -> bool {
        let mut state = self.state();
        state.subs.insert(
            id,
            Sub {
                changes: topics.contains(&Topic::Changes),
                audit: topics.contains(&Topic::Audit),
                jobs: topics.contains(&Topic::Jobs),
                seen: head,
                cancelled: false,
            },
        );
        let start = !state.polling;
        state.polling = true;
        start
    }

    /// Ends subscription `id` (the poller answers `done`); false when there is none.
    pub fn cancel(&self, id: u64) -> bool {
        let found = match self.state().subs.get_mut(&id) {
            Some(sub) => {
                sub.cancelled = true;
                true
            }
            None => false,
        };
        if found {
            self.wake.notify_one();
        }
        found
    }

    /// The link ended: every subscription stops, unanswered.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        state.subs.clear();
        drop(state);
        self.wake.notify_one();
    }

    /// Takes the cancelled subscriptions out; `None` when the poller should stop (the link
    /// ended, or no subscription is left), which it then records.
    fn cancelled(&self) -> Option<Vec<u64>> {
        let mut state = self.state();
        let ended: Vec<u64> = state
            .subs
            .iter()
            .filter(|(_, s)| s.cancelled)
            .map(|(id, _)| *id)
            .collect();
        for id in &ended {
            state.subs.remove(id);
        }
        if state.closed || (state.subs.is_empty() && ended.is_empty()) {
            state.polling = false;
            return None;
        }
        Some(ended)
    }

    /// Removes every subscription, returning their ids.
    fn take_all(&self) -> Vec<u64> {
        self.state().subs.drain().map(|(id, _)| id).collect()
    }

    /// The subscriptions now.
    fn snapshot(&self) -> Vec<(u64, Sub)> {
        self.state().subs.iter().map(|(id, s)| (*id, *s)).collect()
    }

    /// Records that the subscriptions `ids` have been shown the rows through `seq`.
    fn seen(&self, ids: &[u64], seq: i64) {
        let mut state = self.state();
        for id in ids {
            if let Some(sub) = state.subs.get_mut(id) {
                sub.seen = sub.seen.max(seq);
            }
        }
    }
}

/// Where a new subscription of the link bound to `actor` starts: the trail's head, once the
/// actor is re-read (a locked user subscribes to nothing).
pub async fn start(services: &Services, actor: &Actor) -> Result<i64> {
    services.refresh_actor(actor).await?;
    services.feed_head().await
}

/// Feeds the subscriptions of `feed` until none is left or the link ends.
pub async fn poll(link: Arc<Link>, feed: Arc<Feed>, tx: mpsc::Sender<Reply>) {
    let interval = Duration::from_millis(link.services.config.audit.follow_interval_ms);
    // Rings when rows reach the trail (any process; other nodes through the database or Redis).
    let mut trail = link
        .services
        .doorbells
        .listen(crate::service::doorbell::Bell::Trail);
    let mut job_bell = link
        .services
        .doorbells
        .listen(crate::service::doorbell::Bell::Jobs);
    let mut jobs = JobsSeen::new();
    let mut actor = Checked {
        actor: link.actor.clone(),
        at: None,
    };
    loop {
        let Some(ended) = feed.cancelled() else {
            return;
        };
        for id in ended {
            let done = Reply::Done {
                id,
                exit: 0,
                stdout: String::new(),
                stderr: String::new(),
            };
            if tx.send(done).await.is_err() {
                return;
            }
        }
        match deliver(&link, &feed, &tx, &mut actor).await {
            Ok(true) => {}
            // The link is gone.
            Ok(false) => return,
            Err(err) => {
                tracing::debug!(user = %link.actor.user, error = %err, "subscriptions ended");
                for id in feed.take_all() {
                    let message = format!("the subscription ended: {}", err.message);
                    if tx
                        .send(Reply::Error {
                            id: Some(id),
                            message,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                continue;
            }
        }
        if feed.snapshot().iter().any(|(_, s)| s.jobs && !s.cancelled) {
            match deliver_jobs(&link, &feed, &tx, &actor.actor, &mut jobs).await {
                Ok(true) => {}
                Ok(false) => return,
                // A refusal (a locked user) ends the subscriptions at the trail's next read.
                Err(err) => {
                    tracing::debug!(user = %link.actor.user, error = %err, "cannot read jobs")
                }
            }
        }
        tokio::select! {
            () = crate::service::doorbell::ring_or(&mut trail, interval) => {}
            _ = job_bell.changed() => {}
            () = feed.wake.notified() => {}
        }
    }
}

/// A job's state, progress and message: what a [`JobEvent`] tells.
type JobProgress = (String, i64, Option<String>);

/// What the `jobs` topic last told of each job, and how far it has read.
struct JobsSeen {
    /// The first look only notes the jobs' state: events tell of changes from then on.
    primed: bool,
    since: chrono::DateTime<chrono::Utc>,
    /// Per job: what was last sent, and the job's `updated_at` then.
    told: HashMap<i64, (JobProgress, chrono::DateTime<chrono::Utc>)>,
}

impl JobsSeen {
    fn new() -> JobsSeen {
        JobsSeen {
            primed: false,
            since: crate::store::now(),
            told: HashMap::new(),
        }
    }
}

/// Sends a [`JobEvent`] for each job `actor` may see whose state, progress or message changed
/// since it was last told. False when the link is gone.
async fn deliver_jobs(
    link: &Link,
    feed: &Feed,
    tx: &mpsc::Sender<Reply>,
    actor: &Actor,
    seen: &mut JobsSeen,
) -> Result<bool> {
    let from = seen.since - JOBS_SKEW;
    let changed = link
        .services
        .jobs_changed_since(actor, from, JOBS_BATCH)
        .await?;
    let subs: Vec<u64> = feed
        .snapshot()
        .into_iter()
        .filter(|(_, s)| s.jobs && !s.cancelled)
        .map(|(id, _)| id)
        .collect();
    let primed = std::mem::replace(&mut seen.primed, true);
    for job in changed {
        seen.since = seen.since.max(job.updated_at);
        let now = (job.state.clone(), job.progress, job.message.clone());
        if seen.told.get(&job.id).is_some_and(|(told, _)| *told == now) {
            continue;
        }
        seen.told.insert(job.id, (now, job.updated_at));
        if !primed {
            continue;
        }
        let event = JobEvent {
            id: job.id,
            kind: job.kind,
            tenant: job.tenant,
            state: job.state,
            progress: job.progress,
            message: job.message,
        };
        for id in &subs {
            let reply = Reply::Event {
                id: *id,
                event: Box::new(Event::Job(event.clone())),
            };
            if tx.send(reply).await.is_err() {
                return Ok(false);
            }
        }
    }
    // What is older than the look-back cannot come again.
    let horizon = seen.since - JOBS_SKEW - JOBS_SKEW;
    seen.told.retain(|_, (_, at)| *at >= horizon);
    Ok(true)
}

/// Sends the events of the trail's new rows to the subscriptions, re-reading the actor first.
/// False when the link is gone.
async fn deliver(
    link: &Link,
    feed: &Feed,
    tx: &mpsc::Sender<Reply>,
    actor: &mut Checked,
) -> Result<bool> {
    let services = &link.services;
    let subs = feed.snapshot();
    let Some(mut seq) = subs.iter().map(|(_, s)| s.seen).min() else {
        return Ok(true);
    };
    let head = services.feed_head().await?;
    if head <= seq {
        // Nothing new: every change to the actor's user or key would have added a row.
        actor.refresh_if_stale(services).await?;
        return Ok(true);
    }
    actor.refresh(services).await?;
    let ids: Vec<u64> = subs.iter().map(|(id, _)| *id).collect();
    loop {
        let batch = services.feed_next(&actor.actor, seq, BATCH).await?;
        for row in &batch.rows {
            for event in events(row, &subs) {
                if tx.send(event).await.is_err() {
                    return Ok(false);
                }
            }
        }
        seq = batch.next;
        feed.seen(&ids, seq);
        if !batch.full {
            return Ok(true);
        }
    }
}

/// The link's actor as last re-read.
struct Checked {
    actor: Actor,
    at: Option<Instant>,
}

impl Checked {
    async fn refresh(&mut self, services: &Services) -> Result<()> {
        self.actor = services.refresh_actor(&self.actor).await?;
        self.at = Some(Instant::now());
        Ok(())
    }

    async fn refresh_if_stale(&mut self, services: &Services) -> Result<()> {
        if self.at.is_none_or(|at| at.elapsed() >= RECHECK) {
            self.refresh(services).await?;
        }
        Ok(())
    }
}

/// The events `row` makes for the subscriptions `subs`.
fn events(row: &FeedRow, subs: &[(u64, Sub)]) -> Vec<Reply> {
    let mut out = Vec::new();
    for (id, sub) in subs {
        if row.entry.seq <= sub.seen || sub.cancelled {
            continue;
        }
        if sub.changes && row.change {
            let entry = &row.entry;
            let change = Change {
                seq: entry.seq,
                at: entry.at,
                tenant: entry.tenant.clone(),
                kind: change_kind(&entry.action).to_owned(),
                action: entry.action.clone(),
                target: entry.target.clone(),
                actor: row.change_actor().map(str::to_owned),
            };
            out.push(Reply::Event {
                id: *id,
                event: Box::new(Event::Change(change)),
            });
        }
        if sub.audit && row.audit {
            out.push(Reply::Event {
                id: *id,
                event: Box::new(Event::Audit(row.entry.clone())),
            });
        }
    }
    out
}
