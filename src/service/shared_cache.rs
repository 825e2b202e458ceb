//! The second level of the dashboard cache, in Redis (`redis_url`): a result one node computed
//! serves every node until a change it shows. Each node keeps its own cache in front
//! ([`super::cache`]); this level is asked on a miss there and filled after a database read.
//!
//! Tag invalidation by versions (keys under `redis_key_prefix`):
//! - an entry (`dash:<tenant|*>:<user|->`) is stored as `<versions>|<json>`, the versions being
//!   those of its dependency keys read *before* the database was;
//! - an entry tagged `KIND:TENANT` depends on `v:KIND:TENANT`, `v:KIND:*` and `v:*`; one tagged
//!   `KIND:*` (an admin's) on `v:KIND:~` and `v:*`;
//! - a change tagged `KIND:TENANT` increments `v:KIND:TENANT` and `v:KIND:~`, one tagged
//!   `KIND:*` increments `v:KIND:*` and `v:KIND:~`, and `*` increments `v:*`.
//!
//! A read (one Lua script) returns the entry only when every dependency still has the version
//! it was filled with, so a fill that raced a change is never served. Every node increments
//! the versions of the changes it learns of (its own commands at once, other processes' through
//! its trail watcher); more increments than needed cost nothing. When this node's connection to
//! Redis is remade, it increments `v:*` before using the cache again: changes made while it
//! could not tell Redis must not leave entries valid. Entries expire after [`TTL`] anyway.
//!
//! Every call is bounded (see [`super::shared_state`]); when Redis is away the level is
//! bypassed and the database answers.

use super::Dashboard;
use super::cache::CacheKey;
use super::shared_state::SharedState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How long an entry lives in Redis at most.
pub const TTL_SECS: u64 = 300;

