//! The dashboard without a terminal: every screen drawn into ratatui's `TestBackend` at 80×24
//! and 120×40, in the `default` and `mono` themes, and the help overlay, a confirmation and the
//! create form, compared with the snapshots committed under `tests/snapshots/` (text and
//! styles). Also what keys do (the effects: the commands the dashboard would run), and the
//! bytes a frame update writes through the real crossterm backend.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::layout::Rect;
use ratatui::{TerminalOptions, Viewport};
use vipanel::domain::ui::UiSettings;
use vipanel::session::tui::app::{App, Effect, Identity, Overlay, Screen};
use vipanel::session::tui::data::Query;
use vipanel::session::tui::trim::Trimmed;
use vipanel::session::tui::view;

fn settings(theme: &str, keymap: &str) -> UiSettings {
    UiSettings::shipped(theme, keymap).expect("shipped")
}

fn identity(role: &str) -> Identity {
    Identity {
        user: "alice".into(),
        tenant: "acme".into(),
        role: role.into(),
    }
}

const DASHBOARD: &str = r#"{"scope":"platform","tenants":3,"users":6,"keys":9,"servers":3,"sites":8,
 "sites_by_status":{"active":5,"disabled":1,"error":1,"pending":1},"sites_failing_health":1,"sites_last_applied_at":"2026-11-27T10:15:00Z"}"#;

const SERVERS: &str = r#"[
 {"name":"local","provider":"local","status":"running","type":null,"location":null,"image":null,"ipv4":null,"ipv6":null,"tenant":null,"sites":6,"created_at":"2026-11-01T09:00:00Z","sampled_at":"2026-11-27T10:20:00Z","cpu_pct":12.5,"load1":0.42,"mem_used_bytes":3221225472,"mem_total_bytes":8589934592,"disk_used_bytes":42949672960,"disk_total_bytes":107374182400,"health":"ok","health_detail":"the panel host"},
 {"name":"web1","provider":"hetzner","status":"running","type":"cx22","location":"fsn1","image":"debian-12","ipv4":"203.0.113.10","ipv6":null,"tenant":"acme","sites":2,"created_at":"2026-11-20T09:00:00Z","sampled_at":"2026-11-27T10:20:00Z","cpu_pct":81.0,"load1":1.9,"mem_used_bytes":null,"mem_total_bytes":null,"disk_used_bytes":null,"disk_total_bytes":null},
 {"name":"db1","provider":"hetzner","status":"off","type":"cx32","location":"nbg1","image":"debian-12","ipv4":"203.0.113.11","ipv6":null,"tenant":"acme","sites":0,"created_at":"2026-11-21T09:00:00Z","sampled_at":null,"cpu_pct":null,"load1":null,"mem_used_bytes":null,"mem_total_bytes":null,"disk_used_bytes":null,"disk_total_bytes":null}
]"#;

fn site(domain: &str, kind: &str, status: &str, enabled: bool, extra: &str) -> String {
    let php = if kind == "php" { "\"8.2\"" } else { "null" };
    let upstream = if kind == "proxy" {
        "\"http://127.0.0.1:8080\""
    } else {
        "null"
    };
    let aliases = if extra.contains("aliases") {
        ""
    } else {
        r#""aliases":[],"#
    };
    let error = if extra.contains("last_error") {
        ""
    } else {
        r#""last_error":null,"#
    };
    format!(
        r#"{{"domain":"{domain}","tenant":"acme","type":"{kind}","php":{php},"upstream":{upstream},{aliases}"status":"{status}","enabled":{enabled},"server":"local","system_user":"vpsite7","applied_at":"2026-11-27T10:15:00Z",{error}"created_at":"2026-11-25T08:00:00Z","updated_at":"2026-11-27T10:15:00Z"{extra}}}"#
    )
}

