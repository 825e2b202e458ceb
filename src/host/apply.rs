//! One apply: make the host match what a batch of sites should be, or change nothing.
//!
//! Under an exclusive lock (`<nginx_dir>/.apply.lock`, so a `vipanel admin` run and the daemon
//! never interleave): prepare accounts and directories → render and stage every file (written
//! beside, then swapped) → validate once (`nginx -t`, `php-fpmX.Y -t` for the versions whose
//! pools changed) → on failure put every file back and, when the batch held several sites,
//! retry them one by one so only the broken ones fail → reload each master once → remove the
//! accounts of removed sites. A batch that changes no file validates and reloads nothing.

use super::accounts::{self, Ids};
use super::layout::{CATCH_ALL_FILE, HostLayout, POOL_FILE_PREFIX};
use super::masters;
use super::render;
use super::spec::{AccountName, SafePath, SiteBackend, SiteSpec};
use super::stage::{self, Mark, Stage};
use crate::domain::{DomainName, PhpVersion};
use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::path::Path;

/// What one site should be on the host.
#[derive(Debug, Clone)]
pub enum Desired {
    Present(Box<SiteSpec>),
    /// Removed: its vhost and pools go, then its account; its files stay (see `purge`).
    Absent {
        domain: DomainName,
        user: Option<AccountName>,
    },
}

impl Desired {
    pub fn domain(&self) -> &DomainName {
        match self {
            Desired::Present(spec) => &spec.domain,
            Desired::Absent { domain, .. } => domain,
        }
    }
}

/// A site in a batch; `key` identifies it to the caller.
#[derive(Debug, Clone)]
pub struct Item {
    pub key: i64,
    pub desired: Desired,
}

/// How a batch went.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Per item: applied, or why not.
    pub results: Vec<(i64, Result<(), String>)>,
    /// Files written or removed (0: the host already matched).
    pub changed: usize,
    pub nginx_reloaded: bool,
    pub php_reloaded: Vec<PhpVersion>,
    /// Managed files and accounts that belonged to no site (full reconcile only).
    pub orphans_removed: Vec<String>,
}

/// What staging one item touched.
#[derive(Debug, Default, Clone)]
struct Touched {
    nginx: bool,
    php: BTreeSet<PhpVersion>,
}

impl Touched {
    fn merge(&mut self, other: &Touched) {
        self.nginx |= other.nginx;
        self.php.extend(other.php.iter().copied());
    }
}

/// How a batch is applied.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// The batch is every site there is: managed files and site accounts that belong to none
    /// of them are removed too (`host reconcile`).
    pub full: bool,
    /// Validate and reload even when no managed file changed (`site apply`: an include hook,
    /// which is not ours, may have).
    pub force: bool,
}

