//! One apply: make the host match what a batch of sites should be, or change nothing.
//!
//! The caller holds the apply lock ([`ApplyLock`], `<nginx_dir>/.apply.lock`) from before it
//! reads what the sites should be until the apply ends, so a `vipanel admin` run and the daemon
//! never interleave and never apply stale rows. Then: prepare accounts and directories → render
//! and stage every file (written beside, then swapped) → validate once (`nginx -t`,
//! `php-fpmX.Y -t` for the installed versions whose pools changed) → on failure put every file
//! back and, when the batch held several sites, retry them one by one so only the broken ones
//! fail → reload each master once (on a failed reload: put the files back and reload again) →
//! retire removed sites (their account goes, their files are purged or moved aside). A batch
//! that changes no file validates and reloads nothing.

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
    /// Removed: its vhost and pools go, then its account; its files are deleted (`purge`) or
    /// moved aside into `<dir>/.deleted/` (see [`retire`]).
    Absent {
        domain: DomainName,
        user: Option<AccountName>,
        purge: bool,
    },
}

impl Desired {
    pub fn domain(&self) -> &DomainName {
        match self {
            Desired::Present(spec) => &spec.domain,
            Desired::Absent { domain, .. } => domain,
        }
    }

    fn user(&self) -> Option<&AccountName> {
        match self {
            Desired::Present(spec) => Some(&spec.user),
            Desired::Absent { user, .. } => user.as_ref(),
        }
    }
}

/// A site in a batch; `key` identifies it to the caller.
#[derive(Debug, Clone)]
pub struct Item {
    pub key: i64,
    pub desired: Desired,
}

/// How a batch is applied.
#[derive(Debug, Clone, Default)]
pub struct Mode {
    /// The batch is every site there is: managed files and site accounts that belong to none
    /// of them are removed too (`host reconcile`).
    pub full: bool,
    /// Validate and reload even when no managed file changed (`site apply`: an include hook,
    /// which is not ours, may have).
    pub force: bool,
    /// Full mode: domains and accounts of sites that exist but could not be turned into an
    /// item (a row that no longer validates); their files are left alone, never orphans.
    pub keep: HashSet<String>,
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
    /// Managed files and accounts that belonged to no site (full reconcile only), and those
    /// that could not be removed, with why.
    pub orphans_removed: Vec<String>,
}

/// The exclusive apply lock, held from reading the sites until the apply ends.
#[derive(Debug)]
pub struct ApplyLock {
    _file: File,
}

/// Takes the apply lock, blocking until another process's apply ends.
pub fn lock(layout: &HostLayout) -> Result<ApplyLock, String> {
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
    Ok(ApplyLock { _file: file })
}

/// What staging touched: nginx's configuration, and the pools of these PHP versions.
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

    fn any(&self) -> bool {
        self.nginx || !self.php.is_empty()
    }
}

/// The work of one apply: its staged files and what has failed so far.
struct Run<'a> {
    layout: &'a HostLayout,
    stage: Stage,
    failed: Vec<(i64, String)>,
}

impl Run<'_> {
    fn has_failed(&self, key: i64) -> bool {
        self.failed.iter().any(|(k, _)| *k == key)
    }

    fn restore(&mut self, mark: Mark) {
        if let Err(e) = self.stage.rollback_to(mark) {
            tracing::error!("{e}");
        }
    }
}

