//! Several nodes sharing state through a real Redis (`redis_url`): per-source penalties and the
//! dashboard cache's shared level.
//!
//! - The Lua rules in Redis match the in-process table (two `SharedPenalties` = two nodes).
//! - A dashboard result one node stored serves another until a change it shows (two
//!   `SharedCache`s on their own connections = two nodes); a fill that raced a change is never
//!   served; a node that reconnects invalidates everything first.
//! - Two real daemons on the same Redis: an offence on one makes the other refuse the source.
//! - Redis killed mid-run and started again: both nodes go on with their own penalties and
//!   logins, warn once, and share again without a restart.
//! - Redis frozen (SIGSTOP: it accepts, never answers): the same, once the first call ran into
//!   its timeout.
//!
//! The first two use `.ci/run`'s Redis (`VIPANEL_TEST_REDIS_URL`, a key prefix per test); the
//! last starts a `redis-server` of its own. They skip (printing why) when these are missing,
//! unless `VIPANEL_REQUIRE_SERVICES=1`.

mod support;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::Daemon;
use support::redis::{RedisServer, key_prefix, test_redis_url, wait_for_key};
use vipanel::service::Dashboard;
use vipanel::service::cache::{CacheKey, entry_tags};
use vipanel::service::shared_cache::SharedCache;
use vipanel::service::shared_penalties::SharedPenalties;
use vipanel::service::shared_state::SharedState;

const S: fn(u64) -> Duration = Duration::from_secs;

