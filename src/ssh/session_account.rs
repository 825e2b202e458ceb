//! Who session processes run as, settled once at `serve` start.
//!
//! As root, the daemon runs every `vipanel __session` process as the unprivileged account
//! `session.user` (created here when missing: a system account without home directory or login
//! shell). Then it proves, before accepting anyone, that this account can execute the running
//! binary (`/proc/self/exe __session --check`): a binary the account may not execute (mode
//! 0700, a noexec mount) is a start-up error with its fix, not a broken login later. Not as root, sessions run
//! as the daemon's own user, which the log says.

pub use super::pty::Account;

use super::pty;
use crate::config::SessionConfig;
use crate::error::{Error, ErrorKind, Result};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The executable every session process is started from: the running binary itself, so a
/// binary replaced on disk by an upgrade never meets an older daemon.
pub const SELF_EXE: &str = "/proc/self/exe";

/// Settles the session account: `Some` (as root) or `None` (sessions run as the daemon's user).
pub fn prepare(config: &SessionConfig) -> Result<Option<Account>> {
    if !pty::is_root() {
        tracing::info!(
            "not running as root: session processes run as the daemon's own user \
             (session.user applies only to a daemon started as root)"
        );
        return Ok(None);
    }
    let name = config.user.as_str();
    let account = match lookup(name)? {
        Some(account) => account,
        None => {
            create(name)?;
            let account = lookup(name)?.ok_or_else(|| {
                Error::unavailable(format!(
                    "useradd reported success but account {name} (session.user) does not exist"
                ))
            })?;
            tracing::info!(
                user = name,
                uid = account.uid,
                "created the session account"
            );
            account
        }
    };
    if account.uid == 0 || account.gid == 0 {
        return Err(Error::invalid(format!(
            "session.user = {name:?} has uid or gid 0: session processes must run unprivileged; \
             name an account of their own"
        )));
    }
    check_can_execute(name, account)?;
    tracing::info!(
        user = name,
        uid = account.uid,
        "session processes run as the session account"
    );
    Ok(Some(account))
}

fn lookup(name: &str) -> Result<Option<Account>> {
    pty::lookup_account(name)
        .map_err(|e| Error::unavailable(format!("cannot look up account {name}: {e}")))
}

fn create(name: &str) -> Result<()> {
    // The name was validated by the configuration (no option-like or odd names).
    let output = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "vipanel session processes",
            "--user-group",
            "--",
            name,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::unavailable(format!(
                "cannot run useradd to create the session account {name} (session.user): {e}; \
                 create it yourself: useradd --system --no-create-home --shell /usr/sbin/nologin {name}"
            ))
        })?;
    if !output.status.success() {
        return Err(Error::unavailable(format!(
            "useradd could not create the session account {name} (session.user): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Runs `/proc/self/exe __session --check` as the account; anything but exit 0 refuses to start.
fn check_can_execute(name: &str, account: Account) -> Result<()> {
    let binary = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "the vipanel binary".into());
    let outcome = Command::new(SELF_EXE)
        .args(["__session", "--check"])
        .env_clear()
        .current_dir("/")
        .uid(account.uid)
        .gid(account.gid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let why = match outcome {
        Ok(out) if out.status.success() => return Ok(()),
        Ok(out) => format!(
            "it exited with {} ({})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => e.to_string(),
    };
    // Started through the /proc/self/exe magic link, the account needs execute permission on
    // the file only: the directories above it are not searched.
    Err(Error::new(
        ErrorKind::Invalid,
        format!(
            "the session account {name} (session.user) cannot run {binary}: {why}. Interactive \
             logins would fail. Let every user execute the binary: chmod 0755 {binary} (and \
             keep it off a noexec mount)"
        ),
    ))
}
