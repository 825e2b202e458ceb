//! The Hetzner Cloud API v1 client (<https://docs.hetzner.cloud>): servers, their actions,
//! server types with prices, locations, images and metrics.
//!
//! HTTP, retries and the error table live in `hetzner_http` and `hetzner_wire`; this file says
//! which paths and bodies each provider method uses (see `docs/providers.md`).
//!
//! The bearer token is a secret: it only ever goes into the `Authorization` header. It is in
//! no log line, error message or `Debug` output (both `Debug`s here print `***`).

use super::hetzner_http::{Method, Transport};
use super::hetzner_wire::{
    Meta, WireAction, WireImage, WireLocation, WireMetrics, WireServer, WireServerType,
};
use super::{
    Action, CreateServer, Created, Image, Location, Metrics, MetricsQuery, Provider,
    ProviderFuture, RootPassword, Server, ServerType,
};
use crate::config::{HetznerConfig, mask_url_password};
use crate::error::{Error, Result};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Hetzner allows at most 50 entries per page.
const MAX_PER_PAGE: u32 = 50;
/// A listing longer than this many pages is refused rather than looped over forever.
const MAX_PAGES: u32 = 1000;

/// How to reach the API; built from `[providers.hetzner]` by [`HetznerOptions::from_config`].
#[derive(Clone)]
pub struct HetznerOptions {
    /// The API base, without a trailing slash: `https://api.hetzner.cloud/v1`.
    pub endpoint: String,
    /// The project's API token (read and write).
    pub token: String,
    pub max_retries: u32,
    pub max_retry_wait: Duration,
    /// For each HTTP request, from connect to the end of the body.
    pub timeout: Duration,
    /// The first wait of the exponential backoff when no `RateLimit-Reset` says otherwise.
    pub backoff_base: Duration,
    /// Entries asked per page of a listing (1 to 50).
    pub per_page: u32,
}

impl HetznerOptions {
    pub fn from_config(config: &HetznerConfig) -> HetznerOptions {
        HetznerOptions {
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
            token: config.token.clone(),
            max_retries: config.max_retries,
            max_retry_wait: Duration::from_secs(config.max_retry_wait_secs),
            timeout: Duration::from_secs(config.timeout_secs),
            backoff_base: Duration::from_millis(500),
            per_page: MAX_PER_PAGE,
        }
    }
}

impl fmt::Debug for HetznerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HetznerOptions")
            .field("endpoint", &mask_url_password(&self.endpoint))
            .field("token", &"***")
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("timeout", &self.timeout)
            .field("backoff_base", &self.backoff_base)
            .field("per_page", &self.per_page)
            .finish()
    }
}

/// A Hetzner Cloud project, reached with its token. Cheap to clone.
#[derive(Clone)]
pub struct HetznerClient {
    inner: Arc<Transport>,
}

impl fmt::Debug for HetznerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HetznerClient")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl HetznerClient {
    /// A client; refuses an empty token or an endpoint that is not `http(s)://…` (Invalid).
    pub fn new(options: HetznerOptions) -> Result<HetznerClient> {
        if options.token.trim().is_empty() {
            return Err(Error::invalid(
                "no Hetzner API token is configured (providers.hetzner.token)",
            ));
        }
        if !(options.endpoint.starts_with("https://") || options.endpoint.starts_with("http://")) {
            return Err(Error::invalid(
                "providers.hetzner.endpoint must be an http:// or https:// URL",
            ));
        }
        let options = HetznerOptions {
            endpoint: options.endpoint.trim_end_matches('/').to_owned(),
            per_page: options.per_page.clamp(1, MAX_PER_PAGE),
            ..options
        };
        Ok(HetznerClient {
            inner: Arc::new(Transport::new(options)),
        })
    }

    /// Every page of a listing: `?page=N&per_page=M` until `meta.pagination.next_page` is null.
    async fn list<W, T>(&self, path: &str, key: &str) -> Result<Vec<T>>
    where
        W: DeserializeOwned,
        T: From<W>,
    {
        let per_page = self.inner.options.per_page;
        let mut all = Vec::new();
        let mut page = 1;
        for _ in 0..MAX_PAGES {
            let mut value: serde_json::Value = self
                .inner
                .request(
                    Method::Get,
                    &format!("{path}?page={page}&per_page={per_page}"),
                    None,
                )
                .await?;
            let items: Vec<W> = take(&mut value, key)?;
            all.extend(items.into_iter().map(T::from));
            let meta: Meta = take(&mut value, "meta").unwrap_or_default();
            match meta.pagination.and_then(|p| p.next_page) {
                Some(next) if next > page => page = next,
                _ => return Ok(all),
            }
        }
        Err(Error::unavailable(format!(
            "Hetzner API: {path} has more than {MAX_PAGES} pages"
        )))
    }

    async fn server_action(
        &self,
        id: u64,
        action: &str,
        body: serde_json::Value,
    ) -> Result<Action> {
        let reply: ActionReply = self
            .inner
            .request(
                Method::Post,
                &format!("/servers/{id}/actions/{action}"),
                Some(body),
            )
            .await?;
        Ok(reply.action.into())
    }
}

/// Moves one field out of an answer and parses it.
fn take<T: DeserializeOwned>(value: &mut serde_json::Value, key: &str) -> Result<T> {
    let field = value
        .get_mut(key)
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null);
    serde_json::from_value(field)
        .map_err(|e| Error::unavailable(format!("Hetzner API: unexpected `{key}` in answer: {e}")))
}

