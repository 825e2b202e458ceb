//! Tenants: `tenant list|show|create|delete`, and resolving `--tenant` for other services.

use super::audit::{conflict, record_ok};
use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, Services, Tenant};
use crate::domain::Name;
use crate::error::Result;

/// The built-in tenant of platform admins.
pub const SYSTEM_TENANT: &str = "system";

impl Services {
    pub async fn tenant_list(&self, actor: &Actor) -> Result<Vec<Tenant>> {
        policy::check(
            actor,
            Resource::Tenant,
            Verb::Read,
            Owner::Tenant(actor.tenant_id),
            "tenant",
        )?;
        let only = (!actor.is_admin()).then_some(actor.tenant_id);
        Ok(self
            .db
            .tenants(only)
            .await?
            .into_iter()
            .map(Tenant::from)
            .collect())
    }

    pub async fn tenant_show(&self, actor: &Actor, name: &Name) -> Result<Tenant> {
        let what = format!("tenant {name}");
        let row = self.db.tenant_by_name(name.as_str()).await?;
        let owner = row
            .as_ref()
            .map_or(Owner::Platform, |r| Owner::Tenant(r.id));
        policy::check(actor, Resource::Tenant, Verb::Read, owner, &what)?;
        row.map(Tenant::from)
            .ok_or_else(|| policy::not_found(&what))
    }

    pub async fn tenant_create(&self, actor: &Actor, name: &Name) -> Result<Tenant> {
        self.audited(actor, "tenant.create", name.as_str(), async {
            policy::check(
                actor,
                Resource::Tenant,
                Verb::Write,
                Owner::Platform,
                "tenant",
            )?;
            // Checked before the transaction (a race still ends in the unique constraint): reads
            // through the pool while holding the write lock could starve the pool.
            if self.db.tenant_by_name(name.as_str()).await?.is_some() {
                return Err(conflict(format!("tenant {name} already exists")));
            }
            let mut tx = self.db.begin().await?;
            tx.insert_tenant(name.as_str()).await?;
            record_ok(
                &mut tx,
                actor,
                name.as_str(),
                "tenant.create",
                name.as_str(),
                "",
            )
            .await?;
            tx.commit().await?;
            self.tenant_show(actor, name).await
        })
        .await
    }

    pub async fn tenant_delete(&self, actor: &Actor, name: &Name) -> Result<Tenant> {
        self.audited(actor, "tenant.delete", name.as_str(), async {
            policy::check(
                actor,
                Resource::Tenant,
                Verb::Write,
                Owner::Platform,
                "tenant",
            )?;
            let what = format!("tenant {name}");
            let row = self
                .db
                .tenant_by_name(name.as_str())
                .await?
                .ok_or_else(|| policy::not_found(&what))?;
            if row.name == SYSTEM_TENANT {
                return Err(conflict(
                    "the system tenant holds the platform admins and cannot be deleted",
                ));
            }
            if row.users > 0 || row.sites > 0 {
                return Err(conflict(format!(
                    "tenant {name} still has {} user(s) and {} site(s); delete them first",
                    row.users, row.sites
                )));
            }
            let mut tx = self.db.begin().await?;
            tx.delete_tenant(row.id).await?;
            record_ok(
                &mut tx,
                actor,
                name.as_str(),
                "tenant.delete",
                name.as_str(),
                "",
            )
            .await?;
            tx.commit().await?;
            Ok(Tenant::from(row))
        })
        .await
    }

    /// The tenant a command acts in: the actor's own, or `--tenant NAME` (admins only).
    pub(super) async fn target_tenant(
        &self,
        actor: &Actor,
        flag: Option<&Name>,
    ) -> Result<(i64, String)> {
        policy::require_admin_for_tenant_flag(actor, flag.map(Name::as_str))?;
        match flag {
            None => Ok((actor.tenant_id, actor.tenant.clone())),
            Some(name) => {
                let row = self
                    .db
                    .tenant_by_name(name.as_str())
                    .await?
                    .ok_or_else(|| policy::not_found(&format!("tenant {name}")))?;
                Ok((row.id, row.name))
            }
        }
    }
}
