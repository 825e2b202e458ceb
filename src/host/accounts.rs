//! Per-site system accounts and the site's directories (system mode).
//!
//! Each site gets an account of its own (`<prefix><site id>`, its own group, no login shell)
//! that owns its home and runs its PHP. The nginx worker account joins each site's group so
//! it can read the files; other sites' accounts cannot (homes are 0750).
//!
//! A site's account controls the entries of its home, so everything below the home is reached
//! through directory handles opened without following links, and named relative to them
//! (`/proc/self/fd/N/NAME`): an entry swapped for a symbolic link between a check and a use
//! makes the use fail instead of reaching, say, `/etc`.
use super::layout::HostLayout;
use super::process::run_ok;
use super::spec::{AccountName, SafePath, SiteSpec};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, fchown, lchown};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A Unix account as `/etc/passwd` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

/// Looks an account up in `/etc/passwd` (the files this layer changes through useradd).
pub fn lookup(name: &str) -> Option<Ids> {
    entry(name).map(|(ids, _)| ids)
}

/// An account's ids and home directory.
fn entry(name: &str) -> Option<(Ids, PathBuf)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 7 || fields[0] != name {
            return None;
        }
        let ids = Ids {
            uid: fields[2].parse().ok()?,
            gid: fields[3].parse().ok()?,
        };
        Some((ids, PathBuf::from(fields[5])))
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

