//! Server metrics: `metrics SERVER` (who may read them: as `server show`), recording the panel
//! host's samples, fetching cloud servers' from their provider, and the roll-ups and pruning
//! (the `metrics.rollup` job the daemon enqueues on a schedule).
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

/// What one pass of the cloud loop did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloudRefresh {
    /// Servers whose status and addresses were read from their provider.
    pub refreshed: u64,
    /// Raw samples stored (a sample already stored at the same millisecond counts too).
    pub samples: u64,
    /// Servers whose provider could not be asked or answered with an error.
    pub failed: u64,
}

/// A provider's time series as samples by time (milliseconds): `cpu` is `cpu_pct` (as the
/// provider gives it: Hetzner's is percent of one vCPU), `network.0.bandwidth.in|out` are
/// `net_rx|tx_bytes_per_s`; what the provider does not report stays `None`.
pub fn cloud_samples(
    metrics: &crate::provider::Metrics,
) -> std::collections::BTreeMap<i64, MetricValues> {
    let mut out = std::collections::BTreeMap::<i64, MetricValues>::new();
    type Set = fn(&mut MetricValues, f64);
    let fields: [(&str, Set); 3] = [
        ("cpu", |v, x| v.cpu_pct = Some(x)),
        ("network.0.bandwidth.in", |v, x| {
            v.net_rx_bytes_per_s = Some(x)
        }),
        ("network.0.bandwidth.out", |v, x| {
            v.net_tx_bytes_per_s = Some(x)
        }),
    ];
    for (name, set) in fields {
        for sample in metrics.series.get(name).into_iter().flatten() {
            if !sample.time.is_finite() || !sample.value.is_finite() {
                continue;
            }
            let at = (sample.time * 1000.0).round() as i64;
            set(out.entry(at).or_default(), sample.value);
        }
    }
    out
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

    /// One pass of the cloud loop: every cloud server (not `local`, not being created or
    /// deleted, with a provider id) is refreshed from its provider (status, type, addresses, as
    /// `server show` does), then the metrics of those running are fetched from the newest stored
    /// sample (at most an hour back) to `now` and stored as raw samples. A server whose provider
    /// fails is logged (the provider's message, never its token) and skipped; the others go on.
    pub async fn refresh_cloud_servers(&self, now: DateTime<Utc>) -> Result<CloudRefresh> {
        let mut done = CloudRefresh::default();
        for row in self.db.servers(None).await? {
            if row.provider == "local"
                || row.status == super::servers::STATUS_CREATING
                || row.status == super::servers::STATUS_DELETING
            {
                continue;
            }
            let Some(pid) = row
                .provider_id
                .as_deref()
                .and_then(|p| p.parse::<u64>().ok())
            else {
                continue;
            };
            let provider = match self.provider(&row.provider) {
                Ok(p) => p,
                Err(err) => {
                    tracing::warn!(server = %row.name, error = %err.message, "cannot refresh a cloud server");
                    done.failed += 1;
                    continue;
                }
            };
            let found = match provider.server(pid).await {
                Ok(found) => found,
                Err(err) => {
                    tracing::warn!(server = %row.name, error = %err.message, "cannot refresh a server from its provider");
                    done.failed += 1;
                    continue;
                }
            };
            // The row may have changed meanwhile (a delete started): keep `deleting`.
            match self.db.server_by_id(row.id).await? {
                Some(current) if current.status != super::servers::STATUS_DELETING => {}
                _ => continue,
            }
            self.record_provider_server(row.id, &found).await?;
            done.refreshed += 1;
            if found.status != crate::provider::ServerStatus::Running {
                continue;
            }
            let earliest = now - Duration::hours(1);
            let start = row
                .sampled_at
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .map_or(earliest, |last| last.max(earliest));
            if now - start < Duration::seconds(1) {
                continue;
            }
            let query = crate::provider::MetricsQuery {
                start,
                end: now,
                step_secs: None,
            };
            let metrics = match provider.metrics(pid, &query).await {
                Ok(m) => m,
                Err(err) => {
                    tracing::warn!(server = %row.name, error = %err.message, "cannot fetch a server's metrics from its provider");
                    done.failed += 1;
                    continue;
                }
            };
            for (at_ms, values) in cloud_samples(&metrics) {
                self.db.insert_metric_sample(row.id, at_ms, &values).await?;
                done.samples += 1;
            }
        }
        Ok(done)
    }

    /// Enqueues the `metrics.rollup` job of the period holding `now` (periods are
    /// `metrics.rollup_interval_secs` long; see `periodic.rs`): nodes enqueueing the same
    /// period get the same job.
    pub async fn enqueue_metrics_rollup(&self, now: DateTime<Utc>) -> Result<super::JobView> {
        let interval = self.config.metrics.rollup_interval_secs;
        self.enqueue_periodic(super::job_kinds::METRICS_ROLLUP, interval, now)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Metrics, Sample};

    #[test]
    fn provider_series_become_samples_by_time() {
        let s = |time: f64, value: f64| Sample { time, value };
        let metrics = Metrics {
            start: String::new(),
            end: String::new(),
            step_secs: 60.0,
            series: [
                ("cpu".to_owned(), vec![s(60.0, 12.5), s(120.0, 30.0)]),
                ("network.0.bandwidth.in".to_owned(), vec![s(60.0, 1000.0)]),
                (
                    "network.0.bandwidth.out".to_owned(),
                    vec![s(120.0, f64::NAN)],
                ),
                ("disk.0.iops.read".to_owned(), vec![s(60.0, 5.0)]),
            ]
            .into_iter()
            .collect(),
        };
        let samples = cloud_samples(&metrics);
        assert_eq!(samples.len(), 2);
        let first = samples[&60_000];
        assert_eq!(first.cpu_pct, Some(12.5));
        assert_eq!(first.net_rx_bytes_per_s, Some(1000.0));
        assert_eq!(first.net_tx_bytes_per_s, None);
        assert_eq!(first.mem_used_bytes, None);
        let second = samples[&120_000];
        assert_eq!(second.cpu_pct, Some(30.0));
        assert_eq!(second.net_tx_bytes_per_s, None);
    }
}
