//! The daemon's side of a session's link, in-process over `UnixStream::pair()`: the link server
//! (`vipanel::ssh::link`) against a seeded store, driven by a test playing the session process,
//! honest or forged. On SQLite, and PostgreSQL when configured.

mod db_support;

use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use vipanel::command::{self, Invocation, NoInput};
use vipanel::config::Config;
use vipanel::rpc::{
    self, Change, CompletionKind, Event, FrameError, PROTOCOL_VERSION, Reply, Request, Topic,
};
use vipanel::service::{Actor, InitialKeySource, Services};
use vipanel::ssh::CommandTracker;
use vipanel::ssh::link::{self, Link, LinkEnd, Outbox};

const PREFIX: &str = "ssh -p 2222 panel@192.0.2.1";
const WAIT: Duration = Duration::from_secs(20);

struct World {
    services: Services,
    admin: Actor,
    _secrets: tempfile::TempDir,
}

impl World {
    async fn new(db: vipanel::store::Db) -> World {
        let secrets = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.auth.secret_key_file = secrets.path().join("secret.key").display().to_string();
        // Sites are applied in sandbox mode under the data dir: keep it in the temp dir.
        config.data_dir = secrets.path().join("data");
        config.audit.follow_interval_ms = 50;
        config.session.history_lines = 3;
        config.session.max_requests = 4;
        let services = Services::new(db, Arc::new(config));
        services.bootstrap(&InitialKeySource::None).await.unwrap();
        let admin = Actor::local_admin(services.system_tenant_id().await.unwrap());
        let world = World {
            services,
            admin,
            _secrets: secrets,
        };
        for line in [
            "tenant create acme",
            "tenant create beta",
            "user create olive --role owner --tenant acme",
            "user create vera --role viewer --tenant acme",
            "user create bert --role owner --tenant beta",
            "site create acme.example --tenant acme",
            "site create beta.example --tenant beta",
        ] {
            world.admin_run(line).await;
        }
        world
    }

    async fn admin_run(&self, line: &str) {
        let argv = shell_words::split(line).unwrap();
        let invocation = Invocation {
            prefix: "vipanel admin".into(),
        };
        let out = command::run(
            &self.services,
            &self.admin,
            &argv,
            &mut NoInput,
            &invocation,
        )
        .await;
        assert_eq!(out.exit, 0, "{line}: {}", out.stderr_text());
    }

    async fn actor(&self, name: &str) -> Actor {
        let user = self.services.db.user_by_name(name).await.unwrap().unwrap();
        Actor {
            user_id: Some(user.id),
            user: user.name,
            tenant_id: user.tenant_id,
            tenant: user.tenant,
            role: vipanel::domain::Role::parse(&user.role).unwrap(),
            key_fingerprint: None,
            source: "127.0.0.1:50000".into(),
            automation: false,
        }
    }

    /// Serves a link bound to `actor`; returns the server task and the session's end.
    fn link(&self, actor: &Actor) -> (tokio::task::JoinHandle<LinkEnd>, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let link = Link {
            services: self.services.clone(),
            actor: actor.clone(),
            invocation: Invocation {
                prefix: PREFIX.into(),
            },
            tracker: CommandTracker::default(),
        };
        (tokio::spawn(link::serve(link, ours, Outbox::new())), theirs)
    }

    /// A link past its handshake.
    async fn hello(&self, actor: &Actor) -> (tokio::task::JoinHandle<LinkEnd>, UnixStream) {
        let (server, mut session) = self.link(actor);
        send(
            &mut session,
            &Request::Hello {
                version: PROTOCOL_VERSION,
            },
        )
        .await;
        assert!(matches!(recv(&mut session).await, Reply::Welcome { .. }));
        (server, session)
    }

    async fn site_exists(&self, domain: &str) -> bool {
        self.services
            .db
            .site_by_domain(domain)
            .await
            .unwrap()
            .is_some()
    }