#[derive(Deserialize)]
struct ActionReply {
    action: WireAction,
}

#[derive(Deserialize)]
struct ServerReply {
    server: WireServer,
}

#[derive(Deserialize)]
struct CreateReply {
    server: WireServer,
    action: WireAction,
    root_password: Option<String>,
}

#[derive(Deserialize)]
struct MetricsReply {
    metrics: WireMetrics,
}

impl Provider for HetznerClient {
    fn name(&self) -> &'static str {
        "hetzner"
    }

    fn create_server<'a>(&'a self, request: &'a CreateServer) -> ProviderFuture<'a, Created> {
        Box::pin(async move {
            let mut body = serde_json::json!({
                "name": request.name,
                "server_type": request.server_type,
                "location": request.location,
                "image": request.image,
                "start_after_create": true,
            });
            if !request.ssh_keys.is_empty() {
                body["ssh_keys"] = serde_json::json!(request.ssh_keys);
            }
            let reply: CreateReply = self
                .inner
                .request(Method::Post, "/servers", Some(body))
                .await?;
            Ok(Created {
                server: reply.server.into(),
                action: reply.action.into(),
                root_password: reply.root_password.map(RootPassword::new),
            })
        })
    }

    fn delete_server(&self, id: u64) -> ProviderFuture<'_, Action> {
        Box::pin(async move {
            let reply: ActionReply = self
                .inner
                .request(Method::Delete, &format!("/servers/{id}"), None)
                .await?;
            Ok(reply.action.into())
        })
    }

    fn reboot(&self, id: u64) -> ProviderFuture<'_, Action> {
        Box::pin(self.server_action(id, "reboot", serde_json::json!({})))
    }

    fn power_on(&self, id: u64) -> ProviderFuture<'_, Action> {
        Box::pin(self.server_action(id, "poweron", serde_json::json!({})))
    }

    fn power_off(&self, id: u64) -> ProviderFuture<'_, Action> {
        Box::pin(self.server_action(id, "poweroff", serde_json::json!({})))
    }

    fn resize<'a>(&'a self, id: u64, server_type: &'a str) -> ProviderFuture<'a, Action> {
        // Keeping the disk lets a server go back down to a smaller type later.
        let body = serde_json::json!({"server_type": server_type, "upgrade_disk": false});
        Box::pin(self.server_action(id, "change_type", body))
    }

    fn server(&self, id: u64) -> ProviderFuture<'_, Server> {
        Box::pin(async move {
            let reply: ServerReply = self
                .inner
                .request(Method::Get, &format!("/servers/{id}"), None)
                .await?;
            Ok(reply.server.into())
        })
    }

    fn servers(&self) -> ProviderFuture<'_, Vec<Server>> {
        Box::pin(self.list::<WireServer, Server>("/servers", "servers"))
    }

    fn server_types(&self) -> ProviderFuture<'_, Vec<ServerType>> {
        Box::pin(self.list::<WireServerType, ServerType>("/server_types", "server_types"))
    }

    fn locations(&self) -> ProviderFuture<'_, Vec<Location>> {
        Box::pin(self.list::<WireLocation, Location>("/locations", "locations"))
    }

    fn images(&self) -> ProviderFuture<'_, Vec<Image>> {
        Box::pin(self.list::<WireImage, Image>("/images", "images"))
    }

    fn metrics<'a>(&'a self, id: u64, query: &'a MetricsQuery) -> ProviderFuture<'a, Metrics> {
        Box::pin(async move {
            if query.end <= query.start {
                return Err(Error::invalid("the metrics range must end after it starts"));
            }
            let format = |t: &chrono::DateTime<chrono::Utc>| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            };
            let mut path = format!(
                "/servers/{id}/metrics?type=cpu,disk,network&start={}&end={}",
                format(&query.start),
                format(&query.end)
            );
            if let Some(step) = query.step_secs {
                path.push_str(&format!("&step={step}"));
            }
            let reply: MetricsReply = self.inner.request(Method::Get, &path, None).await?;
            Metrics::try_from(reply.metrics)
        })
    }

    fn action(&self, id: u64) -> ProviderFuture<'_, Action> {
        Box::pin(async move {
            let reply: ActionReply = self
                .inner
                .request(Method::Get, &format!("/actions/{id}"), None)
                .await?;
            Ok(reply.action.into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(token: &str) -> HetznerOptions {
        HetznerOptions {
            endpoint: "https://api.example.invalid/v1/".into(),
            token: token.into(),
            max_retries: 3,
            max_retry_wait: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            backoff_base: Duration::from_millis(10),
            per_page: 500,
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let client = HetznerClient::new(options("s3cr3t-token")).unwrap();
        let shown = format!("{client:?} {:?}", options("s3cr3t-token"));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        assert_eq!(client.inner.options.per_page, MAX_PER_PAGE);
        assert_eq!(
            client.inner.options.endpoint,
            "https://api.example.invalid/v1"
        );
    }

    #[test]
    fn empty_tokens_and_odd_endpoints_are_refused() {
        assert!(HetznerClient::new(options(" ")).is_err());
        let mut bad = options("t");
        bad.endpoint = "ftp://x".into();
        assert!(HetznerClient::new(bad).is_err());
    }
}
