//! UI preferences: `ui show|theme|keymap|refresh|bandwidth`. Every user, whatever its role,
//! manages its own preferences and imported themes and keymaps, and nobody else's: there is no
//! policy question, only "which user am I". Changes are audited (`ui.*`) like any other.
//!
//! Imported files are validated whole (parsed, resolved against the shipped files and the
//! user's own, keymap conflicts refused, the user's other files still resolving) before
//! anything is written. A stored selection that no longer resolves falls back to `default`
//! at read time, with a warning in [`UiSettings::warnings`].

use super::audit::{conflict, record_ok};
use super::{Actor, Services};
use crate::domain::printable;
use crate::domain::ui::{
    Bandwidth, DEFAULT_NAME, Keymap, KeymapFile, MAX_IMPORTED, REFRESH_RANGE, Theme, ThemeFile,
    UiKind, UiPreferences, UiSettings, available_names, validate_import_name,
};
use crate::error::{Error, Result};
use crate::store::{NewUiPreferences, Tx, UiPreferencesRow};
use serde::Serialize;
use std::collections::BTreeMap;

/// One change of a preference.
#[derive(Debug, Clone)]
pub enum UiChange {
    Theme(String),
    Keymap(String),
    /// Seconds, within [`REFRESH_RANGE`].
    Refresh(u32),
    Bandwidth(Bandwidth),
}

impl UiChange {
    fn action(&self) -> &'static str {
        match self {
            UiChange::Theme(_) => "ui.theme",
            UiChange::Keymap(_) => "ui.keymap",
            UiChange::Refresh(_) => "ui.refresh",
            UiChange::Bandwidth(_) => "ui.bandwidth",
        }
    }
}

/// A theme or keymap a user may select (`ui theme list`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UiFileEntry {
    pub name: String,
    /// Shipped with vipanel (else imported by the user).
    pub shipped: bool,
    pub parent: Option<String>,
    pub description: Option<String>,
    /// The user's current selection.
    pub selected: bool,
}

/// What `ui theme import` / `ui keymap import` stored.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UiImported {
    pub kind: UiKind,
    pub name: String,
    /// It replaced the user's own file of that name.
    pub replaced: bool,
    pub parent: Option<String>,
}

/// What `ui theme remove` / `ui keymap remove` removed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UiRemoved {
    pub kind: UiKind,
    pub name: String,
    /// It was selected, so the selection went back to `default`.
    pub selection_reset: bool,
}

/// A theme or keymap file as text (`ui theme export`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UiExport {
    pub kind: UiKind,
    pub name: String,
    pub shipped: bool,
    pub toml: String,
}

impl Services {
    /// The actor's preferences, resolved: what the TUI draws with.
    pub async fn ui_show(&self, actor: &Actor) -> Result<UiSettings> {
        let (prefs, themes, keymaps) = match actor.user_id {
            Some(id) => (
                preferences(self.db.ui_preferences(id).await?),
                self.own_files(id, UiKind::Theme).await?,
                self.own_files(id, UiKind::Keymap).await?,
            ),
            // The local administrator has no row: the defaults.
            None => (UiPreferences::default(), BTreeMap::new(), BTreeMap::new()),
        };
        let mut warnings = Vec::new();
        let theme = match Theme::resolve(&prefs.theme, &themes) {
            Ok(theme) => theme,
            Err(err) => {
                warnings.push(format!(
                    "theme {} cannot be used ({}); using {DEFAULT_NAME}",
                    printable(&prefs.theme),
                    err.message
                ));
                Theme::shipped(DEFAULT_NAME)?
            }
        };
        let keymap = match Keymap::resolve(&prefs.keymap, &keymaps) {
            Ok(keymap) => keymap,
            Err(err) => {
                warnings.push(format!(
                    "keymap {} cannot be used ({}); using {DEFAULT_NAME}",
                    printable(&prefs.keymap),
                    err.message
                ));
                Keymap::shipped(DEFAULT_NAME)?
            }
        };
        Ok(UiSettings {
            theme: theme.name,
            keymap: keymap.name,
            refresh_secs: prefs.refresh_secs,
            bandwidth: prefs.bandwidth,
            themes: available_names(UiKind::Theme, &themes),
            keymaps: available_names(UiKind::Keymap, &keymaps),
            styles: theme.styles,
            bindings: keymap.bindings,
            warnings,
        })
    }

