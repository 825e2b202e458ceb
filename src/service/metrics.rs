//! Server metrics: `metrics SERVER` (who may read them: as `server show`), recording the panel
//! host's samples, and the roll-ups and pruning the daemon runs on a schedule.
//!
//! Samples are not audited: they are the daemon's own observations, not anyone's changes.

use super::{Actor, MetricPoint, Services};
use crate::domain::{MetricValues, Resolution};
use crate::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};

/// Without `--step`, a range is cut into about this many points.
const AUTO_POINTS: i64 = 300;
/// With `--step`, at most this many points.
const MAX_POINTS: i64 = 10_000;

/// What the scheduled roll-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsMaintenance {
    pub rolled_up: u64,
    pub pruned: u64,
}

impl Services {
    /// `metrics SERVER`: the server's samples of the last `since`, averaged over `step`
    /// (default: about 300 points, never under a second), oldest first. The resolution read
    /// follows the range: raw samples up to `metrics.raw_retention_hours`, 5-minute averages up
    /// to `metrics.five_minute_retention_days`, hourly averages beyond.
    pub async fn server_metrics(
        &self,
        actor: &Actor,
        name: &str,
        since: Duration,
        step: Option<Duration>,
    ) -> Result<Vec<MetricPoint>> {
        let server = self.visible_server(actor, name).await?;

        let range_ms = since.num_milliseconds();
        if range_ms <= 0 {
            return Err(Error::invalid("--since must be longer than 0s"));
        }
        let step_ms = match step {
            Some(step) if step.num_milliseconds() <= 0 => {
                return Err(Error::invalid("--step must be longer than 0s"));
            }
            Some(step) => {
                let step_ms = step.num_milliseconds();
                if range_ms / step_ms > MAX_POINTS {
                    return Err(Error::invalid(format!(
                        "--step is too small for --since: at most {MAX_POINTS} points"
                    )));
                }
                step_ms
            }
            None => {
                let step = (range_ms + AUTO_POINTS - 1) / AUTO_POINTS;
                // Whole seconds: points line up with the clock.
                step.div_euclid(1000).max(1) * 1000
            }
        };
        let settings = &self.config.metrics;
        let resolution = if range_ms <= i64::from(settings.raw_retention_hours) * 3_600_000 {
            Resolution::Raw
        } else if range_ms <= i64::from(settings.five_minute_retention_days) * 86_400_000 {
            Resolution::FiveMinutes
        } else {
            Resolution::Hourly
        };
        // A step finer than the stored buckets would only repeat them; a chosen step is a
        // whole number of them, so every point averages as many.
        let bucket = resolution.bucket_ms().unwrap_or(1);
        let step_ms = match step {
            Some(_) => step_ms.max(bucket),
            None => (step_ms + bucket - 1) / bucket * bucket,
        };
        let now = crate::store::now().timestamp_millis();
        let from = now - range_ms;
        let rows = self
            .db
            .metric_points(server.id, resolution, from, now + 1, step_ms)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| MetricPoint::from_row(r, resolution))
            .collect())
    }

    /// Records a sample of the panel host (server `local`) taken at `at`.
    pub async fn record_local_metrics(
        &self,
        server_id: i64,
        at: DateTime<Utc>,
        values: &MetricValues,
    ) -> Result<()> {
        self.db
            .insert_metric_sample(server_id, at.timestamp_millis(), values)
            .await
    }

    /// Computes the 5-minute and hourly averages of complete buckets, then removes rows past
    /// their retention (raw after the roll-ups, so none is removed before it is averaged).
    /// Idempotent: running it again changes nothing.
    pub async fn metrics_maintenance(&self, now: DateTime<Utc>) -> Result<MetricsMaintenance> {
        let settings = &self.config.metrics;
        let now_ms = now.timestamp_millis();
        let raw_from = now_ms - i64::from(settings.raw_retention_hours) * 3_600_000;
        let mut done = MetricsMaintenance::default();
        for resolution in [Resolution::FiveMinutes, Resolution::Hourly] {
            done.rolled_up += self.db.rollup_metrics(resolution, raw_from, now_ms).await?;
        }
        for (resolution, before) in [
            (Resolution::Raw, raw_from),
            (
                Resolution::FiveMinutes,
                now_ms - i64::from(settings.five_minute_retention_days) * 86_400_000,
            ),
            (
                Resolution::Hourly,
                now_ms - i64::from(settings.hourly_retention_days) * 86_400_000,
            ),
        ] {
            done.pruned += self.db.prune_metrics(resolution, before).await?;
        }
        Ok(done)
    }
}
