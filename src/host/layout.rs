//! Where everything lives on the host, resolved once from `[host]` and the data dir.
//!
//! In `sandbox` mode every configured path is re-rooted under `<data_dir>/host` (binaries are
//! not: they are the machine's real tools), so a dev run writes the same tree without touching
//! the system. Paths with `{version}` are per PHP version.

use super::spec::{AccountName, ListenAddr, SafePath, SiteBackend, SiteSpec};
use crate::config::{Config, HostMode, ReloadMethod};
use crate::domain::{DomainName, PhpVersion, Upstream};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file name of the catch-all server in the sites directory: `+` sorts before every
/// domain, so nginx meets it first for the listen addresses it shares with the sites.
pub const CATCH_ALL_FILE: &str = "+default.conf";
/// Pool files are `vipanel-<domain>.conf` in each version's pool directory.
pub const POOL_FILE_PREFIX: &str = "vipanel-";

/// A path pattern that may contain `{version}`.
#[derive(Debug, Clone)]
pub struct PerVersion(String);

impl PerVersion {
    pub fn at(&self, version: PhpVersion) -> Result<SafePath> {
        SafePath::parse(&self.0.replace("{version}", &version.to_string()))
    }

    /// The versions for which `{version}` names an existing entry: the directory before
    /// `{version}` is listed (e.g. `/usr/sbin` for `/usr/sbin/php-fpm{version}`).
    pub fn existing_versions(&self) -> Vec<PhpVersion> {
        let Some(at) = self.0.find("{version}") else {
            return Vec::new();
        };
        let (head, tail) = (&self.0[..at], &self.0[at + "{version}".len()..]);
        let (dir, name_prefix) = match head.rfind('/') {
            Some(slash) => (&head[..=slash], &head[slash + 1..]),
            None => return Vec::new(),
        };
        let name_suffix = tail.split('/').next().unwrap_or("");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut found: Vec<PhpVersion> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let middle = name.strip_prefix(name_prefix)?.strip_suffix(name_suffix)?;
                let version = PhpVersion::parse(middle).ok()?;
                self.at(version).ok()?.as_path().exists().then_some(version)
            })
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

/// The resolved host layout.
#[derive(Debug, Clone)]
pub struct HostLayout {
    pub mode: HostMode,
    /// Sandbox mode: the root every path is under.
    pub sandbox_root: Option<SafePath>,
    pub web_root: SafePath,
    pub log_dir: SafePath,
    pub nginx_binary: PathBuf,
    pub nginx_conf: SafePath,
    pub nginx_prefix: Option<SafePath>,
    pub nginx_dir: SafePath,
    pub sites_dir: SafePath,
    pub hooks_root: SafePath,
    pub nginx_include: Option<SafePath>,
    pub nginx_pid_file: SafePath,
    pub nginx_service: String,
    pub nginx_user: AccountName,
    pub php_fpm_binary: PerVersion,
    pub php_fpm_conf: PerVersion,
    pub php_pool_dir: PerVersion,
    pub php_fpm_pid_file: PerVersion,
    pub php_fpm_service: String,
    pub php_socket_dir: SafePath,
    pub reload: ReloadMethod,
    pub listen: Vec<ListenAddr>,
    pub user_prefix: String,
    pub timeout: Duration,
}

