//! First start: the `local` server always exists; with no users yet, tenant `system` and user
//! `admin` are created with the initial keys (from `VIPANEL_INITIAL_ADMIN_KEYS`, else the
//! starting account's `~/.ssh`).

use super::audit::record_ok;
use super::tenants::SYSTEM_TENANT;
use super::{Actor, Services};
use crate::domain::{Role, SshPublicKey};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The name of the first admin user.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Where the first admin's keys come from.
#[derive(Debug, Clone)]
pub enum InitialKeySource {
    /// `VIPANEL_INITIAL_ADMIN_KEYS`: public keys or paths to `.pub` files, comma or newline separated.
    Env(String),
    /// The starting account's home: `~/.ssh/authorized_keys` and `~/.ssh/id_*.pub`.
    Home(PathBuf),
    None,
}

/// What the bootstrap did, for the daemon to say at start.
#[derive(Debug, Default)]
pub struct BootstrapReport {
    pub created_admin: bool,
    /// `(fingerprint, where it came from)` for each key given to the new admin.
    pub keys: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

impl Actor {
    /// The built-in local administrator: `vipanel admin` and first-start bootstrap.
    pub fn local_admin(system_tenant_id: i64) -> Actor {
        Actor {
            user_id: None,
            user: "@local".into(),
            tenant_id: system_tenant_id,
            tenant: SYSTEM_TENANT.into(),
            role: Role::Admin,
            key_fingerprint: None,
            source: "local".into(),
            automation: false,
        }
    }
}

impl Services {
    /// Makes sure the built-in rows exist; creates the first admin when there are no users.
    pub async fn bootstrap(&self, source: &InitialKeySource) -> Result<BootstrapReport> {
        let mut report = BootstrapReport::default();
        let mut tx = self.db.begin().await?;
        tx.ensure_local_server().await?;
        tx.commit().await?;
        if self.db.count_users().await? > 0 {
            return Ok(report);
        }
        let keys = collect_keys(source, &mut report)?;
        let existing = self.db.tenant_by_name(SYSTEM_TENANT).await?;
        let mut tx = self.db.begin().await?;
        let tenant_id = match existing {
            Some(t) => t.id,
            None => tx.insert_tenant(SYSTEM_TENANT).await?,
        };
        let actor = Actor::local_admin(tenant_id);
        let user_id = tx
            .insert_user(tenant_id, BOOTSTRAP_ADMIN, Role::Admin.as_str())
            .await?;
        let public: Vec<SshPublicKey> = keys.iter().map(|(k, _)| k.clone()).collect();
        super::keys::insert_keys(&mut tx, user_id, &public, &Default::default()).await?;
        // The first admin enrolls its authenticator at its first login, without a code.
        self.allow_first_enrollment(&mut tx, user_id).await?;
        let detail = format!("first start; keys={}", keys.len());
        record_ok(
            &mut tx,
            &actor,
            SYSTEM_TENANT,
            "user.create",
            BOOTSTRAP_ADMIN,
            &detail,
        )
        .await?;
        tx.commit().await?;
        report.created_admin = true;
        report.keys = keys
            .into_iter()
            .map(|(k, from)| (k.fingerprint().to_owned(), from))
            .collect();
        Ok(report)
    }

    /// The id of the `system` tenant (created by the bootstrap).
    pub async fn system_tenant_id(&self) -> Result<i64> {
        self.db
            .tenant_by_name(SYSTEM_TENANT)
            .await?
            .map(|t| t.id)
            .ok_or_else(|| {
                Error::internal("the system tenant is missing; run `vipanel serve` once")
            })
    }
}

fn collect_keys(
    source: &InitialKeySource,
    report: &mut BootstrapReport,
) -> Result<Vec<(SshPublicKey, String)>> {
    let mut keys: Vec<(SshPublicKey, String)> = Vec::new();
    match source {
        InitialKeySource::Env(value) => {
            for item in value
                .split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                if looks_like_key(item) {
                    let key = SshPublicKey::parse(item)
                        .map_err(|e| Error::invalid(format!("VIPANEL_INITIAL_ADMIN_KEYS: {e}")))?;
                    push(&mut keys, key, "VIPANEL_INITIAL_ADMIN_KEYS".into());
                } else {
                    let text = std::fs::read_to_string(item).map_err(|e| {
                        Error::invalid(format!(
                            "VIPANEL_INITIAL_ADMIN_KEYS: cannot read {item}: {e}"
                        ))
                    })?;
                    for key in SshPublicKey::parse_many(&text).map_err(|e| {
                        Error::invalid(format!("VIPANEL_INITIAL_ADMIN_KEYS: {item}: {e}"))
                    })? {
                        push(&mut keys, key, item.to_owned());
                    }
                }
            }
        }
        InitialKeySource::Home(home) => {
            for path in home_key_files(home) {
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                for line in text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    match SshPublicKey::parse(line) {
                        Ok(key) => push(&mut keys, key, path.display().to_string()),
                        Err(e) => report.warnings.push(format!(
                            "skipped a line of {}: {}",
                            path.display(),
                            e.message
                        )),
                    }
                }
            }
        }
        InitialKeySource::None => {}
    }
    Ok(keys)
}

fn looks_like_key(item: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|p| item.starts_with(p))
}

/// `~/.ssh/authorized_keys` and `~/.ssh/id_*.pub`, in a stable order.
fn home_key_files(home: &Path) -> Vec<PathBuf> {
    let ssh = home.join(".ssh");
    let mut files = vec![ssh.join("authorized_keys")];
    if let Ok(entries) = std::fs::read_dir(&ssh) {
        let mut pubs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("id_") && n.ends_with(".pub"))
            })
            .collect();
        pubs.sort();
        files.extend(pubs);
    }
    files
}

/// Adds a key unless one with the same fingerprint is already there.
fn push(keys: &mut Vec<(SshPublicKey, String)>, key: SshPublicKey, from: String) {
    if !keys
        .iter()
        .any(|(k, _)| k.fingerprint() == key.fingerprint())
    {
        keys.push((key, from));
    }
}
