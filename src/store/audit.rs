//! The audit trail: one row per state change or refused attempt (who, from where, what, result).

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
}

/// A row to append.
#[derive(Debug, Clone)]
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
}

const INSERT: &str = "INSERT INTO audit_log (at, actor, tenant, role, key_fingerprint, source,
        action, target, result, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

macro_rules! bind_audit {
    ($q:expr, $a:expr) => {
        $q.bind(super::now())
            .bind($a.actor)
            .bind($a.tenant)
            .bind($a.role)
            .bind($a.key_fingerprint)
            .bind($a.source)
            .bind($a.action)
            .bind($a.target)
            .bind($a.result)
            .bind($a.detail)
    };
}

impl Db {
    /// Appends a row on its own (for refused or failed attempts, which have no transaction).
    pub async fn append_audit(&self, entry: &NewAudit<'_>) -> Result<()> {
        on_db!(self, pool => bind_audit!(sqlx::query(INSERT), entry).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// The newest rows first; `tenant` limits to one tenant's rows, `actor` to one user's.
    pub async fn audit_rows(
        &self,
        tenant: Option<&str>,
        actor: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let sql = "SELECT id, at, actor, tenant, role, key_fingerprint, source, action, target,
                result, detail FROM audit_log
            WHERE ($1 IS NULL OR tenant = $1) AND ($2 IS NULL OR actor = $2)
            ORDER BY id DESC LIMIT $3";
        Ok(
            on_db!(self, pool => sqlx::query_as(sql).bind(tenant).bind(actor).bind(limit).fetch_all(pool).await)?,
        )
    }
}

impl Tx {
    /// Appends a row inside the transaction of the change it records.
    pub async fn append_audit(&mut self, entry: &NewAudit<'_>) -> Result<()> {
        on_tx!(self, c => bind_audit!(sqlx::query(INSERT), entry).execute(c).await.map(drop))?;
        Ok(())
    }
}