impl HostLayout {
    pub fn from_config(config: &Config) -> Result<HostLayout> {
        let host = &config.host;
        let sandbox_root = match host.mode {
            HostMode::System => None,
            HostMode::Sandbox => {
                let data_dir = absolute(&config.data_dir);
                let root = data_dir.join("host");
                Some(SafePath::parse(&root.to_string_lossy()).map_err(|e| {
                    Error::invalid(format!(
                        "host.mode = \"sandbox\" writes under the data dir, but {e}; use a \
                         data dir whose path has only letters, digits and . _ / + -"
                    ))
                })?)
            }
        };
        let place = |key: &str, value: &str| -> Result<SafePath> {
            let path =
                SafePath::parse(value).map_err(|e| Error::invalid(format!("host.{key}: {e}")))?;
            Ok(match &sandbox_root {
                Some(root) => path.rerooted(root),
                None => path,
            })
        };
        let per_version = |value: &str| -> PerVersion {
            match &sandbox_root {
                Some(root) => PerVersion(format!("{root}{value}")),
                None => PerVersion(value.to_owned()),
            }
        };
        let nginx_dir = place("nginx_dir", &host.nginx_dir)?;
        let nginx_prefix = match (&sandbox_root, host.nginx_prefix.is_empty()) {
            (Some(root), _) => Some(root.clone()),
            (None, true) => None,
            (None, false) => Some(place("nginx_prefix", &host.nginx_prefix)?),
        };
        let nginx_include = if host.nginx_include.is_empty() {
            None
        } else {
            Some(place("nginx_include", &host.nginx_include)?)
        };
        Ok(HostLayout {
            mode: host.mode,
            web_root: place("web_root", &host.web_root)?,
            log_dir: place("log_dir", &host.log_dir)?,
            nginx_binary: PathBuf::from(&host.nginx_binary),
            nginx_conf: place("nginx_conf", &host.nginx_conf)?,
            nginx_prefix,
            sites_dir: nginx_dir.join("sites")?,
            hooks_root: nginx_dir.join("custom.d")?,
            nginx_dir,
            nginx_include,
            nginx_pid_file: place("nginx_pid_file", &host.nginx_pid_file)?,
            nginx_service: host.nginx_service.clone(),
            nginx_user: AccountName::parse(&host.nginx_user)?,
            php_fpm_binary: PerVersion(host.php_fpm_binary.clone()),
            php_fpm_conf: per_version(&host.php_fpm_conf),
            php_pool_dir: per_version(&host.php_pool_dir),
            php_fpm_pid_file: per_version(&host.php_fpm_pid_file),
            php_fpm_service: host.php_fpm_service.clone(),
            php_socket_dir: place("php_socket_dir", &host.php_socket_dir)?,
            reload: host.reload,
            listen: ListenAddr::for_http(&host.http_ips(), host.http_port),
            user_prefix: host.user_prefix.clone(),
            timeout: Duration::from_secs(host.command_timeout_secs),
            sandbox_root,
        })
    }

    pub fn is_system(&self) -> bool {
        self.mode == HostMode::System
    }

    /// PHP-FPM versions installed on this machine (their binary exists).
    pub fn installed_php(&self) -> Vec<PhpVersion> {
        self.php_fpm_binary.existing_versions()
    }

    /// Versions that may hold pool files: installed ones and those with a pool directory.
    pub fn pool_versions(&self) -> Vec<PhpVersion> {
        let mut versions = self.installed_php();
        versions.extend(self.php_pool_dir.existing_versions());
        versions.sort();
        versions.dedup();
        versions
    }

    pub fn vhost_path(&self, domain: &DomainName) -> Result<SafePath> {
        self.sites_dir.join(&format!("{domain}.conf"))
    }

    pub fn pool_path(&self, version: PhpVersion, domain: &DomainName) -> Result<SafePath> {
        self.php_pool_dir
            .at(version)?
            .join(&format!("{POOL_FILE_PREFIX}{domain}.conf"))
    }

    pub fn home(&self, domain: &DomainName) -> Result<SafePath> {
        self.web_root.join(domain.as_str())
    }

    pub fn site_log_dir(&self, domain: &DomainName) -> Result<SafePath> {
        self.log_dir.join(domain.as_str())
    }

    pub fn hooks_dir(&self, domain: &DomainName) -> Result<SafePath> {
        self.hooks_root.join(domain.as_str())
    }

    /// The account name of the site with this id.
    pub fn site_user(&self, site_id: i64) -> Result<AccountName> {
        AccountName::parse(&format!("{}{site_id}", self.user_prefix))
    }