    async fn audit_actions(&self) -> Vec<(String, String, String)> {
        let rows = self.services.db.audit_rows(None, None, 1000).await.unwrap();
        rows.into_iter()
            .map(|r| (r.actor, r.action, r.result))
            .collect()
    }
}

async fn send(session: &mut UnixStream, request: &Request) {
    rpc::write_frame_async(session, request).await.unwrap();
}

async fn send_raw(session: &mut UnixStream, bytes: &[u8]) {
    // The server may already have closed its side: that is one of the outcomes tested.
    let _ = session.write_all(bytes).await;
}

fn frame(body: &str) -> Vec<u8> {
    let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

async fn recv(session: &mut UnixStream) -> Reply {
    tokio::time::timeout(WAIT, rpc::read_frame_async(session))
        .await
        .expect("a reply in time")
        .expect("a reply")
}

/// Replies until `Done` of `id` (Output and other replies collected before it).
async fn until_done(session: &mut UnixStream, id: u64) -> (Vec<Reply>, u8, String, String) {
    let mut seen = Vec::new();
    loop {
        match recv(session).await {
            Reply::Done {
                id: done,
                exit,
                stdout,
                stderr,
            } if done == id => return (seen, exit, stdout, stderr),
            other => seen.push(other),
        }
    }
}

async fn run(session: &mut UnixStream, id: u64, line: &str) -> (u8, String, String) {
    let argv = shell_words::split(line).unwrap();
    send(
        session,
        &Request::Run {
            id,
            argv,
            tty: false,
        },
    )
    .await;
    let (_, exit, stdout, stderr) = until_done(session, id).await;
    (exit, stdout, stderr)
}

/// Reads until the server closes the link; the replies it sent first.
async fn until_closed(session: &mut UnixStream) -> Vec<Reply> {
    let mut replies = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, rpc::read_frame_async::<_, Reply>(session))
            .await
            .expect("the link ends in time")
        {
            Ok(reply) => replies.push(reply),
            Err(FrameError::Closed | FrameError::Io(_)) => return replies,
            Err(other) => panic!("unexpected frame from the daemon: {other}"),
        }
    }
}

async fn ended(server: tokio::task::JoinHandle<LinkEnd>) -> LinkEnd {
    tokio::time::timeout(WAIT, server)
        .await
        .expect("the server task ends")
        .expect("the server task did not panic")
}

async fn values(session: &mut UnixStream, id: u64, kind: CompletionKind) -> Vec<String> {
    send(session, &Request::Complete { id, kind }).await;
    match recv(session).await {
        Reply::Values { id: got, values } if got == id => values,
        other => panic!("expected values, got {other:?}"),
    }
}

async fn list(session: &mut UnixStream, id: u64) -> Vec<String> {
    send(session, &Request::HistoryList { id, limit: 50 }).await;
    match recv(session).await {
        Reply::History { id: got, lines } if got == id => lines,
        other => panic!("expected history, got {other:?}"),
    }
}

#[tokio::test]
async fn the_link_runs_commands_as_the_actor_bound_at_spawn() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let vera = w.actor("vera").await;
        let (server, mut s) = w.link(&vera);
        send(
            &mut s,
            &Request::Hello {
                version: PROTOCOL_VERSION,
            },
        )
        .await;
        assert_eq!(
            recv(&mut s).await,
            Reply::Welcome {
                version: PROTOCOL_VERSION,
                user: "vera".into(),
                tenant: "acme".into(),
                role: "viewer".into(),
                prefix: PREFIX.into(),
            }
        );
        let (exit, stdout, _) = run(&mut s, 1, "whoami -o json").await;
        assert_eq!(exit, 0);
        let me: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(
            (me["user"].as_str(), me["role"].as_str()),
            (Some("vera"), Some("viewer"))
        );
        // A viewer's site create is refused by the usual policy, and audited as hers.
        let (exit, _, stderr) = run(&mut s, 2, "site create v.example").await;
        assert_eq!(exit, 6, "{stderr}");
        assert!(!w.site_exists("v.example").await);
        assert!(w.audit_actions().await.contains(&(
            "vera".into(),
            "site.create".into(),
            "forbidden".into()
        )));
        // Help texts carry the prefix the client used.
        let (_, help, _) = run(&mut s, 3, "help site create").await;
        assert!(help.contains(&format!("{PREFIX} site create")), "{help}");
        drop(s);
        assert_eq!(ended(server).await, LinkEnd::Closed);
        t.finish().await;
    }
}

