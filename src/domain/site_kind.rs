//! What a site is: its kind (php, static, proxy), PHP version and reverse-proxy upstream.

use super::domain_name::printable;
use crate::error::{Error, Result};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of site: PHP through PHP-FPM, static files, or a reverse proxy to an app server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteKind {
    Php,
    Static,
    Proxy,
}

impl SiteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::Php => "php",
            SiteKind::Static => "static",
            SiteKind::Proxy => "proxy",
        }
    }
    pub fn parse(input: &str) -> Result<SiteKind> {
        match input {
            "php" => Ok(SiteKind::Php),
            "static" => Ok(SiteKind::Static),
            "proxy" => Ok(SiteKind::Proxy),
            _ => Err(Error::invalid(format!(
                "unknown site type {}: use php, static or proxy",
                printable(input)
            ))),
        }
    }
}

impl fmt::Display for SiteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PHP version as `MAJOR.MINOR`, e.g. `8.2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct PhpVersion {
    pub major: u8,
    pub minor: u8,
}

impl PhpVersion {
    pub fn parse(input: &str) -> Result<PhpVersion> {
        let bad = || {
            Error::invalid(format!(
                "PHP version {} is not valid: use MAJOR.MINOR, like 8.2",
                printable(input)
            ))
        };
        let (major, minor) = input.split_once('.').ok_or_else(bad)?;
        let num = |s: &str| -> Result<u8> {
            if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        };
        let version = PhpVersion {
            major: num(major)?,
            minor: num(minor)?,
        };
        if !(5..=9).contains(&version.major) {
            return Err(bad());
        }
        Ok(version)
    }
}

impl fmt::Display for PhpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A reverse-proxy upstream: `http://HOST:PORT` (or https), host a name or an IP, no path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Upstream(String);

impl Upstream {
    pub fn parse(input: &str) -> Result<Upstream> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "upstream {} is not valid: {why}; use http://127.0.0.1:3000",
                printable(input)
            ))
        };
        let rest = input
            .strip_prefix("http://")
            .or_else(|| input.strip_prefix("https://"))
            .ok_or_else(|| bad("it must start with http:// or https://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("it needs a port"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?;
        let ip: Option<IpAddr> =
            if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
            } else {
                host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
            };
        match ip {
            Some(ip) if !reachable_upstream(ip) => {
                return Err(bad(
                    "the address is link-local (cloud metadata), multicast, broadcast or \
                     unspecified",
                ));
            }
            Some(_) => {}
            None if host == "localhost" => {}
            None if super::DomainName::parse(host).is_ok() => {
                return Err(bad(
                    "give an IP address, not a host name: nginx resolves names when it starts \
                     and reloads, and a name that stops resolving would keep it from starting",
                ));
            }
            None => return Err(bad("the host is not an IP address")),
        }
        let scheme = if input.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        Ok(Upstream(format!("{scheme}://{host}:{port}")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a proxy may forward to this address: not link-local (169.254.0.0/16 holds cloud
/// instance metadata), multicast, broadcast or unspecified.
fn reachable_upstream(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_link_local() || v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified())
        }
        IpAddr::V6(v6) => {
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            let mapped_ok = v6
                .to_ipv4_mapped()
                .is_none_or(|v4| reachable_upstream(IpAddr::V4(v4)));
            !(link_local || v6.is_multicast() || v6.is_unspecified()) && mapped_ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_versions() {
        assert_eq!(PhpVersion::parse("8.2").unwrap().to_string(), "8.2");
        for bad in [
            "8", "8.", ".2", "8.2.1", "x.y", "8.2;rm", "80.1", "8.100", " 8.2",
        ] {
            assert!(PhpVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn upstreams() {
        assert_eq!(
            Upstream::parse("http://127.0.0.1:3000/").unwrap().as_str(),
            "http://127.0.0.1:3000"
        );
        assert!(Upstream::parse("http://[::1]:8080").is_ok());
        assert!(Upstream::parse("https://10.0.0.5:8443").is_ok());
        assert!(Upstream::parse("http://localhost:3000").is_ok());
        for bad in [
            "http://app.internal.example:8080",
            "http://169.254.169.254:80",
            "http://[fe80::1]:80",
            "http://[::ffff:169.254.169.254]:80",
            "http://0.0.0.0:80",
            "http://224.0.0.1:80",
            "http://255.255.255.255:80",
            "127.0.0.1:3000",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://a b:80",
            "http://x;y:80",
            "http://127.0.0.1:80/path",
            "ftp://x.com:21",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }
}