/// Returns the entry's JSON when every dependency has the version it was stored with.
const READ: &str = r"
local e = redis.call('GET', KEYS[1])
if not e then return false end
local sep = string.find(e, '|', 1, true)
if not sep then return false end
local now = {}
for i = 2, #KEYS do
  now[#now + 1] = redis.call('GET', KEYS[i]) or '0'
end
if table.concat(now, ',') ~= string.sub(e, 1, sep - 1) then return false end
return string.sub(e, sep + 1)
";

/// The dashboard cache's level in Redis.
#[derive(Clone)]
pub struct SharedCache {
    state: SharedState,
    read: Arc<redis::Script>,
    /// The connection epoch whose start was followed by an increment of `v:*` (0: none yet).
    flushed_epoch: Arc<AtomicU64>,
}

impl SharedCache {
    pub fn new(state: SharedState) -> SharedCache {
        SharedCache {
            state,
            read: Arc::new(redis::Script::new(READ)),
            flushed_epoch: Arc::new(AtomicU64::new(0)),
        }
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.state.prefix())
    }

    fn entry_key(&self, key: &CacheKey) -> String {
        let tenant = key.tenant_id.map_or("*".to_owned(), |t| t.to_string());
        let user = key.keys_of.map_or("-".to_owned(), |u| u.to_string());
        self.key(&format!("dash:{tenant}:{user}"))
    }

    /// The version keys an entry with `tags` depends on, in a fixed order.
    fn dependencies(&self, tags: &[String]) -> Vec<String> {
        let mut deps = vec![self.key("v:*")];
        for tag in tags {
            let Some((kind, tenant)) = tag.split_once(':') else {
                continue;
            };
            if tenant == "*" {
                deps.push(self.key(&format!("v:{kind}:~")));
            } else {
                deps.push(self.key(&format!("v:{tag}")));
                deps.push(self.key(&format!("v:{kind}:*")));
            }
        }
        deps
    }

    /// The version keys a change tagged `changed` increments.
    fn bumps(&self, changed: &[String]) -> Vec<String> {
        let mut keys = Vec::new();
        for tag in changed {
            match tag.split_once(':') {
                None => keys.push(self.key("v:*")),
                Some((kind, _)) => {
                    keys.push(self.key(&format!("v:{tag}")));
                    keys.push(self.key(&format!("v:{kind}:~")));
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// After a (re)connect, everything stored before may predate changes this node could not
    /// record: `v:*` moves on first. `false` when Redis is not usable now.
    async fn ready(&self) -> bool {
        let Some(epoch) = self.state.epoch() else {
            return false;
        };
        if self.flushed_epoch.load(Ordering::Acquire) == epoch {
            return true;
        }
        let all = self.key("v:*");
        let bumped = self
            .state
            .call("flush the dashboard cache", |mut conn| async move {
                redis::cmd("INCR")
                    .arg(all)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
        if bumped.is_some() {
            self.flushed_epoch.store(epoch, Ordering::Release);
        }
        bumped.is_some()
    }

    /// The entry for `key` when it is still valid.
    pub async fn get(&self, key: &CacheKey, tags: &[String]) -> Option<Dashboard> {
        if !self.ready().await {
            return None;
        }
        let mut invocation = self.read.key(self.entry_key(key));
        for dep in self.dependencies(tags) {
            invocation.key(dep);
        }
        let text: Option<String> = self
            .state
            .call("read the dashboard cache", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await
            .flatten();
        serde_json::from_str(&text?).ok()
    }

    /// The versions of `tags`' dependencies, read before the database (pass them to [`put`]).
    ///
    /// [`put`]: SharedCache::put
    pub async fn versions(&self, tags: &[String]) -> Option<String> {
        if !self.ready().await {
            return None;
        }
        let deps = self.dependencies(tags);
        let values: Vec<Option<String>> = self
            .state
            .call("read cache versions", |mut conn| async move {
                redis::cmd("MGET").arg(deps).query_async(&mut conn).await
            })
            .await?;
        Some(
            values
                .into_iter()
                .map(|v| v.unwrap_or_else(|| "0".into()))
                .collect::<Vec<_>>()
                .join(","),
        )
    }

    /// Stores `value` for `key`, valid while the dependencies keep `versions`.
    pub async fn put(&self, key: &CacheKey, versions: &str, value: &Dashboard) {
        let Ok(json) = serde_json::to_string(value) else {
            return;
        };
        let entry = self.entry_key(key);
        let stored = format!("{versions}|{json}");
        self.state
            .call("fill the dashboard cache", |mut conn| async move {
                redis::cmd("SET")
                    .arg(entry)
                    .arg(stored)
                    .arg("EX")
                    .arg(TTL_SECS)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await;
    }

    /// Increments the versions a change tagged `changed` moves (in the background).
    pub fn invalidate(&self, changed: &[String]) {
        let keys = self.bumps(changed);
        if keys.is_empty() || self.state.epoch().is_none() {
            return;
        }
        let state = self.state.clone();
        tokio::spawn(async move {
            state
                .call("invalidate the dashboard cache", |mut conn| async move {
                    let mut pipe = redis::pipe();
                    for key in keys {
                        pipe.cmd("INCR").arg(key).ignore();
                    }
                    pipe.query_async::<()>(&mut conn).await
                })
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> SharedCache {
        SharedCache::new(SharedState::new("redis://127.0.0.1:1/", "r", "p:").unwrap())
    }

    #[test]
    fn every_change_that_matches_an_entry_moves_one_of_its_dependencies() {
        let c = cache();
        let tenant = super::super::cache::entry_tags(Some("acme"));
        let platform = super::super::cache::entry_tags(None);
        let changes: [(&str, bool, bool); 6] = [
            // (change, invalidates acme's entry, invalidates the platform's)
            ("sites:acme", true, true),
            ("sites:beta", false, true),
            ("sites:*", true, true),
            ("servers:shared", true, true),
            ("keys:beta", false, true),
            ("*", true, true),
        ];
        for (change, for_tenant, for_platform) in changes {
            let bumped = c.bumps(&[change.to_owned()]);
            let hits = |tags: &[String]| c.dependencies(tags).iter().any(|d| bumped.contains(d));
            assert_eq!(hits(&tenant), for_tenant, "{change} vs acme");
            assert_eq!(hits(&platform), for_platform, "{change} vs platform");
        }
    }
}