#[tokio::test]
async fn forged_requests_never_act_outside_the_bound_actor() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let olive = w.actor("olive").await;
        let before = w.audit_actions().await.len();
        // Claiming to be admin: an unknown field makes the frame malformed, so the link ends
        // and nothing runs.
        let (server, mut s) = w.hello(&olive).await;
        send_raw(
            &mut s,
            &frame(
                r#"{"type":"run","id":1,"argv":["site","delete","beta.example","--yes"],"tty":false,"user":"admin","role":"admin"}"#,
            ),
        )
        .await;
        let replies = until_closed(&mut s).await;
        assert!(
            matches!(replies.as_slice(), [Reply::Error { id: None, .. }]),
            "{replies:?}"
        );
        assert!(matches!(ended(server).await, LinkEnd::Refused(_)));
        assert!(w.site_exists("beta.example").await);
        assert_eq!(w.audit_actions().await.len(), before, "nothing ran");
        // Another tenant's site through honest frames: hidden (3) or forbidden (6), unchanged.
        let (_server, mut s) = w.hello(&olive).await;
        let (exit, _, _) = run(&mut s, 1, "site delete beta.example --yes").await;
        assert_eq!(exit, 3);
        let (exit, _, _) = run(&mut s, 2, "site create x.example --tenant beta").await;
        assert_eq!(exit, 6);
        let (exit, _, _) = run(&mut s, 3, "user delete bert --yes").await;
        assert_eq!(exit, 3);
        assert!(w.site_exists("beta.example").await);
        assert!(!w.site_exists("x.example").await);
        assert!(w.services.db.user_by_name("bert").await.unwrap().is_some());
        t.finish().await;
    }
}