    /// Changes one preference of the actor; a theme or keymap must be shipped or its own, and
    /// resolve.
    pub async fn ui_set(&self, actor: &Actor, change: UiChange) -> Result<UiPreferences> {
        let action = change.action();
        self.audited(actor, action, &actor.user, async {
            let user_id = own_user(actor)?;
            let mut tx = self.db.begin().await?;
            let mut prefs = preferences(tx.ui_preferences(user_id).await?);
            let detail = match change {
                UiChange::Theme(name) => {
                    let own = own_map(&mut tx, user_id, UiKind::Theme).await?;
                    Theme::resolve(&name, &own)?;
                    prefs.theme = name;
                    format!("theme={}", prefs.theme)
                }
                UiChange::Keymap(name) => {
                    let own = own_map(&mut tx, user_id, UiKind::Keymap).await?;
                    Keymap::resolve(&name, &own)?;
                    prefs.keymap = name;
                    format!("keymap={}", prefs.keymap)
                }
                UiChange::Refresh(secs) => {
                    if !REFRESH_RANGE.contains(&secs) {
                        return Err(Error::invalid(format!(
                            "the refresh interval must be from {} to {} seconds",
                            REFRESH_RANGE.start(),
                            REFRESH_RANGE.end()
                        )));
                    }
                    prefs.refresh_secs = secs;
                    format!("refresh_secs={secs}")
                }
                UiChange::Bandwidth(bandwidth) => {
                    prefs.bandwidth = bandwidth;
                    format!("bandwidth={}", bandwidth.as_str())
                }
            };
            put(&mut tx, user_id, &prefs).await?;
            record_ok(&mut tx, actor, &actor.tenant, action, &actor.user, &detail).await?;
            tx.commit().await?;
            Ok(prefs)
        })
        .await
    }

    /// The themes or keymaps the actor may select: shipped ones, then its own.
    pub async fn ui_list(&self, actor: &Actor, kind: UiKind) -> Result<Vec<UiFileEntry>> {
        let (prefs, own) = match actor.user_id {
            Some(id) => (
                preferences(self.db.ui_preferences(id).await?),
                self.own_files(id, kind).await?,
            ),
            None => (UiPreferences::default(), BTreeMap::new()),
        };
        let selected = match kind {
            UiKind::Theme => prefs.theme,
            UiKind::Keymap => prefs.keymap,
        };
        let shipped = kind.shipped().iter().map(|(n, t)| (*n, *t, true));
        let own = own.iter().map(|(n, t)| (n.as_str(), t.as_str(), false));
        Ok(shipped
            .chain(own)
            .map(|(name, text, shipped)| {
                let (parent, description) = header(kind, name, text);
                UiFileEntry {
                    name: name.to_owned(),
                    shipped,
                    parent,
                    description,
                    selected: name == selected,
                }
            })
            .collect())
    }

    /// Stores a theme or keymap of the actor's own, replacing one of the same name, once it
    /// is fully valid; on any error nothing is stored.
    pub async fn ui_import(
        &self,
        actor: &Actor,
        kind: UiKind,
        name: &str,
        body: &str,
    ) -> Result<UiImported> {
        let target = format!("{kind}:{name}");
        self.audited(actor, "ui.import", &target, async {
            let user_id = own_user(actor)?;
            validate_import_name(kind, name)?;
            let mut tx = self.db.begin().await?;
            let mut own = own_map(&mut tx, user_id, kind).await?;
            let replaced = own.contains_key(name);
            if !replaced && own.len() >= MAX_IMPORTED {
                return Err(conflict(format!(
                    "you have {} {kind}s of your own already (at most {MAX_IMPORTED}): remove one first",
                    own.len()
                )));
            }
            own.insert(name.to_owned(), body.to_owned());
            resolve(kind, name, &own)?;
            // A replaced file may be the parent of others: they must still resolve.
            for other in own.keys().filter(|n| *n != name) {
                if let Err(err) = resolve(kind, other, &own) {
                    return Err(Error::invalid(format!(
                        "this {kind} would break your {kind} {}: {}",
                        printable(other),
                        err.message
                    )));
                }
            }
            let (parent, _) = header(kind, name, body);
            tx.put_ui_file(user_id, kind.as_str(), name, body).await?;
            let detail = format!("bytes={} replaced={replaced}", body.len());
            record_ok(&mut tx, actor, &actor.tenant, "ui.import", &target, &detail).await?;
            tx.commit().await?;
            Ok(UiImported {
                kind,
                name: name.to_owned(),
                replaced,
                parent,
            })
        })
        .await
    }

