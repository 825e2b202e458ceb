//! `[jobs]`: the durable job queue's worker pool (see docs/jobs.md).

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// `[jobs]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct JobsConfig {
    /// Jobs this daemon runs at once (0: this node runs none; it still enqueues).
    pub workers: u32,
    /// How often an idle worker looks for a due job, in ms (jobs enqueued by this process
    /// wake a worker at once).
    pub poll_interval_ms: u64,
    /// How long a claimed job is a worker's without renewal; renewed every third of it. A job
    /// whose lease expired (its daemon died) is queued again.
    pub lease_secs: u64,
    /// A job that runs longer fails that attempt (kinds may set their own).
    pub default_timeout_secs: u64,
    /// Attempts before a failing job stays failed.
    pub max_attempts: u32,
    /// The delay before the second attempt; it doubles with each further one (at most a day).
    pub backoff_base_secs: u64,
    /// This node's name ("": the machine's hostname). Work on this machine's own host
    /// (`site.apply`) is pinned to it: only workers of a node of that name claim it.
    pub node: String,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            workers: 2,
            poll_interval_ms: 1000,
            lease_secs: 60,
            default_timeout_secs: 600,
            max_attempts: 3,
            backoff_base_secs: 30,
            node: String::new(),
        }
    }
}

impl JobsConfig {
    /// [`JobsConfig::node`], or the machine's hostname when empty.
    pub fn node_name(&self) -> String {
        if !self.node.is_empty() {
            return self.node.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| {
            Err(ConfigError(format!(
                "bad value for key `jobs.{key}`: {why}"
            )))
        };
        if self.workers > 64 {
            return bad("workers", "must be from 0 to 64".into());
        }
        for (key, value, max) in [
            ("poll_interval_ms", self.poll_interval_ms, 60_000),
            ("lease_secs", self.lease_secs, 3600),
            ("default_timeout_secs", self.default_timeout_secs, 86_400),
            ("max_attempts", u64::from(self.max_attempts), 100),
            ("backoff_base_secs", self.backoff_base_secs, 86_400),
        ] {
            if value == 0 || value > max {
                return bad(key, format!("must be from 1 to {max}"));
            }
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if self.node.len() > 64 || !self.node.chars().all(allowed) {
            return bad(
                "node",
                "must be at most 64 letters, digits, '.', '-' or '_' (empty: the hostname)".into(),
            );
        }
        if self.lease_secs < 3 {
            return bad(
                "lease_secs",
                "must be at least 3 (renewed every third)".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert!(JobsConfig::default().validate().is_ok());
        let none = JobsConfig {
            workers: 0,
            ..JobsConfig::default()
        };
        assert!(none.validate().is_ok(), "a node may run no jobs");
        for broken in [
            JobsConfig {
                workers: 65,
                ..JobsConfig::default()
            },
            JobsConfig {
                lease_secs: 2,
                ..JobsConfig::default()
            },
            JobsConfig {
                max_attempts: 0,
                ..JobsConfig::default()
            },
            JobsConfig {
                poll_interval_ms: 0,
                ..JobsConfig::default()
            },
            JobsConfig {
                backoff_base_secs: 0,
                ..JobsConfig::default()
            },
            JobsConfig {
                node: "web 1".into(),
                ..JobsConfig::default()
            },
        ] {
            assert!(broken.validate().is_err(), "{broken:?}");
        }
    }
}
