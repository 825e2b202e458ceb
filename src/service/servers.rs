//! Servers: `server list|show` (each with its newest metric sample; a cloud server's status is
//! refreshed from its provider on `show`), the catalogue (`server types|locations|images`), and
//! the changes (`server create|delete|reboot|resize|power`), each enqueued as a job in the same
//! transaction as the server row's change and its audit row (the jobs are in `server_jobs.rs`).
//! The panel host is the shared server `local`: its provider refuses every change.

use super::audit::record_ok;
use super::policy::{self, Owner, Resource, Verb};
use super::server_jobs::{
    SERVER_CREATE, SERVER_DELETE, SERVER_POWER, SERVER_REBOOT, SERVER_RESIZE,
};
use super::{Actor, JobRequest, JobView, Server, Services};
use crate::domain::Name;
use crate::error::{Error, Result};
use crate::provider::{CreateServer, Image, Location, Provider, ServerType};
use crate::store::{NewServer, ServerRow, ServerUpdate};
use serde_json::json;
use std::sync::Arc;

/// The longest server name (a DNS label).
pub const SERVER_NAME_MAX: usize = 63;

/// The status of a server row whose create job has not heard from the provider yet.
pub const STATUS_CREATING: &str = "creating";
/// The status of a server row whose delete job is queued or running.
pub const STATUS_DELETING: &str = "deleting";

/// `server create`'s arguments.
#[derive(Debug, Clone)]
pub struct ServerCreate {
    pub name: String,
    pub provider: String,
    pub server_type: String,
    pub location: String,
    pub image: String,
    /// Create it for this tenant (admins).
    pub tenant: Option<Name>,
}

/// A change of an existing server, run as a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerChange {
    Delete,
    Reboot,
    /// To this server type.
    Resize(String),
    /// `true`: on.
    Power(bool),
}

impl ServerChange {
    fn kind(&self) -> &'static str {
        match self {
            ServerChange::Delete => SERVER_DELETE,
            ServerChange::Reboot => SERVER_REBOOT,
            ServerChange::Resize(_) => SERVER_RESIZE,
            ServerChange::Power(_) => SERVER_POWER,
        }
    }
}

/// Checks a server name: a lower-case letter, then lower-case letters, digits or `-`, not
/// ending in `-`, at most 63 characters (a DNS label, so it can be a host name).
pub fn validate_server_name(input: &str) -> Result<()> {
    let shown = crate::domain::printable(input);
    if input.is_empty() {
        return Err(Error::invalid("server name must not be empty"));
    }
    if input.len() > SERVER_NAME_MAX {
        return Err(Error::invalid(format!(
            "server name {shown} is too long ({} characters; at most {SERVER_NAME_MAX})",
            input.chars().count()
        )));
    }
    let first_ok = input.starts_with(|c: char| c.is_ascii_lowercase());
    let rest_ok = input
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !first_ok || !rest_ok || input.ends_with('-') {
        return Err(Error::invalid(format!(
            "server name {shown} is not valid: use a lower-case letter followed by lower-case \
             letters, digits or '-' (not at the end)"
        )));
    }
    Ok(())
}

