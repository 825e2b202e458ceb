//! vipanel: a web-hosting control panel whose interface is SSH.
//!
//! Layers, arrows pointing down only (see `docs/architecture.md`):
//! `ssh` → `command` → `service` → `store`, with `domain`, `config` and `error` shared by all.
//! `service` never imports `ssh` or `command`; `store` never imports `service`.

#![deny(unsafe_code)]

pub mod command;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod error;
pub mod host;
pub mod local_admin;
pub mod metrics;
pub mod provider;
pub mod rpc;
pub mod secret;
pub mod service;
pub mod session;
pub mod ssh;
pub mod store;
