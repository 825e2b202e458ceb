//! Business logic per resource. Every public method takes the [`Actor`] it runs as, asks
//! [`policy`] first, validates, writes through one store transaction together with its audit row,
//! and returns plain serializable views.
//!
//! This layer never imports `ssh`, `session`, `command` or any UI crate.

mod actor;
mod audit;
mod audit_retention;
mod audit_trail;
mod bootstrap;
mod dashboard;
mod identity;
mod keys;
pub mod policy;
mod preflight;
mod servers;
mod sessions;
mod sites;
mod suspicion;
mod tenants;
mod users;
mod views;

pub use actor::Actor;
pub use audit::with_command_line;
pub use audit_trail::AuditQuery;
pub use bootstrap::{BootstrapReport, InitialKeySource};
pub use identity::{LoginCheck, LoginIdentity, LoginRefusal};
pub use preflight::DeleteTarget;
pub use sessions::{KillSignal, SessionGuard, SessionRegistry};
pub use sites::SiteCreate;
pub use suspicion::{LOCKOUT_ACTION, network_of};
pub use users::UserCreate;
pub use views::*;

use crate::config::Config;
use crate::store::Db;
use std::sync::Arc;

/// Everything a request needs, cheap to clone and shared by every protocol front end.
#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub config: Arc<Config>,
    /// The live sessions of this process (see [`SessionRegistry`]).
    pub sessions: SessionRegistry,
}

impl Services {
    pub fn new(db: Db, config: Arc<Config>) -> Services {
        Services {
            db,
            config,
            sessions: SessionRegistry::new(),
        }
    }
}
