//! Change marks and the signal other processes wait on.
//!
//! The audit trail records every command's change; a few writes have no audit row of their own
//! (a host apply's outcome: a site's status and applied time). Those append a change mark, a
//! `(seq, tenant, kind)` row, so a cache in any process learns of them the same way it learns
//! of audit rows: by reading what follows the last `seq` it saw. On PostgreSQL both kinds of
//! write also `pg_notify('vipanel_changes', …)` inside their transaction (delivered at commit),
//! so a listener need not poll.

use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;

/// The PostgreSQL channel a commit that changed something notifies.
pub const CHANGES_CHANNEL: &str = "vipanel_changes";

/// Serialises mark appends on PostgreSQL until the transaction ends.
const PG_MARKS_LOCK: &str = "SELECT pg_advisory_xact_lock(7361626975)";

/// Marks older than this many marks are pruned by the writers.
const KEEP_MARKS: i64 = 10_000;

/// One change mark: objects of `kind` in `tenant` changed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChangeMark {
    pub seq: i64,
    pub tenant: String,
    pub kind: String,
}

impl Db {
    /// Notes that a site changed without an audit row (its tenant's name is looked up); does
    /// nothing when the site is gone.
    pub async fn mark_site_changed(&self, site_id: i64) -> Result<()> {
        let sql = "INSERT INTO change_marks (tenant, kind)
            SELECT t.name, 'site' FROM sites s JOIN tenants t ON t.id = s.tenant_id
            WHERE s.id = $1 RETURNING seq";
        self.mark(sql, site_id).await
    }

    /// Notes that sites of the tenant with id `tenant_id` changed without an audit row.
    pub async fn mark_tenant_sites_changed(&self, tenant_id: i64) -> Result<()> {
        let sql = "INSERT INTO change_marks (tenant, kind)
            SELECT t.name, 'site' FROM tenants t WHERE t.id = $1 RETURNING seq";
        self.mark(sql, tenant_id).await
    }

    async fn mark(&self, sql: &'static str, id: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        // PostgreSQL: marks commit in `seq` order (SQLite's BEGIN IMMEDIATE already does), so a
        // reader that saw `seq` N never later finds a smaller one committed.
        if let Tx::Postgres(t) = &mut tx {
            sqlx::query(PG_MARKS_LOCK).execute(&mut **t).await?;
        }
        let seq: Option<i64> =
            on_tx!(&mut tx, c => sqlx::query_scalar(sql).bind(id).fetch_optional(c).await)?;
        if let Some(seq) = seq {
            tx.notify_change(seq).await?;
            if seq % 1000 == 0 {
                let prune = "DELETE FROM change_marks WHERE seq <= $1";
                on_tx!(&mut tx, c => sqlx::query(prune).bind(seq - KEEP_MARKS).execute(c).await.map(drop))?;
            }
        }
        tx.commit().await
    }

    /// The marks after `after_seq`, oldest first (at most `limit`).
    pub async fn change_marks_after(&self, after_seq: i64, limit: i64) -> Result<Vec<ChangeMark>> {
        let sql = "SELECT seq, tenant, kind FROM change_marks WHERE seq > $1 ORDER BY seq LIMIT $2";
        Ok(
            on_db!(self, pool => sqlx::query_as(sql).bind(after_seq).bind(limit).fetch_all(pool).await)?,
        )
    }

    /// The oldest and newest `seq` of the marks (0 when there is none).
    pub async fn change_marks_bounds(&self) -> Result<(i64, i64)> {
        let sql = "SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM change_marks";
        let bounds: (i64, i64) = on_db!(self, pool => sqlx::query_as(sql).fetch_one(pool).await)?;
        Ok(bounds)
    }
}

impl Tx {
    /// PostgreSQL: tells listeners of [`CHANGES_CHANNEL`] at commit that something changed
    /// (the payload is the `seq` written); SQLite has no such signal (readers watch
    /// `PRAGMA data_version`).
    pub(super) async fn notify_change(&mut self, seq: i64) -> Result<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGES_CHANNEL)
                .bind(seq.to_string())
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }
}
