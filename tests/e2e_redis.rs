//! Several nodes sharing state through a real Redis (`redis_url`): per-source penalties.
//!
//! - The Lua rules in Redis match the in-process table (two `SharedPenalties` = two nodes).
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
