//! The `vipanel` binary: `serve`, `admin`, `migrate`, `config` (and `--version`), and the hidden
//! `__session` the daemon starts for an interactive login.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use vipanel::config::{Config, LoadOptions};

#[derive(Parser)]
#[command(
    name = "vipanel",
    version,
    about = "A web-hosting control panel whose interface is SSH"
)]
struct HostCli {
    #[command(subcommand)]
    command: HostCommand,
}

#[derive(clap::Args, Clone, Default)]
struct ConfigArgs {
    /// Configuration file (TOML); also VIPANEL_CONFIG.
    #[arg(long)]
    config: Option<PathBuf>,
    /// State directory (database, host key); overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum HostCommand {
    /// Run the SSH daemon.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Address to listen on, like 127.0.0.1:2222; overrides `listen`.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run one panel command locally as the built-in administrator (works with the daemon up or down).
    #[command(
        after_help = "Examples:\n  vipanel admin user list\n  vipanel admin key add --user admin < ~/.ssh/id_ed25519.pub"
    )]
    Admin {
        #[command(flatten)]
        config: ConfigArgs,
        /// The panel command, as after `ssh panel@host`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print the default or the effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// An interactive session's process: the daemon starts it on a PTY with its link.
    #[command(name = "__session", hide = true)]
    Session,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the documented default configuration file.
    Default,
    /// Check the configuration and print it as in effect, secrets masked.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// Exit code for a configuration that cannot be used (invalid input).
const EXIT_BAD_CONFIG: u8 = 5;

fn load(args: &ConfigArgs, listen: Option<String>) -> Result<Config, ExitCode> {
    let options = LoadOptions {
        file: args.config.clone(),
        listen,
        data_dir: args.data_dir.clone(),
    };
    match Config::load(&options) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("vipanel: warning: {warning}");
            }
            Ok(loaded.config)
        }
        Err(err) => {
            eprintln!("vipanel: {err}");
            Err(ExitCode::from(EXIT_BAD_CONFIG))
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Maps a start-up failure to an exit code: store errors keep theirs, the rest is 1.
fn fail(err: anyhow::Error) -> ExitCode {
    eprintln!("vipanel: {err:#}");
    match err.downcast_ref::<vipanel::error::Error>() {
        Some(e) => ExitCode::from(e.kind.exit_code()),
        None => ExitCode::FAILURE,
    }
}

fn main() -> ExitCode {
    // `serve` runs this as the session account at start, to prove that account can execute
    // the binary (see src/ssh/session_account.rs).
    if std::env::args_os().skip(1).eq(["__session", "--check"]) {
        return ExitCode::SUCCESS;
    }
    let cli = HostCli::parse();
    let result = match cli.command {
        HostCommand::Session => return vipanel::session::main(),
        HostCommand::Config(ConfigCommand::Default) => {
            print!("{}", vipanel::config::DEFAULT_FILE);
            return ExitCode::SUCCESS;
        }
        HostCommand::Config(ConfigCommand::Check { config }) => {
            return match load(&config, None) {
                Ok(config) => {
                    print!("{}", config.to_masked_toml());
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            };
        }
        HostCommand::Serve { config, listen } => {
            let config = match load(&config, listen) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(&config);
            runtime().map_err(anyhow::Error::from).and_then(|rt| {
                let served = rt.block_on(vipanel::daemon::serve(config));
                // Work abandoned after the grace (a host apply waiting on `nginx -t`, say)
                // must not hold the exit: its job is back in the queue already.
                rt.shutdown_timeout(std::time::Duration::from_millis(500));
                served
            })
        }
        HostCommand::Migrate { config } => {
            let config = match load(&config, None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(&config);
            runtime().map_err(anyhow::Error::from).and_then(|rt| {
                rt.block_on(async {
                    let db = vipanel::daemon::open_database(&config).await?;
                    println!(
                        "database is up to date ({} migrations, {})",
                        vipanel::store::Db::known_migrations(),
                        db.backend()
                    );
                    db.close().await;
                    Ok(())
                })
            })
        }
        HostCommand::Admin { config, command } => {
            let config = match load(&config, None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(&config);
            let outcome = runtime()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(vipanel::local_admin::run(config, &command)));
            return match outcome {
                Ok(outcome) => {
                    let _ = std::io::stdout().write_all(&outcome.stdout);
                    let _ = std::io::stderr().write_all(&outcome.stderr);
                    ExitCode::from(outcome.exit)
                }
                Err(err) => fail(err),
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(err),
    }
}