/// Applies a batch.
pub fn apply(layout: &HostLayout, items: &[Item], mode: Mode) -> Outcome {
    let full = mode.full;
    let mut outcome = Outcome::default();
    let _lock = match lock(layout) {
        Ok(lock) => lock,
        Err(e) => {
            outcome.results = items.iter().map(|i| (i.key, Err(e.clone()))).collect();
            return outcome;
        }
    };
    let mut stage = Stage::default();
    let mut touched = Touched::default();
    let mut failed: Vec<(i64, String)> = Vec::new();

    // Files every site relies on: the catch-all, the include (or the sandbox's main config).
    if let Err(e) = stage_globals(layout, &mut stage, &mut touched) {
        outcome.results = items.iter().map(|i| (i.key, Err(e.clone()))).collect();
        let _ = stage.rollback_to(Mark::default());
        return outcome;
    }
    if full {
        match stage_orphans(layout, items, &mut stage, &mut touched) {
            Ok(names) => outcome.orphans_removed = names,
            Err(e) => failed.extend(items.iter().map(|i| (i.key, e.clone()))),
        }
    }
    let base = stage.mark();
    let shared = touched.clone();
    if mode.force {
        touched.nginx = true;
        for item in items {
            if let Desired::Present(spec) = &item.desired
                && let SiteBackend::Php { version, .. } = spec.backend
                && spec.enabled
            {
                touched.php.insert(version);
            }
        }
    }

    // Accounts and directories first: PHP-FPM's check needs the pool's user to exist.
    let mut created: Vec<(i64, AccountName)> = Vec::new();
    let mut ready: Vec<&Item> = Vec::new();
    for item in items {
        if failed.iter().any(|(k, _)| *k == item.key) {
            continue;
        }
        match prepare(layout, item) {
            Ok(Some(user)) => {
                created.push((item.key, user));
                ready.push(item);
            }
            Ok(None) => ready.push(item),
            Err(e) => failed.push((item.key, e)),
        }
    }

    // Stage every ready item, validate once; on failure retry one by one.
    let mut kept: Vec<&Item> = Vec::new();
    let mut all = touched.clone();
    let mut staged_ok = true;
    for item in &ready {
        match stage_item(layout, &item.desired, &mut stage) {
            Ok(t) => all.merge(&t),
            Err(e) => {
                failed.push((item.key, e));
                staged_ok = false;
            }
        }
    }
    let validated = staged_ok && validate(layout, &all).is_ok();
    if validated {
        kept = ready
            .iter()
            .copied()
            .filter(|i| !failed.iter().any(|(k, _)| *k == i.key))
            .collect();
        touched = all;
    } else {
        if let Err(e) = stage.rollback_to(base) {
            tracing::error!("{e}");
        }
        failed.retain(|(k, _)| !ready.iter().any(|i| i.key == *k));
        for item in &ready {
            let mark = stage.mark();
            let result = stage_item(layout, &item.desired, &mut stage).and_then(|t| {
                let mut with = touched.clone();
                with.merge(&t);
                validate(layout, &with).map(|()| with)
            });
            match result {
                Ok(with) => {
                    touched = with;
                    kept.push(item);
                }
                Err(e) => {
                    if let Err(r) = stage.rollback_to(mark) {
                        tracing::error!("{r}");
                    }
                    failed.push((item.key, e));
                }
            }
        }
    }
    // Without a site kept, only the shared files (and removed orphans) may have changed: they
    // alone decide whether to reload, and go back too if they do not validate.
    if kept.is_empty() {
        touched = shared;
        if (touched.nginx || !touched.php.is_empty()) && validate(layout, &touched).is_err() {
            if let Err(e) = stage.rollback_to(Mark::default()) {
                tracing::error!("{e}");
            }
            touched = Touched::default();
        }
    }

    // Reload each master once, PHP-FPM first so the sockets exist when nginx points at them.
    let mut reload_error: Option<String> = None;
    if layout.is_system() {
        for version in &touched.php {
            let sockets = sockets_of(&kept, *version);
            match masters::reload_php_fpm(layout, *version, &sockets) {
                Ok(()) => outcome.php_reloaded.push(*version),
                Err(e) => reload_error = Some(e),
            }
        }
        if touched.nginx && reload_error.is_none() {
            match masters::reload_nginx(layout) {
                Ok(()) => outcome.nginx_reloaded = true,
                Err(e) => reload_error = Some(e),
            }
        }
    }

    // Removed sites lose their account; their kept files become root's.
    for item in &kept {
        if reload_error.is_some() {
            break;
        }
        if let Desired::Absent { domain, user } = &item.desired
            && let Err(e) = retire(layout, domain, user.as_ref())
        {
            failed.push((item.key, e));
        }
    }
    // A site that failed gives back the account this apply made for it.
    for (key, user) in &created {
        if failed.iter().any(|(k, _)| k == key)
            && let Err(e) = accounts::remove_user(user, &layout.nginx_user, layout.timeout)
        {
            tracing::warn!("could not remove the account {user} of a failed apply: {e}");
        }
    }

    outcome.changed = stage.len();
    outcome.results = items
        .iter()
        .map(|item| {
            let result = match failed.iter().find(|(k, _)| *k == item.key) {
                Some((_, e)) => Err(e.clone()),
                None => match &reload_error {
                    Some(e) => Err(e.clone()),
                    None => Ok(()),
                },
            };
            (item.key, result)
        })
        .collect();
    outcome
}

