//! Per-source penalties, in the spirit of OpenSSH's `PerSourcePenalties`: a source whose
//! connections misbehave is refused at TCP accept, before the SSH banner, for a while.
//!
//! A source is an IPv4 address or an IPv6 /64 (an IPv4-mapped IPv6 address counts as IPv4).
//! An offence while the source is penalised doubles its penalty (at least the base of the new
//! offence's kind, at most `penalties.max_secs`); an offence after the penalty ran out starts
//! again from the base. The table holds at most `penalties.max_sources` sources: expired ones are
//! swept out, and when it is full of live penalties, new sources go unpenalised rather than
//! evicting penalties still in force (OpenSSH's default removes penalties early instead; an
//! attacker with many addresses could then free the worst offenders by filling the table).
//!
//! Time is passed in (`now`) so the arithmetic is tested without sleeping. Nothing here does I/O
//! besides logging. With `redis_url` set, the same rules also run in Redis for all nodes
//! ([`crate::service::shared_penalties`]); what Redis knows is [`Penalties::adopt`]ed here, so
//! this table alone still refuses those sources when Redis is away.

use crate::config::PenaltiesConfig;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a connection misbehaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offence {
    /// Ended unauthenticated after at least one failed authentication attempt.
    AuthFail,
    /// Ended unauthenticated without any authentication attempt failing.
    NoAuth,
    /// Still unauthenticated at the pre-authentication deadline.
    GraceExceeded,
    /// Refused at accept: its source already held its share of unauthenticated connections.
    Overflow,
}

impl Offence {
    /// The name used in logs and documentation (OpenSSH's words where it has them).
    pub fn name(self) -> &'static str {
        match self {
            Offence::AuthFail => "authfail",
            Offence::NoAuth => "noauth",
            Offence::GraceExceeded => "grace-exceeded",
            Offence::Overflow => "overflow",
        }
    }

    /// How a connection that ended is judged: `None` when it authenticated.
    pub fn of_ended_connection(
        authenticated: bool,
        failed_attempts: u32,
        deadline_exceeded: bool,
    ) -> Option<Offence> {
        if authenticated {
            None
        } else if deadline_exceeded {
            Some(Offence::GraceExceeded)
        } else if failed_attempts > 0 {
            Some(Offence::AuthFail)
        } else {
            Some(Offence::NoAuth)
        }
    }
}

/// The key a source is counted and penalised under: the IPv4 address, or the IPv6 /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
    }
}

/// What recording an offence did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Penalties are off, the source is exempt, or this kind of offence has no penalty.
    Ignored,
    /// The table is full of live penalties: this source is not tracked.
    TableFull,
    /// The source is penalised for `penalty` from now; `started` when it was not before.
    Penalised { penalty: Duration, started: bool },
}

/// The penalty table shared by the accept loop and every connection.
pub struct Penalties {
    enabled: bool,
    /// Base penalty per offence kind, in the order of [`Offence::index`].
    base: [Duration; 4],
    max: Duration,
    max_sources: usize,
    exempt: Vec<ipnet::IpNet>,
    table: Mutex<Table>,
    /// Where new penalties are announced for the audit trail (as rate-limited as the log).
    notices: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<PenaltyNotice>>,
}

/// A source that became penalised, for the audit trail.
#[derive(Debug, Clone)]
pub struct PenaltyNotice {
    pub source: IpAddr,
    pub offence: &'static str,
    pub penalty: Duration,
}

struct Table {
    entries: HashMap<IpAddr, Entry>,
    next_sweep: Option<Instant>,
    log: LogBudget,
    /// Connections refused because their source was penalised, since the last log line.
    refused: u64,
}

/// One penalised source: refused until `until`; `penalty` is what the next offence doubles.
#[derive(Debug, Clone, Copy)]
struct Entry {
    until: Instant,
    penalty: Duration,
}

/// How often expired entries are swept out even when the table is not full.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl Offence {
    fn index(self) -> usize {
        match self {
            Offence::AuthFail => 0,
            Offence::NoAuth => 1,
            Offence::GraceExceeded => 2,
            Offence::Overflow => 3,
        }
    }
}

fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after).unwrap_or(now)
}

