//! `vipanel __session`: the process the daemon starts on a PTY for one interactive login.
//!
//! It holds no database handle and no secrets: every read and write is a request over the RPC
//! link it inherits (descriptor `VIPANEL_SESSION_FD`), which the daemon runs as the user it bound
//! to the link. It keeps nothing on disk and may run as an unprivileged account without a home.
//!
//! Modules: [`link`] (the client, its reader thread and the demultiplexer), [`shell`] (reedline),
//! `link_fd` (claiming the inherited descriptor: the one place with unsafe code).

pub mod link;
mod link_fd;
pub mod shell;
pub mod tui;

use std::io::IsTerminal;
use std::process::ExitCode;

/// The environment variable naming the link's descriptor.
pub const FD_VARIABLE: &str = "VIPANEL_SESSION_FD";
/// The environment variable naming what to start with: `tui` (the default) or `shell`.
pub const START_VARIABLE: &str = "VIPANEL_SESSION_START";

/// Exit code when the process was started wrongly (no link, no terminal).
const EXIT_USAGE: u8 = 2;

/// Runs the session: handshake, then the shell; 0 after `exit` or Ctrl-D.
pub fn main() -> ExitCode {
    link_fd::forbid_inspection();
    let Some(fd) = std::env::var(FD_VARIABLE)
        .ok()
        .and_then(|v| v.parse::<std::os::fd::RawFd>().ok())
    else {
        eprintln!(
            "vipanel __session: {FD_VARIABLE} names no link; the daemon starts this for an interactive login"
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let stream = match link_fd::claim(fd) {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!("vipanel __session: no link on descriptor {fd}: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        eprintln!("vipanel __session: needs a terminal");
        return ExitCode::from(EXIT_USAGE);
    }
    let (link, welcome) = match link::Link::connect(stream) {
        Ok(connected) => connected,
        Err(err) => {
            eprintln!("vipanel: {err}");
            return ExitCode::from(shell::EXIT_FAILED);
        }
    };
    if let Err(err) = shell::signals::forward_interrupts(link.clone()) {
        eprintln!("vipanel: cannot handle Ctrl-C: {err}");
        return ExitCode::from(shell::EXIT_FAILED);
    }
    let term = std::env::var("TERM").ok();
    let no_color = std::env::var("NO_COLOR").is_ok_and(|v| !v.is_empty());
    let colour =
        shell::palette::colour_wanted(term.as_deref(), std::env::var("NO_COLOR").ok().as_deref());
    let options = shell::Options { colour };
    let drawable = term
        .as_deref()
        .is_some_and(|t| !t.is_empty() && t != "dumb");
    let mut dashboard_next = drawable && std::env::var(START_VARIABLE).as_deref() != Ok("shell");
    let mut dashboard: Option<tui::Dashboard> = None;
    loop {
        if dashboard_next {
            let dash =
                dashboard.get_or_insert_with(|| tui::Dashboard::new(&link, &welcome, no_color));
            match dash.run() {
                tui::Exit::Quit => return ExitCode::from(shell::EXIT_OK),
                tui::Exit::Shell => dashboard_next = false,
                tui::Exit::Closed => return ExitCode::from(shell::link_ended(&link)),
                tui::Exit::Failed => return ExitCode::from(shell::EXIT_FAILED),
            }
        }
        match shell::run(&link, &welcome, options) {
            shell::Outcome::Exit(code) => return ExitCode::from(code),
            shell::Outcome::Dashboard if drawable => dashboard_next = true,
            shell::Outcome::Dashboard => {
                shell::terminal::write_notice(
                    "The dashboard needs a terminal that can draw (TERM is dumb or unset); \
                     the shell goes on.",
                );
            }
        }
    }
}
