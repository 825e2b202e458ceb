//! Reading and verifying the audit trail: `audit list` and `audit verify`.
//!
//! Owners and admins read their tenant's rows (admins: every tenant's); everyone else reads only
//! the rows it caused. Verifying walks the whole hash chain (from the retention checkpoint, if
//! the head was pruned), so it is for admins.

use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, AuditChain, AuditEntry, Services};
use crate::domain::{Name, Role};
use crate::error::{Error, ErrorKind, Result};
use crate::store::AuditFilter;

/// `audit list` filters, already parsed.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since: Option<chrono::Duration>,
    pub user: Option<Name>,
    pub action: Option<String>,
    /// Only rows flagged as suspicious.
    pub suspicious: bool,
    pub limit: i64,
}

impl Services {
    pub async fn audit_list(&self, actor: &Actor, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let filter = audit_filter(actor, query)?;
        let rows = self.db.audit_query(&filter, query.limit).await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// The start of `audit list --follow`: the newest `limit` matching rows, oldest first, and
    /// the `seq` to follow from (the head of the trail when it starts).
    pub async fn audit_follow_start(
        &self,
        actor: &Actor,
        query: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, i64)> {
        let filter = audit_filter(actor, query)?;
        // Read before the rows: a row appended in between has a higher seq and is shown (once).
        let head = self.db.audit_head_seq().await?;
        let mut rows = self.db.audit_query(&filter, query.limit).await?;
        rows.reverse();
        let after = rows.last().map_or(head, |r| r.seq.max(head));
        Ok((rows.into_iter().map(AuditEntry::from).collect(), after))
    }

    /// `audit list --follow` after its start: matching rows appended after `after_seq`, oldest
    /// first, at most `limit`, with the same scoping as `audit list` (for the actor as it is now).
    pub async fn audit_follow_next(
        &self,
        actor: &Actor,
        query: &AuditQuery,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let filter = audit_filter(actor, query)?;
        let rows = self.db.audit_query_after(&filter, after_seq, limit).await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// Walks the whole chain that remains; a broken chain is an integrity error (exit 9)
    /// naming the first broken `seq`.
    pub async fn audit_verify(&self, actor: &Actor) -> Result<AuditChain> {
        policy::check(
            actor,
            Resource::Audit,
            Verb::Write,
            Owner::Platform,
            "audit chain",
        )?;
        let verdict = self.db.verify_audit_chain().await?;
        match verdict.first_broken {
            None => Ok(AuditChain {
                intact: true,
                checked: verdict.checked,
                pruned_through: verdict.pruned_through,
            }),
            Some(seq) => Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "the audit chain is broken at seq {seq} ({} rows before it are intact): \
                     a row was changed, inserted or removed",
                    verdict.checked
                ),
            )),
        }
    }
}

/// What `actor` may read of the trail, narrowed by `query`: owners and admins their tenant's
/// rows (admins: all), everyone else only the rows it caused.
pub(super) fn audit_filter<'a>(actor: &'a Actor, query: &'a AuditQuery) -> Result<AuditFilter<'a>> {
    policy::check(
        actor,
        Resource::Audit,
        Verb::Read,
        Owner::Tenant(actor.tenant_id),
        "audit",
    )?;
    let manager = actor.role >= Role::Owner;
    let own_only = (!manager).then_some(actor.user.as_str());
    if let (Some(user), Some(me)) = (&query.user, own_only)
        && user.as_str() != me
    {
        return Err(Error::forbidden(
            "your role may only list your own audit entries",
        ));
    }
    Ok(AuditFilter {
        tenant: (!actor.is_admin()).then_some(actor.tenant.as_str()),
        actor: own_only.or(query.user.as_ref().map(Name::as_str)),
        action: query.action.as_deref(),
        since: query.since.map(|age| chrono::Utc::now() - age),
        flagged: query.suspicious,
    })
}
