//! `dashboard`: counts of what the actor can see, in one round of cheap indexed queries, kept
//! in this process's [`super::cache`] until a change of what it shows, and with `redis_url` in
//! the level every node shares ([`super::shared_cache`]), asked when this process has nothing.

use super::cache::{CacheKey, entry_tags};
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
        let own_keys = actor.role < crate::domain::Role::Owner;
        let key = CacheKey {
            tenant_id: scope,
            keys_of: if own_keys { actor.user_id } else { None },
        };
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let started = self.cache.fill_started();
        let tags = entry_tags(scope.map(|_| actor.tenant.as_str()));
        // Only while this process's watcher keeps its own level exact: the two agree.
        let remote = self.cache.remote().filter(|_| self.cache.is_live());
        let mut versions = None;
        if let Some(remote) = remote {
            if let Some(hit) = remote.get(&key, &tags).await {
                self.cache.insert(key, tags, hit.clone(), started);
                return Ok(hit);
            }
            versions = remote.versions(&tags).await;
        }
        let value = self.dashboard_uncached(actor, scope, own_keys).await?;
        if let (Some(remote), Some(versions)) = (remote, versions) {
            remote.put(&key, &versions, &value).await;
        }
        self.cache.insert(key, tags, value.clone(), started);
        Ok(value)
    }

    /// The counts, read from the database.
    async fn dashboard_uncached(
        &self,
        actor: &Actor,
        scope: Option<i64>,
        own_keys: bool,
    ) -> Result<Dashboard> {
        let counts = self
            .db
            .dashboard_counts(scope, if own_keys { actor.user_id } else { None })
            .await?;
        let (by_status, last_applied) = self.db.dashboard_sites(scope).await?;
        let failing = self.db.count_failing_sites(scope).await?;
        let sites_by_status: std::collections::BTreeMap<String, i64> =
            by_status.into_iter().collect();
        Ok(Dashboard {
            scope: if actor.is_admin() {
                "platform".into()
            } else {
                actor.tenant.clone()
            },
            tenants: counts.tenants,
            users: counts.users,
            keys: counts.keys,
            servers: counts.servers,
            sites: sites_by_status.values().sum(),
            sites_by_status,
            sites_failing_health: failing,
            sites_last_applied_at: last_applied,
        })
    }
}