/// Applies a batch; the caller holds `_lock`.
pub fn apply(layout: &HostLayout, _lock: &ApplyLock, items: &[Item], mode: &Mode) -> Outcome {
    let mut outcome = Outcome::default();
    let mut run = Run {
        layout,
        stage: Stage::default(),
        failed: Vec::new(),
    };
    let installed: BTreeSet<PhpVersion> = layout.installed_php().into_iter().collect();

    // Files every site relies on: the catch-all, the include (or the sandbox's main config);
    // in full mode the removal of managed files no site owns.
    let mut shared = Touched::default();
    if let Err(e) = stage_globals(layout, &mut run.stage, &mut shared) {
        run.restore(Mark::default());
        outcome.results = items.iter().map(|i| (i.key, Err(e.clone()))).collect();
        return outcome;
    }
    let mut orphan_accounts = Vec::new();
    if mode.full {
        match stage_orphans(layout, items, mode, &mut run.stage, &mut shared) {
            Ok((files, accounts)) => {
                outcome.orphans_removed = files;
                orphan_accounts = accounts;
            }
            Err(e) => run.failed.extend(items.iter().map(|i| (i.key, e.clone()))),
        }
    }
    let base = run.stage.mark();

    // Accounts and directories first: PHP-FPM's check needs the pool's user to exist.
    let mut created: Vec<(i64, AccountName)> = Vec::new();
    let mut ready: Vec<&Item> = Vec::new();
    for item in items {
        if run.has_failed(item.key) {
            continue;
        }
        match prepare(layout, item) {
            Ok(made) => {
                created.extend(made.map(|user| (item.key, user)));
                ready.push(item);
            }
            Err(e) => run.failed.push((item.key, e)),
        }
    }

    let mut forced = shared.clone();
    if mode.force {
        forced.nginx = true;
        for item in &ready {
            if let Desired::Present(spec) = &item.desired
                && let SiteBackend::Php { version, .. } = spec.backend
                && spec.enabled
            {
                forced.php.insert(version);
            }
        }
    }
    let (kept, touched) = stage_and_validate(&mut run, &ready, base, &forced, &installed);

    // Without a site kept, only the shared files (and removed orphans) may have changed: they
    // alone decide whether to reload, and go back too if they do not validate.
    let touched = if kept.is_empty() {
        if shared.any() && validate(layout, &shared, &installed).is_err() {
            run.restore(Mark::default());
            Touched::default()
        } else {
            shared
        }
    } else {
        touched
    };

    let reload_error = if layout.is_system() {
        reload(layout, &touched, &kept, &installed, &mut outcome).err()
    } else {
        None
    };
    if let Some(error) = &reload_error {
        // The new files are valid but a master did not take them: put the old ones back and
        // reload again, so every master runs what it ran before.
        run.restore(Mark::default());
        let mut again = Outcome::default();
        if let Err(e) = reload(layout, &touched, &[], &installed, &mut again) {
            tracing::error!("reloading the previous configuration failed too: {e}");
        }
        tracing::error!("{error}");
    }

    if reload_error.is_none() {
        for item in &kept {
            if let Desired::Absent {
                domain,
                user,
                purge,
            } = &item.desired
                && let Err(e) = retire(layout, domain, user.as_ref(), *purge)
            {
                run.failed.push((item.key, e));
            }
        }
        for account in orphan_accounts {
            match accounts::give_back(layout, &account) {
                Ok(()) => outcome.orphans_removed.push(format!("account {account}")),
                Err(e) => outcome
                    .orphans_removed
                    .push(format!("account {account} (not removed: {e})")),
            }
        }
    }
    // A site that failed gives back the account this apply made for it, and its directories
    // go to root, so a later account that gets the same number does not own them.
    for (key, user) in &created {
        let failed = run.has_failed(*key) || reload_error.is_some();
        if failed && let Err(e) = accounts::give_back(layout, user) {
            tracing::warn!("could not remove the account {user} of a failed apply: {e}");
        }
    }

    outcome.changed = run.stage.len();
    outcome.results = items
        .iter()
        .map(|item| {
            let result = match run.failed.iter().find(|(k, _)| *k == item.key) {
                Some((_, e)) => Err(e.clone()),
                None => reload_error.clone().map_or(Ok(()), Err),
            };
            (item.key, result)
        })
        .collect();
    outcome
}

