//! The audit trail: one row per state change or refused attempt (who, from where, what, result).

use super::audit_chain::{ChainFields, chain_hash};
use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub tenant: String,
    pub role: String,
    pub key_fingerprint: Option<String>,
    pub source: String,
    pub action: String,
    pub target: String,
    pub result: String,
    pub detail: String,
    pub command: Option<String>,
    pub exit_code: Option<i32>,
    pub flag: String,
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    pub(super) fn chain_fields(&self) -> ChainFields<'_> {
        ChainFields {
            seq: self.seq,
            at: self.at,
            actor: &self.actor,
            tenant: &self.tenant,
            role: &self.role,
            key_fingerprint: self.key_fingerprint.as_deref(),
            source: &self.source,
            action: &self.action,
            target: &self.target,
            result: &self.result,
            detail: &self.detail,
            command: self.command.as_deref(),
            exit_code: self.exit_code,
            flag: &self.flag,
        }
    }
}

/// A row to append. Build it with `..NewAudit::default()` so new fields need no edits.
#[derive(Debug, Clone, Default)]
pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub tenant: &'a str,
    pub role: &'a str,
    pub key_fingerprint: Option<&'a str>,
    pub source: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub result: &'a str,
    pub detail: &'a str,
    /// The command line with secrets masked, for a command's row.
    pub command: Option<&'a str>,
    pub exit_code: Option<i32>,
    /// Why the row is suspicious (`audit list --suspicious`), or empty.
    pub flag: &'a str,
}

const INSERT: &str = "INSERT INTO audit_log (at, actor, tenant, role, key_fingerprint, source,
        action, target, result, detail, command, exit_code, flag, seq, prev_hash, hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

/// Serialises appends on PostgreSQL for the rest of the transaction, so the chain never forks
/// (SQLite write transactions already hold the database's write lock: BEGIN IMMEDIATE).
const PG_CHAIN_LOCK: &str = "SELECT pg_advisory_xact_lock(7361626974)";

impl Db {
    /// Appends a row in a transaction of its own (for refused or failed attempts).
    pub async fn append_audit(&self, entry: &NewAudit<'_>) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.append_audit(entry).await?;
        tx.commit().await
    }

    /// The newest rows first; `tenant` limits to one tenant's rows, `actor` to one user's.
    pub async fn audit_rows(
        &self,
        tenant: Option<&str>,
        actor: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        self.audit_query(
            &AuditFilter {
                tenant,
                actor,
                ..AuditFilter::default()
            },
            limit,
        )
        .await
    }

