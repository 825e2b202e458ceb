//! `job list|show|watch|cancel|retry`, and how a queued job is announced (`--no-wait`).
//!
//! `job watch` polls the job every `audit.follow_interval_ms`, writes a progress line on
//! stderr whenever its state, progress or message changes, and ends with the job: exit 0 when
//! it succeeded, 8 when it failed, 4 when it was cancelled. Stopping the watch (Ctrl-C, the
//! client going away) leaves the job running and exits 0.

use super::io::CommandIo;
use super::output::{Format, Rendered, list, object};
use super::tree::JobCommand;
use crate::error::{Error, Result};
use crate::service::{Actor, JobQuery, JobView, Services};
use crate::store::JOB_STATES;
use std::time::Duration;

const JOB_COLUMNS: &[&str] = &[
    "id",
    "kind",
    "tenant",
    "state",
    "progress",
    "attempts",
    "created_by",
    "created_at",
];

/// The exit status of `job watch` for a job that ended this way.
pub fn watch_exit(state: &str) -> u8 {
    match state {
        "succeeded" => 0,
        "cancelled" => 4,
        _ => 8,
    }
}

/// What `--no-wait` prints: the id (JSON, plain: the job).
pub(super) fn queued(job: &JobView, format: Format) -> Rendered {
    match format {
        Format::Table => Rendered::Text(format!("{}\n", job.id)),
        _ => object(job),
    }
}

pub(super) async fn job<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    cmd: JobCommand,
    io: &mut I,
    format: Format,
) -> Result<Rendered> {
    match cmd {
        JobCommand::List { state, kind, limit } => {
            if !(1..=1000).contains(&limit) {
                return Err(Error::invalid("--limit must be from 1 to 1000"));
            }
            if let Some(state) = &state
                && !JOB_STATES.contains(&state.as_str())
            {
                return Err(Error::invalid(format!(
                    "unknown state {state:?}: use one of {}",
                    JOB_STATES.join(", ")
                )));
            }
            let query = JobQuery { state, kind, limit };
            Ok(list(
                &s.job_list(actor, &query).await?,
                JOB_COLUMNS,
                "no jobs",
            ))
        }
        JobCommand::Show { id } => Ok(object(&s.job_show(actor, job_id(&id)?).await?)),
        JobCommand::Watch { id } => watch(s, actor, job_id(&id)?, io, format).await,
        JobCommand::Cancel { id, confirm } => {
            let id = job_id(&id)?;
            let job = s.job_show(actor, id).await?;
            if !confirm.yes {
                let question = format!("Cancel job {id} ({})", job.kind);
                if !io.has_tty() {
                    return Err(Error::usage(format!(
                        "{question}? Add --yes to confirm (there is no terminal to ask on)"
                    )));
                }
                if !io.confirm(&format!("{question}? [y/N] ")).await? {
                    return Err(Error::usage("not confirmed; nothing was changed"));
                }
            }
            Ok(object(&s.job_cancel(actor, id).await?))
        }
        JobCommand::Retry { id } => Ok(object(&s.job_retry(actor, job_id(&id)?).await?)),
    }
}

fn job_id(text: &str) -> Result<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::invalid(format!("{text:?} is not a job id (a positive number)")))
}

/// `job watch`: progress lines on stderr until the job ends, then the job.
async fn watch<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    id: i64,
    io: &mut I,
    format: Format,
) -> Result<Rendered> {
    let (job, finished) = follow(s, actor, id, io).await?;
    if !finished {
        return Ok(object(&job));
    }
    Ok(ended(&job, format))
}

/// Streams progress lines of job `id` on stderr until it ends (`true`) or the watcher is
/// stopped (`false`); returns the job as last seen. Shared by `job watch` and the commands that
/// wait for their job (`server create`, …).
pub(super) async fn follow<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    id: i64,
    io: &mut I,
) -> Result<(JobView, bool)> {
    let interval = Duration::from_millis(s.config.audit.follow_interval_ms);
    let mut actor = actor.clone();
    let mut job = s.job_show(&actor, id).await?;
    let mut shown = String::new();
    let mut rings = s.doorbells.listen(crate::service::doorbell::Bell::Jobs);
    loop {
        let line = progress_line(&job);
        if line != shown {
            io.stream_stderr(format!("{line}\n").into_bytes()).await?;
            shown = line;
        }
        if job.is_finished() {
            return Ok((job, true));
        }
        let stop = tokio::select! {
            () = io.stopped() => true,
            () = crate::service::doorbell::ring_or(&mut rings, interval) => false,
        };
        if stop {
            return Ok((job, false));
        }
        // Like every streaming command: a user locked meanwhile stops here (exit 7).
        actor = s.refresh_actor(&actor).await?;
        job = s.job_show(&actor, id).await?;
    }
}

/// How a finished job is shown, with `job watch`'s exit status.
pub(super) fn ended(job: &JobView, format: Format) -> Rendered {
    let exit = watch_exit(&job.state);
    let rendered = match format {
        Format::Table => Rendered::Text(outcome_text(job)),
        _ => object(job),
    };
    if exit == 0 {
        rendered
    } else {
        Rendered::WithExit(Box::new(rendered), exit)
    }
}

fn progress_line(job: &JobView) -> String {
    let mut line = format!("job {} {}: {}%", job.id, job.state, job.progress);
    if let Some(message) = &job.message {
        line.push(' ');
        line.push_str(&visible(message));
    }
    if job.state == "queued" && job.attempts > 0 {
        line.push_str(&format!(
            " (attempt {} of {} failed; retrying at {})",
            job.attempts,
            job.max_attempts,
            job.run_at.format("%H:%M:%S")
        ));
    }
    line
}

fn outcome_text(job: &JobView) -> String {
    match job.state.as_str() {
        "succeeded" => format!("job {} succeeded\n", job.id),
        state => format!(
            "job {} {state}{}\n",
            job.id,
            job.error
                .as_deref()
                .map(|e| format!(": {}", visible(e)))
                .unwrap_or_default()
        ),
    }
}

/// Messages come from job code and errors of host tools: no terminal controls.
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses() {
        assert_eq!(watch_exit("succeeded"), 0);
        assert_eq!(watch_exit("failed"), 8);
        assert_eq!(watch_exit("cancelled"), 4);
        assert_eq!(visible("a\u{1b}[31mb\n"), "a [31mb ");
    }
}
