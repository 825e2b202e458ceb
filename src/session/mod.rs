//! `vipanel __session`: the process the daemon starts on a PTY for one interactive login.
//!
//! It holds no database handle and no secrets: every read and write is a request over the RPC
//! link it inherits, which the daemon runs as the user it bound to the link.
//!
//! Modules: [`link`] (the client, its reader thread and the demultiplexer).

pub mod link;