/// Takes the apply lock (blocking until another process's apply ends).
fn lock(layout: &HostLayout) -> Result<File, String> {
    let dir = layout.nginx_dir.as_path();
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(".apply.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open the apply lock {}: {e}", path.display()))?;
    file.lock()
        .map_err(|e| format!("cannot take the apply lock {}: {e}", path.display()))?;
    Ok(file)
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("cannot write {}: {e}", path.display())
}

fn stage_globals(
    layout: &HostLayout,
    stage: &mut Stage,
    touched: &mut Touched,
) -> Result<(), String> {
    let catch_all = layout
        .sites_dir
        .join(CATCH_ALL_FILE)
        .map_err(|e| e.to_string())?;
    touched.nginx |= stage
        .set(
            catch_all.as_path(),
            Some(&render::catch_all(&layout.listen)),
        )
        .map_err(io_err(catch_all.as_path()))?;
    if let Some(include) = &layout.nginx_include {
        touched.nginx |= stage
            .set(
                include.as_path(),
                Some(&render::nginx_include(&layout.sites_dir)),
            )
            .map_err(io_err(include.as_path()))?;
    }
    if let Some(root) = &layout.sandbox_root {
        // What the sandbox's main configuration points nginx -t at.
        for dir in ["run", "var/log/nginx", "var/lib/nginx"] {
            let dir = root.as_path().join(dir);
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let main = render::sandbox_nginx_main(root, &layout.sites_dir);
        touched.nginx |= stage
            .set(layout.nginx_conf.as_path(), Some(&main))
            .map_err(io_err(layout.nginx_conf.as_path()))?;
    }
    Ok(())
}

/// Stages the removal of managed vhosts and pools of sites not in `items`, removes stray
/// `*.vipanel-new` files, and removes site accounts no site uses; what went.
fn stage_orphans(
    layout: &HostLayout,
    items: &[Item],
    stage: &mut Stage,
    touched: &mut Touched,
) -> Result<Vec<String>, String> {
    let domains: HashSet<&str> = items.iter().map(|i| i.desired.domain().as_str()).collect();
    let mut removed = Vec::new();
    let mut dirs: Vec<(SafePath, Option<PhpVersion>)> = vec![(layout.sites_dir.clone(), None)];
    for version in layout.pool_versions() {
        if let Ok(dir) = layout.php_pool_dir.at(version) {
            dirs.push((dir, Some(version)));
        }
    }
    for (dir, version) in dirs {
        let Ok(entries) = fs::read_dir(dir.as_path()) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.ends_with(stage::NEW_SUFFIX) {
                fs::remove_file(&path).map_err(io_err(&path))?;
                removed.push(path.display().to_string());
                continue;
            }
            let domain = match version {
                None if name != CATCH_ALL_FILE => name.strip_suffix(".conf"),
                Some(_) => name
                    .strip_prefix(POOL_FILE_PREFIX)
                    .and_then(|n| n.strip_suffix(".conf")),
                None => None,
            };
            let Some(domain) = domain else { continue };
            if domains.contains(domain) || !is_managed(&path) {
                continue;
            }
            stage.set(&path, None).map_err(io_err(&path))?;
            match version {
                Some(v) => {
                    touched.php.insert(v);
                }
                None => touched.nginx = true,
            }
            removed.push(path.display().to_string());
        }
    }
    if layout.is_system() {
        let users: HashSet<&str> = items
            .iter()
            .filter_map(|i| match &i.desired {
                Desired::Present(spec) => Some(spec.user.as_str()),
                Desired::Absent { user, .. } => user.as_ref().map(AccountName::as_str),
            })
            .collect();
        for name in accounts::accounts_where(|n| layout.is_site_user(n) && !users.contains(n)) {
            let Ok(account) = AccountName::parse(&name) else {
                continue;
            };
            accounts::remove_user(&account, &layout.nginx_user, layout.timeout)?;
            removed.push(format!("account {name}"));
        }
    }
    Ok(removed)
}

fn is_managed(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|text| {
        text.lines()
            .take(3)
            .any(|l| l.contains(render::MANAGED_MARK))
    })
}

