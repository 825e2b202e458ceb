//! Admission of unauthenticated connections, in the spirit of OpenSSH's MaxStartups and
//! LoginGraceTime: a connection is "pending" from TCP accept until its key is accepted.
//!
//! - Per source address at most `limits.max_unauthenticated_per_source` pending connections, so
//!   one flooding address cannot crowd out everyone else.
//! - In total, from `limits.startups_begin` pending connections on, new ones are dropped with a
//!   probability rising from `limits.startups_rate` % to 100 % at `limits.startups_full`.
//! - A pending connection is closed at `limits.pre_auth_timeout_secs` after accept.

use crate::config::LimitsConfig;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Counts pending connections in total and per source address.
pub struct Admission {
    state: Mutex<State>,
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
    PerSource,
    Startups,
}

/// One admitted, not yet authenticated connection; its slot is freed once it authenticates or
/// when it is dropped, whichever comes first.
pub struct Pending {
    admission: Arc<Admission>,
    source: IpAddr,
    released: AtomicBool,
}

impl Admission {
    pub fn new(limits: &LimitsConfig) -> Arc<Admission> {
        Arc::new(Admission {
            state: Mutex::new(State::default()),
            per_source: usize::try_from(limits.max_unauthenticated_per_source).unwrap_or(10),
            begin: usize::try_from(limits.startups_begin).unwrap_or(10),
            rate: f64::from(limits.startups_rate.min(100)) / 100.0,
            full: usize::try_from(limits.startups_full).unwrap_or(100),
        })
    }

    /// Admits a new connection from `source`, or says why not. `roll` is a uniform number in
    /// [0, 1) deciding the random early drop (passed in so tests can fix it).
    pub fn admit(self: &Arc<Self>, source: IpAddr, roll: f64) -> Result<Arc<Pending>, Refusal> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let from_source = state.by_source.get(&source).copied().unwrap_or(0);
        if from_source >= self.per_source {
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
    /// The connection authenticated: its slot is free for others.
    pub fn authenticated(&self) {
        if !self.released.swap(true, Ordering::SeqCst) {
            self.admission.release(self.source);
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// An authentication attempt on this connection failed (a refused key, a wrong code).
    /// Counted towards the source's penalty when the connection ends unauthenticated.
    #[allow(dead_code)] // wired in by the penalties work
    pub fn auth_failed(&self) {}
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.authenticated();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(per_source: u32, begin: u32, rate: u32, full: u32) -> Arc<Admission> {
        let limits = LimitsConfig {
            max_unauthenticated_per_source: per_source,
            startups_begin: begin,
            startups_rate: rate,
            startups_full: full,
            ..LimitsConfig::default()
        };
        Admission::new(&limits)
    }

    #[test]
    fn one_source_cannot_take_every_slot() {
        let a = admission(2, 10, 30, 100);
        let flood: IpAddr = "127.0.0.2".parse().unwrap();
        let first = a.admit(flood, 0.0).unwrap();
        let _second = a.admit(flood, 0.0).unwrap();
        assert_eq!(a.admit(flood, 0.99).err(), Some(Refusal::PerSource));
        assert!(a.admit("127.0.0.1".parse().unwrap(), 0.0).is_ok());
        first.authenticated();
        assert!(
            a.admit(flood, 0.0).is_ok(),
            "an authenticated connection frees its slot"
        );
    }

    #[test]
    fn random_early_drop_between_begin_and_full() {
        let a = admission(1000, 2, 50, 4);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let _held: Vec<_> = (0..2).map(|_| a.admit(ip, 0.0).unwrap()).collect();
        assert_eq!(
            a.admit(ip, 0.49).err(),
            Some(Refusal::Startups),
            "50 % at begin"
        );
        let third = a.admit(ip, 0.51).unwrap();
        assert_eq!(
            a.admit(ip, 0.74).err(),
            Some(Refusal::Startups),
            "75 % halfway"
        );
        let _fourth = a.admit(ip, 0.76).unwrap();
        assert_eq!(a.admit(ip, 0.999).err(), Some(Refusal::Startups), "full");
        drop(third);
        assert_eq!(a.pending(), 3);
    }
}
