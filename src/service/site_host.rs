//! The host as the panel sees it: installed PHP versions (`php list`), `host reconcile`, and
//! sites' nginx logs (`site logs`).

use super::policy::Verb;
use super::site_apply::{BatchReport, HostChanges};
use super::{Actor, Services};
use crate::config::HostMode;
use crate::domain::{DomainName, PhpVersion};
use crate::error::{Error, Result};
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// One installed PHP-FPM version.
#[derive(Debug, Clone, Serialize)]
pub struct PhpInstall {
    pub version: String,
    pub binary: String,
    /// Whether new PHP sites take it (the newest installed).
    pub default: bool,
}

/// What `host reconcile` did.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileReport {
    /// Sites rebuilt.
    pub sites: usize,
    #[serde(flatten)]
    pub host: HostChanges,
    /// Sites that could not be applied, with why.
    pub failed: Vec<ReconcileFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconcileFailure {
    pub domain: String,
    pub error: String,
}

/// A read position in a site's log, for `site logs --follow`.
#[derive(Debug)]
pub struct LogCursor {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

/// The most bytes `site logs` reads back from the end of a log to find its last lines.
const TAIL_WINDOW: u64 = 4 * 1024 * 1024;

impl Services {
    /// Refuses a PHP version that is not installed (system mode; a sandbox takes any).
    pub(super) fn require_php(&self, version: PhpVersion) -> Result<()> {
        let layout = self.applier()?.layout;
        if layout.mode == HostMode::Sandbox {
            return Ok(());
        }
        let installed = layout.installed_php();
        if installed.contains(&version) {
            return Ok(());
        }
        let list = if installed.is_empty() {
            "none".to_owned()
        } else {
            installed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(Error::invalid(format!(
            "PHP {version} is not installed (PHP-FPM versions installed: {list}); see `php list`"
        )))
    }

    /// `php list`: the PHP-FPM versions installed on the host.
    pub async fn php_list(&self, _actor: &Actor) -> Result<Vec<PhpInstall>> {
        let layout = self.applier()?.layout;
        let installed = layout.installed_php();
        let newest = installed.last().copied();
        installed
            .into_iter()
            .map(|version| {
                Ok(PhpInstall {
                    version: version.to_string(),
                    binary: layout.php_fpm_binary.at(version)?.to_string(),
                    default: Some(version) == newest,
                })
            })
            .collect()
    }

    /// `host reconcile` (admins): rebuilds every site from the database, removes what belongs
    /// to none, finishes interrupted deletions. Idempotent: a second run changes nothing.
    pub async fn host_reconcile(&self, actor: &Actor) -> Result<ReconcileReport> {
        self.audited(actor, "host.reconcile", "local", async {
            if !actor.is_admin() {
                return Err(Error::forbidden("only admins reconcile the host"));
            }
            let summary = self.reconcile_host().await?;
            let detail = format!(
                "sites={} changed={} failed={}",
                summary.sites,
                summary.host.changed,
                summary.failed.len()
            );
            super::audit::record_ok_alone(
                self,
                actor,
                &actor.tenant,
                "host.reconcile",
                "local",
                &detail,
            )
            .await?;
            Ok(summary)
        })
        .await
    }

    /// `host reconcile --no-wait` (admins): enqueues a `host.reconcile` platform job.
    pub async fn host_reconcile_enqueue(&self, actor: &Actor) -> Result<super::JobView> {
        self.audited(actor, "host.reconcile", "local", async {
            if actor.is_admin() {
                Ok(())
            } else {
                Err(Error::forbidden("only admins reconcile the host"))
            }
        })
        .await?;
        let request = super::JobRequest {
            kind: super::HOST_RECONCILE.into(),
            tenant_id: None,
            payload: serde_json::json!({}),
            idempotency_key: None,
            run_at: None,
            node: Some(self.node().to_owned()),
        };
        self.job_enqueue(actor, request).await
    }

    /// The work of `host reconcile`, without checks or audit (the command and the job use it).
    pub(super) async fn reconcile_host(&self) -> Result<ReconcileReport> {
        let report = self.applier()?.reconcile().await?;
        if let Some(e) = &report.error {
            return Err(Error::unavailable(format!(
                "cannot reconcile the host: {e}"
            )));
        }
        let sites = self.db.sites(None).await?;
        Ok(summarize(&report, &sites))
    }

    /// Where a site's access (or error) log is, after checking the actor may read the site.
    async fn site_log_path(
        &self,
        actor: &Actor,
        domain: &DomainName,
        error: bool,
    ) -> Result<PathBuf> {
        let _ = self.visible_site(actor, domain, Verb::Read).await?;
        let layout = self.applier()?.layout;
        let dir = layout.site_log_dir(domain)?;
        Ok(dir
            .as_path()
            .join(if error { "error.log" } else { "access.log" }))
    }

    /// `site logs`: the last `lines` lines, and a cursor at the end for `--follow`.
    pub async fn site_log_tail(
        &self,
        actor: &Actor,
        domain: &DomainName,
        error: bool,
        lines: usize,
    ) -> Result<(Vec<String>, LogCursor)> {
        let path = self.site_log_path(actor, domain, error).await?;
        tokio::task::spawn_blocking(move || tail(path, lines))
            .await
            .map_err(|e| Error::internal(format!("log reader failed: {e}")))?
    }

    /// New complete lines since the cursor (a log rotated or truncated starts over).
    pub async fn site_log_next(&self, cursor: LogCursor) -> Result<(Vec<String>, LogCursor)> {
        tokio::task::spawn_blocking(move || next_lines(cursor))
            .await
            .map_err(|e| Error::internal(format!("log reader failed: {e}")))?
    }
}

fn summarize(report: &BatchReport, sites: &[crate::store::SiteRow]) -> ReconcileReport {
    let mut failed: Vec<ReconcileFailure> = report
        .results
        .iter()
        .filter_map(|(id, result)| {
            let error = result.as_ref().err()?;
            let domain = sites
                .iter()
                .find(|s| s.id == *id)
                .map_or_else(|| format!("site #{id}"), |s| s.domain.clone());
            Some(ReconcileFailure {
                domain,
                error: error.clone(),
            })
        })
        .collect();
    failed.sort_by(|a, b| a.domain.cmp(&b.domain));
    ReconcileReport {
        sites: report.sites,
        host: report.host.clone(),
        failed,
    }
}

fn open_log(path: &PathBuf) -> Result<Option<std::fs::File>> {
    match std::fs::File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::unavailable(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn tail(path: PathBuf, lines: usize) -> Result<(Vec<String>, LogCursor)> {
    let Some(mut file) = open_log(&path)? else {
        return Ok((
            Vec::new(),
            LogCursor {
                path,
                offset: 0,
                partial: Vec::new(),
            },
        ));
    };
    let len = file
        .metadata()
        .map_err(|e| Error::unavailable(e.to_string()))?
        .len();
    let start = len.saturating_sub(TAIL_WINDOW);
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.take(len - start).read_to_end(&mut buf))
        .map_err(|e| Error::unavailable(e.to_string()))?;
    // Only complete lines: a half-written last line is shown once finished (--follow).
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&buf[..complete]);
    let all: Vec<&str> = text.lines().collect();
    let shown = all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect();
    Ok((
        shown,
        LogCursor {
            path,
            offset: start + complete as u64,
            partial: Vec::new(),
        },
    ))
}

fn next_lines(mut cursor: LogCursor) -> Result<(Vec<String>, LogCursor)> {
    let Some(mut file) = open_log(&cursor.path)? else {
        return Ok((Vec::new(), cursor));
    };
    let len = file
        .metadata()
        .map_err(|e| Error::unavailable(e.to_string()))?
        .len();
    if len < cursor.offset {
        cursor.offset = 0;
        cursor.partial.clear();
    }
    let mut buf = std::mem::take(&mut cursor.partial);
    let carried = buf.len();
    file.seek(SeekFrom::Start(cursor.offset))
        .and_then(|_| file.take(TAIL_WINDOW).read_to_end(&mut buf))
        .map_err(|e| Error::unavailable(e.to_string()))?;
    cursor.offset += (buf.len() - carried) as u64;
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = String::from_utf8_lossy(&buf[..complete])
        .lines()
        .map(str::to_owned)
        .collect();
    cursor.partial = buf[complete..].to_vec();
    Ok((lines, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tail_and_follow_show_complete_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let (lines, cursor) = tail(path.clone(), 5).unwrap();
        assert!(lines.is_empty(), "no log yet");
        std::fs::write(&path, "one\ntwo\nthree\nhalf").unwrap();
        let (lines, cursor) = next_lines(cursor).unwrap();
        assert_eq!(lines, ["one", "two", "three"]);
        let (lines, cursor) = next_lines(cursor).unwrap();
        assert!(lines.is_empty(), "a half-written line waits");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b" done\nfour\n").unwrap();
        let (lines, cursor) = next_lines(cursor).unwrap();
        assert_eq!(lines, ["half done", "four"]);
        let (last, _) = tail(path.clone(), 2).unwrap();
        assert_eq!(last, ["half done", "four"]);
        // Rotated (truncated and written again): read from the start.
        std::fs::write(&path, "fresh\n").unwrap();
        let (lines, _) = next_lines(cursor).unwrap();
        assert_eq!(lines, ["fresh"]);
    }
}
