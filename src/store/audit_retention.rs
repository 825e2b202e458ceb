//! Retention of the audit trail and verifying what remains: pruning old rows behind a recorded
//! checkpoint, and walking the chain from the checkpoint it starts after.
//!
//! A checkpoint (`audit_checkpoints`, append-only) says "rows up to `seq` were pruned; the hash
//! of row `seq` was `hash`". The database lets an `audit_log` row be deleted only when a
//! checkpoint covers it, and the first remaining row must chain to that hash.

use super::audit::AuditRow;
use super::audit_chain::chain_hash;
use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

/// What one prune removed: rows `..=through_seq`, `rows` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPrune {
    pub through_seq: i64,
    pub rows: i64,
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerdict {
    /// Rows checked (every row that remains, when intact).
    pub checked: i64,
    /// The first `seq` that is missing, changed or does not chain to the row before it.
    pub first_broken: Option<i64>,
    /// When retention pruned the head of the trail: the checkpoint the walk started from.
    pub pruned_through: Option<i64>,
}

impl Tx {
    /// The newest checkpoint as `(seq, hash)`, if anything was ever pruned.
    pub(super) async fn newest_audit_checkpoint(&mut self) -> Result<Option<(i64, String)>> {
        let sql = "SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1";
        Ok(on_tx!(self, c => sqlx::query_as(sql).fetch_optional(c).await)?)
    }

    /// Deletes the rows written before `cutoff`, behind a checkpoint recorded first: picks the
    /// newest row older than `cutoff`, records its `seq` and `hash` as a checkpoint, then deletes
    /// every row up to it. `None` when no row is that old. Commit the transaction to keep it.
    pub async fn prune_audit(&mut self, cutoff: DateTime<Utc>) -> Result<Option<AuditPrune>> {
        self.lock_audit_chain().await?;
        let newest_old = "SELECT seq, hash FROM audit_log WHERE at < $1 ORDER BY seq DESC LIMIT 1";
        let found: Option<(i64, String)> =
            on_tx!(self, c => sqlx::query_as(newest_old).bind(cutoff).fetch_optional(c).await)?;
        let Some((seq, hash)) = found else {
            return Ok(None);
        };
        let count = "SELECT COUNT(*) FROM audit_log WHERE seq <= $1";
        let rows: i64 = on_tx!(self, c => sqlx::query_scalar(count).bind(seq).fetch_one(c).await)?;
        let checkpoint = "INSERT INTO audit_checkpoints (seq, hash, pruned_at, cutoff, rows)
            VALUES ($1, $2, $3, $4, $5)";
        on_tx!(self, c => sqlx::query(checkpoint)
            .bind(seq).bind(&hash).bind(super::now()).bind(cutoff).bind(rows)
            .execute(c).await.map(drop))?;
        let delete = "DELETE FROM audit_log WHERE seq <= $1";
        on_tx!(self, c => sqlx::query(delete).bind(seq).execute(c).await.map(drop))?;
        Ok(Some(AuditPrune {
            through_seq: seq,
            rows,
        }))
    }
}

impl Db {
    /// Walks every remaining row in `seq` order inside one read snapshot (so a concurrent prune
    /// cannot look like a gap). The first row must be `seq` 1 chained to nothing, or follow a
    /// checkpoint and chain to its hash; every later row must follow the one before it, name
    /// its hash and match its own. Returns the first `seq` where that fails.
    pub async fn verify_audit_chain(&self) -> Result<AuditVerdict> {
        const PAGE: i64 = 1000;
        let mut tx = self.begin_read().await?;
        let checkpoints = "SELECT seq, hash FROM audit_checkpoints ORDER BY seq";
        let checkpoints: Vec<(i64, String)> =
            on_tx!(&mut tx, c => sqlx::query_as(checkpoints).fetch_all(c).await)?;
        let page = "SELECT id, at, actor, tenant, role, key_fingerprint, source, action, target,
                result, detail, command, exit_code, flag, seq, prev_hash, hash FROM audit_log
            WHERE seq > $1 ORDER BY seq LIMIT $2";
        let mut verdict = AuditVerdict {
            checked: 0,
            first_broken: None,
            pruned_through: None,
        };
        // The row the next one must follow: `None` until the first row is read.
        let mut last: Option<(i64, String)> = None;
        let mut after = i64::MIN;
        loop {
            let rows: Vec<AuditRow> = on_tx!(&mut tx, c => sqlx::query_as(page)
                .bind(after).bind(PAGE).fetch_all(c).await)?;
            let Some(final_row) = rows.last() else {
                break;
            };
            after = final_row.seq;
            for row in rows {
                let (expected_seq, expected_hash) = match &last {
                    Some((seq, hash)) => (seq + 1, hash.as_str()),
                    None => match anchor_of(&checkpoints, row.seq) {
                        Anchor::Start => (1, ""),
                        Anchor::Checkpoint(seq, hash) => {
                            verdict.pruned_through = Some(seq);
                            (seq + 1, hash)
                        }
                        Anchor::Missing(expected) => (expected, ""),
                    },
                };
                let intact = row.seq == expected_seq
                    && row.prev_hash == expected_hash
                    && chain_hash(&row.prev_hash, &row.chain_fields()) == row.hash;
                if !intact {
                    verdict.first_broken = Some(row.seq.min(expected_seq));
                    tx.commit().await?;
                    return Ok(verdict);
                }
                verdict.checked += 1;
                last = Some((row.seq, row.hash));
            }
        }
        tx.commit().await?;
        // A prune appends its own `audit.prune` row after its checkpoint, so every checkpoint
        // lies before the first remaining row and some row always follows the newest one. A
        // checkpoint at or past a remaining row, or one with nothing after it, was forged to let
        // rows be deleted (the database allows deleting what a checkpoint covers).
        let first_remaining = if verdict.checked > 0 {
            verdict.pruned_through.map_or(1, |seq| seq + 1)
        } else {
            i64::MAX
        };
        if let Some((seq, _)) = checkpoints.iter().find(|(seq, _)| *seq >= first_remaining) {
            verdict.first_broken = Some(*seq);
        } else if last.is_none()
            && let Some((seq, _)) = checkpoints.last()
        {
            verdict.first_broken = Some(seq + 1);
            verdict.pruned_through = Some(*seq);
        }
        Ok(verdict)
    }

    /// Every checkpoint, newest first (for `audit verify` and the tests).
    pub async fn audit_checkpoints(&self) -> Result<Vec<(i64, String)>> {
        let sql = "SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC";
        Ok(on_db!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }
}

/// What the oldest remaining row must chain to.
enum Anchor<'a> {
    /// Nothing was pruned before it: it must be `seq` 1 with an empty `prev_hash`.
    Start,
    /// The checkpoint right before it.
    Checkpoint(i64, &'a str),
    /// No checkpoint accounts for the rows before it: the first missing `seq`.
    Missing(i64),
}

fn anchor_of(checkpoints: &[(i64, String)], first_seq: i64) -> Anchor<'_> {
    if first_seq == 1 {
        return Anchor::Start;
    }
    if let Some((seq, hash)) = checkpoints.iter().find(|(seq, _)| *seq == first_seq - 1) {
        return Anchor::Checkpoint(*seq, hash);
    }
    let below = checkpoints
        .iter()
        .map(|(seq, _)| *seq)
        .filter(|seq| *seq < first_seq)
        .max();
    Anchor::Missing(below.map_or(1, |seq| seq + 1))
}