async fn connected(url: &str, prefix: &str) -> SharedState {
    let state = SharedState::new(url, url, prefix).expect("redis url");
    state.start();
    let deadline = Instant::now() + S(5);
    while !state.is_connected() {
        assert!(Instant::now() < deadline, "never connected to {url}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    state
}

#[tokio::test]
async fn shared_penalties_follow_the_rules_of_the_local_table_across_nodes() {
    let Some(url) = test_redis_url() else {
        return;
    };
    let prefix = key_prefix();
    let a = SharedPenalties::new(connected(&url, &prefix).await);
    let b = SharedPenalties::new(connected(&url, &prefix).await);
    let src: IpAddr = "192.0.2.1".parse().unwrap();
    let max = S(600);
    assert_eq!(b.remaining(src).await, Some(None), "not penalised yet");

    // The sequence of ssh::penalties' doubling test, alternating between the two nodes:
    // noauth 1 s, noauth again (doubles to 2), grace-exceeded (its base 10 beats 4), noauth (20).
    let mut seen = Vec::new();
    for (node, base) in [(&a, 1), (&b, 1), (&a, 10), (&b, 1)] {
        let known = node.record(src, S(base), max).await.expect("Redis answers");
        seen.push((known.penalty.as_secs(), known.started));
    }
    assert_eq!(seen, [(1, true), (2, false), (10, false), (20, false)]);
    let left = a.remaining(src).await.flatten().expect("penalised");
    assert!(left > S(19) && left <= S(20), "{left:?}");

    // Capped at the max.
    let other: IpAddr = "2001:db8:1:2::".parse().unwrap();
    for _ in 0..6 {
        a.record(other, S(15), S(60)).await.expect("Redis answers");
    }
    assert_eq!(
        b.record(other, S(15), S(60)).await.map(|k| k.penalty),
        Some(S(60))
    );

    // A penalty expires with its key; the next offence starts from the base again.
    let short: IpAddr = "192.0.2.9".parse().unwrap();
    a.record(short, Duration::from_millis(100), max).await;
    assert!(b.remaining(short).await.flatten().is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.remaining(short).await, Some(None), "expired");
    let again = b.record(short, S(1), max).await.expect("Redis answers");
    assert_eq!((again.penalty, again.started), (S(1), true));
}

fn dashboard(sites: i64) -> Dashboard {
    Dashboard {
        scope: "acme".into(),
        tenants: 1,
        users: 2,
        keys: 3,
        servers: 1,
        sites,
        sites_by_status: Default::default(),
        sites_failing_health: 0,
        sites_last_applied_at: None,
    }
}

/// Until the background increment of another node lands.
async fn until_gone(cache: &SharedCache, key: &CacheKey, tags: &[String]) {
    let deadline = Instant::now() + S(5);
    while cache.get(key, tags).await.is_some() {
        assert!(Instant::now() < deadline, "the entry stayed valid");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_dashboard_stored_by_one_node_serves_the_other_until_a_change_it_shows() {
    let Some(url) = test_redis_url() else {
        return;
    };
    let prefix = key_prefix();
    let a = SharedCache::new(connected(&url, &prefix).await);
    let b = SharedCache::new(connected(&url, &prefix).await);
    let acme = CacheKey {
        tenant_id: Some(7),
        keys_of: None,
    };
    let beta = CacheKey {
        tenant_id: Some(8),
        keys_of: None,
    };
    let platform = CacheKey {
        tenant_id: None,
        keys_of: None,
    };
    let (acme_tags, beta_tags, all_tags) = (
        entry_tags(Some("acme")),
        entry_tags(Some("beta")),
        entry_tags(None),
    );
    // Each node's first use after connecting invalidates everything: let both have had it.
    assert!(a.get(&acme, &acme_tags).await.is_none());
    assert!(b.get(&acme, &acme_tags).await.is_none());

    for (key, tags, sites) in [
        (&acme, &acme_tags, 2),
        (&beta, &beta_tags, 5),
        (&platform, &all_tags, 7),
    ] {
        let versions = a.versions(tags).await.expect("Redis answers");
        a.put(key, &versions, &dashboard(sites)).await;
    }
    assert_eq!(
        b.get(&acme, &acme_tags).await.map(|d| d.sites),
        Some(2),
        "B reads A's fill"
    );
    assert_eq!(b.get(&platform, &all_tags).await.map(|d| d.sites), Some(7));

    // A site change in acme: acme's and the platform's entries go, beta's stays.
    b.invalidate(&["sites:acme".to_owned()]);
    until_gone(&a, &acme, &acme_tags).await;
    until_gone(&a, &platform, &all_tags).await;
    assert_eq!(a.get(&beta, &beta_tags).await.map(|d| d.sites), Some(5));
    // A server change of any tenant (`servers:*`) reaches every tenant's entry.
    a.invalidate(&["servers:*".to_owned()]);
    until_gone(&b, &beta, &beta_tags).await;

    // A fill whose versions were read before a change is not served.
    let versions = a.versions(&acme_tags).await.expect("Redis answers");
    b.invalidate(&["users:acme".to_owned()]);
    let deadline = Instant::now() + S(5);
    while a.versions(&acme_tags).await.as_deref() == Some(versions.as_str()) {
        assert!(Instant::now() < deadline, "the change never reached Redis");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.put(&acme, &versions, &dashboard(99)).await;
    assert!(
        b.get(&acme, &acme_tags).await.is_none(),
        "a raced fill is never served"
    );

    // A third node connecting (as a node whose connection was remade does) starts by
    // invalidating everything: what it could not record while away must not stay valid.
    let versions = a.versions(&beta_tags).await.expect("Redis answers");
    a.put(&beta, &versions, &dashboard(5)).await;
    assert!(b.get(&beta, &beta_tags).await.is_some());
    let c = SharedCache::new(connected(&url, &prefix).await);
    assert!(c.get(&beta, &beta_tags).await.is_none());
    assert!(b.get(&beta, &beta_tags).await.is_none());
}

/// A node with penalties on, sharing them through `url` under `prefix`. A connection that ends
/// without authenticating costs its source 30 s (`noauth`), so one short connection is an
/// offence that lasts the test.
fn node(url: &str, prefix: &str) -> Option<Daemon> {
    Daemon::builder()
        .penalties()
        .env("VIPANEL_REDIS_URL", url)
        .env("VIPANEL_REDIS_KEY_PREFIX", prefix)
        .env("VIPANEL_PENALTIES__NOAUTH_SECS", "30")
        .start()
}

/// Connects to `d` from `source` (a loopback address): whether the SSH banner came (admitted)
/// or the connection was closed before it (refused). The connection is closed at once, which
/// is an offence (`noauth`) when it was admitted.
fn banner_from(d: &Daemon, source: &str) -> bool {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{source}:0").parse().expect("source address");
    socket.bind(&local.into()).expect("bind the source address");
    let server: SocketAddr = format!("127.0.0.1:{}", d.port()).parse().expect("address");
    socket.connect(&server.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(S(5))).expect("timeout");
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(n) if n > 0 && buf.starts_with(b"SSH-2.0-"))
}

/// An offence of `source` on `d`, waited for until `d`'s own table holds it.
fn offend(d: &Daemon, source: &str) {
    assert!(
        banner_from(d, source),
        "{source} is admitted before its offence"
    );
    d.wait_for_log(&format!("source={source} offence="), S(10));
}

fn lines(d: &Daemon, needle: &str) -> usize {
    d.log().lines().filter(|l| l.contains(needle)).count()
}

const CONNECTED: &str = "Redis connected";
const UNREACHABLE: &str = "Redis unreachable";
const BACK: &str = "Redis reachable again";

#[test]
fn an_offence_on_one_node_makes_the_other_refuse_the_source_before_the_banner() {
    let Some(url) = test_redis_url() else {
        return;
    };
    let prefix = key_prefix();
    let (Some(a), Some(b)) = (node(&url, &prefix), node(&url, &prefix)) else {
        return;
    };
    a.wait_for_log(CONNECTED, S(10));
    b.wait_for_log(CONNECTED, S(10));

    offend(&a, "127.0.0.21");
    wait_for_key(&url, &format!("{prefix}penalty:127.0.0.21"), S(5));
    assert!(
        !banner_from(&b, "127.0.0.21"),
        "node B refuses a source penalised on node A"
    );
    assert!(
        !b.log().contains("source=127.0.0.21"),
        "B refused it on A's word, not for an offence of its own"
    );
    // Refused on B again, now from B's own table (it adopted what Redis said).
    assert!(!banner_from(&b, "127.0.0.21"));
    assert!(banner_from(&b, "127.0.0.22"), "other sources are admitted");
    // Logins are not affected.
    a.panel(&a.admin_key, &["whoami"]).expect(0);
    b.panel(&b.admin_key, &["whoami"]).expect(0);
    assert_eq!(lines(&a, UNREACHABLE) + lines(&b, UNREACHABLE), 0);
}

#[test]
fn nodes_fall_back_on_their_own_penalties_while_redis_is_down_and_share_again_when_it_returns() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let prefix = key_prefix();
    let (Some(a), Some(b)) = (node(&redis.url(), &prefix), node(&redis.url(), &prefix)) else {
        return;
    };
    a.wait_for_log(CONNECTED, S(10));
    b.wait_for_log(CONNECTED, S(10));

    redis.stop();
    // Logins keep working on both nodes.
    a.panel(&a.admin_key, &["whoami"]).expect(0);
    b.panel(&b.admin_key, &["whoami"]).expect(0);
    // Penalties too, each node by its own knowledge.
    offend(&a, "127.0.0.31");
    assert!(!banner_from(&a, "127.0.0.31"), "A refuses on its own");
    offend(&a, "127.0.0.32");
    offend(&b, "127.0.0.33");
    assert!(!banner_from(&b, "127.0.0.33"), "B refuses on its own");
    a.wait_for_log(UNREACHABLE, S(5));
    b.wait_for_log(UNREACHABLE, S(5));
    for _ in 0..3 {
        a.panel(&a.admin_key, &["whoami"]).expect(0);
    }
    // Give the reconnect attempts time to fail a few times (backoff 0.1 s, doubling).
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(lines(&a, UNREACHABLE), 1, "warned once:\n{}", a.log());
    assert_eq!(lines(&b, UNREACHABLE), 1, "warned once:\n{}", b.log());

    redis.restart();
    a.wait_for_log(BACK, S(10));
    b.wait_for_log(BACK, S(10));
    offend(&a, "127.0.0.34");
    wait_for_key(&redis.url(), &format!("{prefix}penalty:127.0.0.34"), S(5));
    assert!(
        !banner_from(&b, "127.0.0.34"),
        "shared again after Redis came back, without restarting the nodes"
    );
    a.panel(&a.admin_key, &["whoami"]).expect(0);
    b.panel(&b.admin_key, &["whoami"]).expect(0);
    assert_eq!(lines(&a, UNREACHABLE), 1);
    assert_eq!(lines(&a, BACK), 1);
    assert_eq!(lines(&a, CONNECTED), 1);
}

#[test]
fn a_redis_that_hangs_does_not_hold_up_logins_or_penalties() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let prefix = key_prefix();
    let Some(a) = node(&redis.url(), &prefix) else {
        return;
    };
    a.wait_for_log(CONNECTED, S(10));
    redis.freeze(true);
    // The first call waits out its bound (50 ms), then Redis counts as away; no call waits
    // after that, while reconnects run into their own timeout in the background.
    for _ in 0..3 {
        a.panel(&a.admin_key, &["whoami"]).expect(0);
    }
    offend(&a, "127.0.0.41");
    assert!(
        !banner_from(&a, "127.0.0.41"),
        "refused on the node's own table"
    );
    assert!(banner_from(&a, "127.0.0.42"), "other sources are admitted");
    a.wait_for_log(UNREACHABLE, S(5));
    assert!(
        a.log().contains("timed out") || a.log().contains("no answer within 50 ms"),
        "the hang was cut short by the call bound:\n{}",
        a.log()
    );
    redis.freeze(false);
    a.wait_for_log(BACK, S(10));
    a.panel(&a.admin_key, &["whoami"]).expect(0);
    assert_eq!(lines(&a, UNREACHABLE), 1, "warned once:\n{}", a.log());
}