    /// Whether an account name is one this layout gives sites (`<prefix><digits>`).
    pub fn is_site_user(&self, name: &str) -> bool {
        name.strip_prefix(&self.user_prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Everything the templates need for one site.
    pub fn site_spec(&self, site: &SiteInput) -> Result<SiteSpec> {
        let domain = &site.domain;
        // Every file name is `<domain>` plus a short suffix: keep it under NAME_MAX (255).
        if domain.as_str().len() + POOL_FILE_PREFIX.len() + ".conf.vipanel-new".len() > 255 {
            return Err(Error::invalid(format!(
                "domain {domain} is too long for a site: at most {} characters",
                255 - POOL_FILE_PREFIX.len() - ".conf.vipanel-new".len()
            )));
        }
        let home = self.home(domain)?;
        let log_dir = self.site_log_dir(domain)?;
        let backend = match &site.backend {
            // The version is in the name: while a site moves between versions, both masters
            // must never claim one path.
            Backend::Php(version) => SiteBackend::Php {
                version: *version,
                socket: self
                    .php_socket_dir
                    .join(&format!("vipanel-{}-php{version}.sock", site.user))?,
            },
            Backend::Static => SiteBackend::Static,
            Backend::Proxy(upstream) => SiteBackend::Proxy {
                upstream: upstream.clone(),
            },
        };
        Ok(SiteSpec {
            domain: domain.clone(),
            aliases: site.aliases.clone(),
            backend,
            enabled: site.enabled,
            user: site.user.clone(),
            document_root: home.join("public")?,
            tmp_dir: home.join("tmp")?,
            home,
            access_log: log_dir.join("access.log")?,
            error_log: log_dir.join("error.log")?,
            hooks_dir: self.hooks_dir(domain)?,
            listen: self.listen.clone(),
        })
    }
}

/// What a site should be, as the service layer knows it (validated).
#[derive(Debug, Clone)]
pub struct SiteInput {
    pub domain: DomainName,
    pub aliases: Vec<DomainName>,
    pub backend: Backend,
    pub enabled: bool,
    pub user: AccountName,
}

/// The kind of a site with its settings.
#[derive(Debug, Clone)]
pub enum Backend {
    Php(PhpVersion),
    Static,
    Proxy(Upstream),
}

/// Whether this process runs as root (the owner of `/proc/self` is its effective user).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The data dir as an absolute path without `.` components (`./var` is the default).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_reroots_every_path_but_the_binaries() {
        let config = Config {
            data_dir: PathBuf::from("/var/lib/vp"),
            ..Config::default()
        };
        let layout = HostLayout::from_config(&config).unwrap();
        assert_eq!(layout.web_root.as_str(), "/var/lib/vp/host/srv/vipanel");
        assert_eq!(
            layout.sites_dir.as_str(),
            "/var/lib/vp/host/etc/nginx/vipanel/sites"
        );
        assert_eq!(layout.nginx_binary, PathBuf::from("/usr/sbin/nginx"));
        let v82 = PhpVersion::parse("8.2").unwrap();
        assert_eq!(
            layout.php_pool_dir.at(v82).unwrap().as_str(),
            "/var/lib/vp/host/etc/php/8.2/fpm/pool.d"
        );
        assert_eq!(
            layout.php_fpm_binary.at(v82).unwrap().as_str(),
            "/usr/sbin/php-fpm8.2"
        );
        assert!(layout.is_site_user("vpsite17"));
        assert!(!layout.is_site_user("vpsite"));
        assert!(!layout.is_site_user("vpsite1x"));
    }

    #[test]
    fn versions_are_found_by_listing_the_directory_before_the_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "php-fpm8.2",
            "php-fpm7.4",
            "php-fpm",
            "php-fpmx.y",
            "other8.1",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let pattern = PerVersion(format!("{}/php-fpm{{version}}", dir.path().display()));
        let found: Vec<String> = pattern
            .existing_versions()
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(found, ["7.4", "8.2"]);
        let pools = PerVersion(format!(
            "{}/php/{{version}}/fpm/pool.d",
            dir.path().display()
        ));
        std::fs::create_dir_all(dir.path().join("php/8.3/fpm/pool.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("php/8.1/cli")).unwrap();
        let found: Vec<String> = pools
            .existing_versions()
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(found, ["8.3"]);
    }
}
