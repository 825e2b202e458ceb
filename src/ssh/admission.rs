//! Admission of unauthenticated connections, in the spirit of OpenSSH's MaxStartups and
//! LoginGraceTime: a connection is "pending" from TCP accept until its key is accepted.
//!
//! - Per source address at most `limits.max_unauthenticated_per_source` pending connections, so
//!   one flooding address cannot crowd out everyone else.
//! - In total, from `limits.startups_begin` pending connections on, new ones are dropped with a
//!   probability rising from `limits.startups_rate` % to 100 % at `limits.startups_full`.
//! - A pending connection is closed at `limits.pre_auth_timeout_secs` after accept.
//! - A source that misbehaves is penalised (see [`super::penalties`]) and refused here, before
//!   anything else is looked at. How each connection ended is reported with [`Pending::ended`].
//!
//! A source is an IPv4 address or an IPv6 /64 ([`source_key`]), for the caps as for penalties.
//!
//! With `redis_url` set, penalties are shared by all nodes: every offence is also recorded in
//! Redis (in the background), and an admitted connection asks Redis whether its source is
//! penalised ([`Admission::shared_refusal`], bounded, before the banner). What Redis answers is
//! adopted into the local table, so the next connections of a source penalised elsewhere are
//! refused here without asking Redis again.

use super::penalties::{Offence, Penalties, source_key};
use crate::config::{LimitsConfig, PenaltiesConfig};
use crate::service::shared_penalties::SharedPenalties;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Counts pending connections in total and per source address.
pub struct Admission {
    state: Mutex<State>,
    penalties: Penalties,
    /// The penalties of all nodes, in Redis (set once, by the accept loop).
    shared: std::sync::OnceLock<SharedPenalties>,
    per_source: usize,
    begin: usize,
    rate: f64,
    full: usize,
}

#[derive(Default)]
struct State {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// Why a new connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source is penalised.
    Penalised,
    /// The source already holds its share of unauthenticated connections (an offence).
    PerSource,
    /// Random early drop: too many unauthenticated connections in total.
    Startups,
}

/// One admitted connection, from TCP accept to its end. Its pre-authentication slot is freed
/// once it authenticates or when it is dropped, whichever comes first.
pub struct Pending {
    admission: Arc<Admission>,
    source: IpAddr,
    released: AtomicBool,
    authenticated: AtomicBool,
    /// The key was accepted but the user must enroll an authenticator first: the connection
    /// keeps its slot, under the longer enrollment deadline, until it has.
    enrolling: AtomicBool,
    failed_attempts: AtomicU32,
    ended: AtomicBool,
}

impl Admission {
    pub fn new(limits: &LimitsConfig, penalties: &PenaltiesConfig) -> Arc<Admission> {
        Arc::new(Admission {
            state: Mutex::new(State::default()),
            penalties: Penalties::new(penalties),
            shared: std::sync::OnceLock::new(),
            per_source: usize::try_from(limits.max_unauthenticated_per_source).unwrap_or(10),
            begin: usize::try_from(limits.startups_begin).unwrap_or(10),
            rate: f64::from(limits.startups_rate.min(100)) / 100.0,
            full: usize::try_from(limits.startups_full).unwrap_or(100),
        })
    }

    /// Announces new penalties to `notices` (see [`Penalties::announce_to`]).
    pub fn announce_penalties_to(
        &self,
        notices: tokio::sync::mpsc::UnboundedSender<super::penalties::PenaltyNotice>,
    ) {
        self.penalties.announce_to(notices);
    }

    /// Shares penalties with the other nodes through Redis from now on.
    pub fn share_penalties_through(&self, shared: SharedPenalties) {
        let _ = self.shared.set(shared);
    }

    /// Records an offence in the local table and, in the background, in Redis.
    fn record(self: &Arc<Self>, source: IpAddr, offence: Offence, now: Instant) {
        self.penalties.record(source, offence, now);
        let (Some(shared), Some(base)) =
            (self.shared.get(), self.penalties.base_for(source, offence))
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (shared, admission, max) = (shared.clone(), self.clone(), self.penalties.max());
        runtime.spawn(async move {
            if let Some(known) = shared.record(source, base, max).await {
                // Offences on other nodes may have made it longer than this node's own count.
                admission
                    .penalties
                    .adopt(source, known.remaining, known.penalty, Instant::now());
            }
        });
    }