fn sites() -> String {
    let rows = [
        site(
            "shop.example",
            "php",
            "active",
            true,
            r#","aliases":["www.shop.example"],"health":"ok","health_detail":"HTTP 200 in 3 ms""#,
        ),
        site("blog.example", "php", "active", true, ""),
        site("static.example", "static", "active", true, ""),
        site("old.example", "static", "disabled", false, ""),
        site(
            "broken.example",
            "php",
            "error",
            true,
            r#","last_error":"nginx: [emerg] unknown directive \"oops\" in custom.d/broken.example/x.conf:1""#,
        ),
        site("new.example", "php", "pending", true, ""),
        site(
            "api.example",
            "proxy",
            "active",
            true,
            r#","health":"failing","health_detail":"HTTP 502 in 2 ms""#,
        ),
        site("docs.example", "static", "active", true, ""),
    ];
    format!("[{}]", rows.join(","))
}

const JOBS: &str = r#"[
 {"id":42,"kind":"server.create","tenant":"acme","created_by":"alice","state":"running","progress":40,"message":"waiting for the server to boot","attempts":1,"max_attempts":5,"payload":{},"result":null,"error":null,"cancel_requested":false,"idempotency_key":null,"timeout_secs":900,"run_at":"2026-11-27T10:18:00Z","lease_until":null,"worker":null,"created_at":"2026-11-27T10:18:00Z","updated_at":"2026-11-27T10:19:00Z","finished_at":null},
 {"id":41,"kind":"server.reboot","tenant":"acme","created_by":"alice","state":"succeeded","progress":100,"message":null,"attempts":1,"max_attempts":5,"payload":{},"result":null,"error":null,"cancel_requested":false,"idempotency_key":null,"timeout_secs":900,"run_at":"2026-11-27T09:00:00Z","lease_until":null,"worker":null,"created_at":"2026-11-27T09:00:00Z","updated_at":"2026-11-27T09:01:00Z","finished_at":"2026-11-27T09:01:00Z"},
 {"id":40,"kind":"server.resize","tenant":"acme","created_by":"bob","state":"failed","progress":10,"message":null,"attempts":5,"max_attempts":5,"payload":{},"result":null,"error":"hetzner: server type cx99 not found","cancel_requested":false,"idempotency_key":null,"timeout_secs":900,"run_at":"2026-11-27T08:00:00Z","lease_until":null,"worker":null,"created_at":"2026-11-27T08:00:00Z","updated_at":"2026-11-27T08:05:00Z","finished_at":"2026-11-27T08:05:00Z"}
]"#;

fn audit() -> String {
    let rows: Vec<String> = [
        (120, "10:19", "alice", "server.create", "web2", "ok", ""),
        (119, "10:15", "bob", "site.create", "new.example", "ok", ""),
        (118, "10:12", "alice", "site.disable", "old.example", "ok", ""),
        (117, "10:10", "mallory", "login", "mallory", "denied", "suspicious"),
        (116, "10:02", "alice", "key.add", "SHA256:Qm9vZm9vZm9vZm9vZm9vZm9v", "ok", ""),
        (115, "09:58", "bob", "site.apply", "broken.example", "error", ""),
    ]
    .iter()
    .map(|(seq, at, actor, action, target, result, flag)| {
        format!(
            r#"{{"seq":{seq},"at":"2026-11-27T{at}:00Z","actor":"{actor}","tenant":"acme","role":"owner","key_fingerprint":null,"source":"127.0.0.1","action":"{action}","target":"{target}","result":"{result}","detail":"","command":null,"exit_code":null,"flag":"{flag}"}}"#
        )
    })
    .collect();
    format!("[{}]", rows.join(","))
}

const USERS: &str = r#"[
 {"name":"alice","tenant":"acme","role":"owner","locked":false,"keys":2,"created_at":"2026-11-01T09:00:00Z"},
 {"name":"bob","tenant":"acme","role":"operator","locked":false,"keys":1,"created_at":"2026-11-02T09:00:00Z"},
 {"name":"carol","tenant":"acme","role":"viewer","locked":true,"keys":1,"created_at":"2026-11-03T09:00:00Z"}
]"#;

