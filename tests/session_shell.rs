//! The interactive session process (`vipanel __session`) on a real terminal: tmux runs it on a
//! pane against a fake daemon (see `session_support`), and the tests type at it. tmux answers
//! the cursor-position queries reedline sends, as a real terminal does.
//!
//! The end-to-end tests with the real daemon and the OpenSSH client live with the daemon's.

mod session_support;

use session_support::{EARLIER_HISTORY, END_LINK, FakeDaemon, Pane, tools_available};
use vipanel::rpc::Request;

const PROMPT: &str = "alice@acme>";

/// A pane with the session at its first prompt.
fn started(env: &[(&str, &str)]) -> Option<(FakeDaemon, Pane)> {
    if !tools_available() {
        return None;
    }
    let daemon = FakeDaemon::start();
    let pane = Pane::start(&daemon, env);
    pane.wait_last_line(PROMPT);
    Some((daemon, pane))
}

#[test]
fn prompt_commands_completion_and_history_from_an_earlier_session() {
    let Some((daemon, pane)) = started(&[]) else {
        return;
    };
    // Up recalls the newest line of an earlier session, served by the daemon at start.
    pane.keys(&["Up"]);
    pane.wait_last_line(&format!("{PROMPT} {}", EARLIER_HISTORY[1]));
    pane.keys(&["Up"]);
    pane.wait_last_line(&format!("{PROMPT} {}", EARLIER_HISTORY[0]));
    pane.keys(&["Down", "Enter"]);
    pane.wait_for("ran: user show bob");

    // Tab completes a site domain the daemon listed, then a verb and a flag from the tree.
    pane.type_text("site show ex");
    pane.keys(&["Tab"]);
    pane.wait_last_line(&format!("{PROMPT} site show example.com"));
    pane.type_text("--out");
    pane.keys(&["Tab"]);
    pane.wait_last_line(&format!("{PROMPT} site show example.com --output"));
    pane.type_text("j");
    pane.keys(&["Tab", "Enter"]);
    pane.wait_for("ran: site show example.com --output json");

    // Entered lines go to the daemon's history; a line starting with a space does not.
    pane.type_text(" whoami");
    pane.keys(&["Enter"]);
    pane.wait_for("ran: whoami");
    let added: Vec<String> = daemon
        .seen
        .requests()
        .into_iter()
        .filter_map(|r| match r {
            Request::HistoryAdd { line } => Some(line),
            _ => None,
        })
        .collect();
    assert_eq!(
        added,
        ["user show bob", "site show example.com --output json"]
    );

    // Ctrl-R finds a line, also one the daemon holds from elsewhere; Enter takes it to the line.
    pane.keys(&["C-r"]);
    pane.type_text("list");
    pane.wait_last_line("alice@acme (search: list)> site list");
    pane.keys(&["Enter"]);
    pane.wait_last_line(&format!("{PROMPT} site list"));
    pane.keys(&["Enter"]);
    pane.wait_for("ran: site list");
}

#[test]
fn ctrl_c_clears_the_line_or_cancels_a_streaming_command() {
    let Some((daemon, pane)) = started(&[]) else {
        return;
    };
    // At the prompt: the line is dropped and a new prompt follows.
    pane.type_text("site li");
    pane.keys(&["C-c"]);
    pane.wait_last_line(PROMPT);

    pane.type_text("audit list --follow");
    pane.keys(&["Enter"]);
    pane.wait_for("event 2");
    pane.keys(&["C-c"]);
    let run = daemon.seen.wait_for(
        "the streaming run",
        |r| matches!(r, Request::Run { argv, .. } if argv.last().is_some_and(|a| a == "--follow")),
    );
    let Request::Run { id, tty, .. } = run else {
        unreachable!()
    };
    assert!(tty);
    daemon.seen.wait_for("Cancel of the streaming run", |r| {
        *r == Request::Cancel { id }
    });
    pane.wait_for("cancelled");
    pane.wait_last_line(PROMPT);
    // The shell goes on.
    pane.type_text("whoami");
    pane.keys(&["Enter"]);
    pane.wait_for("ran: whoami");
}

#[test]
fn a_destructive_command_asks_at_the_terminal() {
    let Some((daemon, pane)) = started(&[]) else {
        return;
    };
    pane.type_text("site delete example.com");
    pane.keys(&["Enter"]);
    pane.wait_for("[y/N]");
    pane.type_text("yes");
    pane.keys(&["Enter"]);
    pane.wait_for("deleted");
    pane.wait_last_line(PROMPT);
    pane.type_text("site delete example.com");
    pane.keys(&["Enter"]);
    pane.wait("a second question", |s| s.matches("[y/N]").count() == 2);
    pane.keys(&["Enter"]);
    pane.wait_for("kept");
    let answers: Vec<bool> = daemon
        .seen
        .requests()
        .into_iter()
        .filter_map(|r| match r {
            Request::Confirm { yes, .. } => Some(yes),
            _ => None,
        })
        .collect();
    assert_eq!(answers, [true, false]);
}