/// A provider's word (type, location, image): printable, short, no spaces.
fn provider_word(value: &str, what: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 100
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} {} is not valid: use the provider's name for it, like those `server {what}s` \
             lists",
            crate::domain::printable(value)
        )))
    }
}

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

    /// One server; a cloud server's status and addresses are first refreshed from its
    /// provider (when the provider cannot be reached, the stored values are shown).
    pub async fn server_show(&self, actor: &Actor, name: &str) -> Result<Server> {
        let row = self.visible_server(actor, name).await?;
        // A server being deleted keeps `deleting` until its row goes.
        if row.provider != "local"
            && row.status != STATUS_DELETING
            && let Some(pid) = row.provider_id.as_deref().and_then(|p| p.parse().ok())
            && let Ok(provider) = self.provider(&row.provider)
        {
            match provider.server(pid).await {
                Ok(found) => {
                    self.record_provider_server(row.id, &found).await?;
                }
                Err(err) => {
                    tracing::warn!(server = %row.name, error = %err.message, "cannot refresh a server from its provider");
                }
            }
            if let Some(row) = self.db.server_by_id(row.id).await? {
                return Ok(row.into());
            }
        }
        Ok(row.into())
    }

    /// The server with row id `id` if the actor may read it (after a waited change).
    pub async fn server_show_id(&self, actor: &Actor, id: i64) -> Result<Option<Server>> {
        match self.db.server_by_id(id).await? {
            Some(row) => self.server_show(actor, &row.name).await.map(Some),
            None => Ok(None),
        }
    }

    /// Stores what a provider reports about a server: status, type, addresses.
    pub(super) async fn record_provider_server(
        &self,
        id: i64,
        found: &crate::provider::Server,
    ) -> Result<()> {
        let status = provider_status(found.status);
        let pid = found.id.to_string();
        self.db
            .update_server(
                id,
                &ServerUpdate {
                    provider_id: Some(&pid),
                    status: Some(&status),
                    server_type: Some(&found.server_type),
                    ipv4: found.ipv4.as_deref(),
                    ipv6: found.ipv6.as_deref(),
                },
            )
            .await
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

    /// `server create`: inserts the row (`creating`), its audit row and a `server.create` job
    /// in one transaction. Returns the job and the server's row id.
    pub async fn server_create(&self, actor: &Actor, req: ServerCreate) -> Result<(JobView, i64)> {
        self.audited(actor, "server.create", &req.name.clone(), async {
            validate_server_name(&req.name)?;
            let (tenant_id, tenant) = self.target_tenant(actor, req.tenant.as_ref()).await?;
            policy::check(
                actor,
                Resource::Server,
                Verb::Write,
                Owner::Tenant(tenant_id),
                "servers",
            )?;
            provider_word(&req.server_type, "type")?;
            provider_word(&req.location, "location")?;
            provider_word(&req.image, "image")?;
            let provider = self.provider(&req.provider)?;
            let order = CreateServer {
                name: req.name.clone(),
                server_type: req.server_type.clone(),
                location: req.location.clone(),
                image: req.image.clone(),
                ssh_keys: Vec::new(),
            };
            refuse_if_local(&provider, &ServerChange::Reboot, Some(&order)).await?;
            let mut tx = self.db.begin().await?;
            let id = tx
                .insert_server(&NewServer {
                    tenant_id,
                    name: &req.name,
                    provider: provider.name(),
                    status: STATUS_CREATING,
                    server_type: &req.server_type,
                    location: &req.location,
                    image: &req.image,
                })
                .await?;
            // Never the token or other provider settings: what was ordered, nothing else.
            let detail = format!(
                "tenant={tenant} provider={} type={} location={} image={}",
                provider.name(),
                req.server_type,
                req.location,
                req.image
            );
            record_ok(&mut tx, actor, &tenant, "server.create", &req.name, &detail).await?;
            let request = JobRequest {
                kind: SERVER_CREATE.into(),
                tenant_id: Some(tenant_id),
                payload: json!({"server_id": id, "name": req.name, "provider": provider.name()}),
                idempotency_key: Some(format!("{SERVER_CREATE}/{id}")),
                run_at: None,
                node: None,
            };
            let job = self.job_enqueue_in(&mut tx, actor, &request).await?;
            tx.commit().await?;
            self.job_wake.notify_one();
            Ok((job.into(), id))
        })
        .await
    }

    /// `server delete|reboot|resize|power`: an operator or above of the server's tenant; the
    /// audit row and the job are written in one transaction (a delete also marks the row
    /// `deleting`). Returns the job and the server's row id.
    pub async fn server_change(
        &self,
        actor: &Actor,
        name: &str,
        change: ServerChange,
    ) -> Result<(JobView, i64)> {
        let action = change.kind();
        self.audited(actor, action, name, async {
            let row = self.change_allowed(actor, name, &change).await?;
            let Some(tenant_id) = row.tenant_id else {
                return Err(Error::invalid(format!(
                    "server {} is shared (no tenant): it cannot be changed through the panel",
                    row.name
                )));
            };
            let tenant = row.tenant.clone().unwrap_or_default();
            if let ServerChange::Resize(to) = &change {
                provider_word(to, "type")?;
            }
            let mut payload =
                json!({"server_id": row.id, "name": row.name, "provider": row.provider});
            let (detail, key) = match &change {
                ServerChange::Delete => (
                    format!("tenant={tenant} provider={}", row.provider),
                    Some(format!("{SERVER_DELETE}/{}", row.id)),
                ),
                ServerChange::Reboot => {
                    (format!("tenant={tenant} provider={}", row.provider), None)
                }
                ServerChange::Resize(to) => {
                    payload["server_type"] = json!(to);
                    let from = row.server_type.as_deref().unwrap_or("?");
                    (
                        format!(
                            "tenant={tenant} provider={} type={from}->{to}",
                            row.provider
                        ),
                        None,
                    )
                }
                ServerChange::Power(on) => {
                    payload["on"] = json!(on);
                    let state = if *on { "on" } else { "off" };
                    (
                        format!("tenant={tenant} provider={} power={state}", row.provider),
                        None,
                    )
                }
            };
            let mut tx = self.db.begin().await?;
            if change == ServerChange::Delete {
                tx.set_server_status(row.id, STATUS_DELETING).await?;
            }
            record_ok(&mut tx, actor, &tenant, action, &row.name, &detail).await?;
            let request = JobRequest {
                kind: action.into(),
                tenant_id: Some(tenant_id),
                payload,
                idempotency_key: key,
                run_at: None,
                node: None,
            };
            let job = self.job_enqueue_in(&mut tx, actor, &request).await?;
            tx.commit().await?;
            self.job_wake.notify_one();
            Ok((job.into(), row.id))
        })
        .await
    }

    /// Whether `actor` may make `change` to server `name` (the checks `server_change` makes,
    /// run before asking for a confirmation; a refusal is audited under the change's action).
    pub async fn server_check_change(
        &self,
        actor: &Actor,
        name: &str,
        change: &ServerChange,
    ) -> Result<()> {
        self.audited(actor, change.kind(), name, async {
            self.change_allowed(actor, name, change).await.map(drop)
        })
        .await
    }

    async fn change_allowed(
        &self,
        actor: &Actor,
        name: &str,
        change: &ServerChange,
    ) -> Result<ServerRow> {
        let row = self.visible_server(actor, name).await?;
        let owner = row.tenant_id.map_or(Owner::Platform, Owner::Tenant);
        let what = format!("server {}", row.name);
        policy::check(actor, Resource::Server, Verb::Write, owner, &what)?;
        if row.tenant_id.is_none() && !actor.is_admin() {
            return Err(Error::forbidden(format!(
                "{what} is shared by every tenant: only admins may change it"
            )));
        }
        let provider = self.provider(&row.provider)?;
        refuse_if_local(&provider, change, None).await?;
        if *change == ServerChange::Delete && row.sites > 0 {
            return Err(Error::conflict(format!(
                "{what} still has {} site(s): delete or move them first",
                row.sites
            )));
        }
        Ok(row)
    }

    /// `server types`: what the provider sells, with prices.
    pub async fn server_types(&self, actor: &Actor, provider: &str) -> Result<Vec<ServerType>> {
        self.catalogue_provider(actor, provider)?
            .server_types()
            .await
    }

    /// `server locations`.
    pub async fn server_locations(&self, actor: &Actor, provider: &str) -> Result<Vec<Location>> {
        self.catalogue_provider(actor, provider)?.locations().await
    }

    /// `server images`.
    pub async fn server_images(&self, actor: &Actor, provider: &str) -> Result<Vec<Image>> {
        self.catalogue_provider(actor, provider)?.images().await
    }

    /// Anyone who may read servers may read a provider's catalogue.
    fn catalogue_provider(&self, actor: &Actor, provider: &str) -> Result<Arc<dyn Provider>> {
        policy::check(
            actor,
            Resource::Server,
            Verb::Read,
            Owner::Tenant(actor.tenant_id),
            "servers",
        )?;
        self.provider(provider)
    }
}

/// Our status word for a provider's status (`running`, `off`, `initializing`…).
pub(super) fn provider_status(status: crate::provider::ServerStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// The `local` provider refuses changes: ask it, so the person sees its own message (exit 5).
/// It answers at once and touches nothing; cloud providers are not called here.
async fn refuse_if_local(
    provider: &Arc<dyn Provider>,
    change: &ServerChange,
    create: Option<&CreateServer>,
) -> Result<()> {
    if provider.name() != "local" {
        return Ok(());
    }
    if let Some(order) = create {
        provider.create_server(order).await?;
    }
    match change {
        ServerChange::Delete => provider.delete_server(0).await?,
        ServerChange::Reboot => provider.reboot(0).await?,
        ServerChange::Resize(to) => provider.resize(0, to).await?,
        ServerChange::Power(true) => provider.power_on(0).await?,
        ServerChange::Power(false) => provider.power_off(0).await?,
    };
    Err(Error::invalid("the local provider cannot change servers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        for good in ["web1", "a", "db-eu-2", &"a".repeat(63)] {
            assert!(validate_server_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1web", "Web", "web_1", "web-", "a.b", &"a".repeat(64)] {
            assert!(validate_server_name(bad).is_err(), "{bad}");
        }
    }
}