const KEYS: &str = r#"[
 {"fingerprint":"SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8","user":"alice","algorithm":"ssh-ed25519","comment":"alice@laptop","created_at":"2026-11-01T09:00:00Z","last_used_at":"2026-11-27T10:00:00Z","automation":false,"allowed_from":[],"max_role":null},
 {"fingerprint":"SHA256:7o2bBv3oVXs2Cq1cJ0HcG9gJY1Oz4pIzpW3nJcM1x2A","user":"alice","algorithm":"ssh-ed25519","comment":"deploy","created_at":"2026-11-05T09:00:00Z","last_used_at":null,"automation":true,"allowed_from":["10.0.0.0/8"],"max_role":"operator"}
]"#;

fn metrics() -> String {
    let points: Vec<String> = (0..60)
        .map(|i| {
            let cpu = 10.0 + ((i * 37) % 50) as f64;
            format!(
                r#"{{"at":"2026-11-27T09:{:02}:00Z","resolution":"raw","samples":1,"cpu_pct":{cpu},"load1":0.4,"load5":0.3,"load15":0.2,"mem_used_bytes":{},"mem_total_bytes":8589934592,"disk_used_bytes":42949672960,"disk_total_bytes":107374182400,"net_rx_bytes_per_s":{},"net_tx_bytes_per_s":1000.0}}"#,
                i,
                3_000_000_000i64 + i * 10_000_000,
                (i % 7) * 2000
            )
        })
        .collect();
    format!("[{}]", points.join(","))
}

/// A dashboard with every query answered, as user alice (`role`) of tenant acme.
fn seeded(role: &str, theme: &str, keymap: &str, size: (u16, u16)) -> App {
    let mut app = App::new(identity(role), &settings(theme, keymap), false, size);
    let answers = [
        (Query::Dashboard, DASHBOARD.to_owned()),
        (Query::Servers, SERVERS.to_owned()),
        (Query::Sites, sites()),
        (Query::Jobs, JOBS.to_owned()),
        (Query::Audit, audit()),
        (Query::Users, USERS.to_owned()),
        (Query::Keys, KEYS.to_owned()),
        (Query::Metrics("local".into()), metrics()),
    ];
    for (query, answer) in answers {
        app.loaded(query.clone(), Ok(answer));
        assert!(
            !app.data.errors.contains_key(&query),
            "{query:?}: {:?}",
            app.data.errors
        );
    }
    app
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(app: &mut App, keys: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in keys.chars() {
        effects.extend(app.key(&key(KeyCode::Char(c))));
    }
    effects
}

/// The screen as text, then its styles (ratatui's own rendering of a buffer).
fn draw(app: &mut App) -> String {
    let (w, h) = app.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    terminal.draw(|f| view::draw(f, app)).expect("draw");
    format!("{:?}", terminal.backend().buffer())
}

fn snap(name: &str, app: &mut App) {
    let text = draw(app);
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, text);
    });
}

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];
const THEMES: [&str; 2] = ["default", "mono"];

#[test]
fn every_screen_at_both_sizes_in_both_themes() {
    for (w, h) in SIZES {
        for theme in THEMES {
            for screen in Screen::ALL {
                let mut app = seeded("owner", theme, "default", (w, h));
                press(&mut app, &(screen as usize + 1).to_string());
                assert_eq!(app.screen, screen);
                if matches!(screen, Screen::Servers | Screen::Sites) {
                    // The detail of a row: local's charts, shop.example's domains.
                    if screen == Screen::Sites {
                        press(&mut app, "");
                        app.key(&key(KeyCode::Down));
                        app.key(&key(KeyCode::Up));
                    }
                    app.key(&key(KeyCode::Enter));
                }
                let name = format!("{}_{w}x{h}_{theme}", screen.title().to_lowercase());
                snap(&name, &mut app);
            }
        }
    }
}

#[test]
fn overlays_help_confirm_and_form() {
    for (w, h) in SIZES {
        let mut app = seeded("owner", "default", "default", (w, h));
        press(&mut app, "3?");
        assert_eq!(app.overlay, Some(Overlay::Help));
        snap(&format!("help_sites_{w}x{h}"), &mut app);

        let mut app = app_at_sites(w, h);
        app.key(&key(KeyCode::Down));
        press(&mut app, "d");
        assert!(matches!(app.overlay, Some(Overlay::Confirm(_))));
        snap(&format!("confirm_delete_{w}x{h}"), &mut app);

        let mut app = app_at_sites(w, h);
        press(&mut app, "c");
        press(&mut app, "example.org");
        snap(&format!("create_form_{w}x{h}"), &mut app);
    }
}