    /// Whether Redis says the source of `pending` is penalised (by any node); asked once per
    /// admitted connection, before the banner, for at most the shared state's call timeout.
    /// `false` when penalties are not shared or Redis cannot say: the local table decided.
    pub async fn shared_refusal(&self, pending: &Pending) -> bool {
        let Some(shared) = self.shared.get() else {
            return false;
        };
        if !self.penalties.applies_to(pending.source) {
            return false;
        }
        match shared.remaining(pending.source).await {
            Some(Some(remaining)) => {
                self.penalties
                    .adopt(pending.source, remaining, remaining, Instant::now());
                true
            }
            _ => false,
        }
    }

    /// Admits a new connection from `peer` at `now`, or says why not. `roll` is a uniform number
    /// in [0, 1) deciding the random early drop (passed in, like `now`, so tests can fix it).
    pub fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        roll: f64,
        now: Instant,
    ) -> Result<Arc<Pending>, Refusal> {
        let source = source_key(peer);
        if self.penalties.check(source, now).is_some() {
            return Err(Refusal::Penalised);
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let from_source = state.by_source.get(&source).copied().unwrap_or(0);
        if from_source >= self.per_source {
            drop(state);
            self.record(source, Offence::Overflow, now);
            return Err(Refusal::PerSource);
        }
        if state.total >= self.full {
            return Err(Refusal::Startups);
        }
        if state.total >= self.begin {
            let span = (self.full - self.begin).max(1) as f64;
            let progress = (state.total - self.begin) as f64 / span;
            let drop_probability = self.rate + (1.0 - self.rate) * progress;
            if roll < drop_probability {
                return Err(Refusal::Startups);
            }
        }
        state.total += 1;
        *state.by_source.entry(source).or_default() += 1;
        Ok(Arc::new(Pending {
            admission: self.clone(),
            source,
            released: AtomicBool::new(false),
            authenticated: AtomicBool::new(false),
            enrolling: AtomicBool::new(false),
            failed_attempts: AtomicU32::new(0),
            ended: AtomicBool::new(false),
        }))
    }

    /// Pending connections now (total).
    pub fn pending(&self) -> usize {
        self.state.lock().map(|s| s.total).unwrap_or(0)
    }

    fn release(&self, source: IpAddr) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.total = state.total.saturating_sub(1);
        if let Some(count) = state.by_source.get_mut(&source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.by_source.remove(&source);
            }
        }
    }
}

