//! What the host layer renders from: a site's desired state as validated values only.
//!
//! Every value that ends up in a generated file is one of these types (or a validated domain
//! type), so no string from a user or the database reaches nginx or PHP-FPM unchecked:
//! [`SafePath`] (absolute, no `..`, only `[A-Za-z0-9._/+-]`), [`AccountName`] (a Unix account
//! name), [`ListenAddr`] (an nginx `listen` value built from an IP and a port).

use crate::domain::{DomainName, PhpVersion, Upstream, printable};
use crate::error::{Error, Result};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// An absolute path made only of `[A-Za-z0-9._/+-]`, without `.` or `..` components or `//`.
/// Safe to write unquoted into nginx and PHP-FPM configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SafePath(String);

impl SafePath {
    pub fn parse(input: &str) -> Result<SafePath> {
        let bad =
            |why: &str| Error::invalid(format!("path {} is not usable: {why}", printable(input)));
        if !input.starts_with('/') {
            return Err(bad("it must be absolute"));
        }
        if input.len() > 1024 {
            return Err(bad("it is longer than 1024 bytes"));
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '+' | '-')))
        {
            return Err(bad(&format!(
                "it contains {c:?}; only letters, digits and . _ / + - are allowed"
            )));
        }
        let trimmed = input
            .strip_suffix('/')
            .filter(|t| !t.is_empty())
            .unwrap_or(input);
        for part in trimmed.split('/').skip(1).filter(|_| trimmed != "/") {
            if part.is_empty() || part == "." || part == ".." {
                return Err(bad("it has an empty, `.` or `..` component"));
            }
        }
        Ok(SafePath(trimmed.to_owned()))
    }

    /// This path with one more component: a validated domain, account name or fixed name.
    pub fn join(&self, name: &str) -> Result<SafePath> {
        if self.0 == "/" {
            SafePath::parse(&format!("/{name}"))
        } else {
            SafePath::parse(&format!("{}/{name}", self.0))
        }
    }

    /// `root` + this absolute path (sandbox mode re-roots every system path under the data dir).
    pub fn rerooted(&self, root: &SafePath) -> SafePath {
        if root.0 == "/" {
            self.clone()
        } else if self.0 == "/" {
            root.clone()
        } else {
            SafePath(format!("{}{}", root.0, self.0))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    pub fn to_path_buf(&self) -> PathBuf {
        PathBuf::from(&self.0)
    }
}

impl fmt::Display for SafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Unix account (and group) name: `[a-z_][a-z0-9_-]*`, at most 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(input: &str) -> Result<AccountName> {
        let mut chars = input.chars();
        let ok = input.len() <= 32
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            return Err(Error::invalid(format!(
                "{} is not an account name (lower-case letters, digits, `-` and `_`, starting \
                 with a letter or `_`, at most 32 characters)",
                printable(input)
            )));
        }
        Ok(AccountName(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One nginx `listen` value: `PORT` (every IPv4 address), `[::]:PORT`, `IP:PORT` or `[IPv6]:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr(String);

impl ListenAddr {
    /// The `listen` values for `host.http_addresses` and `host.http_port`: no addresses means
    /// every IPv4 and IPv6 address.
    pub fn for_http(addresses: &[IpAddr], port: u16) -> Vec<ListenAddr> {
        if addresses.is_empty() {
            return vec![
                ListenAddr(port.to_string()),
                ListenAddr(format!("[::]:{port}")),
            ];
        }
        addresses
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => ListenAddr(format!("{v4}:{port}")),
                IpAddr::V6(v6) => ListenAddr(format!("[{v6}]:{port}")),
            })
            .collect()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a site serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteBackend {
    /// PHP through the site's own PHP-FPM pool, listening on `socket`.
    Php {
        version: PhpVersion,
        socket: SafePath,
    },
    /// Files from the document root only.
    Static,
    /// A reverse proxy to an app server (Node.js and the like).
    Proxy { upstream: Upstream },
}

/// Everything the templates need about one site, all validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSpec {
    pub domain: DomainName,
    pub aliases: Vec<DomainName>,
    pub backend: SiteBackend,
    /// A disabled site answers 503 on its names and has no PHP-FPM pool.
    pub enabled: bool,
    /// The site's own system account (and group): owns its files, runs its PHP.
    pub user: AccountName,
    /// `<web_root>/<domain>`: the site's home; `public` and `tmp` are inside.
    pub home: SafePath,
    /// `<home>/public`: nginx's `root`.
    pub document_root: SafePath,
    /// `<home>/tmp`: PHP's upload, session and temp directory.
    pub tmp_dir: SafePath,
    pub access_log: SafePath,
    pub error_log: SafePath,
    /// `<nginx_dir>/custom.d/<domain>`: the operator's own `*.conf`, included, never written.
    pub hooks_dir: SafePath,
    /// Where nginx listens for this site.
    pub listen: Vec<ListenAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths_refuse_what_could_break_a_config_line() {
        for evil in [
            "relative/path",
            "/srv/a b",
            "/srv/a;b",
            "/srv/{x}",
            "/srv/$x",
            "/srv/'x'",
            "/srv/\"x\"",
            "/srv/../etc",
            "/srv/./x",
            "/srv//x",
            "/srv/x\ny",
            "/srv/\u{0}",
            "/srv/é",
        ] {
            assert!(SafePath::parse(evil).is_err(), "{evil:?} accepted");
        }
        assert_eq!(
            SafePath::parse("/srv/vipanel/").unwrap().as_str(),
            "/srv/vipanel"
        );
        assert_eq!(SafePath::parse("/").unwrap().as_str(), "/");
        let base = SafePath::parse("/srv/vipanel").unwrap();
        assert_eq!(
            base.join("example.com").unwrap().as_str(),
            "/srv/vipanel/example.com"
        );
        assert!(base.join("..").is_err());
        let root = SafePath::parse("/var/lib/vipanel/host").unwrap();
        assert_eq!(
            SafePath::parse("/etc/nginx")
                .unwrap()
                .rerooted(&root)
                .as_str(),
            "/var/lib/vipanel/host/etc/nginx"
        );
    }

    #[test]
    fn account_names_are_unix_names() {
        assert!(AccountName::parse("vpsite17").is_ok());
        assert!(AccountName::parse("www-data").is_ok());
        for evil in ["", "-x", "Root", "a b", "a;b", &"a".repeat(33), "a$"] {
            assert!(AccountName::parse(evil).is_err(), "{evil:?} accepted");
        }
    }

    #[test]
    fn listen_defaults_to_every_address() {
        let all: Vec<String> = ListenAddr::for_http(&[], 80)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(all, ["80", "[::]:80"]);
        let ips = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let some: Vec<String> = ListenAddr::for_http(&ips, 8080)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(some, ["127.0.0.1:8080", "[::1]:8080"]);
    }
}
