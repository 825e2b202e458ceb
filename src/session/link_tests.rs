//! The demultiplexer against a scripted daemon on the other end of a socketpair.

use super::*;
use crate::rpc::CompletionKind;

const WAIT: Duration = Duration::from_secs(5);

/// A linked pair: the session's [`Link`] and the daemon's end of the socket, past the handshake.
fn linked() -> (Link, UnixStream) {
    let (child, mut daemon) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let hello: Request = rpc::read_frame(&mut daemon).unwrap();
        assert_eq!(
            hello,
            Request::Hello {
                version: PROTOCOL_VERSION
            }
        );
        rpc::write_frame(&mut daemon, &welcome(PROTOCOL_VERSION)).unwrap();
        daemon
    });
    let (link, welcome) = Link::connect(child).unwrap();
    assert_eq!(welcome.user, "alice");
    assert_eq!(welcome.tenant, "acme");
    (link, server.join().unwrap())
}

fn welcome(version: u32) -> Reply {
    Reply::Welcome {
        version,
        user: "alice".into(),
        tenant: "acme".into(),
        role: "owner".into(),
        prefix: "ssh panel@host".into(),
    }
}

fn read(daemon: &mut UnixStream) -> Request {
    rpc::read_frame(daemon).unwrap()
}

fn write(daemon: &mut UnixStream, reply: Reply) {
    rpc::write_frame(daemon, &reply).unwrap();
}

fn id_of(request: &Request) -> u64 {
    match request {
        Request::Run { id, .. }
        | Request::Complete { id, .. }
        | Request::HistoryList { id, .. }
        | Request::Cancel { id }
        | Request::Subscribe { id, .. }
        | Request::Confirm { id, .. } => *id,
        other => panic!("no id in {other:?}"),
    }
}

#[test]
fn replies_reach_their_request_whatever_the_order() {
    let (link, mut daemon) = linked();
    let sites = link
        .start(|id| Request::Complete {
            id,
            kind: CompletionKind::Sites,
        })
        .unwrap();
    let history = link
        .start(|id| Request::HistoryList { id, limit: 10 })
        .unwrap();
    let first = id_of(&read(&mut daemon));
    let second = id_of(&read(&mut daemon));
    assert_ne!(first, second);
    // Answered in the reverse order, plus a reply for an id nobody waits for.
    write(
        &mut daemon,
        Reply::Values {
            id: 999,
            values: vec!["stray".into()],
        },
    );
    write(
        &mut daemon,
        Reply::History {
            id: second,
            lines: vec!["site list".into()],
        },
    );
    write(
        &mut daemon,
        Reply::Values {
            id: first,
            values: vec!["example.com".into()],
        },
    );
    assert_eq!(
        history.recv_timeout(WAIT),
        Some(Event::Reply(Reply::History {
            id: history.id(),
            lines: vec!["site list".into()]
        }))
    );
    assert_eq!(
        sites.recv_timeout(WAIT),
        Some(Event::Reply(Reply::Values {
            id: sites.id(),
            values: vec!["example.com".into()]
        }))
    );
}

#[test]
fn call_waits_for_one_reply_and_times_out() {
    let (link, mut daemon) = linked();
    let server = std::thread::spawn(move || {
        let request = read(&mut daemon);
        write(
            &mut daemon,
            Reply::Values {
                id: id_of(&request),
                values: vec!["web1".into()],
            },
        );
        // The second request is never answered.
        let _ = read(&mut daemon);
        daemon
    });
    let reply = link
        .call(
            |id| Request::Complete {
                id,
                kind: CompletionKind::Servers,
            },
            WAIT,
        )
        .unwrap();
    assert!(matches!(reply, Reply::Values { values, .. } if values == ["web1"]));
    let late = link.call(
        |id| Request::Complete {
            id,
            kind: CompletionKind::Users,
        },
        Duration::from_millis(50),
    );
    assert!(matches!(late, Err(LinkError::Timeout)));
    drop(server.join().unwrap());
}

#[test]
fn notices_go_to_the_foreground_command_else_to_the_sink() {
    let (link, mut daemon) = linked();
    // Before any sink: held.
    write(
        &mut daemon,
        Reply::Notice {
            text: "early".into(),
        },
    );
    // A round trip proves the notice was routed before the sink is set.
    let ping = link
        .start(|id| Request::HistoryList { id, limit: 1 })
        .unwrap();
    let id = id_of(&read(&mut daemon));
    write(&mut daemon, Reply::History { id, lines: vec![] });
    assert!(matches!(ping.recv_timeout(WAIT), Some(Event::Reply(_))));
    let (sink, notices) = mpsc::sync_channel(4);
    link.set_notice_sink(sink);
    assert_eq!(notices.recv_timeout(WAIT).unwrap(), "early");

    // A foreground command gets notices between its output, and Ctrl-C.
    let run = link
        .start(|id| Request::Run {
            id,
            argv: vec!["audit".into(), "list".into(), "--follow".into()],
            tty: true,
        })
        .unwrap();
    run.set_foreground();
    let id = id_of(&read(&mut daemon));
    write(
        &mut daemon,
        Reply::Output {
            id,
            stdout: "row 1\n".into(),
            stderr: String::new(),
        },
    );
    write(
        &mut daemon,
        Reply::Notice {
            text: "idle soon".into(),
        },
    );
    assert!(matches!(
        run.recv_timeout(WAIT),
        Some(Event::Reply(Reply::Output { .. }))
    ));
    assert_eq!(
        run.recv_timeout(WAIT),
        Some(Event::Reply(Reply::Notice {
            text: "idle soon".into()
        }))
    );
    assert!(link.interrupt());
    assert_eq!(run.recv_timeout(WAIT), Some(Event::Interrupt));
    write(
        &mut daemon,
        Reply::Done {
            id,
            exit: 130,
            stdout: String::new(),
            stderr: String::new(),
        },
    );
    assert!(matches!(
        run.recv_timeout(WAIT),
        Some(Event::Reply(Reply::Done { exit: 130, .. }))
    ));
    drop(run);
    // Nobody in the foreground: Ctrl-C goes nowhere, notices go to the sink again.
    assert!(!link.interrupt());
    write(
        &mut daemon,
        Reply::Error {
            id: None,
            message: "restarting".into(),
        },
    );
    assert_eq!(
        notices.recv_timeout(WAIT).unwrap(),
        "error from the panel: restarting"
    );
}

