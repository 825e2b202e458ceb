//! Running one command on an SSH channel, in-process: split the command line like a shell,
//! dispatch it, then send stdout as data, stderr as extended data, the exit status, EOF and close.

use crate::command::{self, CommandIo, Invocation, Outcome};
use crate::error::{Error, Result};
use crate::service::{Actor, Services};
use russh::ChannelId;
use russh::server::Handle;
use tokio::sync::{mpsc, watch};

/// SSH extended-data type for stderr (RFC 4254 §5.2).
const STDERR: u32 = 1;

/// The client side of one exec channel: its stdin (fed by the handler) and whether a PTY exists.
pub struct ChannelIo {
    pub handle: Handle,
    pub channel: ChannelId,
    pub pty: bool,
    /// Chunks of the client's stdin; closed at the client's EOF.
    pub stdin: mpsc::UnboundedReceiver<Vec<u8>>,
    /// Set by a `signal` request; closed (the sender dropped) when the channel closes or the
    /// connection ends.
    pub stop: watch::Receiver<bool>,
    /// The client's stdin ended (so `stopped` no longer reads it).
    pub stdin_ended: bool,
}

impl CommandIo for ChannelIo {
    fn has_tty(&self) -> bool {
        self.pty
    }

    async fn read_stdin(&mut self, limit: usize) -> Result<Vec<u8>> {
        let mut all = Vec::new();
        while let Some(chunk) = self.stdin.recv().await {
            all.extend_from_slice(&chunk);
            if all.len() > limit {
                return Err(Error::invalid(format!(
                    "standard input is larger than {limit} bytes"
                )));
            }
        }
        Ok(all)
    }

    async fn confirm(&mut self, prompt: &str) -> Result<bool> {
        let answer = self.read_line(prompt, 16).await.unwrap_or_default();
        Ok(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }

    async fn stream(&mut self, stdout: Vec<u8>) -> Result<()> {
        if stdout.is_empty() || self.send(0, stdout).await {
            Ok(())
        } else {
            Err(Error::unavailable("the client went away"))
        }
    }

    async fn stream_stderr(&mut self, stderr: Vec<u8>) -> Result<()> {
        if stderr.is_empty() || self.send(1, stderr).await {
            Ok(())
        } else {
            Err(Error::unavailable("the client went away"))
        }
    }

    /// A streaming command over exec stops when the channel closes or the connection ends, at a
    /// `signal` request, or (with a PTY, where the client's terminal is raw) at a typed Ctrl-C.
    /// The end of stdin does not stop it, so `ssh -n HOST audit list --follow` streams.
    async fn stopped(&mut self) {
        loop {
            if *self.stop.borrow_and_update() {
                return;
            }
            tokio::select! {
                changed = self.stop.changed() => if changed.is_err() {
                    return;
                },
                chunk = self.stdin.recv(), if !self.stdin_ended => match chunk {
                    Some(bytes) if self.pty && bytes.contains(&3) => return,
                    Some(_) => {}
                    None => self.stdin_ended = true,
                },
            }
        }
    }
}

impl ChannelIo {
    /// Shows `prompt` on stderr and reads one line of at most `max` printable ASCII characters
    /// from a PTY channel, echoing it (the client's terminal is raw). `None`: Ctrl-C, Ctrl-D or
    /// end of input.
    pub async fn read_line(&mut self, prompt: &str, max: usize) -> Option<String> {
        self.send(STDERR, prompt.as_bytes().to_vec()).await;
        let mut answer = String::new();
        let mut ended = true;
        'read: while let Some(chunk) = self.stdin.recv().await {
            for byte in chunk {
                match byte {
                    b'\r' | b'\n' => {
                        ended = false;
                        break 'read;
                    }
                    3 | 4 => break 'read,
                    8 | 127 if answer.pop().is_some() => {
                        self.send(STDERR, b"\x08 \x08".to_vec()).await;
                    }
                    b if (b.is_ascii_graphic() || b == b' ') && answer.len() < max => {
                        answer.push(char::from(b));
                        self.send(STDERR, vec![b]).await;
                    }
                    _ => {}
                }
            }
        }
        self.send(STDERR, b"\r\n".to_vec()).await;
        (!ended).then_some(answer)
    }

    /// Writes a message to the client's stderr.
    pub async fn say(&self, text: &str) {
        self.send(STDERR, text.as_bytes().to_vec()).await;
    }

    /// Sends bytes as data (`ext` 0) or extended data; false when the connection is gone.
    async fn send(&self, ext: u32, bytes: Vec<u8>) -> bool {
        let bytes = if self.pty { crlf(&bytes) } else { bytes };
        if ext == 0 {
            self.handle.data(self.channel, bytes).await.is_ok()
        } else {
            self.handle
                .extended_data(self.channel, ext, bytes)
                .await
                .is_ok()
        }
    }

    /// Sends the outcome and ends the channel the way OpenSSH does.
    pub async fn finish(self, outcome: Outcome) {
        if !outcome.stdout.is_empty() {
            self.send(0, outcome.stdout).await;
        }
        if !outcome.stderr.is_empty() {
            self.send(STDERR, outcome.stderr).await;
        }
        let _ = self
            .handle
            .exit_status_request(self.channel, u32::from(outcome.exit))
            .await;
        let _ = self.handle.eof(self.channel).await;
        let _ = self.handle.close(self.channel).await;
    }
}

/// Runs the command line `line` (as OpenSSH sent it) for `actor` and finishes the channel.
/// With `enrollment`, the user must enroll an authenticator first (on a PTY), or nothing runs.
pub async fn run(
    services: Services,
    actor: Actor,
    line: String,
    mut io: ChannelIo,
    invocation: Invocation,
    enrollment: Option<super::enroll::Enrollment>,
) {
    let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    let format = command::requested_format(&words);
    // The identity is checked before anything runs, enrollment included, and again after an
    // enrollment (which may take minutes).
    let mut actor = match services.refresh_actor(&actor).await {
        Ok(actor) => actor,
        Err(err) => return io.finish(command::output::render_error(&err, format)).await,
    };
    if let Some(enrollment) = enrollment {
        let enrolled = match enrollment.run(&services, &mut io, &invocation).await {
            Ok(()) => services.refresh_actor(&actor).await,
            Err(err) => Err(err),
        };
        actor = match enrolled {
            Ok(actor) => actor,
            Err(err) => return io.finish(command::output::render_error(&err, format)).await,
        };
    }
    let outcome = match shell_words::split(&line) {
        Ok(argv) if argv.is_empty() => welcome(&invocation),
        Ok(argv) => command::run(&services, &actor, &argv, &mut io, &invocation).await,
        Err(e) => command::output::render_error(
            &Error::usage(format!(
                "cannot split the command line ({e}); check the quotes"
            )),
            format,
        ),
    };
    io.finish(outcome).await;
}

/// What a login without a command gets until the interactive UI exists: a notice and the help.
pub fn welcome(invocation: &Invocation) -> Outcome {
    let help = crate::command::run_help(&invocation.prefix);
    let notice = format!(
        "vipanel {}: the interactive dashboard is not available yet; run commands like\n  \
         {} site list\n\n",
        env!("CARGO_PKG_VERSION"),
        invocation.prefix
    );
    Outcome {
        stdout: format!("{notice}{help}").into_bytes(),
        stderr: Vec::new(),
        exit: 0,
    }
}

/// LF → CRLF, for output to a client that requested a PTY (no line discipline translates it).
pub fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    let mut previous = 0u8;
    for &b in bytes {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crlf_converts_once() {
        assert_eq!(super::crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    }
}
