//! Server metrics as every layer sees them: one sample's values and the resolutions they are
//! kept at (raw samples, 5-minute and hourly averages).

use serde::{Deserialize, Serialize};

/// One sample of a server. A value the source could not read is `None` (a cloud provider may
/// not report memory; a disk that cannot be read leaves the disk values out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricValues {
    /// Busy CPU time over all CPUs since the previous sample, 0–100.
    pub cpu_pct: Option<f64>,
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    /// Memory in use: total minus what the kernel says is available.
    pub mem_used_bytes: Option<i64>,
    pub mem_total_bytes: Option<i64>,
    pub disk_used_bytes: Option<i64>,
    pub disk_total_bytes: Option<i64>,
    /// Bytes received and sent per second over all interfaces but loopback.
    pub net_rx_bytes_per_s: Option<f64>,
    pub net_tx_bytes_per_s: Option<f64>,
}

impl MetricValues {
    /// The fractional values (CPU %, loads, rates) to two decimals: samples are not more
    /// precise than that, and JSON stays short. Byte counts are whole already.
    pub fn rounded(self) -> MetricValues {
        let round2 = |v: Option<f64>| v.map(|v| (v * 100.0).round() / 100.0);
        MetricValues {
            cpu_pct: round2(self.cpu_pct),
            load1: round2(self.load1),
            load5: round2(self.load5),
            load15: round2(self.load15),
            net_rx_bytes_per_s: round2(self.net_rx_bytes_per_s),
            net_tx_bytes_per_s: round2(self.net_tx_bytes_per_s),
            ..self
        }
    }
}

/// How finely samples are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Every sample as taken.
    Raw,
    /// Averages over 5-minute buckets.
    FiveMinutes,
    /// Averages over hourly buckets.
    Hourly,
}

impl Resolution {
    /// The value stored in `server_metrics.resolution`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::FiveMinutes => "5m",
            Resolution::Hourly => "1h",
        }
    }

    /// The bucket width in milliseconds (`None` for raw samples).
    pub fn bucket_ms(self) -> Option<i64> {
        match self {
            Resolution::Raw => None,
            Resolution::FiveMinutes => Some(300_000),
            Resolution::Hourly => Some(3_600_000),
        }
    }
}
