//! End-to-end tests of the dashboard: the real `vipanel serve`, the real OpenSSH client in a
//! tmux terminal (`ssh -t`, no command), keys typed into tmux and the screen read back with
//! `capture-pane`. Sites live in the daemon's default `sandbox` host mode.

mod support;

use support::Daemon;
use support::tmux::{Tmux, TmuxOptions};

/// The shell's prompt for the bootstrap admin.
const PROMPT: &str = "admin@system> ";

/// The dashboard's terminal.
const SIZE: (u16, u16) = (120, 40);

/// The keys a flow uses to put the selection on a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keymap {
    Default,
    Vim,
}

/// The rows between the tab bar (first) and the bottom bar (last): the screen's body, where
/// the tables, dialogs and forms are.
fn body(term: &Tmux, rows: &[String]) -> Vec<String> {
    let height = usize::from(term.size().1);
    let mut rows = rows.to_vec();
    rows.resize(height.max(rows.len()), String::new());
    rows[1..height - 1].to_vec()
}

/// Whether a dialog or form is drawn over the body (its corners).
fn boxed(body: &[String]) -> bool {
    body.iter().any(|r| r.contains('┌') || r.contains('╭'))
}

/// The domains in the body's table, top to bottom (no dialog over it).
fn domains(body: &[String]) -> Vec<String> {
    body.iter()
        .filter_map(|r| {
            r.split_whitespace()
                .find(|w| w.ends_with(".example"))
                .map(str::to_owned)
        })
        .collect()
}

/// The body's first row: the section title (` Sites 3 `, ` Sites 1/3 /alpha `).
fn title(body: &[String]) -> &str {
    body.first().map(String::as_str).unwrap_or_default()
}

/// Waits until the Sites table shows exactly `want` (in any order) under the title `heading`,
/// nothing over it; the body.
#[track_caller]
fn wait_table(d: &Daemon, term: &Tmux, heading: &str, want: &[&str]) -> Vec<String> {
    let what = format!("the Sites table {heading:?} showing exactly {want:?}");
    let rows = term.wait_rows(d, &what, |rows| {
        let body = body(term, rows);
        let mut shown = domains(&body);
        shown.sort();
        let mut want: Vec<String> = want.iter().map(|w| (*w).to_owned()).collect();
        want.sort();
        !boxed(&body) && title(&body).contains(heading) && shown == want
    });
    body(term, &rows)
}

