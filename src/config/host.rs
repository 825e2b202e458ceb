//! `[host]`: how sites are applied to the machine (see `docs/sites.md`).
//!
//! `mode = "sandbox"` writes the whole tree under `<data_dir>/host` (every path below re-rooted
//! there) and touches nothing else; `mode = "system"` writes the real paths, creates a system
//! user per site and reloads nginx and PHP-FPM. Paths containing `{version}` are per PHP
//! version (`8.2`).

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostMode {
    Sandbox,
    System,
}

/// How nginx and PHP-FPM are told to reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloadMethod {
    /// systemd when it runs (`/run/systemd/system` exists), otherwise signals.
    Auto,
    /// `systemctl reload <service>`.
    Systemd,
    /// SIGHUP to nginx's master, SIGUSR2 to PHP-FPM's, found through their pid files.
    Signal,
}

/// `[host]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HostConfig {
    pub mode: HostMode,
    pub default_php: String,
    pub http_port: u16,
    /// Addresses nginx listens on for sites; empty = every IPv4 and IPv6 address.
    pub http_addresses: Vec<String>,
    pub web_root: String,
    pub log_dir: String,
    pub nginx_binary: String,
    pub nginx_conf: String,
    pub nginx_prefix: String,
    pub nginx_dir: String,
    pub nginx_include: String,
    pub nginx_pid_file: String,
    pub nginx_service: String,
    pub nginx_user: String,
    pub php_fpm_binary: String,
    pub php_fpm_conf: String,
    pub php_pool_dir: String,
    pub php_fpm_pid_file: String,
    pub php_fpm_service: String,
    pub php_socket_dir: String,
    pub reload: ReloadMethod,
    pub user_prefix: String,
    pub coalesce_ms: u64,
    pub coalesce_max_ms: u64,
    pub command_timeout_secs: u64,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            mode: HostMode::Sandbox,
            default_php: "8.2".into(),
            http_port: 80,
            http_addresses: Vec::new(),
            web_root: "/srv/vipanel".into(),
            log_dir: "/var/log/vipanel/sites".into(),
            nginx_binary: "/usr/sbin/nginx".into(),
            nginx_conf: "/etc/nginx/nginx.conf".into(),
            nginx_prefix: String::new(),
            nginx_dir: "/etc/nginx/vipanel".into(),
            nginx_include: "/etc/nginx/conf.d/vipanel.conf".into(),
            nginx_pid_file: "/run/nginx.pid".into(),
            nginx_service: "nginx".into(),
            nginx_user: "www-data".into(),
            php_fpm_binary: "/usr/sbin/php-fpm{version}".into(),
            php_fpm_conf: "/etc/php/{version}/fpm/php-fpm.conf".into(),
            php_pool_dir: "/etc/php/{version}/fpm/pool.d".into(),
            php_fpm_pid_file: "/run/php/php{version}-fpm.pid".into(),
            php_fpm_service: "php{version}-fpm".into(),
            php_socket_dir: "/run/php".into(),
            reload: ReloadMethod::Auto,
            user_prefix: "vpsite".into(),
            coalesce_ms: 100,
            coalesce_max_ms: 2000,
            command_timeout_secs: 60,
        }
    }
}

impl HostConfig {
    /// The parsed `http_addresses`.
    pub fn http_ips(&self) -> Vec<IpAddr> {
        self.http_addresses
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| {
            Err(ConfigError(format!(
                "bad value for key `host.{key}`: {why}"
            )))
        };
        if crate::domain::PhpVersion::parse(&self.default_php).is_err() {
            return bad("default_php", "use MAJOR.MINOR, like 8.2".into());
        }
        if self.http_port == 0 {
            return bad("http_port", "use a port from 1 to 65535".into());
        }
        for address in &self.http_addresses {
            if address.parse::<IpAddr>().is_err() {
                return bad(
                    "http_addresses",
                    format!("{address:?} is not an IP address, like 127.0.0.1 or ::1"),
                );
            }
        }
        let paths = [
            ("web_root", &self.web_root),
            ("log_dir", &self.log_dir),
            ("nginx_binary", &self.nginx_binary),
            ("nginx_conf", &self.nginx_conf),
            ("nginx_dir", &self.nginx_dir),
            ("nginx_pid_file", &self.nginx_pid_file),
            ("php_fpm_binary", &self.php_fpm_binary),
            ("php_fpm_conf", &self.php_fpm_conf),
            ("php_pool_dir", &self.php_pool_dir),
            ("php_fpm_pid_file", &self.php_fpm_pid_file),
            ("php_socket_dir", &self.php_socket_dir),
        ];
        let optional = [
            ("nginx_prefix", &self.nginx_prefix),
            ("nginx_include", &self.nginx_include),
        ];
        let checked = paths
            .iter()
            .chain(optional.iter().filter(|(_, v)| !v.is_empty()));
        for (key, value) in checked {
            let probe = value.replace("{version}", "8.2");
            if let Err(e) = crate::host::SafePath::parse(&probe) {
                return bad(key, e.to_string());
            }
        }
        for (key, value) in [
            ("nginx_service", &self.nginx_service),
            ("php_fpm_service", &self.php_fpm_service),
        ] {
            let probe = value.replace("{version}", "8.2");
            let ok = !probe.is_empty()
                && !probe.starts_with('-')
                && probe
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
            if !ok {
                return bad(key, format!("{value:?} is not a systemd unit name"));
            }
        }
        if crate::host::AccountName::parse(&self.nginx_user).is_err() {
            return bad(
                "nginx_user",
                format!("{:?} is not an account name", self.nginx_user),
            );
        }
        let prefix_ok = crate::host::AccountName::parse(&self.user_prefix).is_ok()
            && self.user_prefix.len() <= 20;
        if !prefix_ok {
            return bad(
                "user_prefix",
                format!(
                    "{:?} must start an account name (lower-case letters, digits, `-`, `_`) \
                     and leave room for a site number: at most 20 characters",
                    self.user_prefix
                ),
            );
        }
        if self.coalesce_max_ms < self.coalesce_ms {
            return bad(
                "coalesce_max_ms",
                "must be at least host.coalesce_ms".into(),
            );
        }
        if self.command_timeout_secs == 0 {
            return bad("command_timeout_secs", "must be at least 1".into());
        }
        Ok(())
    }
}
