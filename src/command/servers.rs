//! `server …`: list and show, the provider catalogue, and the changes run as jobs.
//!
//! A change (`create`, `delete`, `reboot`, `resize`, `power`) is enqueued as a job. Without
//! `--no-wait` the command follows the job like `job watch` (progress lines on stderr) and
//! ends with the server (`delete`: what was deleted); a job that fails or is cancelled ends
//! with `job watch`'s exit status (8, 4) and the job. With `--no-wait` it prints the job id
//! (-o json: the job).

use super::dispatch::SERVER_COLUMNS;
use super::io::CommandIo;
use super::output::{Format, Rendered, done, list, object};
use super::tree::{NoWait, ServerCommand};
use crate::domain::Name;
use crate::error::{Error, Result};
use crate::service::{Actor, JobView, ServerChange, ServerCreate, Services};

const TYPE_COLUMNS: &[&str] = &[
    "name",
    "description",
    "cores",
    "memory_gb",
    "disk_gb",
    "architecture",
    "deprecated",
];
const LOCATION_COLUMNS: &[&str] = &["name", "description", "country", "city", "network_zone"];
const IMAGE_COLUMNS: &[&str] = &["name", "description", "kind", "os_flavor", "os_version"];

pub(super) async fn server<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    cmd: ServerCommand,
    io: &mut I,
    format: Format,
) -> Result<Rendered> {
    match cmd {
        ServerCommand::List => Ok(list(
            &s.server_list(actor).await?,
            SERVER_COLUMNS,
            "no servers",
        )),
        ServerCommand::Show { name } => Ok(object(&s.server_show(actor, &name).await?)),
        ServerCommand::Types { provider } => Ok(list(
            &s.server_types(actor, &provider.provider).await?,
            TYPE_COLUMNS,
            "no server types",
        )),
        ServerCommand::Locations { provider } => Ok(list(
            &s.server_locations(actor, &provider.provider).await?,
            LOCATION_COLUMNS,
            "no locations",
        )),
        ServerCommand::Images { provider } => Ok(list(
            &s.server_images(actor, &provider.provider).await?,
            IMAGE_COLUMNS,
            "no images",
        )),
        ServerCommand::Create(args) => {
            let tenant = args
                .tenant
                .as_deref()
                .map(|t| Name::parse(t, "tenant name"))
                .transpose()?;
            let request = ServerCreate {
                name: args.name,
                provider: args.provider,
                server_type: args.server_type,
                location: args.location,
                image: args.image,
                tenant,
            };
            let (job, id) = s.server_create(actor, request).await?;
            finish(s, actor, io, format, job, id, &args.wait, false).await
        }
        ServerCommand::Delete {
            name,
            confirm,
            wait,
        } => {
            let change = ServerChange::Delete;
            let question = format!("Delete server {name} and everything on its disk");
            ask(s, actor, io, &name, &change, confirm.yes, question).await?;
            let (job, id) = s.server_change(actor, &name, change).await?;
            finish(s, actor, io, format, job, id, &wait, true).await
        }
        ServerCommand::Reboot { name, wait } => {
            let (job, id) = s.server_change(actor, &name, ServerChange::Reboot).await?;
            finish(s, actor, io, format, job, id, &wait, false).await
        }
        ServerCommand::Resize {
            name,
            server_type,
            confirm,
            wait,
        } => {
            let change = ServerChange::Resize(server_type.clone());
            let question = format!(
                "Resize server {name} to {server_type} (a running server is powered off for it)"
            );
            ask(s, actor, io, &name, &change, confirm.yes, question).await?;
            let (job, id) = s.server_change(actor, &name, change).await?;
            finish(s, actor, io, format, job, id, &wait, false).await
        }
        ServerCommand::Power { name, state, wait } => {
            let change = ServerChange::Power(state == "on");
            let (job, id) = s.server_change(actor, &name, change).await?;
            finish(s, actor, io, format, job, id, &wait, false).await
        }
    }
}

/// Runs the change's checks, then asks (a terminal) or needs `--yes` (none).
async fn ask<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    io: &mut I,
    name: &str,
    change: &ServerChange,
    yes: bool,
    question: String,
) -> Result<()> {
    s.server_check_change(actor, name, change).await?;
    if yes {
        return Ok(());
    }
    if !io.has_tty() {
        return Err(Error::usage(format!(
            "{question}? Add --yes to confirm (there is no terminal to ask on)"
        )));
    }
    if io.confirm(&format!("{question}? [y/N] ")).await? {
        Ok(())
    } else {
        Err(Error::usage("not confirmed; nothing was changed"))
    }
}

/// `--no-wait`: the job; else follows it and shows the server (or what was deleted).
#[allow(clippy::too_many_arguments)]
async fn finish<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    io: &mut I,
    format: Format,
    job: JobView,
    server_id: i64,
    wait: &NoWait,
    deleted: bool,
) -> Result<Rendered> {
    if wait.no_wait {
        return Ok(super::jobs::queued(&job, format));
    }
    let (job, finished) = super::jobs::follow(s, actor, job.id, io).await?;
    if !finished || job.state != "succeeded" {
        // Stopped: the job goes on (exit 0, like `job watch`); failed or cancelled: its status.
        return Ok(if finished {
            super::jobs::ended(&job, format)
        } else {
            object(&job)
        });
    }
    if deleted {
        let name = job.payload["name"].as_str().unwrap_or("?").to_owned();
        return Ok(done(
            format!("deleted server {name}"),
            &serde_json::json!({"deleted": name, "job": job.id}),
        ));
    }
    match s.server_show_id(actor, server_id).await? {
        Some(server) => Ok(object(&server)),
        None => Ok(object(&job)),
    }
}
