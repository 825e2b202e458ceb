//! Servers: `server list|show`, each with its newest metric sample. The panel host is the shared server `local`.

use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, Server, Services};
use crate::error::Result;
use crate::store::ServerRow;

impl Services {
    pub async fn server_list(&self, actor: &Actor) -> Result<Vec<Server>> {
        policy::check(
            actor,
            Resource::Server,
            Verb::Read,
            Owner::Tenant(actor.tenant_id),
            "servers",
        )?;
        let scope = (!actor.is_admin()).then_some(actor.tenant_id);
        Ok(self
            .db
            .servers(scope)
            .await?
            .into_iter()
            .map(Server::from)
            .collect())
    }

    pub async fn server_show(&self, actor: &Actor, name: &str) -> Result<Server> {
        self.visible_server(actor, name).await.map(Server::from)
    }

    /// The server `name` if the actor may read it; hidden and missing servers alike are
    /// "not found".
    pub(super) async fn visible_server(&self, actor: &Actor, name: &str) -> Result<ServerRow> {
        let what = format!("server {}", crate::domain::printable(name));
        let scope = (!actor.is_admin()).then_some(actor.tenant_id);
        let row = self.db.server_by_name(name, scope).await?;
        let owner = match row.as_ref().map(|r| r.tenant_id) {
            Some(Some(id)) => Owner::Tenant(id),
            Some(None) => Owner::Platform,
            None => Owner::Tenant(actor.tenant_id),
        };
        policy::check(actor, Resource::Server, Verb::Read, owner, &what)?;
        row.ok_or_else(|| policy::not_found(&what))
    }
}