#[tokio::test]
async fn bad_frames_end_the_link_and_the_daemon_goes_on() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let olive = w.actor("olive").await;
        let hello = frame(&format!(
            r#"{{"type":"hello","version":{PROTOCOL_VERSION}}}"#
        ));
        let cut = frame(r#"{"type":"run","id":1,"argv":["whoami"],"tty":false}"#);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "malformed JSON",
                frame(r#"{"type":"run","id":1,"argv":["whoami""#),
            ),
            (
                "a frame announcing 4 GiB",
                0xFFFF_FFFFu32.to_be_bytes().to_vec(),
            ),
            ("just over the frame limit", {
                let big = u32::try_from(rpc::MAX_FRAME_BYTES + 1).unwrap();
                big.to_be_bytes().to_vec()
            }),
            ("a frame cut in half", cut[..cut.len() / 2].to_vec()),
            (
                "garbage bytes",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            ),
            (
                "an unknown type",
                frame(r#"{"type":"become","user":"admin"}"#),
            ),
            ("hello twice", hello.clone()),
            ("not JSON at all", frame("\u{0}\u{1}\u{ff}")),
        ];
        for (what, bytes) in cases {
            let (server, mut s) = w.hello(&olive).await;
            send_raw(&mut s, &bytes).await;
            // A cut frame is only noticed when its sender stops writing.
            s.shutdown().await.unwrap();
            let replies = until_closed(&mut s).await;
            assert!(
                replies
                    .iter()
                    .all(|r| matches!(r, Reply::Error { id: None, .. })),
                "{what}: {replies:?}"
            );
            assert!(matches!(ended(server).await, LinkEnd::Refused(_)), "{what}");
        }
        // Before hello, and with another protocol version: refused.
        for first in [
            frame(r#"{"type":"run","id":1,"argv":["whoami"],"tty":false}"#),
            frame(r#"{"type":"hello","version":999}"#),
        ] {
            let (server, mut s) = w.link(&olive);
            send_raw(&mut s, &first).await;
            let replies = until_closed(&mut s).await;
            assert!(
                matches!(replies.as_slice(), [Reply::Error { .. }]),
                "{replies:?}"
            );
            assert!(matches!(ended(server).await, LinkEnd::Refused(_)));
        }
        // The daemon side still serves new links.
        let (_server, mut s) = w.hello(&olive).await;
        assert_eq!(run(&mut s, 1, "whoami").await.0, 0);
        t.finish().await;
    }
}

#[tokio::test]
async fn follow_streams_until_cancelled_and_confirmations_cross_the_link() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let olive = w.actor("olive").await;
        let (_server, mut s) = w.hello(&olive).await;
        send(
            &mut s,
            &Request::Run {
                id: 5,
                argv: shell_words::split("audit list --follow --limit 2 -o json").unwrap(),
                tty: false,
            },
        )
        .await;
        let Reply::Output { id: 5, stdout, .. } = recv(&mut s).await else {
            panic!("the first rows come as output");
        };
        assert_eq!(stdout.lines().count(), 2, "{stdout}");
        // A slow stream does not hold up other requests.
        assert_eq!(run(&mut s, 6, "whoami").await.0, 0);
        w.admin_run("site create late.example --tenant acme").await;
        let mut streamed = String::new();
        while !streamed.contains("late.example") {
            match recv(&mut s).await {
                Reply::Output { id: 5, stdout, .. } => streamed.push_str(&stdout),
                other => panic!("unexpected {other:?}"),
            }
        }
        // JSON Lines: one object a line.
        for line in streamed.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(row["seq"].is_i64(), "{line}");
        }
        send(&mut s, &Request::Cancel { id: 5 }).await;
        let (_, exit, _, _) = until_done(&mut s, 5).await;
        assert_eq!(exit, 0, "a cancelled follow ends with exit 0");

        // A destructive command at a terminal asks through the link.
        for (id, yes) in [(7, false), (8, true)] {
            send(
                &mut s,
                &Request::Run {
                    id,
                    argv: shell_words::split("site delete acme.example").unwrap(),
                    tty: true,
                },
            )
            .await;
            match recv(&mut s).await {
                Reply::Confirm { id: asked, prompt } => {
                    assert_eq!(asked, id);
                    assert!(prompt.contains("Delete site acme.example"), "{prompt}");
                }
                other => panic!("expected a confirmation, got {other:?}"),
            }
            send(&mut s, &Request::Confirm { id, yes }).await;
            let (_, exit, _, _) = until_done(&mut s, id).await;
            assert_eq!(exit, if yes { 0 } else { 2 });
            assert_eq!(w.site_exists("acme.example").await, !yes);
        }
        // Without a terminal there is nobody to ask: --yes is required.
        assert_eq!(run(&mut s, 9, "site delete late.example").await.0, 2);
        t.finish().await;
    }
}

