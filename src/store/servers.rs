//! Servers: the panel host itself (`local`, no tenant) and, later, cloud servers of tenants.

use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRow {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub tenant: Option<String>,
    pub name: String,
    pub provider: String,
    pub provider_id: Option<String>,
    pub status: String,
    pub server_type: Option<String>,
    pub location: Option<String>,
    pub image: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sites: i64,
}

/// The common SELECT of this table group, as a literal for `concat!`.
macro_rules! select {
    () => {
        "SELECT s.id, s.tenant_id, t.name AS tenant, s.name, s.provider, s.provider_id,
        s.status, s.server_type, s.location, s.image, s.ipv4, s.ipv6, s.created_at,
        (SELECT COUNT(*) FROM sites x WHERE x.server_id = s.id
            AND ($1 IS NULL OR x.tenant_id = $1)) AS sites
    FROM servers s LEFT JOIN tenants t ON t.id = s.tenant_id"
    };
}

impl Db {
    /// Servers visible to a tenant: its own and the shared ones (no tenant). `None` = all.
    /// Site counts are limited to the same tenant.
    pub async fn servers(&self, tenant_id: Option<i64>) -> Result<Vec<ServerRow>> {
        let sql = concat!(
            select!(),
            " WHERE ($1 IS NULL OR s.tenant_id IS NULL OR s.tenant_id = $1) ORDER BY s.id"
        );
        Ok(on_db!(self, pool => sqlx::query_as(sql).bind(tenant_id).fetch_all(pool).await)?)
    }

    pub async fn server_by_name(
        &self,
        name: &str,
        tenant_id: Option<i64>,
    ) -> Result<Option<ServerRow>> {
        let sql = concat!(select!(), " WHERE s.name = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as(sql).bind(tenant_id).bind(name).fetch_optional(pool).await)?,
        )
    }
}

impl Tx {
    /// Creates the `local` server (the panel host) if it is missing. Returns its id.
    pub async fn ensure_local_server(&mut self) -> Result<i64> {
        let find = "SELECT id FROM servers WHERE name = 'local'";
        let found: Option<i64> =
            on_tx!(self, c => sqlx::query_scalar(find).fetch_optional(c).await)?;
        if let Some(id) = found {
            return Ok(id);
        }
        let sql = "INSERT INTO servers (tenant_id, name, provider, status, created_at)
                   VALUES (NULL, 'local', 'local', 'running', $1) RETURNING id";
        Ok(on_tx!(self, c => sqlx::query_scalar(sql).bind(super::now()).fetch_one(c).await)?)
    }
}
