//! `ui show|theme|keymap|refresh|bandwidth`: a user's preferences for the dashboard (TUI).
//!
//! `ui show -o json` is what the TUI reads at start (a [`crate::domain::ui::UiSettings`]); the
//! table form shows only the four preferences. `ui theme NAME` selects, `ui theme VERB …`
//! manages files; imports read their TOML from standard input like `key add`.

use super::io::CommandIo;
use super::output::{Format, Rendered, done, list, object};
use super::tree::{UiCommand, UiFileArgs, UiFileCommand};
use crate::domain::ui::{Bandwidth, UiKind, UiPreferences, parse_refresh_secs};
use crate::error::{Error, Result};
use crate::service::{Actor, Services, UiChange};

const FILE_COLUMNS: &[&str] = &["name", "shipped", "parent", "selected", "description"];

pub(super) async fn ui<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    cmd: UiCommand,
    io: &mut I,
    format: Format,
) -> Result<Rendered> {
    match cmd {
        UiCommand::Show => {
            let settings = s.ui_show(actor).await?;
            if format == Format::Json {
                return Ok(object(&settings));
            }
            let prefs = UiPreferences {
                theme: settings.theme.clone(),
                keymap: settings.keymap.clone(),
                refresh_secs: settings.refresh_secs,
                bandwidth: settings.bandwidth,
            };
            let mut value = serde_json::to_value(&prefs).unwrap_or_default();
            if !settings.warnings.is_empty()
                && let Some(map) = value.as_object_mut()
            {
                map.insert("warnings".into(), settings.warnings.join("; ").into());
            }
            Ok(Rendered::Object(value))
        }
        UiCommand::Theme(args) => file(s, actor, UiKind::Theme, args, io, format).await,
        UiCommand::Keymap(args) => file(s, actor, UiKind::Keymap, args, io, format).await,
        UiCommand::Refresh { seconds } => {
            let secs = parse_refresh_secs(&seconds)?;
            let prefs = s.ui_set(actor, UiChange::Refresh(secs)).await?;
            Ok(done(
                format!("the dashboard refreshes every {secs} s"),
                &prefs,
            ))
        }
        UiCommand::Bandwidth { level } => {
            let bandwidth = Bandwidth::parse(&level)?;
            let prefs = s.ui_set(actor, UiChange::Bandwidth(bandwidth)).await?;
            Ok(done(
                format!("bandwidth set to {}", bandwidth.as_str()),
                &prefs,
            ))
        }
    }
}

async fn file<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    kind: UiKind,
    args: UiFileArgs,
    io: &mut I,
    format: Format,
) -> Result<Rendered> {
    let command = match (args.command, args.name) {
        (Some(command), _) => command,
        (None, Some(name)) => {
            let change = match kind {
                UiKind::Theme => UiChange::Theme(name.clone()),
                UiKind::Keymap => UiChange::Keymap(name.clone()),
            };
            let prefs = s.ui_set(actor, change).await?;
            return Ok(done(format!("{kind} set to {name}"), &prefs));
        }
        (None, None) => {
            return Err(Error::usage(format!(
                "name a {kind} to select, or use list, import, remove or export"
            )));
        }
    };
    match command {
        UiFileCommand::List => Ok(list(
            &s.ui_list(actor, kind).await?,
            FILE_COLUMNS,
            "nothing to list",
        )),
        UiFileCommand::Import { name } => {
            let limit = usize::try_from(s.config.limits.max_stdin_bytes).unwrap_or(usize::MAX);
            let bytes = io.read_stdin(limit).await?;
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::invalid("standard input is not UTF-8 text"))?;
            if text.trim().is_empty() {
                return Err(Error::usage(format!(
                    "no {kind} given: pass its TOML on standard input (ui {kind} import {name} < {name}.toml)"
                )));
            }
            let imported = s.ui_import(actor, kind, &name, &text).await?;
            let how = if imported.replaced {
                "replaced"
            } else {
                "imported"
            };
            Ok(done(format!("{how} {kind} {name}"), &imported))
        }
        UiFileCommand::Remove { name, confirm } => {
            // Not found (3) before asking; a shipped one is refused by the service (5).
            let found = s.ui_export(actor, kind, &name).await?;
            if !confirm.yes && !found.shipped {
                let question = format!("Remove your {kind} {name}");
                if !io.has_tty() {
                    return Err(Error::usage(format!(
                        "{question}? Add --yes to confirm (there is no terminal to ask on)"
                    )));
                }
                if !io.confirm(&format!("{question}? [y/N] ")).await? {
                    return Err(Error::usage("not confirmed; nothing was changed"));
                }
            }
            let removed = s.ui_remove(actor, kind, &name).await?;
            let reset = if removed.selection_reset {
                format!("; {kind} default is selected again")
            } else {
                String::new()
            };
            Ok(done(format!("removed {kind} {name}{reset}"), &removed))
        }
        UiFileCommand::Export { name } => {
            let export = s.ui_export(actor, kind, &name).await?;
            Ok(match format {
                Format::Json => object(&export),
                _ => Rendered::Text(export.toml),
            })
        }
    }
}