#[test]
fn the_end_of_the_link_wakes_every_waiter() {
    let (link, mut daemon) = linked();
    let run = link
        .start(|id| Request::Run {
            id,
            argv: vec!["whoami".into()],
            tty: true,
        })
        .unwrap();
    let _ = read(&mut daemon);
    let flag = link.closed_flag();
    drop(daemon);
    assert_eq!(run.recv_timeout(WAIT), Some(Event::Closed));
    let deadline = std::time::Instant::now() + WAIT;
    while !flag.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(link.is_closed());
    assert!(matches!(
        link.start(|id| Request::HistoryList { id, limit: 1 }),
        Err(LinkError::Closed)
    ));
}

#[test]
fn the_handshake_refuses_other_versions_and_errors() {
    for (answer, expect) in [
        (welcome(PROTOCOL_VERSION + 1), "version"),
        (
            Reply::Error {
                id: None,
                message: "no".into(),
            },
            "refused",
        ),
        (
            Reply::Notice {
                text: "hello".into(),
            },
            "unexpected",
        ),
    ] {
        let (child, mut daemon) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let _: Request = rpc::read_frame(&mut daemon).unwrap();
            rpc::write_frame(&mut daemon, &answer).unwrap();
            daemon
        });
        let result = Link::connect(child);
        let _daemon = server.join().unwrap();
        let err = result.err().unwrap();
        let matched = match expect {
            "version" => matches!(err, LinkError::Version(v) if v == PROTOCOL_VERSION + 1),
            "refused" => matches!(err, LinkError::Refused(ref m) if m == "no"),
            _ => matches!(err, LinkError::Unexpected),
        };
        assert!(matched, "{expect}: {err}");
    }
}

fn change(seq: i64, kind: &str) -> rpc::Event {
    rpc::Event::Change(rpc::Change {
        seq,
        at: chrono::DateTime::from_timestamp(1_700_000_000 + seq, 0).unwrap(),
        tenant: "acme".into(),
        kind: kind.into(),
        action: format!("{kind}.create"),
        target: "x".into(),
        actor: None,
    })
}

#[test]
fn a_subscription_receives_its_events_until_cancelled() {
    let (link, mut daemon) = linked();
    let mut sub = link.subscribe(vec![Topic::Changes]).unwrap();
    let request = read(&mut daemon);
    assert_eq!(
        request,
        Request::Subscribe {
            id: sub.id(),
            topics: vec![Topic::Changes]
        }
    );
    let id = sub.id();
    assert_eq!(sub.try_recv(), None, "nothing yet");
    // Events interleave with another request's replies and reach their subscription only.
    let other = link
        .start(|id| Request::HistoryList { id, limit: 1 })
        .unwrap();
    let other_id = id_of(&read(&mut daemon));
    for event in [change(1, "site"), change(2, "user")] {
        write(
            &mut daemon,
            Reply::Event {
                id,
                event: Box::new(event),
            },
        );
    }
    write(
        &mut daemon,
        Reply::History {
            id: other_id,
            lines: vec![],
        },
    );
    assert_eq!(sub.recv_timeout(WAIT), Some(Ok(change(1, "site"))));
    assert_eq!(sub.recv(), Ok(change(2, "user")));
    assert!(matches!(
        other.recv_timeout(WAIT),
        Some(Event::Reply(Reply::History { .. }))
    ));
    // Cancel: the daemon answers done, which ends it.
    sub.cancel().unwrap();
    assert_eq!(read(&mut daemon), Request::Cancel { id });
    write(
        &mut daemon,
        Reply::Done {
            id,
            exit: 0,
            stdout: String::new(),
            stderr: String::new(),
        },
    );
    assert_eq!(
        sub.recv_timeout(WAIT),
        Some(Err(SubscriptionEnd::Cancelled))
    );
    assert_eq!(sub.try_recv(), Some(Err(SubscriptionEnd::Closed)));
    drop(sub);

    // Refused by the daemon: the refusal is its end. Dropped before its end: cancelled.
    let mut refused = link.subscribe(vec![Topic::Logs]).unwrap();
    let id = id_of(&read(&mut daemon));
    write(
        &mut daemon,
        Reply::Error {
            id: Some(id),
            message: "topic \"logs\" is not available yet".into(),
        },
    );
    assert!(matches!(
        refused.recv_timeout(WAIT),
        Some(Err(SubscriptionEnd::Refused(m))) if m.contains("logs")
    ));
    let dropped = link.subscribe(vec![Topic::Audit]).unwrap();
    let id = id_of(&read(&mut daemon));
    drop(dropped);
    assert_eq!(read(&mut daemon), Request::Cancel { id });
    // The end of the link ends a subscription too.
    let mut last = link.subscribe(vec![Topic::Changes]).unwrap();
    let _ = read(&mut daemon);
    drop(daemon);
    assert_eq!(last.recv_timeout(WAIT), Some(Err(SubscriptionEnd::Closed)));
}
