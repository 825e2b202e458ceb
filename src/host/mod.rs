//! Applying sites to the machine: nginx vhosts, PHP-FPM pools, per-site system users.
//!
//! Everything here works from validated values ([`spec`]) and never from raw input. The service
//! layer decides *what* a site should be; this layer makes the host match, transactionally
//! ([`apply`]): render → write beside the old files → validate (`nginx -t`, `php-fpmX.Y -t`) →
//! keep or roll back → reload once for a whole batch. `docs/sites.md` describes the layout.

mod accounts;
pub mod apply;
pub mod layout;
mod masters;
mod process;
pub mod render;
pub mod spec;
mod stage;

pub use apply::{ApplyLock, Desired, Item, Mode, Outcome, apply, lock};
pub use layout::{Backend, HostLayout, SiteInput};
pub use spec::{AccountName, ListenAddr, SafePath, SiteBackend, SiteSpec};
