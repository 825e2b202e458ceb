//! `[metrics]`: sampling the panel host and keeping its samples (raw, 5-minute and hourly).

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// `[metrics]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// Whether the daemon samples the panel host (server `local`).
    pub enabled: bool,
    /// Time between two samples, in milliseconds.
    pub interval_ms: u64,
    /// The disk reported is the file system holding this path.
    pub disk_path: String,
    /// Raw samples are kept this many hours (at least 2: hourly roll-ups are made from them).
    pub raw_retention_hours: u32,
    /// 5-minute averages are kept this many days.
    pub five_minute_retention_days: u32,
    /// Hourly averages are kept this many days.
    pub hourly_retention_days: u32,
    /// How often the daemon computes roll-ups and prunes old rows, in seconds.
    pub rollup_interval_secs: u64,
    /// How often the daemon refreshes each cloud server's status and addresses from its
    /// provider and fetches the metrics of running ones, in seconds; 0: never.
    pub cloud_interval_secs: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            interval_ms: 10_000,
            disk_path: "/".into(),
            raw_retention_hours: 24,
            five_minute_retention_days: 30,
            hourly_retention_days: 365,
            rollup_interval_secs: 300,
            cloud_interval_secs: 60,
        }
    }
}

impl MetricsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| {
            Err(ConfigError(format!(
                "bad value for key `metrics.{key}`: {why}"
            )))
        };
        if !self.disk_path.starts_with('/') || self.disk_path.contains('\0') {
            return bad(
                "disk_path",
                format!("{:?} is not an absolute path", self.disk_path),
            );
        }
        for (key, value, min, max) in [
            ("interval_ms", self.interval_ms, 100, 3_600_000),
            (
                "raw_retention_hours",
                u64::from(self.raw_retention_hours),
                2,
                24 * 366,
            ),
            (
                "five_minute_retention_days",
                u64::from(self.five_minute_retention_days),
                1,
                3650,
            ),
            (
                "hourly_retention_days",
                u64::from(self.hourly_retention_days),
                1,
                3650,
            ),
            ("rollup_interval_secs", self.rollup_interval_secs, 1, 3600),
            ("cloud_interval_secs", self.cloud_interval_secs, 0, 86_400),
        ] {
            if value < min || value > max {
                return bad(key, format!("must be from {min} to {max}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(MetricsConfig::default().validate().is_ok());
        for change in [
            (|c: &mut MetricsConfig| c.interval_ms = 10) as fn(&mut MetricsConfig),
            |c| c.raw_retention_hours = 1,
            |c| c.disk_path = "relative".into(),
            |c| c.rollup_interval_secs = 0,
            |c| c.hourly_retention_days = 0,
            |c| c.cloud_interval_secs = 86_401,
        ] {
            let mut config = MetricsConfig::default();
            change(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("metrics."), "{err}");
        }
    }
}