#[tokio::test]
async fn completion_values_follow_the_policy() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let (_s1, mut olive) = w.hello(&w.actor("olive").await).await;
        assert_eq!(
            values(&mut olive, 1, CompletionKind::Sites).await,
            ["acme.example"]
        );
        assert_eq!(
            values(&mut olive, 2, CompletionKind::Tenants).await,
            ["acme"]
        );
        let mut users = values(&mut olive, 3, CompletionKind::Users).await;
        users.sort();
        assert_eq!(users, ["olive", "vera"]);
        assert_eq!(
            values(&mut olive, 4, CompletionKind::Servers).await,
            ["local"]
        );
        let (_s2, mut vera) = w.hello(&w.actor("vera").await).await;
        assert!(
            values(&mut vera, 1, CompletionKind::Users).await.is_empty(),
            "a viewer may not list users"
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn history_is_kept_per_user_bounded_and_without_secrets() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let olive = w.actor("olive").await;
        let (_s1, mut s) = w.hello(&olive).await;
        for line in [
            "site list",
            "whoami",
            "site show acme.example",
            "site show acme.example",
            "totp reset vera --code 123456",
            "site create a.example --upstream https://u:hunter2@h.example",
            "echo 'unbalanced",
            "bad\u{1b}[31m",
            "audit list --follow",
        ] {
            send(&mut s, &Request::HistoryAdd { line: line.into() }).await;
        }
        // History writes are not answered: wait until they are stored.
        let expected = ["whoami", "site show acme.example", "audit list --follow"];
        let mut lines = Vec::new();
        for id in 1..200 {
            lines = list(&mut s, id).await;
            if lines == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            lines, expected,
            "newest 3, a repeat once, no secret, no junk"
        );
        // Shared by the user's sessions, invisible to others.
        let (_s2, mut again) = w.hello(&olive).await;
        assert_eq!(list(&mut again, 1).await, expected);
        let (_s3, mut vera) = w.hello(&w.actor("vera").await).await;
        assert!(list(&mut vera, 1).await.is_empty());
        t.finish().await;
    }
}

