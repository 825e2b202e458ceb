//! The dashboard cache: results of `dashboard` kept per scope, each tagged with what it shows,
//! dropped by tag when a change of that kind commits — in this process or in any other that
//! writes the same database (docs/cache.md).
//!
//! - **Key**: the platform (admins) or a tenant id, plus the user for roles below owner (they
//!   count only their own keys).
//! - **Tags**: `KIND:TENANT`, with `*` for every tenant: `tenants:acme`, `users:acme`,
//!   `keys:acme`, `sites:acme`, `servers:acme`, `servers:shared`; an admin's entry is tagged
//!   `KIND:*`. A change invalidates the entries one of whose tags it matches, so a site change in
//!   tenant A leaves tenant B's entry alone.
//! - **Sources**: the audit rows (every successful command writes one in its transaction; its
//!   action's noun is the kind, its tenant the tenant) and the change marks (writes with no audit
//!   row: a host apply's outcome), read after the last `seq` seen: (a) synchronously when a
//!   command of this process returns ([`Services::audited`]), (b) by the watcher task, woken by
//!   `PRAGMA data_version` (SQLite, polled every [`SQLITE_POLL`]) or `LISTEN vipanel_changes`
//!   (PostgreSQL, with a poll every [`PG_FALLBACK_POLL`] as a fallback).
//! - **Races**: a fill that read the database before a change but finished after the change
//!   was invalidated is not stored: each invalidation bumps a generation and remembers its tags,
//!   and a fill is stored only when no invalidation since it started matches its tags.
//! - **Off unless watched**: without a running watcher (`vipanel admin`, tests that do not start
//!   one) nothing is cached, so nothing can be stale. A watcher that fails clears the cache and
//!   turns it off until it has caught up again.

use super::doorbell::{Bell, Doorbells};
use super::{Dashboard, Services};
use crate::error::Result;
use crate::store::Db;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the SQLite watcher asks `PRAGMA data_version` on its own connection.
pub const SQLITE_POLL: Duration = Duration::from_millis(5);
/// How often the PostgreSQL watcher reads the trail without having been notified.
pub const PG_FALLBACK_POLL: Duration = Duration::from_millis(250);
/// Entries kept at most (the least recently used goes first).
pub const DEFAULT_CAPACITY: usize = 1024;
/// Invalidations remembered for fills in flight; a fill older than all of them is not stored.
const RECENT: usize = 256;
/// Rows read per round trip when catching up.
const BATCH: i64 = 500;

/// What makes two dashboard results differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// `None`: the platform (admins).
    pub tenant_id: Option<i64>,
    /// Set for roles that count only their own keys.
    pub keys_of: Option<i64>,
}

/// The tags of an entry of the platform (`tenant` = `None`) or of one tenant.
pub fn entry_tags(tenant: Option<&str>) -> Vec<String> {
    match tenant {
        None => ["tenants", "users", "keys", "servers", "sites"]
            .iter()
            .map(|k| format!("{k}:*"))
            .collect(),
        Some(t) => {
            let mut tags: Vec<String> = ["tenants", "users", "keys", "servers", "sites"]
                .iter()
                .map(|k| format!("{k}:{t}"))
                .collect();
            tags.push("servers:shared".into());
            tags
        }
    }
}

/// The tags a change of `kind` (an audit action's noun, or a change mark's kind) in `tenant`
/// invalidates. Kinds the dashboard does not show (sessions, jobs, the trail itself, second
/// factors) invalidate nothing.
pub fn change_tags(kind: &str, tenant: &str) -> Vec<String> {
    match kind {
        "site" => vec![format!("sites:{tenant}")],
        // Deleting a user deletes its keys.
        "user" => vec![format!("users:{tenant}"), format!("keys:{tenant}")],
        "key" => vec![format!("keys:{tenant}")],
        // Deleting a tenant deletes everything in it.
        "tenant" => entry_tags(Some(tenant))
            .into_iter()
            .filter(|t| t != "servers:shared")
            .collect(),
        // A server's row does not say whether it is shared: every entry that counts servers.
        "server" => vec!["servers:*".into()],
        // `host reconcile` may finish any tenant's deletions.
        "host" => vec!["sites:*".into()],
        _ => Vec::new(),
    }
}