/// The supplementary members of a group, from `/etc/group`.
fn group_members(name: &str) -> Vec<String> {
    fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() == 4 && fields[0] == name).then(|| {
                fields[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn group_exists(name: &str) -> bool {
    fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split(':').next() == Some(name))
}

/// Creates the site's account when missing; whether it was created (so a failed apply can
/// remove it again).
pub fn ensure_user(site: &SiteSpec, timeout: Duration) -> Result<(Ids, bool), String> {
    let name = site.user.as_str();
    let created = match lookup(name) {
        Some(_) => false,
        None => {
            let comment = format!("vipanel site {}", site.domain);
            run_ok(
                "useradd",
                // Not --system: Debian's system range (100-999) holds fewer than 900 accounts;
                // sites take ordinary ids (UID_MIN..UID_MAX of /etc/login.defs).
                &[
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
    Ok((ids, created))
}

/// Lets the nginx account read the site's files (it joins the site's group).
pub fn join_site_group(
    site: &SiteSpec,
    nginx_user: &AccountName,
    timeout: Duration,
) -> Result<(), String> {
    // Most applies find it there already: gpasswd would rewrite /etc/group for nothing.
    if group_members(site.user.as_str())
        .iter()
        .any(|m| m == nginx_user.as_str())
    {
        return Ok(());
    }
    run_ok(
        "gpasswd",
        &["-a", nginx_user.as_str(), site.user.as_str()],
        timeout,
    )
    .map(drop)
}

/// Removes an account this layer made (a failed apply's, or one no site uses any more) and
/// hands its home, when it is under the web root, to root: a later account that gets the same
/// number must not own those files.
pub fn give_back(layout: &HostLayout, user: &AccountName) -> Result<(), String> {
    let home = entry(user.as_str()).map(|(_, home)| home);
    remove_user(user, &layout.nginx_user, layout.timeout)?;
    if let Some(home) = home
        && home.parent() == Some(layout.web_root.as_path())
    {
        chown_tree(&home, None)
            .map_err(|e| format!("cannot hand {} to root: {e}", home.display()))?;
    }
    Ok(())
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
/// (sandbox: by whoever runs vipanel); logs (0750, root's, group of the nginx account so its
/// workers can reopen them); hooks (0755, root's: they are nginx configuration). A new, empty
/// public directory gets a placeholder page. A home left by an earlier site with this domain and
/// handed to root (a failed create) is handed to the new account.
pub fn ensure_dirs(layout: &HostLayout, site: &SiteSpec, owner: Option<Ids>) -> io::Result<()> {
    // The bases: traversable by nginx and the site accounts, not listable (the daemon's umask
    // may be 0077, so modes are always set explicitly).
    for base in [layout.web_root.as_path(), layout.log_dir.as_path()] {
        secure_dir(base, 0o711, None, None)?;
    }
    let kept = fs::symlink_metadata(site.home.as_path()).is_ok_and(|m| m.is_dir() && m.uid() == 0);
    let home = secure_dir(site.home.as_path(), 0o750, owner, None)?;
    if let (true, Some(ids)) = (kept, owner) {
        chown_handle_tree(&home, Some(ids))?;
    }
    let public = secure_dir(Path::new("public"), 0o750, owner, Some(&home))?;
    secure_dir(Path::new("tmp"), 0o700, owner, Some(&home))?;
    if fs::read_dir(fd_path(&public, ""))?.next().is_none() {
        write_placeholder(&public, site, owner)?;
    }
    let log_group = if layout.is_system() {
        lookup(layout.nginx_user.as_str()).map(|nginx| Ids {
            uid: 0,
            gid: nginx.gid,
        })
    } else {
        None
    };
    if let Some(log_dir) = site.access_log.as_path().parent() {
        secure_dir(log_dir, 0o750, log_group, None)?;
    }
    // The operator's hooks are nginx configuration: root's, never the site's.
    secure_dir(site.hooks_dir.as_path(), 0o755, None, None)?;
    Ok(())
}

/// `/proc/self/fd/N/name`: `name` inside the directory the handle holds, whatever its path has
/// become since it was opened.
fn fd_path(dir: &File, name: &str) -> PathBuf {
    let base = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    if name.is_empty() {
        base
    } else {
        base.join(name)
    }
}

/// Creates a directory when missing, then sets its mode and owner through a handle opened
/// without following a symbolic link (`dir` is relative to `parent` when given); the handle.
/// `owner` `None` leaves the owner as created (root, or whoever runs a sandbox).
fn secure_dir(
    dir: &Path,
    mode: u32,
    owner: Option<Ids>,
    parent: Option<&File>,
) -> io::Result<File> {
    let path = match parent {
        Some(parent) => fd_path(parent, &dir.to_string_lossy()),
        None => dir.to_path_buf(),
    };
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => match parent {
            Some(_) => fs::create_dir(&path)?,
            None => fs::create_dir_all(&path)?,
        },
        _ => {}
    }
    let handle = open_dir(&path).map_err(|e| {
        io::Error::other(format!(
            "{} is not a plain directory ({e}); vipanel refuses to manage it",
            dir.display()
        ))
    })?;
    handle.set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some(ids) = owner {
        fchown(&handle, Some(ids.uid), Some(ids.gid))?;
    }
    Ok(handle)
}

fn open_dir(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(path)
}

/// The placeholder page of a new site, created in the directory the handle holds, only if no
/// such file (or link) exists.
fn write_placeholder(public: &File, site: &SiteSpec, owner: Option<Ids>) -> io::Result<()> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(fd_path(public, "index.html"));
    let mut file = match file {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    };
    file.write_all(placeholder(site).as_bytes())?;
    // Explicitly: the mode above is cut by the umask (systemd's unit sets 0077).
    file.set_permissions(fs::Permissions::from_mode(0o640))?;
    if let Some(ids) = owner {
        fchown(&file, Some(ids.uid), Some(ids.gid))?;
    }
    Ok(())
}

/// Changes the owner of everything under `root` (`None`: to root) without following symbolic
/// links: each directory is opened without following a link and its entries are named through
/// that handle, so an entry swapped for a link meanwhile is changed as the link itself, never
/// its target.
pub fn chown_tree(root: &Path, owner: Option<Ids>) -> io::Result<()> {
    match fs::symlink_metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => chown_handle_tree(&open_dir(root)?, owner),
        Ok(_) => {
            let (uid, gid) = owner.map_or((0, 0), |ids| (ids.uid, ids.gid));
            lchown(root, Some(uid), Some(gid))
        }
    }
}

fn chown_handle_tree(dir: &File, owner: Option<Ids>) -> io::Result<()> {
    let (uid, gid) = owner.map_or((0, 0), |ids| (ids.uid, ids.gid));
    fchown(dir, Some(uid), Some(gid))?;
    for entry in fs::read_dir(fd_path(dir, ""))? {
        let name = entry?.file_name();
        let path = fd_path(dir, &name.to_string_lossy());
        match open_dir(&path) {
            Ok(child) => chown_handle_tree(&child, owner)?,
            // Not a directory (or a link to one): the entry itself.
            Err(_) => match lchown(&path, Some(uid), Some(gid)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
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

/// Moves a deleted site's directory into `<parent>/.deleted/<name>.<unix time>` (0700, root's)
/// and, in system mode, hands it to root.
pub fn move_aside(dir: &SafePath, system: bool) -> io::Result<()> {
    let path = dir.as_path();
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let attic = parent.join(".deleted");
    fs::create_dir_all(&attic)?;
    fs::set_permissions(&attic, fs::Permissions::from_mode(0o700))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let target = attic.join(format!("{}.{stamp}", name.to_string_lossy()));
    fs::rename(path, &target)?;
    if system {
        chown_tree(&target, None)?;
    }
    Ok(())
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
        let err = secure_dir(&public, 0o750, None, None).unwrap_err();
        assert!(err.to_string().contains("refuses"), "{err}");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o711, "the link's target keeps its mode");

        let plain = dir.path().join("plain");
        secure_dir(&plain, 0o750, None, None).unwrap();
        // Relative to a handle: the same refusal for a link inside the directory held.
        let held = secure_dir(dir.path(), 0o755, None, None).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("tmp")).unwrap();
        assert!(secure_dir(Path::new("tmp"), 0o700, None, Some(&held)).is_err());
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o711
        );
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
        let public = open_dir(dir.path()).unwrap();
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
        write_placeholder(&public, &spec, None).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        fs::remove_file(&page).unwrap();
        write_placeholder(&public, &spec, None).unwrap();
        assert!(fs::read_to_string(&page).unwrap().contains("a.example"));
    }
}