#[test]
fn notices_show_above_the_prompt_and_between_output() {
    let Some((daemon, pane)) = started(&[]) else {
        return;
    };
    // Idle at the prompt with a half-typed line: the notice goes above, the line stays.
    pane.type_text("whoa");
    daemon
        .notices
        .send("The session ends in 1 minute (idle).".into())
        .unwrap();
    pane.wait_for("The session ends in 1 minute (idle).");
    pane.wait_last_line(&format!("{PROMPT} whoa"));
    pane.type_text("mi");
    pane.keys(&["Enter"]);
    pane.wait_for("ran: whoami");

    // During a streaming command: between its output.
    pane.type_text("audit list --follow");
    pane.keys(&["Enter"]);
    pane.wait_for("event 1");
    daemon
        .notices
        .send("The panel is restarting.".into())
        .unwrap();
    pane.wait_for("The panel is restarting.");
    pane.keys(&["C-c"]);
    pane.wait_for("cancelled");
    pane.wait_last_line(PROMPT);
}

#[test]
fn the_window_can_be_resized() {
    let Some((_daemon, pane)) = started(&[]) else {
        return;
    };
    pane.type_text("site create ");
    pane.tmux(&["resize-window", "-t", "0", "-x", "40", "-y", "12"]);
    let long = "a-rather-long-name.example.com --alias www.a-rather-long-name.example.com";
    pane.type_text(long);
    // The line wraps at the new width and stays whole.
    let screen = pane.wait_for("www.a-rather");
    assert!(screen.lines().all(|l| l.chars().count() <= 40), "{screen}");
    let joined: String = screen.lines().collect();
    assert!(
        joined.contains(&format!("{PROMPT} site create {long}")),
        "{screen}"
    );
    pane.keys(&["Enter"]);
    pane.wait("the whole line ran", |s| {
        s.lines()
            .collect::<String>()
            .contains(&format!("ran: site create {long}"))
    });
    pane.tmux(&["resize-window", "-t", "0", "-x", "100", "-y", "30"]);
    pane.type_text("whoami");
    pane.keys(&["Enter"]);
    pane.wait_for("ran: whoami");
    pane.wait_last_line(PROMPT);
}

#[test]
fn exit_and_ctrl_d_end_with_status_zero() {
    if !tools_available() {
        return;
    }
    for keys in [&["exit", "Enter"][..], &["C-d"]] {
        let daemon = FakeDaemon::start();
        let pane = Pane::start_reporting_exit(&daemon);
        pane.wait_for(PROMPT);
        if keys.len() == 2 {
            pane.type_text(keys[0]);
            pane.keys(&keys[1..]);
        } else {
            pane.keys(keys);
        }
        assert_eq!(pane.wait_exit(), 0, "after {keys:?}");
        assert!(
            !daemon
                .seen
                .requests()
                .iter()
                .any(|r| matches!(r, Request::Run { .. })),
            "leaving is the shell's own"
        );
    }
}

#[test]
fn help_colour_and_no_color() {
    let Some((_daemon, pane)) = started(&[]) else {
        return;
    };
    pane.type_text("help");
    pane.keys(&["Enter"]);
    pane.wait_for("ran: help");
    pane.wait_for("Ctrl-R");
    // `site show` is in no history, so no hint follows it.
    pane.type_text("site sho");
    pane.wait_last_line(&format!("{PROMPT} site sho"));
    let coloured = pane.screen_with_escapes();
    let last = coloured.lines().rev().find(|l| l.contains("site")).unwrap();
    assert!(last.contains("\x1b[32msite"), "{last:?}");

    let Some((_daemon, pane)) = started(&[("NO_COLOR", "1")]) else {
        return;
    };
    pane.type_text("site list");
    pane.wait_last_line(&format!("{PROMPT} site list"));
    let plain = pane.screen_with_escapes();
    assert!(!plain.contains("\x1b[3"), "{plain:?}");
}

#[test]
fn the_end_of_the_link_ends_the_session_after_its_last_notice() {
    if !tools_available() {
        return;
    }
    let daemon = FakeDaemon::start();
    let pane = Pane::start_reporting_exit(&daemon);
    pane.wait_for(PROMPT);
    pane.type_text("site li");
    daemon
        .notices
        .send("The panel is restarting.".into())
        .unwrap();
    daemon.notices.send(END_LINK.into()).unwrap();
    assert_eq!(pane.wait_exit(), 1);
    // With its scrollback: tmux's "Pane is dead" line can scroll the screen by one.
    let out = pane.tmux(&["capture-pane", "-p", "-S", "-50", "-t", "0"]);
    let screen = String::from_utf8_lossy(&out.stdout);
    let notice = screen.find("The panel is restarting.");
    let end = screen.find("The connection to the panel ended.");
    assert!(notice.is_some() && notice < end, "{screen}");
}
