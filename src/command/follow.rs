//! Streaming commands: `audit list --follow`.
//!
//! A streaming command sends its output through [`CommandIo::stream`] as it comes and runs until
//! [`CommandIo::stopped`] fires (Ctrl-C in the shell, a `signal` request or the end of the SSH
//! channel, Ctrl-C under `vipanel admin`); stopped that way it ends with exit 0. New audit rows
//! are found by polling the trail for a `seq` above the last one shown, every
//! `audit.follow_interval_ms`: that sees rows written by any process (`vipanel admin`, other
//! nodes of a PostgreSQL setup), which an in-process notification would not. Before every poll
//! the actor is re-read like before every command, so a stream of a user locked or deleted
//! meanwhile ends (exit 7), and a changed role applies to the next rows.

use super::dispatch::AUDIT_COLUMNS;
use super::io::CommandIo;
use super::output::{Format, Rendered, RowStream};
use crate::error::Result;
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
    let interval = Duration::from_millis(s.config.audit.follow_interval_ms);
    let mut actor = actor.clone();
    loop {
        let stop = tokio::select! {
            () = io.stopped() => true,
            () = tokio::time::sleep(interval) => false,
        };
        if stop {
            return Ok(Rendered::Text(String::new()));
        }
        actor = s.refresh_actor(&actor).await?;
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
}

fn values(rows: &[AuditEntry]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| serde_json::to_value(r).unwrap_or(serde_json::Value::Null))
        .collect()
}
