//! Cloud providers: where servers come from. The [`Provider`] trait, its plain data types, the
//! `local` provider (the panel host itself) and the Hetzner Cloud client.
//!
//! Providers speak [`crate::error::Error`] and plain serde types; they never import the SSH,
//! session or command layers. A provider is shared as `Arc<dyn Provider>`: its methods return
//! boxed `Send` futures so a trait object works on any tokio worker.

mod hetzner;
mod hetzner_http;
mod hetzner_wire;
mod local;

pub use hetzner::{HetznerClient, HetznerOptions};
pub use local::LocalProvider;

use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// What every provider method returns: a boxed future, so `dyn Provider` is possible.
pub type ProviderFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A source of servers. Every method either does what it says or returns an
/// [`Error`](crate::error::Error) whose kind is the exit code the person will see.
pub trait Provider: Send + Sync + fmt::Debug {
    /// The provider's name as stored with a server: `local`, `hetzner`.
    fn name(&self) -> &'static str;
    /// Orders a server; the action tracks its creation (poll it with [`Provider::action`]).
    fn create_server<'a>(&'a self, request: &'a CreateServer) -> ProviderFuture<'a, Created>;
    /// Deletes a server and everything on its disk.
    fn delete_server(&self, id: u64) -> ProviderFuture<'_, Action>;
    fn reboot(&self, id: u64) -> ProviderFuture<'_, Action>;
    fn power_on(&self, id: u64) -> ProviderFuture<'_, Action>;
    /// Cuts the power (a hard stop, not a shutdown).
    fn power_off(&self, id: u64) -> ProviderFuture<'_, Action>;
    /// Changes the server type; the server must be off. The disk keeps its size, so the
    /// server can be resized back down.
    fn resize<'a>(&'a self, id: u64, server_type: &'a str) -> ProviderFuture<'a, Action>;
    fn server(&self, id: u64) -> ProviderFuture<'_, Server>;
    /// Every server of the account, all pages.
    fn servers(&self) -> ProviderFuture<'_, Vec<Server>>;
    /// Server types with their prices per location.
    fn server_types(&self) -> ProviderFuture<'_, Vec<ServerType>>;
    fn locations(&self) -> ProviderFuture<'_, Vec<Location>>;
    fn images(&self) -> ProviderFuture<'_, Vec<Image>>;
    /// CPU, disk and network time series of a server over a time range.
    fn metrics<'a>(&'a self, id: u64, query: &'a MetricsQuery) -> ProviderFuture<'a, Metrics>;
    /// The current state of an action (poll until [`Action::is_done`]).
    fn action(&self, id: u64) -> ProviderFuture<'_, Action>;
}

/// What to create. Names, types, locations and images are the provider's own words
/// (`cx22`, `fsn1`, `ubuntu-24.04`); they are checked by the provider, which answers with an
/// `Invalid` error when it does not know one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateServer {
    pub name: String,
    pub server_type: String,
    pub location: String,
    pub image: String,
    /// Names or ids of SSH keys registered with the provider, put into the server's root
    /// account. Empty: the provider e-mails or returns a root password instead.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
}

/// The answer to a create: the server (still initializing), the action tracking it, and the
/// root password when no SSH key was given (shown once; its `Debug` prints nothing).
#[derive(Debug, Clone)]
pub struct Created {
    pub server: Server,
    pub action: Action,
    pub root_password: Option<RootPassword>,
}

/// A root password returned by a provider. Never logged: `Debug` prints `RootPassword(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct RootPassword(String);

impl RootPassword {
    pub fn new(password: String) -> Self {
        RootPassword(password)
    }
    /// The password itself, for showing it once to the person who created the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RootPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootPassword(***)")
    }
}

/// A server as the provider reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    pub id: u64,
    pub name: String,
    pub status: ServerStatus,
    /// The server type's name (`cx22`).
    pub server_type: String,
    /// The location's name (`fsn1`).
    pub location: String,
    /// The image's name, when it was created from a public image.
    pub image: Option<String>,
    pub ipv4: Option<String>,
    /// The server's IPv6 network (`2001:db8::/64`).
    pub ipv6: Option<String>,
    /// RFC 3339, as the provider wrote it.
    pub created: String,
    /// Another action is running on the server: new ones are refused until it ends.
    pub locked: bool,
}

/// A server's power and lifecycle state; unknown states from a newer API read as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerStatus {
    Initializing,
    Starting,
    Running,
    Stopping,
    Off,
    Deleting,
    Migrating,
    Rebuilding,
    #[serde(other)]
    Unknown,
}

/// Something the provider does asynchronously: creating, rebooting, resizing a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub id: u64,
    /// What it does, in the provider's words (`create_server`, `reboot_server`).
    pub command: String,
    pub status: ActionStatus,
    /// 0 to 100.
    pub progress: u8,
    pub started: String,
    pub finished: Option<String>,
    /// Why it failed, when `status` is `Error`.
    pub error: Option<String>,
}

impl Action {
    /// Whether the action has ended, well or not.
    pub fn is_done(&self) -> bool {
        self.status != ActionStatus::Running
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    Running,
    Success,
    Error,
}

/// A size of server one can order, with its price in each location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerType {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub cores: u32,
    /// GB of memory.
    pub memory_gb: f64,
    /// GB of disk.
    pub disk_gb: u64,
    pub architecture: Option<String>,
    /// Deprecated types can no longer be ordered.
    pub deprecated: bool,
    pub prices: Vec<Price>,
}

/// Prices as decimal strings, exactly as the provider gives them (no float rounding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub location: String,
    pub hourly_net: String,
    pub hourly_gross: String,
    pub monthly_net: String,
    pub monthly_gross: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub country: String,
    pub city: String,
    pub network_zone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: u64,
    /// Public images have a name (`ubuntu-24.04`); snapshots and backups may not.
    pub name: Option<String>,
    pub description: String,
    /// `system`, `app`, `snapshot` or `backup`.
    pub kind: String,
    pub os_flavor: String,
    pub os_version: Option<String>,
    pub architecture: Option<String>,
    pub status: String,
}

/// Which time range to fetch metrics for, and at which resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsQuery {
    /// RFC 3339.
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
    /// Seconds between samples; `None` lets the provider choose.
    pub step_secs: Option<u32>,
}

/// Time series by name: `cpu` (percent of one vCPU: 200 is two full cores),
/// `disk.0.iops.read`, `disk.0.iops.write`, `disk.0.bandwidth.read`, `disk.0.bandwidth.write`
/// (per second), `network.0.pps.in`, `network.0.pps.out`, `network.0.bandwidth.in`,
/// `network.0.bandwidth.out` (per second, public interface).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub start: String,
    pub end: String,
    pub step_secs: f64,
    pub series: BTreeMap<String, Vec<Sample>>,
}

/// One sample: UNIX time in seconds and the value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub time: f64,
    pub value: f64,
}
