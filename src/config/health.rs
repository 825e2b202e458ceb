//! `[health]`: the periodic health checks of sites and servers (`health.check` jobs).

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// `[health]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthConfig {
    /// Seconds between two checks (0: no checks).
    pub interval_secs: u64,
    /// How long one probe may take, in ms, before it counts as failing.
    pub timeout_ms: u64,
    /// The TCP port a cloud server must accept connections on to count as reachable.
    pub server_port: u16,
    /// Probes of sites running at once.
    pub concurrency: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval_secs: 60,
            timeout_ms: 3000,
            server_port: 22,
            concurrency: 16,
        }
    }
}

impl HealthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| {
            Err(ConfigError(format!(
                "bad value for key `health.{key}`: {why}"
            )))
        };
        if self.interval_secs > 86_400 {
            return bad("interval_secs", "must be from 0 (off) to 86400");
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return bad("timeout_ms", "must be from 100 to 60000");
        }
        if self.server_port == 0 {
            return bad("server_port", "must be from 1 to 65535");
        }
        if !(1..=256).contains(&self.concurrency) {
            return bad("concurrency", "must be from 1 to 256");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert!(HealthConfig::default().validate().is_ok());
        let off = HealthConfig {
            interval_secs: 0,
            ..HealthConfig::default()
        };
        assert!(off.validate().is_ok(), "checks may be off");
        for broken in [
            HealthConfig {
                timeout_ms: 10,
                ..HealthConfig::default()
            },
            HealthConfig {
                server_port: 0,
                ..HealthConfig::default()
            },
            HealthConfig {
                concurrency: 0,
                ..HealthConfig::default()
            },
        ] {
            assert!(broken.validate().is_err(), "{broken:?}");
        }
    }
}
