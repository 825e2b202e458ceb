//! The HTTP side of the Hetzner client: one request per `spawn_blocking` through `ureq`
//! (blocking, rustls on ring), retries with their waits as tokio sleeps, and error answers
//! turned into our errors.
//!
//! The bearer token only ever goes into the `Authorization` header built in `send_blocking`;
//! log lines name the method, path, status and code, never a header.
//!
//! Retries: `rate_limit_exceeded` (429) and `conflict` (409) are retried for every method;
//! 502 and 504 only for GET, since a POST or DELETE that timed out at the gateway may have
//! taken effect. A rate-limited answer is retried at its `RateLimit-Reset` (a UNIX time) when
//! it has one; otherwise the wait is `backoff_base × 2^attempt`. At most `max_retries` retries
//! and `max_retry_wait` of waiting in all: a wait that would exceed the budget is not begun,
//! and the error is returned.

use super::hetzner::HetznerOptions;
use super::hetzner_wire::{self as wire, ErrorBody};
use crate::config::mask_url_password;
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bodies larger than this are refused (the largest real answers are a few hundred kB).
const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// The agent and the options of one client, shared by its clones.
pub(super) struct Transport {
    agent: ureq::Agent,
    pub(super) options: HetznerOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One HTTP answer, read whole.
struct Reply {
    status: u16,
    rate_limit_reset: Option<u64>,
    body: Vec<u8>,
}

impl Transport {
    /// Options must already be checked (see `HetznerClient::new`).
    pub(super) fn new(options: HetznerOptions) -> Transport {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            // The token must not follow a redirect anywhere; the API does not redirect.
            .max_redirects(0)
            .user_agent(concat!("vipanel/", env!("CARGO_PKG_VERSION")))
            .build();
        Transport {
            agent: config.into(),
            options,
        }
    }

    /// Sends one request with retries and returns the parsed body of a 2xx answer.
    pub(super) async fn request<T: DeserializeOwned>(
        self: &Arc<Self>,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let options = &self.options;
        let body = match body {
            Some(value) => Some(
                serde_json::to_vec(&value)
                    .map_err(|e| Error::internal(format!("cannot encode a request: {e}")))?,
            ),
            None => None,
        };
        let mut waited = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            let reply = self.send(method, path, body.clone()).await?;
            if (200..300).contains(&reply.status) {
                return serde_json::from_slice(&reply.body).map_err(|e| {
                    Error::unavailable(format!(
                        "Hetzner API: unexpected answer to {} {path}: {e}",
                        method.as_str()
                    ))
                });
            }
            let (code, message, details) = match serde_json::from_slice::<ErrorBody>(&reply.body) {
                Ok(ErrorBody { error }) => (error.code, error.message, error.details),
                Err(_) => (String::new(), format!("HTTP status {}", reply.status), None),
            };
            let retryable = reply.status == 429
                || code == "rate_limit_exceeded"
                || code == "conflict"
                || (method == Method::Get && matches!(reply.status, 502 | 504));
            if retryable && attempt < options.max_retries {
                // Every answer carries RateLimit-Reset (when the bucket is full again); it
                // says when to retry only for a rate-limit answer.
                let rate_limited = reply.status == 429 || code == "rate_limit_exceeded";
                let wait = reply
                    .rate_limit_reset
                    .filter(|_| rate_limited)
                    .and_then(until_unix_time)
                    .unwrap_or_else(|| backoff(options.backoff_base, attempt));
                if waited + wait <= options.max_retry_wait {
                    tracing::warn!(
                        method = method.as_str(),
                        path,
                        status = reply.status,
                        code = code.as_str(),
                        attempt = attempt + 1,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "Hetzner API asked to retry later"
                    );
                    tokio::time::sleep(wait).await;
                    waited += wait;
                    attempt += 1;
                    continue;
                }
            }
            // A refused token, a rate limit or an API failure concerns the operator; a
            // not-found or an invalid name is the caller's, and its error says enough.
            if matches!(reply.status, 401 | 403 | 429 | 500..=599) {
                tracing::warn!(
                    method = method.as_str(),
                    path,
                    status = reply.status,
                    code = code.as_str(),
                    attempts = attempt + 1,
                    "Hetzner API call failed"
                );
            } else {
                tracing::debug!(
                    method = method.as_str(),
                    path,
                    status = reply.status,
                    code = code.as_str(),
                    "Hetzner API call failed"
                );
            }
            return Err(wire::map_error(
                reply.status,
                &code,
                &message,
                details.as_ref(),
            ));
        }
    }

    /// One HTTP exchange on a blocking thread. Transport failures are Unavailable.
    async fn send(
        self: &Arc<Self>,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let inner = Arc::clone(self);
        let url = format!("{}{path}", inner.options.endpoint);
        let shown = format!("{} {path}", method.as_str());
        let endpoint = mask_url_password(&inner.options.endpoint);
        tokio::task::spawn_blocking(move || send_blocking(&inner, method, &url, body))
            .await
            .map_err(|_| Error::internal(format!("the Hetzner API call {shown} was cancelled")))?
            .map_err(|e| {
                tracing::warn!(request = shown.as_str(), error = %e, "Hetzner API unreachable");
                Error::unavailable(format!("cannot reach the Hetzner API at {endpoint}: {e}"))
            })
    }
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt.min(16)))
}

/// How long until a UNIX time; `None` when it is already past.
fn until_unix_time(at: u64) -> Option<Duration> {
    let at = UNIX_EPOCH + Duration::from_secs(at);
    at.duration_since(SystemTime::now())
        .ok()
        .filter(|d| !d.is_zero())
}

fn send_blocking(
    inner: &Transport,
    method: Method,
    url: &str,
    body: Option<Vec<u8>>,
) -> std::result::Result<Reply, ureq::Error> {
    let auth = format!("Bearer {}", inner.options.token);
    let agent = &inner.agent;
    let mut response = match method {
        Method::Get => agent.get(url).header("Authorization", &auth).call(),
        Method::Delete => agent.delete(url).header("Authorization", &auth).call(),
        Method::Post => {
            let request = agent
                .post(url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json");
            match body {
                Some(bytes) => request.send(&bytes[..]),
                None => request.send_empty(),
            }
        }
    }?;
    let rate_limit_reset = response
        .headers()
        .get("ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_vec()?;
    Ok(Reply {
        status: response.status().as_u16(),
        rate_limit_reset,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_past_resets_are_ignored() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 0), base);
        assert_eq!(backoff(base, 3), Duration::from_millis(800));
        assert_eq!(until_unix_time(1), None);
        let soon = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 2;
        assert!(until_unix_time(soon).is_some());
    }
}