impl Pending {
    /// The connection authenticated: its slot is free for others, and its end is no offence.
    pub fn authenticated(&self) {
        self.authenticated.store(true, Ordering::SeqCst);
        self.release();
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::SeqCst)
    }

    /// The key was accepted for a user who must enroll first: still unauthenticated (the slot
    /// stays taken), but the pre-authentication deadline becomes the enrollment deadline.
    pub fn enrolling(&self) {
        self.enrolling.store(true, Ordering::SeqCst);
    }

    pub fn is_enrolling(&self) -> bool {
        self.enrolling.load(Ordering::SeqCst)
    }

    /// An authentication attempt on this connection failed (a refused key, a wrong code).
    /// If the connection then ends unauthenticated, its source is penalised for `authfail`
    /// rather than `noauth`.
    pub fn auth_failed(&self) {
        self.failed_attempts.fetch_add(1, Ordering::SeqCst);
    }

    /// The connection is over (`deadline_exceeded`: closed by us at the pre-authentication
    /// deadline). Judges how it ended and penalises its source if it never authenticated.
    /// Only the first call counts.
    pub fn ended(&self, deadline_exceeded: bool) -> Option<Offence> {
        if self.ended.swap(true, Ordering::SeqCst) {
            return None;
        }
        self.release();
        let offence = Offence::of_ended_connection(
            self.is_authenticated(),
            self.failed_attempts.load(Ordering::SeqCst),
            deadline_exceeded,
        )?;
        self.admission.record(self.source, offence, Instant::now());
        Some(offence)
    }

    /// Whether another node penalised this connection's source (see
    /// [`Admission::shared_refusal`]). A connection refused so was never served: drop it
    /// without [`Pending::ended`], which would count its end as one more offence.
    pub async fn penalised_elsewhere(&self) -> bool {
        self.admission.shared_refusal(self).await
    }

    fn release(&self) {
        if !self.released.swap(true, Ordering::SeqCst) {
            self.admission.release(self.source);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(per_source: u32, begin: u32, rate: u32, full: u32) -> LimitsConfig {
        LimitsConfig {
            max_unauthenticated_per_source: per_source,
            startups_begin: begin,
            startups_rate: rate,
            startups_full: full,
            ..LimitsConfig::default()
        }
    }

    /// Admission with penalties off: the caps alone.
    fn admission(per_source: u32, begin: u32, rate: u32, full: u32) -> Arc<Admission> {
        let off = PenaltiesConfig {
            enabled: false,
            ..PenaltiesConfig::default()
        };
        Admission::new(&limits(per_source, begin, rate, full), &off)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_source_cannot_take_every_slot() {
        let a = admission(2, 10, 30, 100);
        let now = Instant::now();
        let flood = ip("127.0.0.2");
        let first = a.admit(flood, 0.0, now).unwrap();
        let _second = a.admit(flood, 0.0, now).unwrap();
        assert_eq!(a.admit(flood, 0.99, now).err(), Some(Refusal::PerSource));
        assert!(a.admit(ip("127.0.0.1"), 0.0, now).is_ok());
        first.authenticated();
        assert!(
            a.admit(flood, 0.0, now).is_ok(),
            "an authenticated connection frees its slot"
        );
    }

    #[test]
    fn an_ipv6_64_is_one_source() {
        let a = admission(2, 10, 30, 100);
        let now = Instant::now();
        let _one = a.admit(ip("2001:db8::1"), 0.0, now).unwrap();
        let _two = a.admit(ip("2001:db8::2"), 0.0, now).unwrap();
        assert_eq!(
            a.admit(ip("2001:db8::3"), 0.0, now).err(),
            Some(Refusal::PerSource)
        );
        assert!(a.admit(ip("2001:db8:0:1::1"), 0.0, now).is_ok());
    }

    #[test]
    fn random_early_drop_between_begin_and_full() {
        let a = admission(1000, 2, 50, 4);
        let now = Instant::now();
        let ip = ip("127.0.0.1");
        let _held: Vec<_> = (0..2).map(|_| a.admit(ip, 0.0, now).unwrap()).collect();
        assert_eq!(
            a.admit(ip, 0.49, now).err(),
            Some(Refusal::Startups),
            "50 % at begin"
        );
        let third = a.admit(ip, 0.51, now).unwrap();
        assert_eq!(
            a.admit(ip, 0.74, now).err(),
            Some(Refusal::Startups),
            "75 % halfway"
        );
        let _fourth = a.admit(ip, 0.76, now).unwrap();
        assert_eq!(
            a.admit(ip, 0.999, now).err(),
            Some(Refusal::Startups),
            "full"
        );
        drop(third);
        assert_eq!(a.pending(), 3);
    }

    #[test]
    fn a_flooding_source_is_penalised_and_refused_first() {
        let a = Admission::new(&limits(2, 10, 30, 100), &PenaltiesConfig::default());
        let t0 = Instant::now();
        let flood = ip("127.0.0.2");
        let held: Vec<_> = (0..2).map(|_| a.admit(flood, 0.0, t0).unwrap()).collect();
        assert_eq!(a.admit(flood, 0.0, t0).err(), Some(Refusal::PerSource));
        assert_eq!(a.admit(flood, 0.0, t0).err(), Some(Refusal::Penalised));
        drop(held);
        assert_eq!(
            a.admit(flood, 0.0, t0 + Duration::from_secs(14)).err(),
            Some(Refusal::Penalised),
            "the overflow penalty (15 s) outlasts the connections"
        );
        assert!(a.admit(flood, 0.0, t0 + Duration::from_secs(15)).is_ok());
        assert!(
            a.admit(ip("127.0.0.1"), 0.0, t0).is_ok(),
            "others unaffected"
        );
    }

    #[test]
    fn how_a_connection_ended_decides_its_sources_penalty() {
        let a = Admission::new(&limits(10, 10, 30, 100), &PenaltiesConfig::default());
        let now = Instant::now();
        let running = a.admit(ip("192.0.2.1"), 0.0, now).unwrap();
        let cases = [
            ("192.0.2.2", true, 2, false, None),
            ("192.0.2.3", false, 0, false, Some(Offence::NoAuth)),
            ("192.0.2.4", false, 1, false, Some(Offence::AuthFail)),
            ("192.0.2.5", false, 0, true, Some(Offence::GraceExceeded)),
        ];
        for (source, authenticated, failures, deadline_exceeded, want) in cases {
            let pending = a.admit(ip(source), 0.0, now).unwrap();
            for _ in 0..failures {
                pending.auth_failed();
            }
            if authenticated {
                pending.authenticated();
            }
            assert_eq!(pending.ended(deadline_exceeded), want, "{source}");
            assert_eq!(pending.ended(false), None, "judged once");
            assert_eq!(a.pending(), 1, "an ended connection frees its slot at once");
        }
        assert!(!running.is_authenticated());
        assert!(a.admit(ip("192.0.2.2"), 0.0, Instant::now()).is_ok());
        assert_eq!(
            a.admit(ip("192.0.2.4"), 0.0, Instant::now()).err(),
            Some(Refusal::Penalised)
        );
    }
}
