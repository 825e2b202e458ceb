//! Per-site system accounts and the site's directories (system mode).
//!
//! Each site gets an account of its own (`<prefix><site id>`, its own group, no login shell)
//! that owns its home and runs its PHP. The nginx worker account joins each site's group so
//! it can read the files; other sites' accounts cannot (homes are 0750).

use super::process::run_ok;
use super::spec::{AccountName, SafePath, SiteSpec};
use std::fs;
use std::io;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, lchown};
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
        secure_dir(dir, mode, owner)?;
    }
    if let (true, Some(ids)) = (adopting, owner) {
        chown_tree(home, Some(ids))?;
    }
    if let Some(log_dir) = site.access_log.as_path().parent() {
        secure_dir(log_dir, 0o750, None)?;
    }
    // The operator's hooks are nginx configuration: root's, never the site's.
    secure_dir(site.hooks_dir.as_path(), 0o755, None)?;
    let public = site.document_root.as_path();
    if fs::read_dir(public)?.next().is_none() {
        write_placeholder(&public.join("index.html"), site, owner)?;
    }
    Ok(())
}

/// Creates a directory when missing, then sets its mode and owner through a handle opened
/// without following a symbolic link: the site's account controls the entries of its home, and
/// a `public` swapped for a link to `/etc` must fail here, not hand `/etc` to the site.
/// `owner` `None` leaves the owner as created (root, or whoever runs a sandbox).
fn secure_dir(dir: &Path, mode: u32, owner: Option<Ids>) -> io::Result<()> {
    if fs::symlink_metadata(dir).is_err() {
        fs::create_dir_all(dir)?;
    }
    let handle = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| {
            io::Error::other(format!(
                "{} is not a plain directory ({e}); vipanel refuses to manage it",
                dir.display()
            ))
        })?;
    handle.set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some(ids) = owner {
        std::os::unix::fs::fchown(&handle, Some(ids.uid), Some(ids.gid))?;
    }
    Ok(())
}

/// The placeholder page of a new site, created only if no such file (or link) exists.
fn write_placeholder(page: &Path, site: &SiteSpec, owner: Option<Ids>) -> io::Result<()> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(page);
    let mut file = match file {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    };
    file.write_all(placeholder(site).as_bytes())?;
    if let Some(ids) = owner {
        std::os::unix::fs::fchown(&file, Some(ids.uid), Some(ids.gid))?;
    }
    Ok(())
}

/// Changes the owner of everything under `root` without following symbolic links; `None`
/// hands it to root (what a deleted site's kept files become). Runs only while no process of
/// the site's account can change the tree: after its account (and pool) are gone, or before a
/// new account has run anything.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_swapped_for_a_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o711)).unwrap();
        let public = dir.path().join("public");
        std::os::unix::fs::symlink(&target, &public).unwrap();
        let err = secure_dir(&public, 0o750, None).unwrap_err();
        assert!(err.to_string().contains("refuses"), "{err}");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o711, "the link's target keeps its mode");

        let plain = dir.path().join("plain");
        secure_dir(&plain, 0o750, None).unwrap();
        assert_eq!(
            fs::metadata(&plain).unwrap().permissions().mode() & 0o777,
            0o750
        );
    }

    #[test]
    fn the_placeholder_never_follows_a_link_or_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let page = dir.path().join("index.html");
        std::os::unix::fs::symlink(&victim, &page).unwrap();
        let layout = crate::host::HostLayout::from_config(&crate::config::Config {
            data_dir: dir.path().join("data"),
            ..crate::config::Config::default()
        })
        .unwrap();
        let spec = layout
            .site_spec(&crate::host::SiteInput {
                domain: crate::domain::DomainName::parse("a.example").unwrap(),
                aliases: Vec::new(),
                backend: crate::host::Backend::Static,
                enabled: true,
                user: AccountName::parse("vpsite1").unwrap(),
            })
            .unwrap();
        write_placeholder(&page, &spec, None).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
    }
}
