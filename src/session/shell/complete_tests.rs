//! Completion from the command tree, and live values from a fake source and a scripted link.

use super::*;
use crate::rpc::{self, PROTOCOL_VERSION};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

/// Values by kind, counting how often each kind was asked for.
#[derive(Default)]
struct FakeValues {
    asked: Arc<Mutex<Vec<CompletionKind>>>,
}

impl ValueSource for FakeValues {
    fn values(&mut self, kind: CompletionKind) -> Vec<String> {
        self.asked.lock().unwrap().push(kind);
        let values: &[&str] = match kind {
            CompletionKind::Sites => &["example.com", "example.org", "shop.test"],
            CompletionKind::Servers => &["local", "web1"],
            CompletionKind::Users => &["alice", "bob"],
            CompletionKind::Tenants => &["acme", "globex"],
        };
        values.iter().map(|v| (*v).to_owned()).collect()
    }
}

fn completer() -> ShellCompleter<FakeValues> {
    ShellCompleter::new(Arc::new(Grammar::load()), FakeValues::default())
}

/// The values offered at the end of `line`.
fn offered(line: &str) -> Vec<String> {
    completer()
        .suggest(line, line.len())
        .into_iter()
        .map(|s| s.value)
        .collect()
}

#[test]
fn nouns_verbs_and_shell_words() {
    let nouns = offered("");
    for noun in [
        "site", "user", "tenant", "server", "help", "whoami", "exit", "clear",
    ] {
        assert!(nouns.contains(&noun.to_owned()), "{noun} in {nouns:?}");
    }
    assert_eq!(offered("si"), ["site"]);
    assert_eq!(offered("s"), ["site", "server", "session"]);
    assert_eq!(
        offered("site "),
        [
            "list", "show", "create", "delete", "enable", "disable", "php", "alias", "apply",
            "logs"
        ]
    );
    assert_eq!(offered("site d"), ["delete", "disable"]);
    assert_eq!(offered("  site   sh"), ["show"]);
    // An alias walks on like its verb.
    assert_eq!(offered("site ls --t"), ["--tenant"]);
    // Nothing after a word that is not in the tree.
    assert!(offered("sight ").is_empty());
    assert!(offered("site frobnicate ").is_empty());
}

#[test]
fn flags_of_the_command_and_global_ones() {
    let flags = offered("site create example.com --");
    for flag in [
        "--type",
        "--php",
        "--alias",
        "--upstream",
        "--tenant",
        "--output",
        "--help",
    ] {
        assert!(flags.contains(&flag.to_owned()), "{flag} in {flags:?}");
    }
    assert_eq!(offered("site create example.com --p"), ["--php"]);
    assert_eq!(offered("audit list --s"), ["--since", "--suspicious"]);
}

#[test]
fn fixed_choices() {
    assert_eq!(offered("site list -o "), ["table", "json", "plain"]);
    assert_eq!(offered("site list --output j"), ["json"]);
    assert_eq!(
        offered("site create x.com --type "),
        ["php", "static", "proxy"]
    );
    assert_eq!(offered("user role alice o"), ["operator", "owner"]);
    assert_eq!(offered("user create bob --role a"), ["admin"]);
}

#[test]
fn live_values_where_an_existing_object_is_named() {
    assert_eq!(
        offered("site show "),
        ["example.com", "example.org", "shop.test"]
    );
    assert_eq!(offered("site delete ex"), ["example.com", "example.org"]);
    assert_eq!(offered("site rm sh"), ["shop.test"]);
    assert_eq!(
        offered("site delete --purge ex"),
        ["example.com", "example.org"]
    );
    assert_eq!(offered("server show w"), ["web1"]);
    assert_eq!(offered("user lock "), ["alice", "bob"]);
    assert_eq!(offered("totp reset b"), ["bob"]);
    assert_eq!(offered("site list --tenant g"), ["globex"]);
    assert_eq!(offered("key list --user a"), ["alice"]);
    // A new object has no existing values; an argument past the last has none either.
    assert!(offered("site create ").is_empty());
    assert!(offered("user create ").is_empty());
    assert!(offered("site show example.com ").is_empty());
    assert!(offered("site create x.com --php ").is_empty());
}

#[test]
fn live_values_are_asked_only_when_needed() {
    let mut completer = completer();
    let asked = Arc::clone(&completer.values.asked);
    completer.suggest("site ", 5);
    completer.suggest("site show --", 12);
    assert!(asked.lock().unwrap().is_empty());
    completer.suggest("site show ", 10);
    assert_eq!(*asked.lock().unwrap(), [CompletionKind::Sites]);
}

#[test]
fn help_completes_command_words() {
    assert_eq!(offered("help si"), ["site"]);
    assert_eq!(offered("help site cr"), ["create"]);
    assert!(!offered("help ").contains(&"exit".to_owned()));
    assert!(offered("help site create ").is_empty());
}

#[test]
fn the_span_covers_the_word_being_completed() {
    let mut completer = completer();
    let line = "site show \"ex";
    let suggestions = completer.suggest(line, line.len());
    assert_eq!(suggestions.len(), 2);
    assert_eq!(suggestions[0].span, Span::new(10, line.len()));
    assert!(suggestions[0].append_whitespace);
    // In the middle of a line: only what is before the cursor counts.
    let suggestions = completer.suggest("site sh example.com", 7);
    assert_eq!(suggestions[0].value, "show");
    assert_eq!(suggestions[0].span, Span::new(5, 7));
    // After a space: an empty span at the cursor.
    let suggestions = completer.suggest("site ", 5);
    assert_eq!(suggestions[0].span, Span::new(5, 5));
}

