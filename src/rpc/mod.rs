//! The link between the daemon and one interactive session process (`vipanel __session`): a
//! socketpair the child inherits, carrying length-prefixed JSON frames.
//!
//! A frame is a 4-byte big-endian length, then that many bytes of one JSON message. The child
//! sends [`Request`]s, the daemon answers with [`Reply`]s. The daemon runs every request as the
//! actor it bound to the link when it spawned the child: nothing in a request names a user, a
//! tenant or a role, so nothing the child sends can change who it is. Frames larger than
//! [`MAX_FRAME_BYTES`], malformed JSON and unknown message types end the link.
//!
//! The first message each way is the handshake: [`Request::Hello`] with the child's
//! [`PROTOCOL_VERSION`], answered by [`Reply::Welcome`] (or [`Reply::Error`] and the end of the
//! link when the versions differ).

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// Bumped on any incompatible change of the messages below.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side accepts (a command's whole output fits comfortably).
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// What the session process asks of the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The handshake: the child's protocol version.
    Hello { version: u32 },
    /// Runs one command of the command tree, `argv` exactly as a user would type it after
    /// `ssh panel@host` (flags such as `-o json` included). `tty`: the user sits at a terminal
    /// (confirmations may be asked; output uses CRLF). Answered by zero or more
    /// [`Reply::Output`] (streaming commands such as `audit list --follow`) and one
    /// [`Reply::Done`].
    Run {
        id: u64,
        argv: Vec<String>,
        tty: bool,
    },
    /// Stops the request `id` (Ctrl-C on a streaming command); it ends with [`Reply::Done`].
    Cancel { id: u64 },
    /// The user's answer to [`Reply::Confirm`] for request `id`.
    Confirm { id: u64, yes: bool },
    /// Live values for completion (site domains, server names, user names, tenant names, …)
    /// the actor may see; answered by [`Reply::Values`].
    Complete { id: u64, kind: CompletionKind },
    /// Appends a line to the user's shell history, kept by the daemon.
    HistoryAdd { line: String },
    /// The user's newest history lines (oldest first), at most `limit`; answered by
    /// [`Reply::History`].
    HistoryList { id: u64, limit: u32 },
}

/// What completion values a [`Request::Complete`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionKind {
    Sites,
    Servers,
    Users,
    Tenants,
}

/// What the daemon answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// The handshake's answer: who the link is bound to, and the `ssh …` prefix for help texts.
    Welcome {
        version: u32,
        user: String,
        tenant: String,
        role: String,
        prefix: String,
    },
    /// Part of a streaming request's output.
    Output {
        id: u64,
        stdout: String,
        stderr: String,
    },
    /// Request `id` (a destructive command run with `tty`) asks the user `prompt` (y/N); the
    /// child answers with [`Request::Confirm`].
    Confirm { id: u64, prompt: String },
    /// The end of request `id`: the rest of its output and its exit code.
    Done {
        id: u64,
        exit: u8,
        stdout: String,
        stderr: String,
    },
    /// Completion values for request `id`.
    Values { id: u64, values: Vec<String> },
    /// History lines for request `id`, oldest first.
    History { id: u64, lines: Vec<String> },
    /// A message for the user, shown above the prompt (e.g. the idle-timeout warning, or that
    /// the panel is restarting).
    Notice { text: String },
    /// A request could not be served (`id` when it concerns one); for a protocol error the
    /// daemon closes the link after sending it.
    Error { id: Option<u64>, message: String },
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the link is closed")]
    Closed,
    #[error("frame of {0} bytes is larger than the limit of {MAX_FRAME_BYTES}")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("link I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes one message as a frame (length prefix included).
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(message)?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Decodes a frame's body.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, FrameError> {
    Ok(serde_json::from_slice(body)?)
}

/// Writes one message (blocking; the session process's side).
pub fn write_frame<W: Write, T: Serialize>(out: &mut W, message: &T) -> Result<(), FrameError> {
    out.write_all(&encode(message)?)?;
    out.flush()?;
    Ok(())
}

/// Reads one message (blocking); [`FrameError::Closed`] at a clean end of the link.
pub fn read_frame<R: Read, T: for<'de> Deserialize<'de>>(input: &mut R) -> Result<T, FrameError> {
    let mut length = [0u8; 4];
    match input.read_exact(&mut length) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let length = body_length(length)?;
    let mut body = vec![0u8; length];
    input.read_exact(&mut body)?;
    decode(&body)
}

/// Writes one message (async; the daemon's side).
pub async fn write_frame_async<W, T>(out: &mut W, message: &T) -> Result<(), FrameError>
where
    W: tokio::io::AsyncWrite + Unpin,
    T: Serialize,
{
    use tokio::io::AsyncWriteExt;
    out.write_all(&encode(message)?).await?;
    out.flush().await?;
    Ok(())
}

/// Reads one message (async); [`FrameError::Closed`] at a clean end of the link.
pub async fn read_frame_async<R, T>(input: &mut R) -> Result<T, FrameError>
where
    R: tokio::io::AsyncRead + Unpin,
    T: for<'de> Deserialize<'de>,
{
    use tokio::io::AsyncReadExt;
    let mut length = [0u8; 4];
    match input.read_exact(&mut length).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let length = body_length(length)?;
    let mut body = vec![0u8; length];
    input.read_exact(&mut body).await?;
    decode(&body)
}

/// The announced body length, refused before anything is allocated when it is too large.
fn body_length(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let length = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if length > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(length));
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let request = Request::Run {
            id: 7,
            argv: vec!["site".into(), "list".into(), "-o".into(), "json".into()],
            tty: true,
        };
        let frame = encode(&request).unwrap();
        assert_eq!(
            u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len() - 4
        );
        let back: Request = read_frame(&mut &frame[..]).unwrap();
        assert_eq!(back, request);
        let json = String::from_utf8(frame[4..].to_vec()).unwrap();
        assert_eq!(
            json,
            r#"{"type":"run","id":7,"argv":["site","list","-o","json"],"tty":true}"#
        );
    }

    #[test]
    fn bad_frames_are_refused() {
        // Oversized: refused from the length alone.
        let huge = (u32::try_from(MAX_FRAME_BYTES).unwrap() + 1).to_be_bytes();
        assert!(matches!(
            read_frame::<_, Request>(&mut &huge[..]),
            Err(FrameError::TooLarge(_))
        ));
        // Unknown fields (an attempt to name a user) and unknown types are malformed.
        for body in [
            r#"{"type":"run","id":1,"argv":["whoami"],"tty":false,"user":"admin"}"#,
            r#"{"type":"become","user":"admin"}"#,
            r#"{"type":"run""#,
            "",
        ] {
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(body.as_bytes());
            assert!(
                matches!(
                    read_frame::<_, Request>(&mut &frame[..]),
                    Err(FrameError::Malformed(_))
                ),
                "{body}"
            );
        }
        assert!(matches!(
            read_frame::<_, Request>(&mut &[][..]),
            Err(FrameError::Closed)
        ));
        assert!(matches!(
            read_frame::<_, Request>(&mut &[0u8, 0, 0, 9, b'{'][..]),
            Err(FrameError::Io(_))
        ));
    }
}