/// Accounts and directories of a present site; the account, if this call created it.
fn prepare(layout: &HostLayout, item: &Item) -> Result<Option<AccountName>, String> {
    let Desired::Present(spec) = &item.desired else {
        return Ok(None);
    };
    let (owner, created): (Option<Ids>, bool) = if layout.is_system() {
        let (ids, created) = accounts::ensure_user(spec, &layout.nginx_user, layout.timeout)?;
        (Some(ids), created)
    } else {
        (None, false)
    };
    accounts::ensure_dirs(spec, owner)
        .map_err(|e| format!("cannot prepare the directories of {}: {e}", spec.domain))?;
    Ok(created.then(|| spec.user.clone()))
}

/// Stages the vhost and pool files of one item.
fn stage_item(
    layout: &HostLayout,
    desired: &Desired,
    stage: &mut Stage,
) -> Result<Touched, String> {
    let mut touched = Touched::default();
    let domain = desired.domain();
    let vhost_path = layout.vhost_path(domain).map_err(|e| e.to_string())?;
    let vhost = match desired {
        Desired::Present(spec) => Some(render::vhost(spec)),
        Desired::Absent { .. } => None,
    };
    touched.nginx |= stage
        .set(vhost_path.as_path(), vhost.as_deref())
        .map_err(io_err(vhost_path.as_path()))?;
    let wanted: Option<(PhpVersion, String)> = match desired {
        Desired::Present(spec) => match (&spec.backend, render::pool(spec, &layout.nginx_user)) {
            (SiteBackend::Php { version, .. }, Some(pool)) => Some((*version, pool)),
            _ => None,
        },
        Desired::Absent { .. } => None,
    };
    let mut versions = layout.pool_versions();
    if let Some((version, _)) = &wanted {
        versions.push(*version);
        versions.sort();
        versions.dedup();
    }
    for version in versions {
        let path = layout
            .pool_path(version, domain)
            .map_err(|e| e.to_string())?;
        let content = wanted
            .as_ref()
            .filter(|(v, _)| *v == version)
            .map(|(_, text)| text.as_str());
        if stage
            .set(path.as_path(), content)
            .map_err(io_err(path.as_path()))?
        {
            touched.php.insert(version);
        }
    }
    Ok(touched)
}

/// Validates what changed: nginx's configuration, and each touched PHP version's (system mode,
/// installed versions; sandbox pools name accounts that do not exist).
fn validate(layout: &HostLayout, touched: &Touched) -> Result<(), String> {
    let nginx_installed = layout.nginx_binary.exists();
    if touched.nginx {
        if nginx_installed {
            masters::test_nginx(layout)?;
        } else if layout.is_system() {
            return Err(format!(
                "nginx is not installed ({} is missing; host.nginx_binary)",
                layout.nginx_binary.display()
            ));
        }
    }
    if layout.is_system() {
        for version in &touched.php {
            masters::test_php_fpm(layout, *version)?;
        }
    }
    Ok(())
}

fn sockets_of(items: &[&Item], version: PhpVersion) -> Vec<SafePath> {
    items
        .iter()
        .filter_map(|item| match &item.desired {
            Desired::Present(spec) if spec.enabled => match &spec.backend {
                SiteBackend::Php { version: v, socket } if *v == version => Some(socket.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// After a removed site's vhost and pool are gone: its account goes and its kept files are
/// handed to root, so a future account with the same number never owns them.
fn retire(
    layout: &HostLayout,
    domain: &DomainName,
    user: Option<&AccountName>,
) -> Result<(), String> {
    if !layout.is_system() {
        return Ok(());
    }
    if let Some(user) = user {
        accounts::remove_user(user, &layout.nginx_user, layout.timeout)?;
    }
    let home = layout.home(domain).map_err(|e| e.to_string())?;
    accounts::chown_tree(home.as_path(), None)
        .map_err(|e| format!("cannot hand {home} to root: {e}"))
}

/// Removes a site's files: its home, its logs and its hooks (`site delete --purge`).
pub fn purge(layout: &HostLayout, domain: &DomainName) -> Result<(), String> {
    for dir in [
        layout.home(domain),
        layout.site_log_dir(domain),
        layout.hooks_dir(domain),
    ] {
        let dir = dir.map_err(|e| e.to_string())?;
        accounts::remove_tree(&dir).map_err(|e| format!("cannot remove {dir}: {e}"))?;
    }
    Ok(())
}