    /// The newest rows first, filtered (see [`AuditFilter`]).
    pub async fn audit_query(&self, f: &AuditFilter<'_>, limit: i64) -> Result<Vec<AuditRow>> {
        // `flag <> $6` with $6 = '' keeps flagged rows only; NULL keeps every row.
        let sql = "SELECT id, at, actor, tenant, role, key_fingerprint, source, action, target,
                result, detail, command, exit_code, flag, seq, prev_hash, hash FROM audit_log
            WHERE ($1 IS NULL OR tenant = $1) AND ($2 IS NULL OR actor = $2)
              AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR at >= $4)
              AND ($6 IS NULL OR flag <> $6)
            ORDER BY seq DESC LIMIT $5";
        let flagged = f.flagged.then_some("");
        Ok(on_db!(self, pool => sqlx::query_as(sql)
            .bind(f.tenant).bind(f.actor).bind(f.action).bind(f.since).bind(limit).bind(flagged)
            .fetch_all(pool).await)?)
    }

    /// The oldest rows first whose `seq` is above `after_seq`, filtered (`since` is not
    /// applied): what `audit list --follow` shows as the trail grows.
    pub async fn audit_query_after(
        &self,
        f: &AuditFilter<'_>,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let sql = "SELECT id, at, actor, tenant, role, key_fingerprint, source, action, target,
                result, detail, command, exit_code, flag, seq, prev_hash, hash FROM audit_log
            WHERE seq > $1 AND ($2 IS NULL OR tenant = $2) AND ($3 IS NULL OR actor = $3)
              AND ($4 IS NULL OR action = $4) AND ($6 IS NULL OR flag <> $6)
            ORDER BY seq LIMIT $5";
        let flagged = f.flagged.then_some("");
        Ok(on_db!(self, pool => sqlx::query_as(sql)
            .bind(after_seq).bind(f.tenant).bind(f.actor).bind(f.action).bind(limit).bind(flagged)
            .fetch_all(pool).await)?)
    }

    /// The newest `seq` of the trail (0 when it is empty).
    pub async fn audit_head_seq(&self) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(seq), 0) FROM audit_log";
        let head: i64 = on_db!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?;
        Ok(head)
    }

    /// Failed login steps since `since`: those from the source host `host` (an IP address as
    /// `IP` or `[IPv6]`, matching any port; it must not contain LIKE wildcards) and those of the
    /// user `actor`. A failed step is a row
    /// whose action is `login` or `login.…` and whose result is not `ok`.
    pub async fn login_failures_since(
        &self,
        since: DateTime<Utc>,
        host: Option<&str>,
        actor: Option<&str>,
    ) -> Result<(i64, i64)> {
        let sql = "SELECT
                COALESCE(SUM(CASE WHEN source LIKE $2 THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN actor = $3 THEN 1 ELSE 0 END), 0)
            FROM audit_log
            WHERE at >= $1 AND (action = 'login' OR action LIKE 'login.%') AND result <> 'ok'";
        let pattern = host.map(|host| format!("{host}:%"));
        let counts: (i64, i64) = on_db!(self, pool => sqlx::query_as(sql)
            .bind(since).bind(&pattern).bind(actor).fetch_one(pool).await)?;
        Ok(counts)
    }
}

/// Filters of `audit list`; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter<'a> {
    pub tenant: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
    pub since: Option<DateTime<Utc>>,
    /// Only rows with a suspicious-activity flag.
    pub flagged: bool,
}

impl Tx {
    /// Serialises changes to the chain (appends and pruning) until this transaction ends.
    pub(super) async fn lock_audit_chain(&mut self) -> Result<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query(PG_CHAIN_LOCK).execute(&mut **t).await?;
        }
        Ok(())
    }

    /// Appends a row inside the transaction of the change it records, chained to the last row.
    pub async fn append_audit(&mut self, entry: &NewAudit<'_>) -> Result<()> {
        self.lock_audit_chain().await?;
        let last = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
        let mut previous: Option<(i64, String)> =
            on_tx!(self, c => sqlx::query_as(last).fetch_optional(c).await)?;
        if previous.is_none() {
            // Everything was pruned: the chain goes on from the newest checkpoint.
            previous = self.newest_audit_checkpoint().await?;
        }
        let (prev_seq, prev_hash) = previous.unwrap_or((0, String::new()));
        let at = super::now();
        let seq = prev_seq + 1;
        let hash = chain_hash(
            &prev_hash,
            &ChainFields {
                seq,
                at,
                actor: entry.actor,
                tenant: entry.tenant,
                role: entry.role,
                key_fingerprint: entry.key_fingerprint,
                source: entry.source,
                action: entry.action,
                target: entry.target,
                result: entry.result,
                detail: entry.detail,
                command: entry.command,
                exit_code: entry.exit_code,
                flag: entry.flag,
            },
        );
        on_tx!(self, c => sqlx::query(INSERT)
            .bind(at).bind(entry.actor).bind(entry.tenant).bind(entry.role)
            .bind(entry.key_fingerprint).bind(entry.source).bind(entry.action)
            .bind(entry.target).bind(entry.result).bind(entry.detail)
            .bind(entry.command).bind(entry.exit_code).bind(entry.flag)
            .bind(seq).bind(&prev_hash).bind(&hash)
            .execute(c).await.map(drop))?;
        self.notify_change(seq).await
    }
}
