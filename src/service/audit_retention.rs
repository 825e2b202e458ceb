//! Retention of the audit trail: rows older than `audit.retention_days` are pruned behind a
//! checkpoint that keeps the rest verifiable (see `store::audit_retention`). The daemon prunes at
//! start and every `audit.prune_interval_secs`; admins can prune at once with `audit prune`.
//! Every prune that removes rows is recorded as an `audit.prune` row, in the same transaction.

use super::audit::record_ok;
use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, AuditPruned, Services};
use crate::domain::Role;
use crate::error::Result;
use chrono::{DateTime, Utc};

impl Actor {
    /// The daemon itself, for what it does on its own (scheduled retention).
    pub fn daemon(system_tenant_id: i64) -> Actor {
        Actor {
            user_id: None,
            user: "@daemon".into(),
            tenant_id: system_tenant_id,
            tenant: super::tenants::SYSTEM_TENANT.into(),
            role: Role::Admin,
            key_fingerprint: None,
            source: "local".into(),
            automation: false,
        }
    }
}

impl Services {
    /// `audit prune` (admins): applies the retention now. The attempt is recorded even when
    /// nothing was old enough, as every admin command is.
    pub async fn audit_prune(&self, actor: &Actor) -> Result<AuditPruned> {
        self.audited(actor, "audit.prune", "audit", async {
            policy::check(
                actor,
                Resource::Audit,
                Verb::Write,
                Owner::Platform,
                "audit trail",
            )?;
            let cutoff = self.retention_cutoff();
            self.prune_before(actor, cutoff, true).await
        })
        .await
    }

    /// The daemon's scheduled prune, as `@daemon`; records a row only when rows went.
    pub async fn audit_prune_scheduled(&self, actor: &Actor) -> Result<AuditPruned> {
        let cutoff = self.retention_cutoff();
        self.prune_before(actor, cutoff, false).await
    }

    /// Prunes the rows written before `cutoff` (`None`: retention is off, nothing goes).
    /// Public for tests, which cannot wait 90 days; it checks nothing about the actor.
    pub async fn prune_before(
        &self,
        actor: &Actor,
        cutoff: Option<DateTime<Utc>>,
        record_nothing: bool,
    ) -> Result<AuditPruned> {
        let retention_days = self.config.audit.retention_days;
        let mut outcome = AuditPruned {
            rows: 0,
            through_seq: None,
            cutoff,
            retention_days,
        };
        let Some(cutoff) = cutoff else {
            return Ok(outcome);
        };
        let mut tx = self.db.begin().await?;
        let pruned = tx.prune_audit(cutoff).await?;
        if let Some(pruned) = pruned {
            outcome.rows = pruned.rows;
            outcome.through_seq = Some(pruned.through_seq);
        }
        if pruned.is_some() || record_nothing {
            let detail = format!(
                "rows={} through_seq={} cutoff={}",
                outcome.rows,
                outcome
                    .through_seq
                    .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            let tenant = super::tenants::SYSTEM_TENANT;
            record_ok(&mut tx, actor, tenant, "audit.prune", "audit", &detail).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Rows written before this time are past retention; `None` when retention is off.
    fn retention_cutoff(&self) -> Option<DateTime<Utc>> {
        let days = self.config.audit.retention_days;
        (days > 0).then(|| Utc::now() - chrono::Duration::days(i64::from(days)))
    }
}
