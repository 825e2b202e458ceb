//! `dashboard`: counts of what the actor can see, in one round of cheap indexed queries.

use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, Dashboard, Services};
use crate::error::Result;

impl Services {
    pub async fn dashboard(&self, actor: &Actor) -> Result<Dashboard> {
        policy::check(
            actor,
            Resource::Dashboard,
            Verb::Read,
            Owner::Tenant(actor.tenant_id),
            "dashboard",
        )?;
        let scope = (!actor.is_admin()).then_some(actor.tenant_id);
        let tenants = self.db.tenants(scope).await?;
        let sites_by_status: std::collections::BTreeMap<String, i64> = self
            .db
            .site_status_counts(scope)
            .await?
            .into_iter()
            .collect();
        let keys = if actor.role >= crate::domain::Role::Owner {
            self.db.keys(None, scope).await?.len()
        } else {
            self.db.keys(actor.user_id, None).await?.len()
        };
        Ok(Dashboard {
            scope: if actor.is_admin() {
                "platform".into()
            } else {
                actor.tenant.clone()
            },
            tenants: tenants.len() as i64,
            users: tenants.iter().map(|t| t.users).sum(),
            keys: keys as i64,
            servers: self.db.servers(scope).await?.len() as i64,
            sites: sites_by_status.values().sum(),
            sites_by_status,
            sites_last_applied_at: self.db.site_last_applied(scope).await?,
        })
    }
}