#[tokio::test]
async fn requests_in_flight_are_bounded() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let (_server, mut s) = w.hello(&w.actor("olive").await).await;
        // session.max_requests = 4: four follows run, the fifth request is refused by id.
        for id in 1..=4 {
            send(
                &mut s,
                &Request::Run {
                    id,
                    argv: shell_words::split("audit list --follow").unwrap(),
                    tty: false,
                },
            )
            .await;
        }
        send(
            &mut s,
            &Request::Run {
                id: 9,
                argv: vec!["whoami".into()],
                tty: false,
            },
        )
        .await;
        loop {
            match recv(&mut s).await {
                Reply::Error {
                    id: Some(9),
                    message,
                } => {
                    assert!(message.contains("session.max_requests"), "{message}");
                    break;
                }
                Reply::Output { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        t.finish().await;
    }
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGjQmLz1hTnzsbEGHrbPAZhKm6vBR1dkkmYoKG4pGvt9 otto@laptop";

/// Subscribes `id` to `topics`, then makes a round trip: the link reads frames in order, so the
/// subscription has started (it sees everything after) once the round trip is answered.
async fn subscribe(session: &mut UnixStream, id: u64, topics: &[Topic]) {
    send(
        session,
        &Request::Subscribe {
            id,
            topics: topics.to_vec(),
        },
    )
    .await;
    let ping = id + 1000;
    send(session, &Request::HistoryList { id: ping, limit: 1 }).await;
    match recv(session).await {
        Reply::History { id: got, .. } if got == ping => {}
        Reply::Error {
            id: Some(got),
            message,
        } if got == id => panic!("subscription {id} refused: {message}"),
        other => panic!("unexpected {other:?}"),
    }
}

/// The events of subscription `id` until one for which `last` holds (included); any other
/// reply fails the test.
async fn events_until(
    session: &mut UnixStream,
    id: u64,
    last: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        match recv(session).await {
            Reply::Event { id: got, event } if got == id => {
                let done = last(&event);
                seen.push(*event);
                if done {
                    return seen;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn changes(events: &[Event]) -> Vec<&Change> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Change(c) => Some(c),
            Event::Audit(_) | Event::Job(_) => None,
        })
        .collect()
}

fn is_change_of(target: &'static str) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Change(c) if c.target == target)
}

fn is_audit_of(target: &'static str) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Audit(r) if r.target == target)
}

/// The refusal of subscription `id`'s request.
async fn refused(session: &mut UnixStream, id: u64, topics: Vec<Topic>) -> String {
    send(session, &Request::Subscribe { id, topics }).await;
    match recv(session).await {
        Reply::Error {
            id: Some(got),
            message,
        } if got == id => message,
        other => panic!("expected a refusal of {id}, got {other:?}"),
    }
}

#[tokio::test]
async fn an_operator_is_told_of_its_tenants_changes_only() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        w.admin_run("user create otto --role operator --tenant acme")
            .await;
        let (_s1, mut otto) = w.hello(&w.actor("otto").await).await;
        let (_s2, mut olive) = w.hello(&w.actor("olive").await).await;
        subscribe(&mut otto, 1, &[Topic::Changes]).await;
        subscribe(&mut olive, 1, &[Topic::Changes]).await;
        // Made by others, through the services: in acme, in beta, and a user otto may not list.
        w.admin_run("site create new.example --tenant acme").await;
        w.admin_run("site create other.example --tenant beta").await;
        w.admin_run("user create newbie --role viewer --tenant acme")
            .await;
        w.admin_run("site create last.example --tenant acme").await;

        let seen = events_until(&mut otto, 1, is_change_of("last.example")).await;
        let seen = changes(&seen);
        let targets: Vec<&str> = seen.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(targets, ["new.example", "last.example"], "{seen:?}");
        let first = seen[0];
        assert_eq!(
            (
                first.tenant.as_str(),
                first.kind.as_str(),
                first.action.as_str()
            ),
            ("acme", "site", "site.create")
        );
        assert_eq!(
            first.actor, None,
            "an operator does not read others' audit rows"
        );
        assert!(first.seq < seen[1].seq);

        // The owner reads the tenant's trail: the user too, and who made each change.
        let seen = events_until(&mut olive, 1, is_change_of("last.example")).await;
        let seen = changes(&seen);
        let targets: Vec<&str> = seen.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(targets, ["new.example", "newbie", "last.example"]);
        assert!(seen.iter().all(|c| c.actor.is_some()), "{seen:?}");
        assert_eq!(seen[1].kind, "user");

        // The subscription does not hold up requests, and a run's own change comes too.
        // (The change may come before the run's Done: the create waits for its apply.)
        let argv = shell_words::split("site create mine.example").unwrap();
        send(
            &mut otto,
            &Request::Run {
                id: 2,
                argv,
                tty: false,
            },
        )
        .await;
        let (replies, exit, _, stderr) = until_done(&mut otto, 2).await;
        assert_eq!(exit, 0, "{stderr}");
        let mut seen: Vec<Event> = replies
            .into_iter()
            .filter_map(|r| match r {
                Reply::Event { id: 1, event } => Some(*event),
                _ => None,
            })
            .collect();
        if !changes(&seen).iter().any(|c| c.target == "mine.example") {
            seen = events_until(&mut otto, 1, is_change_of("mine.example")).await;
        }
        let mine: Vec<_> = changes(&seen)
            .into_iter()
            .filter(|c| c.target == "mine.example")
            .collect();
        assert_eq!(mine[0].actor.as_deref(), Some("otto"));
        t.finish().await;
    }
}

#[tokio::test]
async fn the_audit_topic_is_scoped_like_audit_list() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let (_s1, mut vera) = w.hello(&w.actor("vera").await).await;
        let (_s2, mut olive) = w.hello(&w.actor("olive").await).await;
        subscribe(&mut vera, 1, &[Topic::Audit]).await;
        subscribe(&mut olive, 1, &[Topic::Audit, Topic::Changes]).await;
        w.admin_run("site create a1.example --tenant acme").await;
        w.admin_run("site create b1.example --tenant beta").await;
        // Vera's own, refused attempt: hers to see, and her owner's; not a change. Its event may
        // come before the command's own answer (the trail's doorbell rings as the row lands).
        send(
            &mut vera,
            &Request::Run {
                id: 2,
                argv: vec!["site".into(), "create".into(), "v1.example".into()],
                tty: false,
            },
        )
        .await;
        let (early, exit, _, _) = until_done(&mut vera, 2).await;
        assert_eq!(exit, 6);
        w.admin_run("site create a2.example --tenant acme").await;

        let mut seen: Vec<Event> = early
            .into_iter()
            .map(|r| match r {
                Reply::Event { id: 1, event } => *event,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        if !seen.iter().any(is_audit_of("v1.example")) {
            seen.extend(events_until(&mut vera, 1, is_audit_of("v1.example")).await);
        }
        assert_eq!(seen.len(), 1, "a viewer reads only its own rows: {seen:?}");
        let Event::Audit(row) = &seen[0] else {
            panic!("{seen:?}")
        };
        assert_eq!(
            (row.actor.as_str(), row.action.as_str(), row.result.as_str()),
            ("vera", "site.create", "forbidden")
        );
        assert_eq!(row.command.as_deref(), Some("site create v1.example"));

        let seen = events_until(&mut olive, 1, is_audit_of("a2.example")).await;
        let rows: Vec<(&str, &str)> = seen
            .iter()
            .filter_map(|e| match e {
                Event::Audit(r) => Some((r.target.as_str(), r.result.as_str())),
                Event::Change(_) | Event::Job(_) => None,
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("a1.example", "ok"),
                ("v1.example", "forbidden"),
                ("a2.example", "ok")
            ]
        );
        assert_eq!(
            changes(&seen)
                .iter()
                .map(|c| c.target.as_str())
                .collect::<Vec<_>>(),
            ["a1.example", "a2.example"],
            "a row's change comes before its audit row; nothing of beta"
        );
        assert!(seen.iter().all(|e| match e {
            Event::Audit(r) => r.tenant == "acme",
            Event::Change(c) => c.tenant == "acme",
            Event::Job(j) => j.tenant.as_deref() == Some("acme"),
        }));
        t.finish().await;
    }
}

#[tokio::test]
async fn subscriptions_refuse_what_is_not_there_and_end_on_cancel() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let olive = w.actor("olive").await;
        let (server, mut s) = w.hello(&olive).await;
        let message = refused(&mut s, 1, vec![Topic::Logs]).await;
        assert!(
            message.contains("not available yet") && message.contains("changes, audit, jobs"),
            "{message}"
        );
        let message = refused(
            &mut s,
            2,
            vec![Topic::Changes, Topic::Other("weather".into())],
        )
        .await;
        assert!(message.contains("\"weather\" is unknown"), "{message}");
        assert!(refused(&mut s, 3, vec![]).await.contains("changes, audit"));

        // Four at most; an id in use is refused.
        for id in 10..14 {
            subscribe(&mut s, id, &[Topic::Changes]).await;
        }
        let message = refused(&mut s, 14, vec![Topic::Audit]).await;
        assert!(message.contains("too many subscriptions"), "{message}");
        send(&mut s, &Request::Cancel { id: 13 }).await;
        let (_, exit, _, _) = until_done(&mut s, 13).await;
        assert_eq!(exit, 0);
        let message = refused(&mut s, 10, vec![Topic::Audit]).await;
        assert!(message.contains("still running"), "{message}");

        // Cancelled: Done, and nothing after it; the others go on.
        send(&mut s, &Request::Cancel { id: 10 }).await;
        let (replies, exit, _, _) = until_done(&mut s, 10).await;
        assert_eq!(exit, 0);
        assert!(
            replies.iter().all(|r| matches!(r, Reply::Event { .. })),
            "{replies:?}"
        );
        w.admin_run("site create after.example --tenant acme").await;
        let mut told = Vec::new();
        while told.len() < 2 {
            match recv(&mut s).await {
                Reply::Event { id, event } => {
                    assert!(is_change_of("after.example")(&event), "{event:?}");
                    told.push(id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        told.sort_unstable();
        assert_eq!(told, [11, 12], "not the cancelled ones");
        // The end of the link ends them.
        drop(s);
        assert_eq!(ended(server).await, LinkEnd::Closed);

        // Forged: an extra field, or a flood of topics, ends the link like other bad frames.
        for body in [
            r#"{"type":"subscribe","id":1,"topics":["audit"],"user":"admin"}"#.to_owned(),
            format!(
                r#"{{"type":"subscribe","id":1,"topics":[{}]}}"#,
                [r#""audit""#; rpc::MAX_TOPICS + 1].join(",")
            ),
        ] {
            let (server, mut s) = w.hello(&olive).await;
            send_raw(&mut s, &frame(&body)).await;
            let replies = until_closed(&mut s).await;
            assert!(
                matches!(replies.as_slice(), [Reply::Error { id: None, .. }]),
                "{body}: {replies:?}"
            );
            assert!(matches!(ended(server).await, LinkEnd::Refused(_)), "{body}");
        }
        t.finish().await;
    }
}

#[tokio::test]
async fn a_locked_users_subscriptions_end() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        w.admin_run("user create otto --role operator --tenant acme")
            .await;
        w.admin_run(&format!("key add --user otto {KEY}")).await;
        let mut otto = w.actor("otto").await;
        let user_id = otto.user_id;
        let keys = w.services.db.keys(user_id, None).await.unwrap();
        otto.key_fingerprint = Some(keys[0].fingerprint.clone());
        let (_server, mut s) = w.hello(&otto).await;
        subscribe(&mut s, 1, &[Topic::Changes]).await;
        subscribe(&mut s, 2, &[Topic::Audit]).await;
        w.admin_run("user lock otto").await;
        let mut ended_ids = Vec::new();
        while ended_ids.len() < 2 {
            match recv(&mut s).await {
                Reply::Error {
                    id: Some(id),
                    message,
                } => {
                    assert!(message.contains("locked"), "{message}");
                    ended_ids.push(id);
                }
                // Of the lock itself, nothing: otto may not see users' changes.
                other => panic!("unexpected {other:?}"),
            }
        }
        ended_ids.sort_unstable();
        assert_eq!(ended_ids, [1, 2]);
        // A new one is refused at once; commands are too.
        assert!(
            refused(&mut s, 3, vec![Topic::Changes])
                .await
                .contains("locked")
        );
        assert_eq!(run(&mut s, 4, "whoami").await.0, 7);
        t.finish().await;
    }
}

/// The `jobs` topic: a viewer follows its tenant's jobs (here the `site.apply` of a site created
/// in it) from queued or running to succeeded, and is told nothing of another tenant's.
#[tokio::test]
async fn the_jobs_topic_follows_the_tenants_jobs_only() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let (_s, mut vera) = w.hello(&w.actor("vera").await).await;
        subscribe(&mut vera, 1, &[Topic::Jobs]).await;
        w.admin_run("site create b2.example --tenant beta").await;
        w.admin_run("site create a3.example --tenant acme").await;
        let seen = events_until(
            &mut vera,
            1,
            |e| matches!(e, Event::Job(j) if j.state == "succeeded"),
        )
        .await;
        let jobs: Vec<&vipanel::rpc::JobEvent> = seen
            .iter()
            .map(|e| match e {
                Event::Job(j) => j,
                other => panic!("only jobs: {other:?}"),
            })
            .collect();
        assert!(
            jobs.iter()
                .all(|j| j.kind == "site.apply" && j.tenant.as_deref() == Some("acme")),
            "{}: only acme's jobs: {jobs:?}",
            t.name
        );
        let done = jobs.last().expect("an event");
        assert_eq!((done.state.as_str(), done.progress), ("succeeded", 100));
        t.finish().await;
    }
}
