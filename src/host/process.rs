//! Running the host's tools (`nginx -t`, `php-fpm -t`, `useradd`, `systemctl`, `kill`) with a
//! deadline, capturing what they say.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished tool said.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// stderr, else stdout, trimmed: the tool's own explanation.
    pub fn message(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        text.trim().to_owned()
    }
}

/// Runs `program args…` with no stdin; killed and reported as failed after `timeout`.
pub fn run<S: AsRef<OsStr>>(
    program: impl AsRef<OsStr>,
    args: &[S],
    timeout: Duration,
) -> Result<Ran, String> {
    let shown = program.as_ref().to_string_lossy().into_owned();
    let mut child = Command::new(program.as_ref())
        .args(args)
        .env("LC_ALL", "C")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let mut out = child.stdout.take().map(drain);
    let mut err = child.stderr.take().map(drain);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown} did not finish within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("cannot wait for {shown}: {e}")),
        }
    };
    let take = |h: &mut Option<std::thread::JoinHandle<String>>| {
        h.take().and_then(|h| h.join().ok()).unwrap_or_default()
    };
    Ok(Ran {
        status,
        stdout: take(&mut out),
        stderr: take(&mut err),
    })
}

/// Reads a pipe to its end on a thread of its own (so a chatty tool never blocks on a full pipe).
fn drain<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs a tool that must succeed; its message is the error otherwise.
pub fn run_ok<S: AsRef<OsStr>>(
    program: impl AsRef<OsStr>,
    args: &[S],
    timeout: Duration,
) -> Result<Ran, String> {
    let shown = program.as_ref().to_string_lossy().into_owned();
    let ran = run(program, args, timeout)?;
    if ran.status.success() {
        Ok(ran)
    } else {
        Err(format!(
            "{shown} failed ({}): {}",
            ran.status,
            ran.message()
        ))
    }
}
