//! `vipanel admin <command…>`: the command tree run locally as the built-in administrator,
//! with this process's stdin and terminal. Works with the daemon up (SQLite WAL and PostgreSQL
//! both allow concurrent writers) or down (recovery).

use crate::command::{self, CommandIo, Invocation, Outcome};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::service::{Actor, Services};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// This process's stdin and terminal.
struct LocalIo;

impl CommandIo for LocalIo {
    fn has_tty(&self) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }

    async fn read_stdin(&mut self, limit: usize) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        tokio::io::stdin()
            .take(cap)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::unavailable(format!("cannot read standard input: {e}")))?;
        if bytes.len() > limit {
            return Err(Error::invalid(format!(
                "standard input is larger than {limit} bytes"
            )));
        }
        Ok(bytes)
    }

    async fn confirm(&mut self, prompt: &str) -> Result<bool> {
        let mut err = std::io::stderr();
        let _ = err.write_all(prompt.as_bytes());
        let _ = err.flush();
        let line = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?
        .map_err(|e| Error::unavailable(format!("cannot read the answer: {e}")))?;
        Ok(matches!(
            line.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }

    async fn stream(&mut self, stdout: Vec<u8>) -> Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(&stdout)
            .and_then(|()| out.flush())
            .map_err(|e| Error::unavailable(format!("cannot write standard output: {e}")))
    }

    async fn stream_stderr(&mut self, stderr: Vec<u8>) -> Result<()> {
        let mut err = std::io::stderr().lock();
        err.write_all(&stderr)
            .and_then(|()| err.flush())
            .map_err(|e| Error::unavailable(format!("cannot write standard error: {e}")))
    }

    async fn stopped(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs `argv` as the local administrator and returns its outcome.
pub async fn run(config: Config, argv: &[String]) -> anyhow::Result<Outcome> {
    let db = crate::daemon::open_database(&config).await?;
    let mut services = Services::new(db.clone(), Arc::new(config));
    // Sessions live in the daemon's memory, not in this process.
    services.sessions = crate::service::SessionRegistry::elsewhere();
    crate::daemon::report_bootstrap(
        &services
            .bootstrap(&crate::daemon::initial_key_source())
            .await?,
    );
    let actor = Actor::local_admin(services.system_tenant_id().await?);
    let invocation = Invocation {
        prefix: "vipanel admin".into(),
    };
    let outcome = command::run(&services, &actor, argv, &mut LocalIo, &invocation).await;
    db.close().await;
    Ok(outcome)
}
