//! The source addresses an automation key may log in from: a list of CIDRs (`10.0.0.0/8`,
//! `2001:db8::/32`) or plain addresses (taken as one host), comma separated.

use crate::error::{Error, Result};
use ipnet::IpNet;
use std::net::IpAddr;

/// At most this many networks per key: a key is not a firewall.
const MAX_NETS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceNets(Vec<IpNet>);

impl SourceNets {
    /// Parses `10.0.0.0/8,192.0.2.7`; host bits set (`10.1.2.3/8`) are refused as a likely typo.
    pub fn parse(input: &str) -> Result<SourceNets> {
        let mut nets = Vec::new();
        for part in input.split(',').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let shown = crate::domain::printable(part);
            let net = if part.contains('/') {
                let net: IpNet = part.parse().map_err(|_| {
                    Error::invalid(format!(
                        "{shown} is not a network like 192.0.2.0/24 or 2001:db8::/32"
                    ))
                })?;
                if net.trunc() != net {
                    return Err(Error::invalid(format!(
                        "{shown} has host bits set; did you mean {}?",
                        net.trunc()
                    )));
                }
                net
            } else {
                let ip: IpAddr = part.parse().map_err(|_| {
                    Error::invalid(format!("{shown} is not an IP address or a CIDR network"))
                })?;
                IpNet::from(ip)
            };
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        if nets.is_empty() {
            return Err(Error::usage(
                "--from needs at least one network, like --from 192.0.2.0/24",
            ));
        }
        if nets.len() > MAX_NETS {
            return Err(Error::invalid(format!(
                "at most {MAX_NETS} networks per key"
            )));
        }
        Ok(SourceNets(nets))
    }

    /// Whether `ip` is inside one of the networks (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl std::fmt::Display for SourceNets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_evil_lists() {
        let nets = SourceNets::parse("127.0.0.1, 10.0.0.0/8,2001:db8::/32").unwrap();
        assert_eq!(nets.to_string(), "127.0.0.1/32,10.0.0.0/8,2001:db8::/32");
        assert!(nets.contains("127.0.0.1".parse().unwrap()));
        assert!(nets.contains("::ffff:10.9.8.7".parse().unwrap()));
        assert!(nets.contains("2001:db8::5".parse().unwrap()));
        assert!(!nets.contains("127.0.0.2".parse().unwrap()));
        assert!(!nets.contains("192.0.2.1".parse().unwrap()));
        for bad in [
            "",
            ",",
            "10.0.0.0/33",
            "10.1.2.3/8",
            "example.com",
            "10.0.0.1;rm",
            "10.0.0.1\n10.0.0.2",
            "0x7f.1",
            "10.0.0.0/8\0",
        ] {
            assert!(SourceNets::parse(bad).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..40).map(|i| format!("10.0.{i}.0/24")).collect();
        assert!(SourceNets::parse(&many.join(",")).is_err());
        assert!(SourceNets::parse(&"1".repeat(10_000)).is_err());
    }
}