/// Stages every ready item and validates once; when that fails, puts everything back to `base`
/// and stages and validates the items one by one. The items kept and what they touched.
fn stage_and_validate<'i>(
    run: &mut Run<'_>,
    ready: &[&'i Item],
    base: Mark,
    start: &Touched,
    installed: &BTreeSet<PhpVersion>,
) -> (Vec<&'i Item>, Touched) {
    let mut all = start.clone();
    let mut staged_ok = true;
    for item in ready {
        match stage_item(run.layout, &item.desired, &mut run.stage) {
            Ok(t) => all.merge(&t),
            Err(e) => {
                run.failed.push((item.key, e));
                staged_ok = false;
            }
        }
    }
    if staged_ok && validate(run.layout, &all, installed).is_ok() {
        let kept = ready
            .iter()
            .copied()
            .filter(|i| !run.has_failed(i.key))
            .collect();
        return (kept, all);
    }
    run.restore(base);
    run.failed
        .retain(|(k, _)| !ready.iter().any(|i| i.key == *k));
    let mut kept = Vec::new();
    let mut touched = start.clone();
    for item in ready {
        let mark = run.stage.mark();
        let result = stage_item(run.layout, &item.desired, &mut run.stage).and_then(|t| {
            let mut with = touched.clone();
            with.merge(&t);
            validate(run.layout, &with, installed).map(|()| with)
        });
        match result {
            Ok(with) => {
                touched = with;
                kept.push(*item);
            }
            Err(e) => {
                run.restore(mark);
                run.failed.push((item.key, e));
            }
        }
    }
    (kept, touched)
}

/// Reloads each touched master once: PHP-FPM first (waiting for the sockets of `kept` sites),
/// then nginx. Versions that are not installed have no master to reload.
fn reload(
    layout: &HostLayout,
    touched: &Touched,
    kept: &[&Item],
    installed: &BTreeSet<PhpVersion>,
    outcome: &mut Outcome,
) -> Result<(), String> {
    for version in touched.php.intersection(installed) {
        let sockets = sockets_of(kept, *version);
        masters::reload_php_fpm(layout, *version, &sockets)?;
        outcome.php_reloaded.push(*version);
    }
    if touched.nginx {
        masters::reload_nginx(layout)?;
        outcome.nginx_reloaded = true;
    }
    Ok(())
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

/// Stages the removal of managed vhosts and pools of sites not in `items` (nor `mode.keep`),
/// removes stray `*.vipanel-new` files; the files that went, and the site accounts no site
/// uses (removed once the apply has reloaded).
fn stage_orphans(
    layout: &HostLayout,
    items: &[Item],
    mode: &Mode,
    stage: &mut Stage,
    touched: &mut Touched,
) -> Result<(Vec<String>, Vec<AccountName>), String> {
    let mut known: HashSet<&str> = items.iter().map(|i| i.desired.domain().as_str()).collect();
    known.extend(mode.keep.iter().map(String::as_str));
    let mut removed = Vec::new();
    let mut dirs: Vec<(SafePath, Option<PhpVersion>)> = vec![(layout.sites_dir.clone(), None)];
    for version in layout.pool_versions() {
        if let Ok(dir) = layout.php_pool_dir.at(version) {
            dirs.push((dir, Some(version)));
        }
    }
    if let Some(parent) = layout
        .nginx_include
        .as_ref()
        .and_then(|p| p.as_path().parent())
    {
        remove_strays(parent, &mut removed)?;
    }
    for (dir, version) in dirs {
        remove_strays(dir.as_path(), &mut removed)?;
        let Ok(entries) = fs::read_dir(dir.as_path()) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let domain = match version {
                None if name != CATCH_ALL_FILE => name.strip_suffix(".conf"),
                Some(_) => name
                    .strip_prefix(POOL_FILE_PREFIX)
                    .and_then(|n| n.strip_suffix(".conf")),
                None => None,
            };
            let Some(domain) = domain else { continue };
            if known.contains(domain) || !is_managed(&path) {
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
    let mut accounts = Vec::new();
    if layout.is_system() {
        let mut users: HashSet<&str> = items
            .iter()
            .filter_map(|i| i.desired.user().map(AccountName::as_str))
            .collect();
        users.extend(mode.keep.iter().map(String::as_str));
        for name in accounts::accounts_where(|n| layout.is_site_user(n) && !users.contains(n)) {
            if let Ok(account) = AccountName::parse(&name) {
                accounts.push(account);
            }
        }
    }
    Ok((removed, accounts))
}

/// Removes `*.vipanel-new` files a crash left in `dir`.
fn remove_strays(dir: &Path, removed: &mut Vec<String>) -> Result<(), String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.filter_map(|e| e.ok()) {
        if entry
            .file_name()
            .to_string_lossy()
            .ends_with(stage::NEW_SUFFIX)
        {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_err(&path))?;
            removed.push(path.display().to_string());
        }
    }
    Ok(())
}

fn is_managed(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|text| {
        text.lines()
            .take(3)
            .any(|l| l.contains(render::MANAGED_MARK))
    })
}

