//! What a site is: its kind (php, static, proxy), PHP version and reverse-proxy upstream.

use super::domain_name::printable;
use crate::error::{Error, Result};
use std::fmt;

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
        let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            v6.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            host.parse::<std::net::Ipv4Addr>().is_ok()
                || host == "localhost"
                || super::DomainName::parse(host).is_ok_and(|d| d.as_str() == host)
        };
        if !host_ok {
            return Err(bad("the host is not an IP address or a domain name"));
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
        assert!(Upstream::parse("http://app.internal.example:8080").is_ok());
        for bad in [
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
