//! Per-source penalties shared by every node through Redis (`redis_url`): an offence seen by
//! one node makes all of them refuse the source. The rules are those of the in-process table
//! (`ssh::penalties`, which each node keeps as well): an offence while penalised doubles the
//! penalty (at least the new offence's base, at most the max), one after it ran out starts again
//! from the base.
//!
//! One hash per source, `<redis_key_prefix>penalty:<source>`, fields `until` (Redis server time,
//! ms) and `penalty` (ms), expiring when the penalty ends: a check is one `PTTL`. The update is
//! one Lua script, so offences on several nodes at once all count. Time is Redis's clock, so the
//! nodes' clocks need not agree.
//!
//! Every call is bounded (see [`super::shared_state`]) and answers `None` when Redis cannot
//! say; callers then go by their own table. May not import `ssh`.

use super::shared_state::SharedState;
use std::net::IpAddr;
use std::time::Duration;

/// Records one offence: returns `{penalty ms, started (1|0)}`.
const RECORD: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local base = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local old = redis.call('HMGET', KEYS[1], 'until', 'penalty')
local untl = tonumber(old[1])
local penalty = tonumber(old[2])
local started = 1
if untl and penalty and untl > now then
  penalty = math.min(math.max(penalty * 2, base), max)
  started = 0
else
  penalty = base
end
redis.call('HSET', KEYS[1], 'until', now + penalty, 'penalty', penalty)
redis.call('PEXPIRE', KEYS[1], penalty)
return {penalty, started}
";

/// A penalty as Redis holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedPenalty {
    /// How long the source stays penalised from now.
    pub remaining: Duration,
    /// What the next offence doubles.
    pub penalty: Duration,
    /// Whether this offence started the penalty (it was not penalised before).
    pub started: bool,
}

/// The penalties part of the shared state.
#[derive(Clone)]
pub struct SharedPenalties {
    state: SharedState,
    script: std::sync::Arc<redis::Script>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SharedPenalties {
    pub fn new(state: SharedState) -> SharedPenalties {
        SharedPenalties {
            state,
            script: std::sync::Arc::new(redis::Script::new(RECORD)),
        }
    }

    fn key(&self, source: IpAddr) -> String {
        format!("{}penalty:{source}", self.state.prefix())
    }

    /// Records an offence of `source` whose kind's base penalty is `base` (capped at `max`).
    /// `None` when Redis could not be asked in time.
    pub async fn record(
        &self,
        source: IpAddr,
        base: Duration,
        max: Duration,
    ) -> Option<SharedPenalty> {
        let key = self.key(source);
        let base = millis(base.min(max)).max(1);
        let max = millis(max).max(1);
        let script = self.script.clone();
        let (penalty, started): (u64, u8) = self
            .state
            .call("penalty record", |mut conn| async move {
                script
                    .key(key)
                    .arg(base)
                    .arg(max)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let penalty = Duration::from_millis(penalty);
        Some(SharedPenalty {
            remaining: penalty,
            penalty,
            started: started == 1,
        })
    }

    /// How long `source` stays penalised according to Redis: `Some(None)` when it is not,
    /// `None` when Redis could not be asked in time.
    pub async fn remaining(&self, source: IpAddr) -> Option<Option<Duration>> {
        let key = self.key(source);
        let ttl: i64 = self
            .state
            .call("penalty check", |mut conn| async move {
                redis::cmd("PTTL").arg(key).query_async(&mut conn).await
            })
            .await?;
        // -2: no such key; -1: no expiry (never written so by us; treated as not penalised).
        Some(
            u64::try_from(ttl)
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
        )
    }
}
