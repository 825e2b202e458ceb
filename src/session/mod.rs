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

use std::io::IsTerminal;
use std::process::ExitCode;

/// The environment variable naming the link's descriptor.
pub const FD_VARIABLE: &str = "VIPANEL_SESSION_FD";

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
    let colour = shell::palette::colour_wanted(
        std::env::var("TERM").ok().as_deref(),
        std::env::var("NO_COLOR").ok().as_deref(),
    );
    ExitCode::from(shell::run(&link, &welcome, shell::Options { colour }))
}
