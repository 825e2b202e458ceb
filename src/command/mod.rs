//! The command layer: parse argv with the clap tree, check, call services, render the result.
//!
//! [`run`] is the one entry point for SSH exec, the interactive shell, the TUI (through the RPC
//! link) and `vipanel admin`. Errors are mapped to exit codes here and nowhere else.

mod dispatch;
mod follow;
mod help;
mod io;
mod jobs;
pub mod mask;
pub mod output;
mod second_factor;
mod servers;
mod tree;
mod ui;

pub use dispatch::run;
pub use help::format_in as requested_format;

/// The whole tree's help with `prefix` in usage lines and examples.
pub fn run_help(prefix: &str) -> String {
    help::help_for(prefix, &[]).unwrap_or_default()
}
pub use io::{CommandIo, Invocation, NoInput, StdinBytes};
pub use output::{Format, Outcome, RowStream};
pub use tree::Cli;