    /// Removes one of the actor's own themes or keymaps; if it was selected, the selection
    /// goes back to `default`.
    pub async fn ui_remove(&self, actor: &Actor, kind: UiKind, name: &str) -> Result<UiRemoved> {
        let target = format!("{kind}:{name}");
        self.audited(actor, "ui.remove", &target, async {
            let user_id = own_user(actor)?;
            if kind.shipped_file(name).is_some() {
                return Err(Error::invalid(format!(
                    "{kind} {} is shipped with vipanel and cannot be removed",
                    printable(name)
                )));
            }
            let mut tx = self.db.begin().await?;
            if tx.delete_ui_file(user_id, kind.as_str(), name).await? == 0 {
                return Err(Error::not_found(format!(
                    "you have no {kind} called {}",
                    printable(name)
                )));
            }
            let mut prefs = preferences(tx.ui_preferences(user_id).await?);
            let selected = match kind {
                UiKind::Theme => &mut prefs.theme,
                UiKind::Keymap => &mut prefs.keymap,
            };
            let selection_reset = selected == name;
            if selection_reset {
                *selected = DEFAULT_NAME.to_owned();
                put(&mut tx, user_id, &prefs).await?;
            }
            let detail = format!("selection_reset={selection_reset}");
            record_ok(&mut tx, actor, &actor.tenant, "ui.remove", &target, &detail).await?;
            tx.commit().await?;
            Ok(UiRemoved {
                kind,
                name: name.to_owned(),
                selection_reset,
            })
        })
        .await
    }

    /// The TOML of a shipped theme or keymap, or of one of the actor's own.
    pub async fn ui_export(&self, actor: &Actor, kind: UiKind, name: &str) -> Result<UiExport> {
        if let Some(text) = kind.shipped_file(name) {
            return Ok(UiExport {
                kind,
                name: name.to_owned(),
                shipped: true,
                toml: text.to_owned(),
            });
        }
        let own = match actor.user_id {
            Some(id) => self.own_files(id, kind).await?,
            None => BTreeMap::new(),
        };
        let toml = own.get(name).cloned().ok_or_else(|| {
            Error::not_found(format!(
                "there is no {kind} {} (available: {})",
                printable(name),
                available_names(kind, &own).join(", ")
            ))
        })?;
        Ok(UiExport {
            kind,
            name: name.to_owned(),
            shipped: false,
            toml,
        })
    }

    /// The actor's own files of `kind`: name → TOML.
    async fn own_files(&self, user_id: i64, kind: UiKind) -> Result<BTreeMap<String, String>> {
        let rows = self.db.ui_files(user_id, Some(kind.as_str())).await?;
        Ok(rows.into_iter().map(|r| (r.name, r.body)).collect())
    }
}

/// The actor's user id; the local administrator has no preferences to change.
fn own_user(actor: &Actor) -> Result<i64> {
    actor.user_id.ok_or_else(|| {
        Error::usage("the local administrator has no UI preferences of its own; log in as a user")
    })
}

async fn own_map(tx: &mut Tx, user_id: i64, kind: UiKind) -> Result<BTreeMap<String, String>> {
    let rows = tx.ui_files(user_id, Some(kind.as_str())).await?;
    Ok(rows.into_iter().map(|r| (r.name, r.body)).collect())
}

/// Resolves `name` of `kind` only to validate it.
fn resolve(kind: UiKind, name: &str, own: &BTreeMap<String, String>) -> Result<()> {
    match kind {
        UiKind::Theme => Theme::resolve(name, own).map(drop),
        UiKind::Keymap => Keymap::resolve(name, own).map(drop),
    }
}

/// A file's `parent` and `description` (none when it does not parse).
fn header(kind: UiKind, name: &str, text: &str) -> (Option<String>, Option<String>) {
    match kind {
        UiKind::Theme => ThemeFile::parse(name, text)
            .map(|f| (f.parent, f.description))
            .unwrap_or_default(),
        UiKind::Keymap => KeymapFile::parse(name, text)
            .map(|f| (f.parent, f.description))
            .unwrap_or_default(),
    }
}

/// Stored preferences, or the defaults; a value the store should never hold reads as its
/// default.
fn preferences(row: Option<UiPreferencesRow>) -> UiPreferences {
    let defaults = UiPreferences::default();
    match row {
        None => defaults,
        Some(row) => UiPreferences {
            theme: row.theme,
            keymap: row.keymap,
            refresh_secs: u32::try_from(row.refresh_secs)
                .ok()
                .filter(|s| REFRESH_RANGE.contains(s))
                .unwrap_or(defaults.refresh_secs),
            bandwidth: Bandwidth::parse(&row.bandwidth).unwrap_or(defaults.bandwidth),
        },
    }
}

async fn put(tx: &mut Tx, user_id: i64, prefs: &UiPreferences) -> Result<()> {
    let refresh_secs = i32::try_from(prefs.refresh_secs)
        .map_err(|_| Error::invalid("the refresh interval is too large"))?;
    tx.put_ui_preferences(
        user_id,
        &NewUiPreferences {
            theme: &prefs.theme,
            keymap: &prefs.keymap,
            refresh_secs,
            bandwidth: prefs.bandwidth.as_str(),
        },
    )
    .await
}
