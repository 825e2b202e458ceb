//! Help text and parse errors: clap's output with the caller's real prefix (`ssh -p 2222
//! panel@host`, `vipanel admin`) in usage lines and examples.

use super::output::{Format, Outcome, render_error};
use super::tree::Cli;
use crate::error::Error;
use clap::CommandFactory;

/// The clap command with usage lines showing `prefix`.
pub fn command(prefix: &str) -> clap::Command {
    Cli::command().bin_name(prefix.to_owned())
}

/// Help for the command named by `words` (`[]` = the whole tree).
pub fn help_for(prefix: &str, words: &[String]) -> Result<String, Error> {
    let mut cmd = command(prefix);
    cmd.build();
    let mut current = &mut cmd;
    for (depth, word) in words.iter().enumerate() {
        current = current.find_subcommand_mut(word).ok_or_else(|| {
            let path = words[..depth].join(" ");
            let place = if path.is_empty() {
                String::new()
            } else {
                format!(" under `{path}`")
            };
            Error::usage(format!("there is no command {word:?}{place}; try `help`"))
        })?;
    }
    Ok(fill(&current.render_long_help().to_string(), prefix))
}

/// Replaces the `{prefix}` placeholder of examples with the real invocation prefix.
pub fn fill(text: &str, prefix: &str) -> String {
    text.replace("{prefix}", prefix)
}

/// Which output format argv asks for, read before parsing so parse errors honour `-o json`.
pub fn format_in(argv: &[String]) -> Format {
    let mut iter = argv.iter().peekable();
    while let Some(arg) = iter.next() {
        let value = match arg.as_str() {
            "-o" | "--output" => iter.peek().map(|s| s.as_str()),
            other => other
                .strip_prefix("--output=")
                .or_else(|| other.strip_prefix("-o")),
        };
        match value {
            Some("json") => return Format::Json,
            Some("plain") => return Format::Plain,
            Some("table") => return Format::Table,
            _ => {}
        }
    }
    Format::Table
}

/// Turns a clap error into output: help on stdout with exit 0, or a usage error (exit 2).
pub fn clap_outcome(err: clap::Error, prefix: &str, format: Format) -> Outcome {
    use clap::error::ErrorKind;
    let text = fill(&err.render().to_string(), prefix);
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Outcome {
            stdout: text.into_bytes(),
            stderr: Vec::new(),
            exit: 0,
        },
        _ if format == Format::Json => {
            let head = text.split("\n\nUsage:").next().unwrap_or("usage error");
            let head = head.strip_prefix("error: ").unwrap_or(head);
            let message = head.split_whitespace().collect::<Vec<_>>().join(" ");
            render_error(&Error::usage(message), format)
        }
        _ => Outcome {
            stdout: Vec::new(),
            stderr: text.into_bytes(),
            exit: Error::usage("").kind.exit_code(),
        },
    }
}
