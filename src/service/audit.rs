//! Writing the audit trail: successes inside the change's transaction, failures on their own.
//!
//! A row written while a command runs carries that command's line (secrets already masked by
//! the command layer) and its exit code. Every service method takes only the [`Actor`], so the
//! line travels beside it: the command layer runs the command inside [`with_command_line`], a
//! task-local scope, and every row written in that scope picks the line up. Rows written
//! outside one (logins, sessions, the daemon's retention) have no command and no exit code.

use super::{Actor, Services};
use crate::error::{Error, Result};
use crate::store::{NewAudit, Tx};
use std::future::Future;

tokio::task_local! {
    static COMMAND_LINE: String;
}

/// Runs `command` (one command's execution) with `masked_line` as the command line its audit
/// rows record. The line must already have its secrets masked.
pub async fn with_command_line<F: Future>(masked_line: String, command: F) -> F::Output {
    COMMAND_LINE.scope(masked_line, command).await
}

/// The command line in scope, if a command is running.
fn command_line() -> Option<String> {
    COMMAND_LINE.try_with(Clone::clone).ok()
}

fn entry<'a>(
    actor: &'a Actor,
    action: &'a str,
    target: &'a str,
    result: &'a str,
    detail: &'a str,
) -> NewAudit<'a> {
    NewAudit {
        actor: &actor.user,
        tenant: &actor.tenant,
        role: actor.role.as_str(),
        key_fingerprint: actor.key_fingerprint.as_deref(),
        source: &actor.source,
        action,
        target,
        result,
        detail,
        ..NewAudit::default()
    }
}

/// Records a successful change inside its transaction, under the tenant the change concerns (so
/// that tenant's owners see what an admin did to it).
pub(super) async fn record_ok(
    tx: &mut Tx,
    actor: &Actor,
    tenant: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    let line = command_line();
    let mut row = entry(actor, action, target, "ok", detail);
    row.tenant = tenant;
    row.command = line.as_deref();
    row.exit_code = line.is_some().then_some(0);
    tx.append_audit(&row).await
}

/// Like [`record_ok`] for an action that changes nothing in the database (killing a session):
/// the row is the only write, in a transaction of its own.
pub(super) async fn record_ok_alone(
    services: &Services,
    actor: &Actor,
    tenant: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    let mut tx = services.db.begin().await?;
    record_ok(&mut tx, actor, tenant, action, target, detail).await?;
    tx.commit().await
}

impl Services {
    /// Runs a state-changing operation and records its failure, if any, in the audit trail.
    /// (Its success is recorded by the operation itself, inside its transaction.)
    pub(super) async fn audited<T>(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        run: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        // Where the cache had read the trail up to: the rows this operation writes follow it.
        let seen = self.cache.cursor();
        let result = run.await;
        if self.cache.is_live() {
            // Before returning: no cached read may predate a change its caller has seen done
            // (the watcher may have read the audit row before the apply that followed it).
            if let Err(err) = self.cache.catch_up(&self.db, Some(seen)).await {
                tracing::warn!(error = %err, "cannot read the trail for the cache; clearing it");
                self.cache.invalidate(&["*".to_owned()]);
            }
        }
        if let Err(err) = &result {
            let outcome = err.kind.code();
            let detail = truncate(&err.message, 300);
            let line = command_line();
            let row = NewAudit {
                command: line.as_deref(),
                exit_code: line.is_some().then(|| i32::from(err.kind.exit_code())),
                ..entry(actor, action, target, outcome, &detail)
            };
            if let Err(audit_err) = self.db.append_audit(&row).await {
                tracing::error!(error = %audit_err, action, "cannot write audit row");
            }
        }
        // Its rows are committed (a success's, or the failure's just above): readers of the
        // trail look now.
        self.ring(super::doorbell::Bell::Trail);
        result
    }
}

pub(super) fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Shared wording for refusing a change that conflicts with current state.
pub(super) fn conflict(message: impl Into<String>) -> Error {
    Error::conflict(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_line_is_seen_only_inside_its_scope() {
        assert_eq!(command_line(), None);
        let inside =
            with_command_line("site create a.example".into(), async { command_line() }).await;
        assert_eq!(inside.as_deref(), Some("site create a.example"));
        assert_eq!(command_line(), None);
    }
}
