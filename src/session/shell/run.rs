//! Running one command line over the link: its output streams to the terminal, a confirmation
//! is asked at the terminal, Ctrl-C cancels it, and a notice shows between its output.

use super::terminal;
use crate::rpc::{Reply, Request};
use crate::session::link::{Event, Link, LinkError};

/// The exit code shown for a request the panel could not serve.
const EXIT_FAILED: u8 = 1;

/// Runs `argv` as the link's user and returns its exit code.
pub fn run(link: &Link, argv: Vec<String>) -> Result<u8, LinkError> {
    let pending = link.start(|id| Request::Run {
        id,
        argv,
        tty: true,
    })?;
    pending.set_foreground();
    let id = pending.id();
    loop {
        match pending.recv() {
            Event::Reply(Reply::Output { stdout, stderr, .. }) => {
                terminal::write_output(&stdout, &stderr);
            }
            Event::Reply(Reply::Done {
                exit,
                stdout,
                stderr,
                ..
            }) => {
                terminal::write_output(&stdout, &stderr);
                return Ok(exit);
            }
            Event::Reply(Reply::Confirm { prompt, .. }) => {
                let yes = terminal::confirm(&prompt);
                link.send(&Request::Confirm { id, yes })?;
            }
            Event::Reply(Reply::Notice { text }) => terminal::write_notice(&text),
            Event::Reply(Reply::Error { message, .. }) => {
                terminal::write_output("", &format!("vipanel: {message}\n"));
                return Ok(EXIT_FAILED);
            }
            Event::Reply(_) => {}
            // The terminal echoed ^C; the command ends with its own Done, on the next line.
            Event::Interrupt => {
                link.send(&Request::Cancel { id })?;
                terminal::write_output("", "\n");
            }
            Event::Closed => return Err(LinkError::Closed),
        }
    }
}