/// Whether an entry tagged `entry` shows what a change tagged `change` changed.
fn tag_matches(entry: &str, change: &str) -> bool {
    if entry == change || change == "*" {
        return true;
    }
    let (Some((ek, et)), Some((ck, ct))) = (entry.split_once(':'), change.split_once(':')) else {
        return false;
    };
    ek == ck && (et == "*" || ct == "*")
}

struct Entry {
    value: Dashboard,
    tags: Vec<String>,
    used: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<CacheKey, Entry>,
    /// Bumped by every invalidation.
    generation: u64,
    /// The newest invalidations: (generation after it, its tags).
    recent: VecDeque<(u64, Vec<String>)>,
    tick: u64,
}

/// Where the trail and the marks were read up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub audit: i64,
    pub marks: i64,
}

/// Hit and miss counts (for tests and the benchmark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

/// The cache of one process (shared by its `Services` clones).
#[derive(Clone)]
pub struct DashboardCache {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// The level in Redis, told of every invalidation (set once, with `redis_url`).
    remote: std::sync::OnceLock<super::shared_cache::SharedCache>,
    cursor: tokio::sync::Mutex<Cursor>,
    /// The cursor as last advanced, readable without waiting (snapshots before a command).
    cursor_seen: Mutex<Cursor>,
    live: AtomicBool,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for DashboardCache {
    fn default() -> Self {
        DashboardCache::new(DEFAULT_CAPACITY)
    }
}

impl DashboardCache {
    pub fn new(capacity: usize) -> DashboardCache {
        DashboardCache {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                remote: std::sync::OnceLock::new(),
                cursor: tokio::sync::Mutex::new(Cursor::default()),
                cursor_seen: Mutex::new(Cursor::default()),
                live: AtomicBool::new(false),
                capacity: capacity.max(1),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells `remote` (the level in Redis) of every invalidation from now on.
    pub fn share_through(&self, remote: super::shared_cache::SharedCache) {
        let _ = self.shared.remote.set(remote);
    }

    /// The level in Redis, when there is one.
    pub fn remote(&self) -> Option<&super::shared_cache::SharedCache> {
        self.shared.remote.get()
    }

    /// Whether a watcher keeps the cache exact (otherwise nothing is cached).
    pub fn is_live(&self) -> bool {
        self.shared.live.load(Ordering::Acquire)
    }

    /// Turns caching on (the watcher has caught up) or off (clearing it).
    pub fn set_live(&self, live: bool) {
        if !live {
            self.invalidate(&["*".to_owned()]);
        }
        self.shared.live.store(live, Ordering::Release);
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.shared.hits.load(Ordering::Relaxed),
            misses: self.shared.misses.load(Ordering::Relaxed),
            entries: self.state().entries.len(),
        }
    }

    /// The cached result, if any.
    pub fn get(&self, key: &CacheKey) -> Option<Dashboard> {
        if !self.is_live() {
            return None;
        }
        let mut state = self.state();
        state.tick += 1;
        let tick = state.tick;
        let found = state.entries.get_mut(key).map(|e| {
            e.used = tick;
            e.value.clone()
        });
        drop(state);
        let counter = if found.is_some() {
            &self.shared.hits
        } else {
            &self.shared.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Call before reading the database for a fill; pass the result to [`Self::insert`].
    pub fn fill_started(&self) -> u64 {
        self.state().generation
    }

    /// Stores a fill unless an invalidation since `started` matches its tags (its reads may
    /// predate that change). Evicts the least recently used entry when full.
    pub fn insert(&self, key: CacheKey, tags: Vec<String>, value: Dashboard, started: u64) {
        if !self.is_live() {
            return;
        }
        let mut state = self.state();
        if state.generation != started {
            let oldest_known = state.recent.front().map_or(u64::MAX, |(g, _)| g - 1);
            if started < oldest_known {
                return;
            }
            let stale = state.recent.iter().any(|(g, changed)| {
                *g > started
                    && changed
                        .iter()
                        .any(|c| tags.iter().any(|t| tag_matches(t, c)))
            });
            if stale {
                return;
            }
        }
        if !state.entries.contains_key(&key) && state.entries.len() >= self.shared.capacity {
            let oldest = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                state.entries.remove(&oldest);
            }
        }
        state.tick += 1;
        let used = state.tick;
        state.entries.insert(key, Entry { value, tags, used });
    }

    /// Drops every entry one of whose tags matches one of `changed` (`*`: every entry).
    pub fn invalidate(&self, changed: &[String]) {
        if changed.is_empty() {
            return;
        }
        if let Some(remote) = self.shared.remote.get() {
            remote.invalidate(changed);
        }
        let mut state = self.state();
        state.entries.retain(|_, e| {
            !changed
                .iter()
                .any(|c| e.tags.iter().any(|t| tag_matches(t, c)))
        });
        state.generation += 1;
        let generation = state.generation;
        state.recent.push_back((generation, changed.to_vec()));
        while state.recent.len() > RECENT {
            state.recent.pop_front();
        }
    }

    /// Where the trail was last read up to (no waiting, no database).
    pub fn cursor(&self) -> Cursor {
        *self
            .shared
            .cursor_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts reading after the trail's and the marks' current heads.
    pub async fn start_at_head(&self, db: &Db) -> Result<()> {
        let mut cursor = self.shared.cursor.lock().await;
        *cursor = Cursor {
            audit: db.audit_head_seq().await?,
            marks: db.change_marks_bounds().await?.1,
        };
        self.publish(*cursor);
        Ok(())
    }

    fn publish(&self, cursor: Cursor) {
        *self
            .shared
            .cursor_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = cursor;
    }

    /// Reads the audit rows and change marks after `from` (or after the cursor: `None`),
    /// invalidates what they changed, and moves the cursor past them. Reading from an older
    /// point than the cursor invalidates those rows' tags again (after a command, whose apply
    /// may have finished after the watcher saw its audit row).
    pub async fn catch_up(&self, db: &Db, from: Option<Cursor>) -> Result<()> {
        let mut cursor = self.shared.cursor.lock().await;
        let mut at = from.unwrap_or(*cursor);
        let filter = crate::store::AuditFilter::default();
        loop {
            let rows = db.audit_query_after(&filter, at.audit, BATCH).await?;
            let full = rows.len() as i64 >= BATCH;
            let mut tags = Vec::new();
            for row in &rows {
                if row.result == "ok" {
                    tags.extend(change_tags(super::change_kind(&row.action), &row.tenant));
                }
                at.audit = at.audit.max(row.seq);
            }
            self.invalidate(&tags);
            if !full {
                break;
            }
        }
        loop {
            let marks = db.change_marks_after(at.marks, BATCH).await?;
            let full = marks.len() as i64 >= BATCH;
            let mut tags = Vec::new();
            for mark in &marks {
                tags.extend(change_tags(&mark.kind, &mark.tenant));
                at.marks = at.marks.max(mark.seq);
            }
            self.invalidate(&tags);
            if !full {
                break;
            }
        }
        cursor.audit = cursor.audit.max(at.audit);
        cursor.marks = cursor.marks.max(at.marks);
        self.publish(*cursor);
        Ok(())
    }
}

impl Services {
    /// Starts the task that keeps this process's dashboard cache exact while other processes
    /// (and this one) write; caching is on from when it has read the heads of the trail.
    pub fn start_cache_watcher(&self) -> tokio::task::JoinHandle<()> {
        let services = self.clone();
        tokio::spawn(async move { services.watch_changes().await })
    }

    async fn watch_changes(&self) {
        let cache = &self.cache;
        loop {
            let bells = &self.doorbells;
            let result = match &self.db {
                Db::Sqlite(pool) => watch_sqlite(cache, bells, &self.db, pool).await,
                Db::Postgres(pool) => watch_postgres(cache, bells, &self.db, pool).await,
            };
            cache.set_live(false);
            if let Err(err) = result {
                tracing::warn!(error = %err, "the cache watcher failed; caching is off until it recovers");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// SQLite: one connection of its own asks `PRAGMA data_version`, which changes only when
/// another connection (of any process) committed; then the new rows are read.
async fn watch_sqlite(
    cache: &DashboardCache,
    bells: &Doorbells,
    db: &Db,
    pool: &sqlx::SqlitePool,
) -> Result<()> {
    use sqlx::{ConnectOptions, Connection};
    let options = (*pool.connect_options()).clone();
    let mut conn = options.connect().await?;
    let mut version: i64 = sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(&mut conn)
        .await?;
    cache.start_at_head(db).await?;
    cache.set_live(true);
    let mut every = tokio::time::interval(SQLITE_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        every.tick().await;
        let now: i64 = match sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut conn)
            .await
        {
            Ok(v) => v,
            Err(e) => break Err(e.into()),
        };
        if now != version {
            version = now;
            if let Err(e) = catch_up_and_ring(cache, bells, db).await {
                break Err(e);
            }
        }
    };
    let _ = conn.close().await;
    result
}

/// PostgreSQL: a listener task wakes the reader at each `vipanel_changes` notification (sent
/// at commit by the audit append and the change marks); the reader also reads every
/// [`PG_FALLBACK_POLL`] without one, and after the listener reconnects.
async fn watch_postgres(
    cache: &DashboardCache,
    bells: &Doorbells,
    db: &Db,
    pool: &sqlx::PgPool,
) -> Result<()> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(crate::store::CHANGES_CHANNEL).await?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let waker = wake.clone();
    let listening = tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                // `None`: the connection was lost (and is being re-established): notifications
                // may have been missed, so read anyway.
                Ok(_) => waker.notify_one(),
                Err(err) => {
                    tracing::warn!(error = %err, "cache listener: cannot receive notifications");
                    waker.notify_one();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _listening = AbortOnDrop(listening);
    cache.start_at_head(db).await?;
    cache.set_live(true);
    loop {
        let _ = tokio::time::timeout(PG_FALLBACK_POLL, wake.notified()).await;
        catch_up_and_ring(cache, bells, db).await?;
    }
}

/// Reads the trail's new rows into the cache; when there were any, rings this process's trail
/// bell, so its subscriptions and followers read them now (rows of other processes included).
async fn catch_up_and_ring(cache: &DashboardCache, bells: &Doorbells, db: &Db) -> Result<()> {
    let before = cache.cursor();
    cache.catch_up(db, None).await?;
    if cache.cursor().audit != before.audit {
        bells.ring_here(Bell::Trail);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dash(sites: i64) -> Dashboard {
        Dashboard {
            scope: "x".into(),
            tenants: 1,
            users: 1,
            keys: 1,
            servers: 1,
            sites,
            sites_by_status: Default::default(),
            sites_failing_health: 0,
            sites_last_applied_at: None,
        }
    }

    fn key(tenant_id: Option<i64>) -> CacheKey {
        CacheKey {
            tenant_id,
            keys_of: None,
        }
    }

    fn live(capacity: usize) -> DashboardCache {
        let cache = DashboardCache::new(capacity);
        cache.set_live(true);
        cache
    }

    fn fill(cache: &DashboardCache, k: CacheKey, tenant: Option<&str>, sites: i64) {
        let started = cache.fill_started();
        cache.insert(k, entry_tags(tenant), dash(sites), started);
    }

    #[test]
    fn tags_match_by_kind_and_tenant_with_wildcards() {
        assert!(tag_matches("sites:acme", "sites:acme"));
        assert!(!tag_matches("sites:beta", "sites:acme"));
        assert!(tag_matches("sites:*", "sites:acme"));
        assert!(tag_matches("sites:acme", "sites:*"));
        assert!(!tag_matches("users:acme", "sites:acme"));
        assert!(tag_matches("users:acme", "*"));
        assert_eq!(change_tags("site", "acme"), vec!["sites:acme"]);
        assert_eq!(change_tags("user", "acme"), vec!["users:acme", "keys:acme"]);
        assert!(change_tags("session", "acme").is_empty());
        assert!(change_tags("job", "acme").is_empty());
        assert!(!change_tags("tenant", "acme").contains(&"servers:shared".to_owned()));
    }

    #[test]
    fn a_change_in_one_tenant_leaves_another_alone() {
        let cache = live(16);
        fill(&cache, key(Some(2)), Some("acme"), 1);
        fill(&cache, key(Some(3)), Some("beta"), 2);
        fill(&cache, key(None), None, 3);
        cache.invalidate(&change_tags("site", "acme"));
        assert!(
            cache.get(&key(Some(2))).is_none(),
            "acme's entry shows the site"
        );
        assert_eq!(cache.get(&key(Some(3))).map(|d| d.sites), Some(2));
        assert!(
            cache.get(&key(None)).is_none(),
            "the platform shows every site"
        );
        // A key change in beta: beta's and the platform's entries only.
        fill(&cache, key(Some(2)), Some("acme"), 1);
        fill(&cache, key(None), None, 3);
        cache.invalidate(&change_tags("key", "beta"));
        assert!(cache.get(&key(Some(2))).is_some());
        assert!(cache.get(&key(Some(3))).is_none());
        assert!(cache.get(&key(None)).is_none());
        // Servers: every entry.
        fill(&cache, key(Some(2)), Some("acme"), 1);
        cache.invalidate(&change_tags("server", "system"));
        assert!(cache.get(&key(Some(2))).is_none());
    }

    #[test]
    fn a_fill_that_straddles_a_matching_change_is_not_stored() {
        let cache = live(16);
        let started = cache.fill_started();
        cache.invalidate(&change_tags("site", "beta"));
        cache.insert(key(Some(2)), entry_tags(Some("acme")), dash(1), started);
        assert!(
            cache.get(&key(Some(2))).is_some(),
            "beta's change is not acme's"
        );
        let started = cache.fill_started();
        cache.invalidate(&change_tags("site", "acme"));
        cache.insert(key(Some(2)), entry_tags(Some("acme")), dash(1), started);
        assert!(
            cache.get(&key(Some(2))).is_none(),
            "read before acme's change"
        );
        // Older than every remembered invalidation: not stored either.
        let started = cache.fill_started();
        for _ in 0..=RECENT {
            cache.invalidate(&change_tags("site", "beta"));
        }
        cache.insert(key(Some(2)), entry_tags(Some("acme")), dash(1), started);
        assert!(cache.get(&key(Some(2))).is_none());
    }

    #[test]
    fn the_size_is_bounded_and_the_least_recently_used_goes() {
        let cache = live(3);
        for t in 1..=3 {
            fill(&cache, key(Some(t)), Some(&format!("t{t}")), t);
        }
        assert!(cache.get(&key(Some(1))).is_some());
        fill(&cache, key(Some(4)), Some("t4"), 4);
        assert_eq!(cache.stats().entries, 3);
        assert!(cache.get(&key(Some(2))).is_none(), "least recently used");
        assert!(cache.get(&key(Some(1))).is_some());
        assert!(cache.get(&key(Some(4))).is_some());
    }

    #[test]
    fn nothing_is_cached_unless_watched() {
        let cache = DashboardCache::new(4);
        fill(&cache, key(None), None, 1);
        assert!(cache.get(&key(None)).is_none());
        cache.set_live(true);
        fill(&cache, key(None), None, 1);
        assert!(cache.get(&key(None)).is_some());
        cache.set_live(false);
        assert!(cache.get(&key(None)).is_none());
        assert_eq!(cache.stats().entries, 0);
    }
}