/// The domains `site list` answers over exec.
fn listed(d: &Daemon) -> Vec<String> {
    let list = d.ssh_json(&d.admin_key, &["site", "list"]);
    list.as_array()
        .unwrap_or_else(|| panic!("site list -o json is an array: {list}"))
        .iter()
        .map(|s| s["domain"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn create_site(d: &Daemon, domain: &str) {
    d.panel(
        &d.admin_key,
        &["site", "create", domain, "--type", "static"],
    )
    .expect(0);
}

/// The whole flow of the first two tests; `keymap` says how the row to delete is selected.
fn dashboard_flow(keymap: Keymap) {
    let Some(d) = Daemon::start() else { return };
    create_site(&d, "alpha.example");
    create_site(&d, "beta.example");
    // No periodic refresh within the test: what changes shows because the dashboard is told.
    d.panel(&d.admin_key, &["ui", "refresh", "3600"]).expect(0);
    if keymap == Keymap::Vim {
        d.panel(&d.admin_key, &["ui", "keymap", "vim"]).expect(0);
    }
    let options = TmuxOptions::default().size(SIZE.0, SIZE.1);
    let Some(term) = Tmux::start_with(&d, &d.admin_key, None, options) else {
        return;
    };

    // The Overview first.
    term.wait_rows(&d, "the Overview", |rows| {
        rows.first().is_some_and(|r| r.contains("1 Overview"))
            && rows.iter().any(|r| r.contains("Recent events"))
    });

    // Sites: both seeded domains.
    term.keys(&["3"]);
    wait_table(&d, &term, " Sites 2 ", &["alpha.example", "beta.example"]);

    // A filter keeps alpha; Esc clears it.
    term.keys(&["/"]);
    term.type_text("alpha");
    term.keys(&["Enter"]);
    wait_table(&d, &term, " Sites 1/2 /alpha ", &["alpha.example"]);
    term.escape();
    wait_table(&d, &term, " Sites 2 ", &["alpha.example", "beta.example"]);

    // The create form: domain, Tab, → (static), Enter. The table shows the site without any
    // refresh key.
    term.keys(&["c"]);
    term.wait_rows(&d, "the create form", |rows| {
        rows.iter().any(|r| r.contains("Create a site"))
            && rows.iter().any(|r| r.contains("Domain"))
    });
    term.type_text("gamma.example");
    term.keys(&["Tab"]);
    term.keys(&["Right"]);
    term.keys(&["Enter"]);
    wait_table(
        &d,
        &term,
        " Sites 3 ",
        &["alpha.example", "beta.example", "gamma.example"],
    );
    term.wait_rows(&d, "the command's end in the bottom bar", |rows| {
        rows.get(usize::from(SIZE.1) - 1)
            .is_some_and(|r| r.contains("done: site create gamma.example --type static"))
    });
    let sites = d.ssh_json(&d.admin_key, &["site", "list"]);
    let gamma = sites
        .as_array()
        .and_then(|a| a.iter().find(|s| s["domain"] == "gamma.example"))
        .unwrap_or_else(|| panic!("gamma.example is listed: {sites}"));
    assert_eq!(gamma["type"], "static", "the form's type: {gamma}");

    // A site created by another connection shows without a key.
    create_site(&d, "delta.example");
    wait_table(
        &d,
        &term,
        " Sites 4 ",
        &[
            "alpha.example",
            "beta.example",
            "delta.example",
            "gamma.example",
        ],
    );

    // Delete gamma, confirmed.
    match keymap {
        Keymap::Default => {
            term.keys(&["/"]);
            term.type_text("gamma");
            term.keys(&["Enter"]);
            wait_table(&d, &term, " Sites 1/4 /gamma ", &["gamma.example"]);
        }
        Keymap::Vim => {
            // Bottom (G), up to the top with k, down to gamma's row with j.
            let rows = term.rows();
            let order = domains(&body(&term, &rows));
            let at = order
                .iter()
                .position(|s| s == "gamma.example")
                .unwrap_or_else(|| panic!("gamma in the table\n{}", rows.join("\n")));
            term.keys(&["G"]);
            for _ in 1..order.len() {
                term.keys(&["k"]);
            }
            for _ in 0..at {
                term.keys(&["j"]);
            }
        }
    }
    term.keys(&["d"]);
    term.wait_rows(&d, "the dialog to delete gamma.example", |rows| {
        rows.iter().any(|r| r.contains("Delete gamma.example"))
    });
    term.keys(&["y"]);
    let heading = match keymap {
        Keymap::Default => " Sites 0/3 /gamma ",
        Keymap::Vim => " Sites 3 ",
    };
    let want: &[&str] = match keymap {
        Keymap::Default => &[],
        Keymap::Vim => &["alpha.example", "beta.example", "delta.example"],
    };
    wait_table(&d, &term, heading, want);
    term.wait_rows(&d, "the deletion's end in the bottom bar", |rows| {
        rows.get(usize::from(SIZE.1) - 1)
            .is_some_and(|r| r.contains("done: Delete gamma.example"))
    });
    let left = listed(&d);
    assert!(
        !left.contains(&"gamma.example".to_owned()),
        "gamma.example was deleted: {left:?}"
    );
    if keymap == Keymap::Default {
        term.escape();
        wait_table(
            &d,
            &term,
            " Sites 3 ",
            &["alpha.example", "beta.example", "delta.example"],
        );
    }

    // To the shell and back: the dashboard comes back on Sites.
    term.keys(&["!"]);
    term.wait_for(&d, PROMPT);
    term.type_line("site list");
    term.wait_rows(&d, "the output of `site list` in the shell", |rows| {
        let text = rows.join("\n");
        text.split_once(&format!("{PROMPT}site list"))
            .is_some_and(|(_, after)| {
                after.contains("alpha.example") && after.contains("delta.example")
            })
    });
    term.type_line("tui");
    wait_table(
        &d,
        &term,
        " Sites 3 ",
        &["alpha.example", "beta.example", "delta.example"],
    );
    let rows = term.rows();
    assert!(
        rows.first().is_some_and(|r| r.contains("1 Overview")),
        "the tab bar is back:\n{}",
        rows.join("\n")
    );

    term.keys(&["q"]);
    let status = term.wait_exit(&d);
    assert_eq!(status, 0, "{}", term.screen());
}

#[test]
fn the_dashboard_flow_with_the_default_keymap() {
    dashboard_flow(Keymap::Default);
}

#[test]
fn the_same_flow_with_the_vim_keymap() {
    dashboard_flow(Keymap::Vim);
}

#[test]
fn a_small_or_dumb_terminal_gets_a_clear_message_or_the_shell() {
    let Some(d) = Daemon::start() else { return };
    {
        let small = TmuxOptions::default().size(50, 12);
        let Some(term) = Tmux::start_with(&d, &d.admin_key, None, small) else {
            return;
        };
        // The message wraps at 50 columns: read it as one line of words.
        term.wait_rows(&d, "the too-small message", |rows| {
            let words: Vec<&str> = rows.iter().flat_map(|r| r.split_whitespace()).collect();
            words.join(" ").contains("needs at least 60×15")
        });
        term.keys(&["q"]);
        let status = term.wait_exit(&d);
        assert_eq!(status, 0, "{}", term.screen());
    }
    let dumb = TmuxOptions::default().env("TERM", "dumb");
    let Some(term) = Tmux::start_with(&d, &d.admin_key, None, dumb) else {
        return;
    };
    let screen = term.wait_for(&d, PROMPT);
    assert!(!screen.contains("1 Overview"), "no dashboard:\n{screen}");
    // Asking for it says why not, and the shell goes on.
    term.type_line("tui");
    term.wait_for(&d, "needs a terminal that can draw");
    term.type_line("exit");
    let status = term.wait_exit(&d);
    assert_eq!(status, 0, "{}", term.screen());
}

/// A terminal that answers no queries (`ssh -tt` from a script): the dashboard draws without
/// asking it anything (it asked for the cursor position, then gave up after 2 s with exit 1).
#[test]
fn a_terminal_that_answers_nothing_still_gets_the_dashboard() {
    let Some(d) = Daemon::start() else { return };
    let ssh = d.ssh_command(&d.admin_key, support::PANEL, &["-tt"], None, false);
    let mut client = support::TtyClient::spawn(ssh);
    support::tmux::wait_until("the dashboard drawn", &d, || {
        client.text().contains("Recent events")
    });
    assert!(
        !client.seen().contains("\x1b[6n"),
        "the dashboard asked for the cursor position: {:?}",
        client.seen()
    );
    use std::io::Write;
    client.input.write_all(b"q").expect("type q");
    let mut status = None;
    support::tmux::wait_until("the ssh client exiting", &d, || {
        status = client.child.try_wait().expect("wait for ssh");
        status.is_some()
    });
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{:?}",
        client.text()
    );
}
