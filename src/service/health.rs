//! Health checks: the `health.check` job the daemon enqueues every `health.interval_secs` (one
//! per period for all nodes, see `periodic.rs`).
//!
//! - **Sites** (only in `host.mode = "system"`; a sandbox host serves nothing): every active,
//!   enabled site gets `GET /` with its own `Host` header through nginx on the first of
//!   `host.http_addresses` (127.0.0.1 when none is set) at `host.http_port`. Any HTTP answer
//!   below 500 is `ok` (a 404 means nginx serves the site and the site has no index); 5xx, no
//!   answer within `health.timeout_ms`, or a refused connection is `failing`.
//! - **Servers**: `local` is the host the checking node runs on, so it is `ok` when the job runs
//!   at all. A running cloud server is `ok` when a TCP connection to its IPv4 address at
//!   `health.server_port` (22) opens within the timeout; one without an address, or stopped,
//!   is not probed.
//!
//! The verdicts are written on the rows (`health`, `health_detail`, `health_at`): a site whose
//! verdict changed gets a change mark, so dashboards' failing count follows.

use super::Services;
use super::jobs::{JobContext, JobKind};
use crate::error::{Error, Result};
use crate::store::HealthRecord;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The name of the job.
pub const HEALTH_CHECK: &str = "health.check";

pub const OK: &str = "ok";
pub const FAILING: &str = "failing";

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    ok: bool,
    detail: String,
}

pub(super) struct HealthCheck;

impl JobKind for HealthCheck {
    async fn run(&self, ctx: JobContext) -> Result<Value> {
        let services = &ctx.services;
        let settings = &services.config.health;
        let timeout = Duration::from_millis(settings.timeout_ms);
        let now = crate::store::now();

        let mut sites_ok = 0u64;
        let mut sites_failing = Vec::new();
        if services.config.host.mode == crate::config::HostMode::System {
            let nginx = nginx_address(&services.config.host)?;
            let sites: Vec<(i64, String)> = services
                .db
                .sites(None)
                .await?
                .into_iter()
                .filter(|s| s.enabled && s.status == super::site_apply::STATUS_ACTIVE)
                .map(|s| (s.id, s.domain))
                .collect();
            let limit = Arc::new(tokio::sync::Semaphore::new(settings.concurrency as usize));
            let mut probes = tokio::task::JoinSet::new();
            for (id, domain) in sites {
                let limit = limit.clone();
                probes.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    let verdict = probe_site(nginx, &domain, timeout).await;
                    (id, domain, verdict)
                });
            }
            while let Some(done) = probes.join_next().await {
                let (id, domain, verdict) =
                    done.map_err(|e| Error::internal(format!("a probe failed: {e}")))?;
                record_site(services, id, &verdict, now).await?;
                if verdict.ok {
                    sites_ok += 1;
                } else {
                    sites_failing.push(domain);
                }
            }
            sites_failing.sort();
        }
        ctx.progress(70, "sites checked").await?;

        let mut servers_ok = 0u64;
        let mut servers_failing = Vec::new();
        for server in services.db.servers(None).await? {
            let verdict = if server.provider == "local" {
                Verdict {
                    ok: true,
                    detail: "the panel host".into(),
                }
            } else if server.status != "running" {
                continue;
            } else {
                let Some(ip) = server
                    .ipv4
                    .as_deref()
                    .and_then(|ip| ip.parse::<IpAddr>().ok())
                else {
                    continue;
                };
                probe_tcp(SocketAddr::new(ip, settings.server_port), timeout).await
            };
            let record = HealthRecord {
                health: if verdict.ok { OK } else { FAILING },
                detail: &verdict.detail,
                at: now,
            };
            services.db.record_server_health(server.id, &record).await?;
            if verdict.ok {
                servers_ok += 1;
            } else {
                servers_failing.push(server.name);
            }
        }
        ctx.progress(100, "checked").await?;
        Ok(serde_json::json!({
            "sites_ok": sites_ok,
            "sites_failing": sites_failing,
            "servers_ok": servers_ok,
            "servers_failing": servers_failing,
        }))
    }
}

async fn record_site(
    services: &Services,
    id: i64,
    verdict: &Verdict,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let record = HealthRecord {
        health: if verdict.ok { OK } else { FAILING },
        detail: &verdict.detail,
        at,
    };
    services.db.record_site_health(id, &record).await
}

/// Where this node's nginx answers for sites.
fn nginx_address(host: &crate::config::HostConfig) -> Result<SocketAddr> {
    let ip = match host.http_addresses.first() {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(text) => text
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .map_err(|_| Error::invalid(format!("host.http_addresses: bad address {text:?}")))?,
    };
    Ok(SocketAddr::new(ip, host.http_port))
}

/// `GET /` for `domain` through nginx at `addr`.
async fn probe_site(addr: SocketAddr, domain: &str, timeout: Duration) -> Verdict {
    let started = Instant::now();
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {domain}\r\nUser-Agent: vipanel-health\r\n\
             Connection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(head)
    };
    let ms = || started.elapsed().as_millis();
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Verdict {
            ok: false,
            detail: format!("no answer within {} ms", timeout.as_millis()),
        },
        Ok(Err(err)) => Verdict {
            ok: false,
            detail: format!("cannot reach nginx at {addr}: {err}"),
        },
        Ok(Ok(head)) => match status_code(&head) {
            Some(code) => Verdict {
                ok: code < 500,
                detail: format!("HTTP {code} in {} ms", ms()),
            },
            None => Verdict {
                ok: false,
                detail: "the answer was not HTTP".into(),
            },
        },
    }
}

/// The status code of an HTTP/1.x status line.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    words.next()?.parse().ok()
}

/// Whether a TCP connection to `addr` opens within `timeout`.
async fn probe_tcp(addr: SocketAddr, timeout: Duration) -> Verdict {
    let started = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Verdict {
            ok: true,
            detail: format!(
                "{addr} accepted a connection in {} ms",
                started.elapsed().as_millis()
            ),
        },
        Ok(Err(err)) => Verdict {
            ok: false,
            detail: format!("{addr}: {err}"),
        },
        Err(_) => Verdict {
            ok: false,
            detail: format!("{addr}: no answer within {} ms", timeout.as_millis()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b""), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_failing_and_an_open_one_ok() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let verdict = probe_tcp(open, Duration::from_secs(2)).await;
        assert!(verdict.ok, "{verdict:?}");
        drop(listener);
        let verdict = probe_tcp(open, Duration::from_secs(2)).await;
        assert!(!verdict.ok, "{verdict:?}");
        assert!(verdict.detail.contains(&open.to_string()), "{verdict:?}");
    }
}
