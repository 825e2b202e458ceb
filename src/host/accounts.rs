//! Per-site system accounts and the site's directories (system mode).
//!
//! Each site gets an account of its own (`<prefix><site id>`, its own group, no login shell)
//! that owns its home and runs its PHP. The nginx worker account joins each site's group so
//! it can read the files; other sites' accounts cannot (homes are 0750).

use super::process::run_ok;
use super::spec::{AccountName, SafePath, SiteSpec};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, lchown};
use std::path::Path;
use std::time::Duration;

/// A Unix account as `/etc/passwd` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

/// Looks an account up in `/etc/passwd` (the files this layer changes through useradd).
pub fn lookup(name: &str) -> Option<Ids> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let _password = fields.next()?;
        Some(Ids {
            uid: fields.next()?.parse().ok()?,
            gid: fields.next()?.parse().ok()?,
        })
    })
}

/// Account names in `/etc/passwd` that satisfy `keep`.
pub fn accounts_where(keep: impl Fn(&str) -> bool) -> Vec<String> {
    fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(':').next())
        .filter(|name| keep(name))
        .map(str::to_owned)
        .collect()
}

fn group_exists(name: &str) -> bool {
    fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split(':').next() == Some(name))
}

/// Creates the site's account when missing and lets the nginx account read its files; whether
/// it was created (so a failed apply can remove it again).
pub fn ensure_user(
    site: &SiteSpec,
    nginx_user: &AccountName,
    timeout: Duration,
) -> Result<(Ids, bool), String> {
    let name = site.user.as_str();
    let created = match lookup(name) {
        Some(_) => false,
        None => {
            let comment = format!("vipanel site {}", site.domain);
            run_ok(
                "useradd",
                &[
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    site.home.as_str(),
                    "--shell",
                    "/usr/sbin/nologin",
                    "--comment",
                    &comment,
                    "--user-group",
                    "--",
                    name,
                ],
                timeout,
            )?;
            true
        }
    };
    let ids = lookup(name).ok_or_else(|| format!("useradd did not create the account {name}"))?;
    run_ok("gpasswd", &["-a", nginx_user.as_str(), name], timeout)?;
    Ok((ids, created))
}

/// Removes the site's account and its group (after taking the nginx account out of it).
pub fn remove_user(
    name: &AccountName,
    nginx_user: &AccountName,
    timeout: Duration,
) -> Result<(), String> {
    if group_exists(name.as_str()) {
        // "not a member" is fine: the point is that the group can go.
        let _ = super::process::run(
            "gpasswd",
            &["-d", nginx_user.as_str(), name.as_str()],
            timeout,
        );
    }
    if lookup(name.as_str()).is_some() {
        run_ok("userdel", &["--", name.as_str()], timeout)?;
    }
    if group_exists(name.as_str()) {
        run_ok("groupdel", &["--", name.as_str()], timeout)?;
    }
    Ok(())
}

/// The site's directories: home (0750), public (0750) and tmp (0700) owned by the site's account
/// (sandbox: by whoever runs vipanel), logs (0750, root's: nginx's master writes them), hooks
/// (0755, root's: they are nginx configuration). A
/// new, empty public directory gets a placeholder page. Kept files of a deleted site with the
/// same domain are adopted: handed to the new account.
pub fn ensure_dirs(site: &SiteSpec, owner: Option<Ids>) -> io::Result<()> {
    let home = site.home.as_path();
    let adopting =
        owner.is_some_and(|ids| fs::symlink_metadata(home).is_ok_and(|m| m.uid() != ids.uid));
    for (dir, mode) in [
        (home, 0o750),
        (site.document_root.as_path(), 0o750),
        (site.tmp_dir.as_path(), 0o700),
    ] {
        make_dir(dir, mode)?;
        if let Some(ids) = owner {
            chown(dir, Some(ids.uid), Some(ids.gid))?;
        }
    }
    if let (true, Some(ids)) = (adopting, owner) {
        chown_tree(home, Some(ids))?;
    }
    if let Some(log_dir) = site.access_log.as_path().parent() {
        make_dir(log_dir, 0o750)?;
    }
    // The operator's hooks are nginx configuration: root's, never the site's.
    make_dir(site.hooks_dir.as_path(), 0o755)?;
    let public = site.document_root.as_path();
    if fs::read_dir(public)?.next().is_none() {
        let page = public.join("index.html");
        fs::write(&page, placeholder(site))?;
        fs::set_permissions(&page, fs::Permissions::from_mode(0o640))?;
        if let Some(ids) = owner {
            lchown(&page, Some(ids.uid), Some(ids.gid))?;
        }
    }
    Ok(())
}

fn make_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(io::Error::other(format!(
                "{} is a symbolic link; vipanel refuses to manage it",
                dir.display()
            )));
        }
        Ok(_) => {}
        Err(_) => fs::create_dir_all(dir)?,
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

/// Changes the owner of everything under `root` without following symbolic links; `None`
/// hands it to root (what a deleted site's kept files become).
pub fn chown_tree(root: &Path, owner: Option<Ids>) -> io::Result<()> {
    let (uid, gid) = owner.map_or((0, 0), |ids| (ids.uid, ids.gid));
    let meta = match fs::symlink_metadata(root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    lchown(root, Some(uid), Some(gid))?;
    if meta.is_dir() {
        for entry in fs::read_dir(root)? {
            chown_tree(&entry?.path(), owner)?;
        }
    }
    Ok(())
}

/// Removes a directory tree if it exists (never following symbolic links out of it).
pub fn remove_tree(path: &SafePath) -> io::Result<()> {
    match fs::remove_dir_all(path.as_path()) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn placeholder(site: &SiteSpec) -> String {
    format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>{domain}</title>\n\
         <p>{domain} is served by vipanel. Upload your site to replace this page.</p>\n",
        domain = site.domain
    )
}