/// Accounts and directories of a present site; the account, if this call created it. An
/// account created here is removed again when a later step fails.
fn prepare(layout: &HostLayout, item: &Item) -> Result<Option<AccountName>, String> {
    let Desired::Present(spec) = &item.desired else {
        return Ok(None);
    };
    if !layout.is_system() {
        accounts::ensure_dirs(layout, spec, None)
            .map_err(|e| format!("cannot prepare the directories of {}: {e}", spec.domain))?;
        return Ok(None);
    }
    let (ids, created): (Ids, bool) = accounts::ensure_user(spec, layout.timeout)?;
    let ready =
        accounts::join_site_group(spec, &layout.nginx_user, layout.timeout).and_then(|()| {
            accounts::ensure_dirs(layout, spec, Some(ids))
                .map_err(|e| format!("cannot prepare the directories of {}: {e}", spec.domain))
        });
    match ready {
        Ok(()) => Ok(created.then(|| spec.user.clone())),
        Err(e) => {
            if created && let Err(undo) = accounts::give_back(layout, &spec.user) {
                tracing::warn!("could not remove the account {}: {undo}", spec.user);
            }
            Err(e)
        }
    }
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

/// Validates what changed: nginx's configuration, and the pools of each touched PHP version
/// that is installed (system mode: sandbox pools name accounts that do not exist; a removed
/// version's leftover pools are only deleted).
fn validate(
    layout: &HostLayout,
    touched: &Touched,
    installed: &BTreeSet<PhpVersion>,
) -> Result<(), String> {
    if touched.nginx {
        if layout.nginx_binary.exists() {
            masters::test_nginx(layout)?;
        } else if layout.is_system() {
            return Err(format!(
                "nginx is not installed ({} is missing; host.nginx_binary)",
                layout.nginx_binary.display()
            ));
        }
    }
    if layout.is_system() {
        for version in touched.php.intersection(installed) {
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

/// After a removed site's vhost and pool are gone: its account goes, then its files (home,
/// logs, hooks) are deleted with `purge`, or else moved aside into `<dir>/.deleted/` and
/// handed to root, so neither a later account with the same number nor a later site with the
/// same domain (perhaps of another tenant) gets them.
fn retire(
    layout: &HostLayout,
    domain: &DomainName,
    user: Option<&AccountName>,
    purge: bool,
) -> Result<(), String> {
    if layout.is_system()
        && let Some(user) = user
    {
        accounts::remove_user(user, &layout.nginx_user, layout.timeout)?;
    }
    let dirs = [
        layout.home(domain),
        layout.site_log_dir(domain),
        layout.hooks_dir(domain),
    ];
    for dir in dirs {
        let dir = dir.map_err(|e| e.to_string())?;
        if purge {
            accounts::remove_tree(&dir).map_err(|e| format!("cannot remove {dir}: {e}"))?;
        } else {
            accounts::move_aside(&dir, layout.is_system())
                .map_err(|e| format!("cannot move {dir} aside: {e}"))?;
        }
    }
    Ok(())
}