impl Penalties {
    pub fn new(config: &PenaltiesConfig) -> Penalties {
        // The configuration was validated at load; a bad entry here is skipped, not fatal.
        let exempt = config.exempt_networks().unwrap_or_else(|why| {
            tracing::error!(%why, "penalties.exempt is invalid; no source is exempt");
            Vec::new()
        });
        Penalties {
            notices: std::sync::OnceLock::new(),
            enabled: config.enabled,
            base: [
                Duration::from_secs(config.authfail_secs),
                Duration::from_secs(config.noauth_secs),
                Duration::from_secs(config.grace_exceeded_secs),
                Duration::from_secs(config.overflow_secs),
            ],
            max: Duration::from_secs(config.max_secs),
            max_sources: usize::try_from(config.max_sources).unwrap_or(usize::MAX),
            exempt,
            table: Mutex::new(Table {
                entries: HashMap::new(),
                next_sweep: None,
                log: LogBudget::new(PENALTY_LOG_LINES, PENALTY_LOG_WINDOW),
                refused: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `source` (a [`source_key`]) is penalised at `now`; if so, counts the refusal and
    /// returns how long the penalty still runs.
    pub fn check(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        if !self.enabled {
            return None;
        }
        let mut table = self.lock();
        let until = table.entries.get(&source)?.until;
        if until <= now {
            table.entries.remove(&source);
            return None;
        }
        table.refused = table.refused.saturating_add(1);
        Some(until - now)
    }

    /// Sends every new penalty that is logged to `notices` too (set once, by the accept loop).
    pub fn announce_to(&self, notices: tokio::sync::mpsc::UnboundedSender<PenaltyNotice>) {
        let _ = self.notices.set(notices);
    }

    /// Records an offence of `source` (a [`source_key`]) at `now`, and logs (rate-limited) when
    /// the source becomes penalised.
    pub fn record(&self, source: IpAddr, offence: Offence, now: Instant) -> Recorded {
        let base = self.base[offence.index()].min(self.max);
        if !self.enabled || base.is_zero() || self.exempt.iter().any(|n| n.contains(&source)) {
            return Recorded::Ignored;
        }
        let mut table = self.lock();
        if table.next_sweep.is_none_or(|at| now >= at) {
            table.sweep(now);
        }
        let recorded = match table.entries.get_mut(&source) {
            Some(entry) if entry.until > now => {
                entry.penalty = entry.penalty.saturating_mul(2).max(base).min(self.max);
                entry.until = later(now, entry.penalty);
                Recorded::Penalised {
                    penalty: entry.penalty,
                    started: false,
                }
            }
            Some(entry) => {
                *entry = Entry {
                    until: later(now, base),
                    penalty: base,
                };
                Recorded::Penalised {
                    penalty: base,
                    started: true,
                }
            }
            None => {
                if table.entries.len() >= self.max_sources {
                    table.sweep(now);
                }
                if table.entries.len() >= self.max_sources {
                    Recorded::TableFull
                } else {
                    table.entries.insert(
                        source,
                        Entry {
                            until: later(now, base),
                            penalty: base,
                        },
                    );
                    Recorded::Penalised {
                        penalty: base,
                        started: true,
                    }
                }
            }
        };
        let log = match recorded {
            Recorded::Ignored => None,
            Recorded::Penalised { started: false, .. } => None,
            Recorded::Penalised { started: true, .. } | Recorded::TableFull => {
                table.log.take(now).map(|suppressed| {
                    let refused = std::mem::take(&mut table.refused);
                    (suppressed, refused)
                })
            }
        };
        let sources = table.entries.len();
        drop(table);
        match (recorded, log) {
            (Recorded::Penalised { penalty, .. }, Some((suppressed, refused))) => {
                tracing::info!(
                    source = %source,
                    offence = offence.name(),
                    penalty_secs = penalty.as_secs(),
                    sources,
                    refused_meanwhile = refused,
                    log_lines_suppressed = suppressed,
                    "source penalised: its new connections are closed before the SSH banner"
                );
                if let Some(notices) = self.notices.get() {
                    let _ = notices.send(PenaltyNotice {
                        source,
                        offence: offence.name(),
                        penalty,
                    });
                }
            }
            (Recorded::TableFull, Some((suppressed, _))) => {
                tracing::warn!(
                    source = %source,
                    offence = offence.name(),
                    sources,
                    log_lines_suppressed = suppressed,
                    "penalty table full (penalties.max_sources); source not penalised"
                );
            }
            (Recorded::Penalised { penalty, .. }, None) => {
                tracing::debug!(source = %source, offence = offence.name(), penalty_secs = penalty.as_secs(), "penalty extended");
            }
            _ => {}
        }
        recorded
    }

    /// The penalty an offence of this kind from `source` starts with (capped at the max), or
    /// `None` when it is not penalised at all (penalties off, source exempt, base 0).
    pub fn base_for(&self, source: IpAddr, offence: Offence) -> Option<Duration> {
        let base = self.base[offence.index()].min(self.max);
        let ignored =
            !self.enabled || base.is_zero() || self.exempt.iter().any(|n| n.contains(&source));
        (!ignored).then_some(base)
    }

    /// Whether penalties apply to `source` at all (on, and the source is not exempt).
    pub fn applies_to(&self, source: IpAddr) -> bool {
        self.enabled && !self.exempt.iter().any(|n| n.contains(&source))
    }

    /// The longest penalty (`penalties.max_secs`).
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Takes over what another node knows (through Redis): `source` is penalised for
    /// `remaining` from `now`, its next offence doubling `penalty`. Only ever lengthens what
    /// this table holds, so this node keeps refusing the source should Redis go away. Follows
    /// the table's bound like [`Penalties::record`] (a full table adopts nothing new).
    pub fn adopt(&self, source: IpAddr, remaining: Duration, penalty: Duration, now: Instant) {
        if !self.applies_to(source) {
            return;
        }
        let remaining = remaining.min(self.max);
        let penalty = penalty.min(self.max);
        let until = later(now, remaining);
        let mut table = self.lock();
        match table.entries.get_mut(&source) {
            Some(entry) if entry.until > now => {
                entry.until = entry.until.max(until);
                entry.penalty = entry.penalty.max(penalty);
            }
            Some(entry) => *entry = Entry { until, penalty },
            None => {
                if table.entries.len() >= self.max_sources {
                    table.sweep(now);
                }
                if table.entries.len() < self.max_sources {
                    table.entries.insert(source, Entry { until, penalty });
                }
            }
        }
    }

    /// Sources in the table (penalised or expired but not yet swept).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().entries.len()
    }
}

impl Table {
    fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, entry| entry.until > now);
        // A flood from many sources leaves a large allocation behind; give it back once the
        // table is mostly empty again.
        if self.entries.capacity() > 1024 && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to_fit();
        }
        self.next_sweep = Some(later(now, SWEEP_EVERY));
    }
}

