//! Validated values shared by every layer: names, domains, roles, SSH keys, site settings,
//! source networks, server metric values, UI preferences (themes, keymaps).
//!
//! Each type is parsed once at the edge (command arguments, config, database rows) and trusted
//! after. Nothing in here touches the database, the network or the host.

mod age;
mod domain_name;
mod metrics;
mod name;
mod public_key;
mod role;
mod session_id;
mod site_kind;
mod source_nets;
pub mod ui;

pub use age::parse_age;
pub use domain_name::DomainName;
pub(crate) use domain_name::printable;
pub use metrics::{MetricValues, Resolution};
pub use name::Name;
pub use public_key::SshPublicKey;
pub use role::Role;
pub use session_id::SessionId;
pub use site_kind::{PhpVersion, SiteKind, Upstream};
pub use source_nets::SourceNets;
