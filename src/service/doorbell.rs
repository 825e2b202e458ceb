//! Doorbells: "look now" signals for the readers of the audit trail (session subscriptions,
//! `audit list --follow`) and of job rows (`job watch`, commands waiting for their job). The
//! data stays in the database, where every reader filters it by role; a ring only saves the
//! reader the rest of its poll interval (`audit.follow_interval_ms`), which stays as the
//! fallback when a ring is lost.
//!
//! Who rings:
//! - this process, after its own writes ([`Services::ring`]: the trail after a command, jobs at
//!   enqueue, progress and end);
//! - the cache watcher, when it reads rows another process committed (SQLite's
//!   `data_version`, PostgreSQL's `LISTEN vipanel_changes`): the trail bell of every node on one
//!   PostgreSQL database rings within milliseconds of a commit anywhere;
//! - with `redis_url`, other nodes: each ring is also published on the Redis channel
//!   `<redis_key_prefix>events` and every node's relay ([`Services::start_doorbell_relay`])
//!   rings its own bells. That is the only way job progress reaches other nodes before their
//!   next poll. Without Redis, or while it is away, readers fall back on polling.

use super::Services;
use std::sync::Arc;
use tokio::sync::watch;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bell {
    /// Rows were appended to the audit trail.
    Trail,
    /// A job was enqueued, progressed, ended, was cancelled or put back.
    Jobs,
}

impl Bell {
    fn name(self) -> &'static str {
        match self {
            Bell::Trail => "trail",
            Bell::Jobs => "jobs",
        }
    }

    fn parse(name: &str) -> Option<Bell> {
        match name {
            "trail" => Some(Bell::Trail),
            "jobs" => Some(Bell::Jobs),
            _ => None,
        }
    }
}

/// This process's bells; clones share them.
#[derive(Clone)]
pub struct Doorbells {
    trail: Arc<watch::Sender<u64>>,
    jobs: Arc<watch::Sender<u64>>,
    /// Tells this process's messages apart on the Redis channel (they come back to it).
    origin: Arc<str>,
}

impl Default for Doorbells {
    fn default() -> Self {
        Doorbells {
            trail: Arc::new(watch::Sender::new(0)),
            jobs: Arc::new(watch::Sender::new(0)),
            origin: format!(
                "{}-{}",
                std::process::id(),
                crate::store::now().timestamp_micros()
            )
            .into(),
        }
    }
}

impl Doorbells {
    fn sender(&self, bell: Bell) -> &watch::Sender<u64> {
        match bell {
            Bell::Trail => &self.trail,
            Bell::Jobs => &self.jobs,
        }
    }

    /// A receiver that sees every ring from now on (`changed()` resolves at the next one).
    /// Keep it across polls: a ring while the reader reads is then not lost.
    pub fn listen(&self, bell: Bell) -> watch::Receiver<u64> {
        self.sender(bell).subscribe()
    }

    /// Rings `bell` in this process only.
    pub fn ring_here(&self, bell: Bell) {
        self.sender(bell).send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Waits for the next ring of `bell` on `listener`, or `interval`, whichever comes first.
pub async fn ring_or(listener: &mut watch::Receiver<u64>, interval: std::time::Duration) {
    tokio::select! {
        changed = listener.changed() => {
            if changed.is_err() {
                tokio::time::sleep(interval).await;
            }
        }
        () = tokio::time::sleep(interval) => {}
    }
}

impl Services {
    /// Rings `bell` here and, with Redis, on every other node (published in the background;
    /// a lost message only costs the other nodes' readers their poll interval).
    pub fn ring(&self, bell: Bell) {
        self.doorbells.ring_here(bell);
        let Some(shared) = self.shared.clone() else {
            return;
        };
        if !shared.is_connected() {
            return;
        }
        let channel = format!("{}events", shared.prefix());
        let message = format!("{} {}", bell.name(), self.doorbells.origin);
        tokio::spawn(async move {
            shared
                .call("publish an event", |mut conn| async move {
                    redis::cmd("PUBLISH")
                        .arg(channel)
                        .arg(message)
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .await;
        });
    }

    /// With Redis: rings this node's bells at other nodes' rings (a task, with its own Redis
    /// connection, remade after a failure). Each (re)subscription rings every bell, since
    /// messages may have been missed meanwhile.
    pub fn start_doorbell_relay(&self) {
        let Some(shared) = &self.shared else { return };
        let bells = self.doorbells.clone();
        let channel = format!("{}events", shared.prefix());
        shared.subscribe(channel, move |message| {
            let mut words = message.split(' ');
            match (words.next().and_then(Bell::parse), words.next()) {
                (Some(_), Some(origin)) if origin == &*bells.origin => {}
                (Some(bell), _) => bells.ring_here(bell),
                (None, _) => {
                    bells.ring_here(Bell::Trail);
                    bells.ring_here(Bell::Jobs);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ring_while_reading_is_not_lost() {
        let bells = Doorbells::default();
        let mut listener = bells.listen(Bell::Jobs);
        bells.ring_here(Bell::Jobs);
        // The ring came before the wait: the wait returns at once.
        let started = std::time::Instant::now();
        ring_or(&mut listener, std::time::Duration::from_secs(5)).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // The trail bell is another bell.
        let mut trail = bells.listen(Bell::Trail);
        bells.ring_here(Bell::Jobs);
        let started = std::time::Instant::now();
        ring_or(&mut trail, std::time::Duration::from_millis(50)).await;
        assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    }
}
