//! What a command may need from whoever runs it, besides arguments: standard input (`key add`),
//! a yes/no confirmation for destructive actions when a terminal is attached, and for streaming
//! commands (`audit list --follow`) a way to send output as it comes and to learn when to stop.

use crate::error::Result;
use std::future::Future;

/// The caller's side of a running command (an SSH channel, a local terminal, a test).
pub trait CommandIo: Send {
    /// Whether a terminal is attached (`ssh -t`): only then can the command ask questions.
    fn has_tty(&self) -> bool;

    /// Reads standard input to its end, at most `limit` bytes (more is an error).
    fn read_stdin(&mut self, limit: usize) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// Shows `prompt` and reads a yes/no answer from the terminal.
    fn confirm(&mut self, prompt: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Sends part of a streaming command's standard output now. An error means nobody reads
    /// any more (the command stops). Callers that cannot stream refuse, so `--follow` is a
    /// usage error there.
    fn stream(&mut self, stdout: Vec<u8>) -> impl Future<Output = Result<()>> + Send {
        let _ = stdout;
        std::future::ready(Err(crate::error::Error::usage(
            "--follow streams its output: run it over SSH, in the shell or with `vipanel admin`",
        )))
    }

    /// Sends part of a streaming command's standard error now (`job watch`'s progress lines).
    /// Callers that cannot stream refuse, like [`stream`](Self::stream).
    fn stream_stderr(&mut self, stderr: Vec<u8>) -> impl Future<Output = Result<()>> + Send {
        let _ = stderr;
        std::future::ready(Err(crate::error::Error::usage(
            "this command streams its output: run it over SSH, in the shell or with `vipanel admin`",
        )))
    }

    /// Resolves when whoever runs a streaming command wants it to stop (Ctrl-C, the client went
    /// away). Cancel-safe: it may be dropped and called again.
    fn stopped(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

/// How the command was invoked: the prefix shown in help examples.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// E.g. `ssh -p 2222 panel@203.0.113.7` or `vipanel admin`.
    pub prefix: String,
}

/// Input for callers with no stdin and no terminal (tests, internal calls).
pub struct NoInput;

impl CommandIo for NoInput {
    fn has_tty(&self) -> bool {
        false
    }
    async fn read_stdin(&mut self, _limit: usize) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }
    async fn confirm(&mut self, _prompt: &str) -> Result<bool> {
        Ok(false)
    }
}

/// Fixed stdin bytes, no terminal (command tests).
pub struct StdinBytes(pub Vec<u8>);

impl CommandIo for StdinBytes {
    fn has_tty(&self) -> bool {
        false
    }
    async fn read_stdin(&mut self, limit: usize) -> Result<Vec<u8>> {
        if self.0.len() > limit {
            return Err(crate::error::Error::invalid(format!(
                "standard input is larger than {limit} bytes"
            )));
        }
        Ok(std::mem::take(&mut self.0))
    }
    async fn confirm(&mut self, _prompt: &str) -> Result<bool> {
        Ok(false)
    }
}
