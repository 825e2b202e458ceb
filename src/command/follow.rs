//! Streaming commands: `audit list --follow`, `site logs --follow`.
//!
//! A streaming command sends its output through [`CommandIo::stream`] as it comes and runs until
//! [`CommandIo::stopped`] fires (Ctrl-C in the shell, a `signal` request or the end of the SSH
//! channel, Ctrl-C under `vipanel admin`); stopped that way it ends with exit 0. New audit rows
//! are found by polling the trail for a `seq` above the last one shown, every
//! `audit.follow_interval_ms`: that sees rows written by any process (`vipanel admin`, other
//! nodes of a PostgreSQL setup). The trail's doorbell (`service::doorbell`) cuts the wait
//! short when rows arrive, from this process or, through the database or Redis, from others. Before every poll
//! the actor is re-read like before every command, so a stream of a user locked or deleted
//! meanwhile ends (exit 7), and a changed role applies to the next rows.

use super::dispatch::AUDIT_COLUMNS;
use super::io::CommandIo;
use super::output::{Format, Rendered, RowStream};
use crate::error::Result;
use crate::service::doorbell::{Bell, ring_or};
use crate::service::{Actor, AuditEntry, AuditQuery, Services};
use std::time::Duration;

/// Rows read per query while catching up.
const BATCH: i64 = 500;

/// `audit list --follow`.
pub(super) async fn audit<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    query: AuditQuery,
    io: &mut I,
    format: Format,
) -> Result<Rendered> {
    let (rows, mut after) = s.audit_follow_start(actor, &query).await?;
    let mut out = RowStream::new(format, AUDIT_COLUMNS);
    // Sent even when empty (the table header): a caller that cannot stream refuses here.
    io.stream(out.render(&values(&rows))).await?;
    let mut actor = actor.clone();
    let mut rings = s.doorbells.listen(Bell::Trail);
    while next_poll(s, io, &mut actor, Some(&mut rings)).await? {
        loop {
            let rows = s.audit_follow_next(&actor, &query, after, BATCH).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            io.stream(out.render(&values(&rows))).await?;
            if i64::try_from(rows.len()).unwrap_or(BATCH) < BATCH {
                break;
            }
        }
    }
    Ok(Rendered::Text(String::new()))
}

/// Waits one `audit.follow_interval_ms`, or until `rings` rings; `false` once the caller wants
/// the stream to stop. Before every poll the actor is re-read, so a stream of a user locked
/// meanwhile ends (exit 7).
async fn next_poll<I: CommandIo>(
    s: &Services,
    io: &mut I,
    actor: &mut Actor,
    rings: Option<&mut tokio::sync::watch::Receiver<u64>>,
) -> Result<bool> {
    let interval = Duration::from_millis(s.config.audit.follow_interval_ms);
    let wait = async {
        match rings {
            Some(rings) => ring_or(rings, interval).await,
            None => tokio::time::sleep(interval).await,
        }
    };
    let stop = tokio::select! {
        () = io.stopped() => true,
        () = wait => false,
    };
    if stop {
        return Ok(false);
    }
    *actor = s.refresh_actor(actor).await?;
    Ok(true)
}

fn values(rows: &[AuditEntry]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| serde_json::to_value(r).unwrap_or(serde_json::Value::Null))
        .collect()
}

/// `site logs`: what to show.
#[derive(Debug)]
pub(super) struct LogRequest {
    pub domain: crate::domain::DomainName,
    pub error: bool,
    pub lines: usize,
    pub follow: bool,
}

/// `site logs [--follow]`: the last lines of a site's nginx log as text (JSON: an array of
/// strings; with --follow one `{"line": …}` object a line), then new lines as nginx writes
/// them, polled every `audit.follow_interval_ms`.
pub(super) async fn site_logs<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    request: LogRequest,
    io: &mut I,
    format: Format,
) -> Result<Rendered> {
    let (lines, mut cursor) = s
        .site_log_tail(actor, &request.domain, request.error, request.lines)
        .await?;
    if !request.follow {
        return Ok(match format {
            Format::Json => Rendered::Object(serde_json::json!(lines)),
            _ => Rendered::Text(lines.iter().map(|l| format!("{}\n", visible(l))).collect()),
        });
    }
    let render = |lines: &[String]| -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            match format {
                Format::Json => {
                    out.extend(super::output::json_line(&serde_json::json!({"line": line})));
                }
                _ => {
                    out.extend_from_slice(visible(line).as_bytes());
                    out.push(b'\n');
                }
            }
        }
        out
    };
    io.stream(render(&lines)).await?;
    let mut actor = actor.clone();
    while next_poll(s, io, &mut actor, None).await? {
        let (lines, next) = s.site_log_next(cursor).await?;
        cursor = next;
        if !lines.is_empty() {
            io.stream(render(&lines)).await?;
        }
    }
    Ok(Rendered::Text(String::new()))
}

/// A log line safe for a terminal: visitors write parts of access logs (paths, user agents),
/// so control characters are shown escaped (`\x1b`), never sent raw.
fn visible(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&c.escape_unicode().to_string().replace("\\u{", "\\x{"));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_lines_never_carry_terminal_controls() {
        let shown = super::visible("GET /\u{1b}]0;owned\u{7}\u{9b}31m ok\tend");
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\t'),
            "{shown}"
        );
        assert!(shown.contains("ok\tend"));
        assert!(shown.contains("x{1b}"));
    }
}