fn app_at_sites(w: u16, h: u16) -> App {
    let mut app = seeded("owner", "default", "default", (w, h));
    press(&mut app, "3");
    app
}

#[test]
fn low_bandwidth_and_small_terminals() {
    let mut low = settings("default", "default");
    low.bandwidth = vipanel::domain::ui::Bandwidth::Low;
    let mut app = App::new(identity("owner"), &low, false, (120, 40));
    app.loaded(Query::Dashboard, Ok(DASHBOARD.into()));
    app.loaded(Query::Servers, Ok(SERVERS.into()));
    app.loaded(Query::Jobs, Ok(JOBS.into()));
    app.loaded(Query::Audit, Ok(audit()));
    assert!(app.prefs.low);
    assert!(app.prefs.refresh >= std::time::Duration::from_secs(30));
    snap("overview_120x40_low_bandwidth", &mut app);

    let mut small = seeded("owner", "default", "default", (59, 14));
    let text = draw(&mut small);
    assert!(text.contains("needs at least 60×15"), "{text}");
    assert!(
        press(&mut small, "3").is_empty(),
        "no screen change while too small"
    );
    assert_eq!(press(&mut small, "q"), vec![Effect::Quit]);
}

/// The Sites flow of the end-to-end test, as effects: filter, create, delete, shell, quit.
#[test]
fn keys_become_the_commands_of_the_tree() {
    let mut app = app_at_sites(120, 40);
    press(&mut app, "/shop");
    app.key(&key(KeyCode::Enter));
    assert_eq!(app.visible_rows(Screen::Sites).len(), 1);
    app.key(&key(KeyCode::Esc));
    assert_eq!(
        app.visible_rows(Screen::Sites).len(),
        8,
        "esc clears the filter"
    );
    press(&mut app, "/re:^(shop|blog)\\.");
    app.key(&key(KeyCode::Enter));
    assert_eq!(app.visible_rows(Screen::Sites).len(), 2);
    app.key(&key(KeyCode::Esc));

    press(&mut app, "c");
    press(&mut app, "fresh.example");
    app.key(&key(KeyCode::Tab));
    app.key(&key(KeyCode::Right)); // php → static
    let effects = app.key(&key(KeyCode::Enter));
    assert_eq!(
        effects,
        vec![Effect::Run {
            argv: words("site create fresh.example --type static -o json"),
            label: "site create fresh.example --type static".into(),
        }]
    );
    assert_eq!(app.running.len(), 1);
    let refresh = app.ran("site create fresh.example --type static", 0, "{}", "");
    assert!(refresh.contains(&Effect::Fetch(Query::Sites)));

    let selected = app.selected_id(Screen::Sites).expect("a selected site");
    press(&mut app, "d");
    assert!(press(&mut app, "n").is_empty(), "n closes the dialog");
    assert_eq!(app.overlay, None);
    press(&mut app, "d");
    let effects = press(&mut app, "y");
    assert_eq!(
        effects,
        vec![Effect::Run {
            argv: words(&format!("site delete {selected} --yes -o json")),
            label: format!("Delete {selected}"),
        }]
    );
    assert_eq!(press(&mut app, "!"), vec![Effect::Shell]);
    assert_eq!(press(&mut app, "q"), vec![Effect::Quit]);
}

