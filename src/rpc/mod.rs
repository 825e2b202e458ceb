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
//!
//! Besides requests that end, the child may hold subscriptions: [`Request::Subscribe`] names
//! [`Topic`]s and is answered by [`Reply::Event`]s as things happen, until the child sends
//! [`Request::Cancel`] (answered by [`Reply::Done`]) or the daemon ends it with
//! [`Reply::Error`] (the user was locked, the key removed). Each [`Event`] is tagged with the
//! topic it belongs to, so later topics (job progress, log lines) add variants beside the
//! present ones.

use crate::service::AuditEntry;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// Bumped on any incompatible change of the messages below.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side accepts (a command's whole output fits comfortably).
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// The most topics one [`Request::Subscribe`] may name; a longer list is a protocol error that
/// ends the link (an honest session names each topic once).
pub const MAX_TOPICS: usize = 8;

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
    /// Stops the request or subscription `id` (Ctrl-C on a streaming command); it ends with
    /// [`Reply::Done`].
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
    /// Delivers [`Reply::Event`]s of these topics as they happen, from now on, until
    /// [`Request::Cancel`] (then [`Reply::Done`]) or the end of the link. Refused with
    /// [`Reply::Error`] when a topic is unknown or not available yet, when the list is empty,
    /// or when the link holds too many subscriptions.
    Subscribe { id: u64, topics: Vec<Topic> },
}

/// What a subscription listens to. On the wire a topic is its name in snake case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Objects changed: every successful change the actor may see ([`Change`]).
    Changes,
    /// Every new audit row the actor may read, as `audit list` scopes them ([`AuditEntry`]).
    Audit,
    /// Jobs the actor may see were enqueued, progressed or ended ([`JobEvent`]).
    Jobs,
    /// New log lines: reserved, not available yet.
    Logs,
    /// A name this side does not know (refused by name, the link goes on).
    #[serde(untagged)]
    Other(String),
}

impl Topic {
    /// The topics a subscription may name now.
    pub const AVAILABLE: [Topic; 3] = [Topic::Changes, Topic::Audit, Topic::Jobs];

    /// The topic's name on the wire.
    pub fn name(&self) -> &str {
        match self {
            Topic::Changes => "changes",
            Topic::Audit => "audit",
            Topic::Jobs => "jobs",
            Topic::Logs => "logs",
            Topic::Other(name) => name,
        }
    }

    /// Whether a subscription may name it now.
    pub fn is_available(&self) -> bool {
        Topic::AVAILABLE.contains(self)
    }
}

/// Something a subscription delivers, tagged with its topic:
/// `{"topic":"changes","seq":42,…}`. Later topics add variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "topic", rename_all = "snake_case")]
pub enum Event {
    /// Topic `changes`: an object changed.
    #[serde(rename = "changes")]
    Change(Change),
    /// Topic `audit`: a new row of the audit trail, with the fields of `audit list -o json`.
    Audit(AuditEntry),
    /// Topic `jobs`: a job's state, progress or message is new.
    #[serde(rename = "jobs")]
    Job(JobEvent),
}

impl Event {
    /// The topic this event belongs to.
    pub fn topic(&self) -> Topic {
        match self {
            Event::Change(_) => Topic::Changes,
            Event::Audit(_) => Topic::Audit,
            Event::Job(_) => Topic::Jobs,
        }
    }
}

/// A successful change of an object, from the audit row that recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The audit row's `seq` (increasing; the trail is the one record of every change).
    pub seq: i64,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The tenant it concerns.
    pub tenant: String,
    /// The kind of object: the noun of `action` (`site`, `user`, `key`, `tenant`, `server`,
    /// `totp`, `session`, `audit`).
    pub kind: String,
    /// What was done, as in the audit trail (`site.create`, `user.lock`, …).
    pub action: String,
    /// The object, as in the audit trail (a domain, a user name, a key's fingerprint, …).
    pub target: String,
    /// Who made it; `null` when the subscriber may not read that row of the audit trail (an
    /// operator learns that a site was created, not by whom).
    pub actor: Option<String>,
}

