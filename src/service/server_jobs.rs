//! The server job kinds: `server.create`, `server.delete`, `server.reboot`, `server.resize`,
//! `server.power`. Each reads its server row by id (the payload's `server_id`), calls the row's
//! provider, polls the provider's action every `providers.hetzner.action_poll_ms` with progress
//! (`ctx.progress`), and stores the provider's view of the server after every step.
//!
//! A job attempt may die anywhere (daemon killed) and be run again; each kind is written so a
//! second attempt does not apply its effect twice. `server.create` stores the provider's id as
//! soon as it is known and, without one, first looks for a server of that name at the
//! provider and adopts it instead of ordering another.

use super::Services;
use super::jobs::{JobContext, JobKind};
use super::servers::provider_status;
use crate::error::{Error, ErrorKind, Result};
use crate::provider::{Action, ActionStatus, CreateServer, Provider, ServerStatus};
use crate::store::{ServerRow, ServerUpdate};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub const SERVER_CREATE: &str = "server.create";
pub const SERVER_DELETE: &str = "server.delete";
pub const SERVER_REBOOT: &str = "server.reboot";
pub const SERVER_RESIZE: &str = "server.resize";
pub const SERVER_POWER: &str = "server.power";

/// Registers the five kinds.
pub(super) fn register(services: &Services) {
    services.register_job_kind(SERVER_CREATE, ServerJob::Create);
    services.register_job_kind(SERVER_DELETE, ServerJob::Delete);
    services.register_job_kind(SERVER_REBOOT, ServerJob::Reboot);
    services.register_job_kind(SERVER_RESIZE, ServerJob::Resize);
    services.register_job_kind(SERVER_POWER, ServerJob::Power);
}

#[derive(Debug, Clone, Copy)]
enum ServerJob {
    Create,
    Delete,
    Reboot,
    Resize,
    Power,
}

impl JobKind for ServerJob {
    async fn run(&self, ctx: JobContext) -> Result<Value> {
        let id = ctx.payload["server_id"]
            .as_i64()
            .ok_or_else(|| Error::invalid("the job's payload names no server_id"))?;
        let Some(row) = ctx.services.db.server_by_id(id).await? else {
            if let ServerJob::Delete = self {
                // An earlier attempt removed it.
                return Ok(json!({"deleted": ctx.payload["name"]}));
            }
            return Err(Error::not_found(format!(
                "server {} no longer exists",
                ctx.payload["name"].as_str().unwrap_or("?")
            )));
        };
        let provider = ctx.services.provider(&row.provider)?;
        let step = Step {
            ctx: &ctx,
            provider: &provider,
            row: &row,
            poll: Duration::from_millis(ctx.services.config.providers.hetzner.action_poll_ms),
        };
        match self {
            ServerJob::Create => step.create().await,
            ServerJob::Delete => step.delete().await,
            ServerJob::Reboot => {
                let pid = step.provider_id()?;
                ctx.progress(5, "rebooting").await?;
                step.wait(provider.reboot(pid).await?, 10, 90, "rebooting")
                    .await?;
                step.refresh(pid).await
            }
            ServerJob::Power => {
                let pid = step.provider_id()?;
                let on = ctx.payload["on"].as_bool().unwrap_or(true);
                if on {
                    ctx.progress(5, "powering on").await?;
                    step.wait(provider.power_on(pid).await?, 10, 90, "powering on")
                        .await?;
                } else {
                    ctx.progress(5, "powering off").await?;
                    step.wait(provider.power_off(pid).await?, 10, 90, "powering off")
                        .await?;
                }
                step.refresh(pid).await
            }
            ServerJob::Resize => step.resize().await,
        }
    }

    fn timeout(&self) -> Option<Duration> {
        // Creating and resizing take minutes at a cloud; a slow one is not a failed one.
        Some(Duration::from_secs(1800))
    }
}

struct Step<'a> {
    ctx: &'a JobContext,
    provider: &'a Arc<dyn Provider>,
    row: &'a ServerRow,
    poll: Duration,
}