#[test]
fn results_say_what_was_made_and_errors_say_why() {
    let mut app = seeded("owner", "default", "default", (120, 40));
    press(&mut app, "6c");
    press(&mut app, "dave");
    let effects = app.key(&key(KeyCode::Enter));
    assert_eq!(
        effects,
        vec![Effect::Run {
            argv: words("user create dave --role viewer -o json"),
            label: "user create dave --role viewer".into(),
        }]
    );
    app.ran(
        "user create dave --role viewer",
        0,
        r#"{"user":{"name":"dave"},"enroll_code":"K7Q2-M9XD"}"#,
        "",
    );
    let status = app.status.clone().expect("a message");
    assert!(
        status.text.contains("enrollment code K7Q2-M9XD"),
        "{status:?}"
    );

    press(&mut app, "3c");
    press(&mut app, "shop.example");
    let effects = app.key(&key(KeyCode::Enter));
    let [Effect::Run { label, .. }] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(label, "site create shop.example --type php");
    app.ran(
        "site create shop.example --type php",
        4,
        "",
        "error: site shop.example already exists\n",
    );
    let status = app.status.clone().expect("a message");
    assert_eq!(
        status.text,
        "site create shop.example --type php: error: site shop.example already exists (exit 4)"
    );
    assert!(app.running.is_empty());
}

#[test]
fn command_mode_aliases_and_errors() {
    let mut app = seeded("owner", "default", "default", (120, 40));
    press(&mut app, ":srv");
    app.key(&key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Servers);
    press(&mut app, ":sites");
    app.key(&key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Sites);
    press(&mut app, ":nonsense");
    app.key(&key(KeyCode::Enter));
    let status = app.status.clone().expect("a message");
    assert!(
        status.text.contains("unknown command :nonsense"),
        "{status:?}"
    );
    assert_eq!(
        app.key(&key(KeyCode::Esc)),
        vec![Effect::Fetch(Query::Servers)]
    );
    assert_eq!(app.screen, Screen::Servers, "esc goes back");
    press(&mut app, ":shell");
    assert_eq!(app.key(&key(KeyCode::Enter)), vec![Effect::Shell]);
}

#[test]
fn viewers_see_actions_greyed_and_refused() {
    let mut app = seeded("viewer", "default", "default", (120, 40));
    press(&mut app, "3");
    assert!(press(&mut app, "c").is_empty());
    assert_eq!(app.overlay, None);
    assert!(
        app.status
            .as_ref()
            .is_some_and(|s| s.text.contains("viewer"))
    );
    snap("sites_120x40_viewer", &mut app);
}

#[test]
fn the_vim_keymap_moves_with_j_and_k() {
    let mut app = seeded("owner", "default", "vim", (120, 40));
    press(&mut app, "3jj");
    let rows = app.visible_rows(Screen::Sites);
    assert_eq!(
        app.selected_id(Screen::Sites).as_deref(),
        Some(rows[2].id.as_str())
    );
    press(&mut app, "G");
    assert_eq!(
        app.selected_id(Screen::Sites).as_deref(),
        Some(rows[7].id.as_str())
    );
    press(&mut app, "gk");
    assert_eq!(
        app.selected_id(Screen::Sites).as_deref(),
        Some(rows[0].id.as_str())
    );
}

/// What the session writes: a first frame, then nothing when nothing changed, and a few
/// cells for a selection move (through the real crossterm backend, into memory).
#[test]
fn an_unchanged_screen_writes_nothing() {
    let mut app = seeded("owner", "default", "default", (120, 40));
    press(&mut app, "3");
    let (mut terminal, written) = terminal_in_memory(120, 40);
    terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
    let first = written.len();
    assert!(first > 500, "a first frame: {first} bytes");
    // The same data again: the app sees nothing changed and does not ask for a frame.
    app.dirty = false;
    app.loaded(Query::Sites, Ok(sites()));
    assert!(!app.dirty, "same data, nothing to draw");
    // Even a frame drawn with nothing changed writes nothing.
    terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
    assert_eq!(written.len(), first, "an unchanged frame wrote bytes");
    app.key(&key(KeyCode::Down));
    assert!(app.dirty);
    terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
    let moved = written.len() - first;
    assert!(moved < 2048, "a selection move wrote {moved} bytes");
}

fn words(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_owned).collect()
}