/// A job as the `jobs` topic tells of it: what `job show` would show of its progress now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEvent {
    pub id: i64,
    pub kind: String,
    /// `null`: a platform job (admins only).
    pub tenant: Option<String>,
    pub state: String,
    pub progress: i64,
    pub message: Option<String>,
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
    /// Something subscription `id` listens to happened (boxed: an event is larger than the
    /// other replies).
    Event { id: u64, event: Box<Event> },
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

    fn at() -> DateTime<Utc> {
        "2025-01-02T03:04:05Z".parse().unwrap()
    }

    #[test]
    fn subscribe_names_topics_by_name() {
        let request = Request::Subscribe {
            id: 3,
            topics: vec![Topic::Changes, Topic::Audit],
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            json,
            r#"{"type":"subscribe","id":3,"topics":["changes","audit"]}"#
        );
        assert_eq!(decode::<Request>(json.as_bytes()).unwrap(), request);
        // A topic this side does not know keeps its name, to be refused by it.
        let later: Request =
            decode(br#"{"type":"subscribe","id":4,"topics":["jobs","weather"]}"#).unwrap();
        assert_eq!(
            later,
            Request::Subscribe {
                id: 4,
                topics: vec![Topic::Jobs, Topic::Other("weather".into())],
            }
        );
        assert!(!Topic::Logs.is_available() && Topic::Jobs.is_available());
        // Extra fields and topics that are not names are malformed.
        for body in [
            r#"{"type":"subscribe","id":5,"topics":["changes"],"tenant":"beta"}"#,
            r#"{"type":"subscribe","id":5,"topics":[{"changes":"beta"}]}"#,
            r#"{"type":"subscribe","id":5,"topics":"changes"}"#,
            r#"{"type":"subscribe","topics":["changes"]}"#,
        ] {
            assert!(
                matches!(
                    decode::<Request>(body.as_bytes()),
                    Err(FrameError::Malformed(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn events_are_tagged_with_their_topic() {
        let change = Reply::Event {
            id: 3,
            event: Box::new(Event::Change(Change {
                seq: 42,
                at: at(),
                tenant: "acme".into(),
                kind: "site".into(),
                action: "site.create".into(),
                target: "a.example".into(),
                actor: None,
            })),
        };
        let json = serde_json::to_string(&change).unwrap();
        assert_eq!(
            json,
            r#"{"type":"event","id":3,"event":{"topic":"changes","seq":42,"at":"2025-01-02T03:04:05Z","tenant":"acme","kind":"site","action":"site.create","target":"a.example","actor":null}}"#
        );
        assert_eq!(decode::<Reply>(json.as_bytes()).unwrap(), change);

        let row = AuditEntry {
            seq: 43,
            at: at(),
            actor: "olive".into(),
            tenant: "acme".into(),
            role: "owner".into(),
            key_fingerprint: Some("SHA256:abc".into()),
            source: "192.0.2.7:50000".into(),
            action: "site.delete".into(),
            target: "a.example".into(),
            result: "ok".into(),
            detail: String::new(),
            command: Some("site delete a.example --yes".into()),
            exit_code: Some(0),
            flag: String::new(),
        };
        let audit = Reply::Event {
            id: 3,
            event: Box::new(Event::Audit(row.clone())),
        };
        let json = serde_json::to_string(&audit).unwrap();
        assert_eq!(
            json,
            r#"{"type":"event","id":3,"event":{"topic":"audit","seq":43,"at":"2025-01-02T03:04:05Z","actor":"olive","tenant":"acme","role":"owner","key_fingerprint":"SHA256:abc","source":"192.0.2.7:50000","action":"site.delete","target":"a.example","result":"ok","detail":"","command":"site delete a.example --yes","exit_code":0,"flag":""}}"#
        );
        assert_eq!(decode::<Reply>(json.as_bytes()).unwrap(), audit);
        // The audit event's fields are those of `audit list -o json`.
        let Reply::Event { event, .. } = audit else {
            unreachable!()
        };
        let mut listed = serde_json::to_value(&row).unwrap();
        listed["topic"] = "audit".into();
        assert_eq!(serde_json::to_value(&event).unwrap(), listed);
        assert_eq!(event.topic(), Topic::Audit);
    }
}