impl Step<'_> {
    fn provider_id(&self) -> Result<u64> {
        self.row
            .provider_id
            .as_deref()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| {
                Error::conflict(format!(
                    "server {} has not been created at {} yet",
                    self.row.name, self.row.provider
                ))
            })
    }

    /// Polls `action` until it ends, mapping its progress into `lo..=hi`; an action that ends
    /// in error fails the attempt (exit 8 class).
    async fn wait(&self, mut action: Action, lo: u8, hi: u8, what: &str) -> Result<()> {
        loop {
            let pct = lo + ((u16::from(hi - lo) * u16::from(action.progress.min(100))) / 100) as u8;
            self.ctx
                .progress(pct, &format!("{what}: {}%", action.progress))
                .await?;
            if action.is_done() {
                break;
            }
            if self.ctx.cancelled() {
                return Err(Error::conflict(format!(
                    "cancelled while {what} (the provider's action {} goes on)",
                    action.id
                )));
            }
            tokio::time::sleep(self.poll).await;
            action = self.provider.action(action.id).await?;
        }
        if action.status == ActionStatus::Error {
            return Err(Error::unavailable(format!(
                "{what} failed at {}: {}",
                self.row.provider,
                action.error.as_deref().unwrap_or("no reason given")
            )));
        }
        Ok(())
    }

    /// Reads the server at the provider, stores status/type/addresses, returns it as the
    /// job's result.
    async fn refresh(&self, pid: u64) -> Result<Value> {
        let server = self.provider.server(pid).await?;
        self.ctx
            .services
            .record_provider_server(self.row.id, &server)
            .await?;
        self.ctx
            .progress(100, &provider_status(server.status))
            .await?;
        Ok(json!({
            "name": self.row.name,
            "provider": self.row.provider,
            "provider_id": server.id.to_string(),
            "status": provider_status(server.status),
            "type": server.server_type,
            "location": server.location,
            "ipv4": server.ipv4,
            "ipv6": server.ipv6,
        }))
    }

    async fn create(&self) -> Result<Value> {
        let db = &self.ctx.services.db;
        let known = self.row.provider_id.as_deref().and_then(|p| p.parse().ok());
        let pid = match known {
            Some(pid) => pid,
            None => {
                self.ctx
                    .progress(
                        2,
                        &format!("looking for {} at {}", self.row.name, self.row.provider),
                    )
                    .await?;
                let existing = self
                    .provider
                    .servers()
                    .await?
                    .into_iter()
                    .find(|s| s.name == self.row.name);
                match existing {
                    Some(found) => {
                        // An earlier attempt ordered it: adopt it, never order a second one.
                        self.ctx
                            .services
                            .record_provider_server(self.row.id, &found)
                            .await?;
                        found.id
                    }
                    None => {
                        self.ctx.progress(5, "ordering the server").await?;
                        let order = CreateServer {
                            name: self.row.name.clone(),
                            server_type: self.row.server_type.clone().unwrap_or_default(),
                            location: self.row.location.clone().unwrap_or_default(),
                            image: self.row.image.clone().unwrap_or_default(),
                            ssh_keys: Vec::new(),
                        };
                        let created = self.provider.create_server(&order).await?;
                        // Stored before anything else can fail: a retry finds it by id.
                        let pid = created.server.id.to_string();
                        let status = provider_status(created.server.status);
                        db.update_server(
                            self.row.id,
                            &ServerUpdate {
                                provider_id: Some(&pid),
                                status: Some(&status),
                                ..ServerUpdate::default()
                            },
                        )
                        .await?;
                        self.wait(created.action, 10, 80, "creating").await?;
                        created.server.id
                    }
                }
            }
        };
        // Adopted, or its action ended: wait until the server itself has left `initializing`.
        loop {
            let server = self.provider.server(pid).await?;
            self.ctx
                .services
                .record_provider_server(self.row.id, &server)
                .await?;
            if !matches!(
                server.status,
                ServerStatus::Initializing | ServerStatus::Starting
            ) {
                break;
            }
            self.ctx
                .progress(85, &format!("waiting: {}", provider_status(server.status)))
                .await?;
            tokio::time::sleep(self.poll).await;
        }
        self.refresh(pid).await
    }

    async fn delete(&self) -> Result<Value> {
        let pid = match self.row.provider_id.as_deref().and_then(|p| p.parse().ok()) {
            Some(pid) => Some(pid),
            // Never (known to be) created: one of that name may still exist there.
            None => self
                .provider
                .servers()
                .await?
                .into_iter()
                .find(|s| s.name == self.row.name)
                .map(|s| s.id),
        };
        if let Some(pid) = pid {
            self.ctx.progress(5, "deleting at the provider").await?;
            match self.provider.delete_server(pid).await {
                Ok(action) => self.wait(action, 10, 90, "deleting").await?,
                // An earlier attempt deleted it.
                Err(err) if err.kind == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        self.ctx.services.db.delete_server(self.row.id).await?;
        self.ctx.progress(100, "deleted").await?;
        Ok(json!({"deleted": self.row.name}))
    }

    /// A server type change needs the server off: a running server is powered off, changed,
    /// and powered on again.
    async fn resize(&self) -> Result<Value> {
        let pid = self.provider_id()?;
        let to = self.ctx.payload["server_type"]
            .as_str()
            .ok_or_else(|| Error::invalid("the job's payload names no server_type"))?;
        let server = self.provider.server(pid).await?;
        self.ctx
            .services
            .record_provider_server(self.row.id, &server)
            .await?;
        if server.server_type == to {
            return self.refresh(pid).await;
        }
        let was_on = server.status != ServerStatus::Off;
        if was_on {
            self.ctx.progress(5, "powering off").await?;
            self.wait(self.provider.power_off(pid).await?, 5, 30, "powering off")
                .await?;
            self.record(pid).await?;
        }
        self.ctx.progress(30, &format!("resizing to {to}")).await?;
        self.wait(self.provider.resize(pid, to).await?, 30, 70, "resizing")
            .await?;
        self.record(pid).await?;
        if was_on {
            self.wait(self.provider.power_on(pid).await?, 70, 95, "powering on")
                .await?;
        }
        self.refresh(pid).await
    }

    async fn record(&self, pid: u64) -> Result<()> {
        let server = self.provider.server(pid).await?;
        self.ctx
            .services
            .record_provider_server(self.row.id, &server)
            .await
    }
}
