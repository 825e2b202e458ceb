//! Applying sites to the machine: nginx vhosts, PHP-FPM pools, per-site system users.
//!
//! Everything here works from validated values ([`spec`]) and never from raw input. The service
//! layer decides *what* a site should be; this layer makes the host match, transactionally:
//! render → write beside the old files → validate (`nginx -t`, `php-fpmX.Y -t`) → keep or roll
//! back → reload once for a whole batch.

pub mod render;
pub mod spec;

pub use spec::{AccountName, ListenAddr, SafePath, SiteBackend, SiteSpec};