/// Penalty log lines allowed per window; further ones are counted and reported with the next.
const PENALTY_LOG_LINES: u32 = 10;
const PENALTY_LOG_WINDOW: Duration = Duration::from_secs(60);

/// A budget of log lines per time window, so a flood cannot flood the log too.
#[derive(Debug)]
pub struct LogBudget {
    lines: u32,
    window: Duration,
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    pub fn new(lines: u32, window: Duration) -> LogBudget {
        LogBudget {
            lines,
            window,
            window_start: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// `Some(lines suppressed since the last allowed one)` when a line may be written at `now`.
    pub fn take(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= self.window);
        if fresh {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used < self.lines {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PenaltiesConfig {
        PenaltiesConfig::default()
    }

    fn ip(text: &str) -> IpAddr {
        source_key(text.parse().unwrap())
    }

    fn penalty(recorded: Recorded) -> Duration {
        match recorded {
            Recorded::Penalised { penalty, .. } => penalty,
            other => panic!("not penalised: {other:?}"),
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_first_offence_costs_the_base_of_its_kind_and_expires() {
        let p = Penalties::new(&config());
        let t0 = Instant::now();
        let flood = ip("192.0.2.1");
        for (offence, base) in [
            (Offence::NoAuth, 1),
            (Offence::AuthFail, 5),
            (Offence::GraceExceeded, 10),
            (Offence::Overflow, 15),
        ] {
            let start = t0 + S(1000 * base);
            assert_eq!(
                p.record(flood, offence, start),
                Recorded::Penalised {
                    penalty: S(base),
                    started: true
                },
                "{offence:?}"
            );
            assert_eq!(p.check(flood, start), Some(S(base)));
            assert!(
                p.check(flood, start + S(base) - Duration::from_millis(1))
                    .is_some()
            );
            assert_eq!(p.check(flood, start + S(base)), None, "expired");
        }
        assert_eq!(
            p.check(ip("192.0.2.2"), t0),
            None,
            "other sources are not affected"
        );
    }

    #[test]
    fn offences_while_penalised_double_up_to_the_max() {
        let p = Penalties::new(&config());
        let t0 = Instant::now();
        let flood = ip("192.0.2.1");
        let mut seen = Vec::new();
        for i in 0..8 {
            seen.push(penalty(p.record(flood, Offence::Overflow, t0 + S(i))).as_secs());
        }
        assert_eq!(seen, [15, 30, 60, 120, 240, 480, 600, 600]);
        // The last offence at t0+7 s set a 600 s penalty from then.
        assert!(p.check(flood, t0 + S(606)).is_some());
        assert_eq!(p.check(flood, t0 + S(607)), None);
        // After it ran out, the next offence starts from the base again.
        assert_eq!(
            p.record(flood, Offence::NoAuth, t0 + S(700)),
            Recorded::Penalised {
                penalty: S(1),
                started: true
            }
        );
    }

    #[test]
    fn doubling_takes_the_larger_of_double_and_the_new_kinds_base() {
        let p = Penalties::new(&config());
        let t0 = Instant::now();
        let src = ip("192.0.2.1");
        assert_eq!(penalty(p.record(src, Offence::NoAuth, t0)).as_secs(), 1);
        assert_eq!(
            penalty(p.record(src, Offence::NoAuth, t0 + Duration::from_millis(500))).as_secs(),
            2
        );
        assert_eq!(
            penalty(p.record(src, Offence::GraceExceeded, t0 + S(1))).as_secs(),
            10
        );
        assert_eq!(
            penalty(p.record(src, Offence::NoAuth, t0 + S(2))).as_secs(),
            20
        );
    }

    #[test]
    fn ipv6_sources_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8:1:2:aaaa::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
        assert_ne!(ip("192.0.2.7"), ip("192.0.2.8"));
        let p = Penalties::new(&config());
        let t0 = Instant::now();
        p.record(ip("2001:db8:1:2::1"), Offence::AuthFail, t0);
        assert!(p.check(ip("2001:db8:1:2::dead"), t0).is_some());
        assert!(p.check(ip("2001:db8:1:3::1"), t0).is_none());
    }

    #[test]
    fn disabled_exempt_and_zero_base_are_ignored() {
        let t0 = Instant::now();
        let off = Penalties::new(&PenaltiesConfig {
            enabled: false,
            ..config()
        });
        assert_eq!(
            off.record(ip("192.0.2.1"), Offence::Overflow, t0),
            Recorded::Ignored
        );
        assert_eq!(off.check(ip("192.0.2.1"), t0), None);

        let p = Penalties::new(&PenaltiesConfig {
            exempt: vec!["192.0.2.0/24".into(), "2001:db8::/32".into()],
            noauth_secs: 0,
            ..config()
        });
        for exempt in ["192.0.2.200", "2001:db8:ffff::1", "::ffff:192.0.2.3"] {
            assert_eq!(
                p.record(ip(exempt), Offence::Overflow, t0),
                Recorded::Ignored
            );
        }
        assert_eq!(
            p.record(ip("198.51.100.1"), Offence::NoAuth, t0),
            Recorded::Ignored
        );
        assert!(matches!(
            p.record(ip("198.51.100.1"), Offence::AuthFail, t0),
            Recorded::Penalised { .. }
        ));
        assert_eq!(p.tracked(), 1);
    }

    #[test]
    fn the_table_is_bounded_and_expired_sources_make_room() {
        let p = Penalties::new(&PenaltiesConfig {
            max_sources: 3,
            ..config()
        });
        let t0 = Instant::now();
        for i in 1..=3 {
            p.record(ip(&format!("192.0.2.{i}")), Offence::NoAuth, t0);
        }
        assert_eq!(
            p.record(ip("192.0.2.4"), Offence::NoAuth, t0),
            Recorded::TableFull
        );
        // A source already in the table is still escalated when it is full.
        assert_eq!(
            penalty(p.record(ip("192.0.2.1"), Offence::NoAuth, t0)).as_secs(),
            2
        );
        assert_eq!(p.tracked(), 3);
        // Once penalties run out, new sources fit again.
        assert!(matches!(
            p.record(ip("192.0.2.4"), Offence::NoAuth, t0 + S(3)),
            Recorded::Penalised { started: true, .. }
        ));
        assert_eq!(p.tracked(), 1, "the expired ones were swept");
    }

    /// The memory bound documented for `penalties.max_sources`: run with `--nocapture` to see
    /// the figures. hashbrown (std's map) keeps `capacity * 8 / 7` buckets, each one entry plus
    /// one control byte.
    #[test]
    fn a_full_table_stays_within_its_memory_bound() {
        let max_sources = PenaltiesConfig::default().max_sources;
        let p = Penalties::new(&config());
        let t0 = Instant::now();
        for i in 0..max_sources {
            let [_, _, a, b] = i.to_be_bytes();
            let source = IpAddr::from([10, 0, a, b]);
            assert!(matches!(
                p.record(source, Offence::NoAuth, t0),
                Recorded::Penalised { .. }
            ));
        }
        assert_eq!(
            p.record(ip("192.0.2.1"), Offence::NoAuth, t0),
            Recorded::TableFull
        );
        let table = p.lock();
        let entry = std::mem::size_of::<(IpAddr, Entry)>();
        let buckets = table.entries.capacity() * 8 / 7;
        let bytes = buckets * (entry + 1);
        eprintln!(
            "penalty table: {} sources, {entry} bytes per entry, capacity {}, about {} KiB",
            table.entries.len(),
            table.entries.capacity(),
            bytes / 1024
        );
        assert!(bytes < 8 * 1024 * 1024, "{bytes} bytes");
    }

    #[test]
    fn adopting_a_shared_penalty_only_ever_lengthens_the_local_one() {
        let p = Penalties::new(&PenaltiesConfig {
            max_sources: 2,
            ..config()
        });
        let t0 = Instant::now();
        let src = ip("192.0.2.1");
        p.adopt(src, S(30), S(40), t0);
        assert_eq!(p.check(src, t0), Some(S(30)));
        // A shorter answer (an older one, say) changes nothing.
        p.adopt(src, S(5), S(5), t0);
        assert_eq!(p.check(src, t0), Some(S(30)));
        // The next local offence doubles the adopted length.
        assert_eq!(
            p.record(src, Offence::NoAuth, t0 + S(1)),
            Recorded::Penalised {
                penalty: S(80),
                started: false
            }
        );
        // Capped at the max, bounded like the table, ignored for exempt sources or when off.
        p.adopt(ip("192.0.2.2"), S(100_000), S(100_000), t0);
        assert_eq!(p.check(ip("192.0.2.2"), t0), Some(S(600)));
        p.adopt(ip("192.0.2.3"), S(10), S(10), t0);
        assert_eq!(p.check(ip("192.0.2.3"), t0), None, "table full");
        let exempt = Penalties::new(&PenaltiesConfig {
            exempt: vec!["192.0.2.0/24".into()],
            ..config()
        });
        exempt.adopt(src, S(10), S(10), t0);
        assert_eq!(exempt.check(src, t0), None);
        assert_eq!(exempt.base_for(src, Offence::AuthFail), None);
        assert_eq!(p.base_for(src, Offence::AuthFail), Some(S(5)));
    }

    #[test]
    fn connections_are_judged_by_how_they_ended() {
        use Offence::*;
        assert_eq!(Offence::of_ended_connection(true, 3, true), None);
        assert_eq!(
            Offence::of_ended_connection(false, 0, true),
            Some(GraceExceeded)
        );
        assert_eq!(
            Offence::of_ended_connection(false, 2, true),
            Some(GraceExceeded)
        );
        assert_eq!(
            Offence::of_ended_connection(false, 2, false),
            Some(AuthFail)
        );
        assert_eq!(Offence::of_ended_connection(false, 0, false), Some(NoAuth));
    }

    #[test]
    fn the_log_budget_allows_a_few_lines_per_window_and_counts_the_rest() {
        let mut budget = LogBudget::new(2, S(60));
        let t0 = Instant::now();
        assert_eq!(budget.take(t0), Some(0));
        assert_eq!(budget.take(t0 + S(1)), Some(0));
        assert_eq!(budget.take(t0 + S(2)), None);
        assert_eq!(budget.take(t0 + S(3)), None);
        assert_eq!(
            budget.take(t0 + S(60)),
            Some(2),
            "the next window reports what was suppressed"
        );
    }
}