/// A terminal of `w`×`h` through the backend the session uses (crossterm, rows ended with an
/// erase where they turn blank), writing into memory.
fn terminal_in_memory(w: u16, h: u16) -> (Terminal<Trimmed<CrosstermBackend<Written>>>, Written) {
    let written = Written::default();
    let terminal = Terminal::with_options(
        Trimmed::new(CrosstermBackend::new(written.clone()), w, h),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, w, h)),
        },
    )
    .expect("terminal");
    (terminal, written)
}

/// A writer that keeps what it was given, shared with the test.
#[derive(Clone, Default)]
struct Written(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Written {
    fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

impl std::io::Write for Written {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A change made elsewhere fetches what shows it, once, shortly after (events come in bursts);
/// the screen refreshes on its period; what is not on screen waits until it is.
#[test]
fn changes_elsewhere_fetch_what_shows_them() {
    let mut app = app_at_sites(120, 40);
    let t0 = std::time::Instant::now();
    app.tick(t0); // sets the first periodic refresh
    app.changed("site", t0);
    app.changed("site", t0);
    assert!(app.tick(t0).is_empty(), "debounced");
    let effects = app.tick(t0 + std::time::Duration::from_millis(150));
    assert!(
        effects.contains(&Effect::Fetch(Query::Sites)),
        "{effects:?}"
    );
    assert_eq!(
        effects
            .iter()
            .filter(|e| **e == Effect::Fetch(Query::Sites))
            .count(),
        1
    );
    assert!(
        !effects.contains(&Effect::Fetch(Query::Users)),
        "not on screen: {effects:?}"
    );
    let later = t0 + app.prefs.refresh + std::time::Duration::from_millis(200);
    assert!(
        app.tick(later).contains(&Effect::Fetch(Query::Sites)),
        "periodic"
    );
}

#[test]
fn the_top_line_shows_stale_data_and_running_commands() {
    let mut app = app_at_sites(120, 40);
    app.set_stale(true);
    assert!(app.dirty);
    press(&mut app, "x"); // disable the selected site: runs at once
    assert_eq!(app.running.len(), 1);
    let text = draw(&mut app);
    let top = text
        .lines()
        .find(|l| l.contains("1 Overview"))
        .expect("tab bar");
    assert!(top.contains(" stale "), "{top}");
    assert!(top.contains("disable shop.example"), "{top}");
}

/// The daemon's notices (the idle warning, a restart) show on the message line, cleaned.
#[test]
fn notices_from_the_daemon_show_on_the_message_line() {
    let mut app = app_at_sites(120, 40);
    app.notice("the session ends in 60 s without input\u{1b}[2J");
    let text = draw(&mut app);
    let line = text
        .lines()
        .find(|l| l.contains("the session ends in 60 s"))
        .unwrap_or_else(|| panic!("no notice:\n{text}"));
    assert!(!line.contains('\u{1b}'), "{line:?}");
}

/// Text from the panel never reaches the terminal with control characters in it.
#[test]
fn control_characters_from_the_panel_are_never_drawn() {
    let mut app = seeded("owner", "default", "default", (120, 40));
    let evil = "\u{1b}]0;owned\u{7}\u{1b}[2J";
    let mut jobs: serde_json::Value = serde_json::from_str(JOBS).expect("jobs");
    jobs[0]["message"] = serde_json::json!(format!("step {evil} 2"));
    app.loaded(Query::Jobs, Ok(jobs.to_string()));
    app.log_site = Some("shop.example".into());
    app.loaded(
        Query::SiteLog("shop.example".into(), false),
        Ok(serde_json::json!([format!("GET /{evil} 200")]).to_string()),
    );
    for screen in ["1", "4", "5"] {
        press(&mut app, screen);
        let (mut terminal, written) = terminal_in_memory(120, 40);
        terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
        let bytes = written.0.borrow().clone();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("\u{7}"),
            "a BEL reached the terminal on {screen}"
        );
        assert!(
            !text.contains("\u{1b}]0;owned") && !text.contains("\u{1b}[2J"),
            "an escape sequence from the data reached the terminal on {screen}"
        );
        assert!(
            text.contains("?]0;owned?") || screen == "1",
            "shown escaped on {screen}"
        );
    }
}

/// `NO_COLOR` from the client (and low-bandwidth mode) keep the theme's modifiers, no colour.
#[test]
fn no_color_draws_without_colours() {
    let mut app = App::new(
        identity("owner"),
        &settings("dark", "default"),
        true,
        (120, 40),
    );
    app.loaded(Query::Sites, Ok(sites()));
    press(&mut app, "3");
    let (w, h) = app.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
    let buffer = terminal.backend().buffer();
    let coloured = buffer
        .content()
        .iter()
        .filter(|c| c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset)
        .count();
    assert_eq!(coloured, 0, "no cell has a colour");
    let reversed = buffer
        .content()
        .iter()
        .filter(|c| !c.modifier.is_empty())
        .count();
    assert!(reversed > 0, "modifiers stay (selection, titles)");
}

/// What the session writes, replayed by a terminal emulator, shows exactly the frame ratatui
/// drew: after the first frame, a selection move, screen switches both ways, a detail, the help
/// and a filter. (The erase-to-end-of-line rows included.)
#[test]
fn a_terminal_shows_exactly_the_frames_drawn() {
    for (w, h) in SIZES {
        let mut app = seeded("owner", "default", "default", (w, h));
        let (mut terminal, written) = terminal_in_memory(w, h);
        let rows = std::num::NonZeroU16::new(h).expect("rows");
        let cols = std::num::NonZeroU16::new(w).expect("columns");
        let mut screen = vt100::Parser::new(rows, cols, 0);
        let mut replayed = 0;
        let chars = |text: &str| text.chars().map(KeyCode::Char).collect::<Vec<_>>();
        let steps: Vec<Vec<KeyCode>> = vec![
            vec![],
            chars("3"),
            vec![KeyCode::Down],
            chars("1"),
            chars("3"),
            chars("2"),
            vec![KeyCode::Enter],
            chars("?"),
            chars("x"),
            chars("5"),
            chars("3/shop"),
            chars("4"),
        ];
        for keys in steps {
            for code in &keys {
                app.key(&key(*code));
            }
            let frame = terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
            let expected: Vec<String> = (0..h)
                .map(|y| {
                    (0..w)
                        .map(|x| frame.buffer[(x, y)].symbol().to_owned())
                        .collect::<String>()
                        .trim_end()
                        .to_owned()
                })
                .collect();
            let bytes = written.0.borrow().clone();
            screen.process(&bytes[replayed..]);
            replayed = bytes.len();
            let shown: Vec<String> = screen
                .screen()
                .rows(0, w)
                .map(|r| r.trim_end().to_owned())
                .collect();
            assert_eq!(shown, expected, "after {keys:?} at {w}x{h}");
        }
    }
}

/// Rows that turn blank end with an erase: a screen switch writes fewer bytes than with spaces.
#[test]
fn blank_row_ends_are_erased_not_written() {
    let switch = |trimmed: bool| -> Vec<u8> {
        let mut app = seeded("owner", "default", "default", (120, 40));
        let written = Written::default();
        let before;
        if trimmed {
            let (mut terminal, w) = terminal_in_memory(120, 40);
            press(&mut app, "3");
            terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
            before = w.len();
            press(&mut app, "6");
            terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
            return w.0.borrow()[before..].to_vec();
        }
        let mut terminal = Terminal::with_options(
            CrosstermBackend::new(written.clone()),
            TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, 120, 40)),
            },
        )
        .expect("terminal");
        press(&mut app, "3");
        terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
        before = written.len();
        press(&mut app, "6");
        terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
        written.0.borrow()[before..].to_vec()
    };
    let (plain, trimmed) = (switch(false), switch(true));
    eprintln!(
        "Sites -> Users: {} bytes with erases, {} without",
        trimmed.len(),
        plain.len()
    );
    let erases = trimmed.windows(3).filter(|w| *w == b"\x1b[K").count();
    assert!(
        erases > 0,
        "no erase in {}",
        String::from_utf8_lossy(&trimmed)
    );
    assert!(
        trimmed.len() * 10 < plain.len() * 9,
        "Sites → Users: {} bytes with erases, {} without",
        trimmed.len(),
        plain.len()
    );
}