#[test]
fn values_that_need_quotes_are_quoted() {
    struct Odd;
    impl ValueSource for Odd {
        fn values(&mut self, _: CompletionKind) -> Vec<String> {
            vec!["two words".into()]
        }
    }
    let mut completer = ShellCompleter::new(Arc::new(Grammar::load()), Odd);
    let suggestions = completer.suggest("user show ", 10);
    assert_eq!(suggestions[0].value, "'two words'");
}

#[test]
fn live_values_come_from_the_link_and_are_cached() {
    let (child, mut daemon) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let _: Request = rpc::read_frame(&mut daemon).unwrap();
        rpc::write_frame(
            &mut daemon,
            &Reply::Welcome {
                version: PROTOCOL_VERSION,
                user: "alice".into(),
                tenant: "acme".into(),
                role: "owner".into(),
                prefix: "ssh panel@host".into(),
            },
        )
        .unwrap();
        let mut asked = Vec::new();
        while let Ok(request) = rpc::read_frame::<_, Request>(&mut daemon) {
            if let Request::Complete { id, kind } = request {
                asked.push(kind);
                let values = vec!["example.com".into(), "shop.test".into()];
                rpc::write_frame(&mut daemon, &Reply::Values { id, values }).unwrap();
            }
        }
        asked
    });
    let (link, _) = Link::connect(child).unwrap();
    let commands = CommandCount::default();
    let mut completer = ShellCompleter::new(
        Arc::new(Grammar::load()),
        LinkValues::new(link.clone(), commands.clone()),
    );
    let values = |c: &mut ShellCompleter<LinkValues>, line: &str| -> Vec<String> {
        c.suggest(line, line.len())
            .into_iter()
            .map(|s| s.value)
            .collect()
    };
    assert_eq!(
        values(&mut completer, "site show "),
        ["example.com", "shop.test"]
    );
    assert_eq!(values(&mut completer, "site show sh"), ["shop.test"]);
    // A command ran (it may have created a site): asked again.
    commands.bump();
    assert_eq!(
        values(&mut completer, "site delete "),
        ["example.com", "shop.test"]
    );
    link.shutdown();
    assert_eq!(
        server.join().unwrap(),
        [CompletionKind::Sites, CompletionKind::Sites]
    );
}

#[test]
fn a_change_elsewhere_drops_the_cached_values_of_its_kind() {
    let (child, mut daemon) = UnixStream::pair().unwrap();
    let mut events = daemon.try_clone().unwrap();
    let (subscribed, subscription) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let _: Request = rpc::read_frame(&mut daemon).unwrap();
        rpc::write_frame(
            &mut daemon,
            &Reply::Welcome {
                version: PROTOCOL_VERSION,
                user: "alice".into(),
                tenant: "acme".into(),
                role: "owner".into(),
                prefix: "ssh panel@host".into(),
            },
        )
        .unwrap();
        let mut asked = Vec::new();
        let mut round = 0;
        while let Ok(request) = rpc::read_frame::<_, Request>(&mut daemon) {
            match request {
                Request::Subscribe { id, topics } => {
                    assert_eq!(topics, [Topic::Changes]);
                    subscribed.send(id).unwrap();
                }
                Request::Complete { id, kind } => {
                    asked.push(kind);
                    round += 1;
                    let values = vec![format!("site{round}.example")];
                    rpc::write_frame(&mut daemon, &Reply::Values { id, values }).unwrap();
                }
                _ => {}
            }
        }
        asked
    });
    let (link, _) = Link::connect(child).unwrap();
    let mut completer = ShellCompleter::new(
        Arc::new(Grammar::load()),
        LinkValues::new(link.clone(), CommandCount::default()).following_changes(),
    );
    let values = |c: &mut ShellCompleter<LinkValues>| -> Vec<String> {
        c.suggest("site show ", 10)
            .into_iter()
            .map(|s| s.value)
            .collect()
    };
    // The first live value subscribes to changes, before asking.
    assert_eq!(values(&mut completer), ["site1.example"]);
    let id = subscription.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(values(&mut completer), ["site1.example"], "cached");
    let change = |kind: &str| Reply::Event {
        id,
        event: Box::new(Event::Change(rpc::Change {
            seq: 7,
            at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            tenant: "acme".into(),
            kind: kind.into(),
            action: format!("{kind}.create"),
            target: "x".into(),
            actor: None,
        })),
    };
    // A key changed: sites stay cached. A site changed: asked again at once.
    for (kind, expected) in [("key", "site1.example"), ("site", "site2.example")] {
        // The daemon's thread waits for a request: nothing else writes meanwhile.
        rpc::write_frame(&mut events, &change(kind)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(values(&mut completer), [expected], "after a {kind} change");
    }
    link.shutdown();
    assert_eq!(
        server.join().unwrap(),
        [CompletionKind::Sites, CompletionKind::Sites]
    );
    assert_eq!(affected("tenant"), [CompletionKind::Tenants]);
    assert!(affected("totp").is_empty());
}
