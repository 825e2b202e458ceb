//! Writing the audit trail: successes inside the change's transaction, failures on their own.

use super::{Actor, Services};
use crate::error::{Error, Result};
use crate::store::{NewAudit, Tx};

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
    let mut row = entry(actor, action, target, "ok", detail);
    row.tenant = tenant;
    tx.append_audit(&row).await
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
        let result = run.await;
        if let Err(err) = &result {
            let outcome = err.kind.code();
            let detail = truncate(&err.message, 300);
            if let Err(audit_err) = self
                .db
                .append_audit(&entry(actor, action, target, outcome, &detail))
                .await
            {
                tracing::error!(error = %audit_err, action, "cannot write audit row");
            }
        }
        result
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Shared wording for refusing a change that conflicts with current state.
pub(super) fn conflict(message: impl Into<String>) -> Error {
    Error::conflict(message)
}
