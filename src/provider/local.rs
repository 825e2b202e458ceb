//! The `local` provider: the panel host itself. Its server row exists in the store from the
//! start; nothing is ordered, deleted, resized, rebooted or powered through a cloud, so those
//! requests are refused with `Invalid` (exit 5): the request cannot apply to this provider,
//! whatever the state. Listings are empty; metrics of the panel host are collected locally.

use super::{
    Action, CreateServer, Created, Image, Location, Metrics, MetricsQuery, Provider,
    ProviderFuture, Server, ServerType,
};
use crate::error::Error;

/// The panel host. Stateless.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalProvider;

fn refuse<T: Send + 'static>(what: &str) -> ProviderFuture<'static, T> {
    let message =
        format!("the local server is the panel host itself: it cannot be {what} through the panel");
    Box::pin(async move { Err(Error::invalid(message)) })
}

fn empty<T: Send + 'static>() -> ProviderFuture<'static, Vec<T>> {
    Box::pin(async { Ok(Vec::new()) })
}

impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }
    fn create_server<'a>(&'a self, _request: &'a CreateServer) -> ProviderFuture<'a, Created> {
        refuse("created")
    }
    fn delete_server(&self, _id: u64) -> ProviderFuture<'_, Action> {
        refuse("deleted")
    }
    fn reboot(&self, _id: u64) -> ProviderFuture<'_, Action> {
        refuse("rebooted")
    }
    fn power_on(&self, _id: u64) -> ProviderFuture<'_, Action> {
        refuse("powered on")
    }
    fn power_off(&self, _id: u64) -> ProviderFuture<'_, Action> {
        refuse("powered off")
    }
    fn resize<'a>(&'a self, _id: u64, _server_type: &'a str) -> ProviderFuture<'a, Action> {
        refuse("resized")
    }
    fn server(&self, id: u64) -> ProviderFuture<'_, Server> {
        Box::pin(async move {
            Err(Error::not_found(format!(
                "the local provider has no cloud server {id}"
            )))
        })
    }
    fn servers(&self) -> ProviderFuture<'_, Vec<Server>> {
        empty()
    }
    fn server_types(&self) -> ProviderFuture<'_, Vec<ServerType>> {
        empty()
    }
    fn locations(&self) -> ProviderFuture<'_, Vec<Location>> {
        empty()
    }
    fn images(&self) -> ProviderFuture<'_, Vec<Image>> {
        empty()
    }
    fn metrics<'a>(&'a self, _id: u64, _query: &'a MetricsQuery) -> ProviderFuture<'a, Metrics> {
        Box::pin(async {
            Err(Error::invalid(
                "the local server's metrics are collected on the panel host, not fetched from a provider",
            ))
        })
    }
    fn action(&self, id: u64) -> ProviderFuture<'_, Action> {
        Box::pin(async move {
            Err(Error::not_found(format!(
                "the local provider has no action {id}"
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::sync::Arc;

    #[tokio::test]
    async fn changes_are_refused_and_listings_are_empty() {
        let provider: Arc<dyn Provider> = Arc::new(LocalProvider);
        assert_eq!(provider.name(), "local");
        let request = CreateServer {
            name: "web1".into(),
            server_type: "cx22".into(),
            location: "fsn1".into(),
            image: "ubuntu-24.04".into(),
            ssh_keys: Vec::new(),
        };
        let err = provider.create_server(&request).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(err.message.contains("panel host"), "{err}");
        for result in [
            provider.delete_server(1).await,
            provider.reboot(1).await,
            provider.power_on(1).await,
            provider.power_off(1).await,
            provider.resize(1, "cx32").await,
        ] {
            assert_eq!(result.unwrap_err().kind.exit_code(), 5);
        }
        assert!(provider.servers().await.unwrap().is_empty());
        assert!(provider.server_types().await.unwrap().is_empty());
        assert!(provider.locations().await.unwrap().is_empty());
        assert!(provider.images().await.unwrap().is_empty());
        assert_eq!(
            provider.server(1).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            provider.action(1).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
    }
}
