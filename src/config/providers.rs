//! `[providers]`: cloud providers servers can be ordered from. Only `[providers.hetzner]` so
//! far; the `local` provider (the panel host) needs no settings.

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// `[providers]` settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProvidersConfig {
    pub hetzner: HetznerConfig,
}

/// `[providers.hetzner]`: the Hetzner Cloud API.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HetznerConfig {
    /// The project's API token (read and write); empty: Hetzner is not used. A secret:
    /// masked by `config check` and by `Debug`.
    pub token: String,
    /// The API base URL.
    pub endpoint: String,
    /// Retries of a call the API asked to repeat (rate limit, conflict, gateway errors).
    pub max_retries: u32,
    /// The longest total wait over those retries, in seconds.
    pub max_retry_wait_secs: u64,
    /// How long one HTTP request may take, in seconds.
    pub timeout_secs: u64,
    /// How often a server job asks about the action it waits for, in milliseconds.
    pub action_poll_ms: u64,
}

impl Default for HetznerConfig {
    fn default() -> Self {
        HetznerConfig {
            token: String::new(),
            endpoint: "https://api.hetzner.cloud/v1".into(),
            max_retries: 5,
            max_retry_wait_secs: 60,
            timeout_secs: 30,
            action_poll_ms: 2000,
        }
    }
}

impl std::fmt::Debug for HetznerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = if self.token.is_empty() { "" } else { "***" };
        f.debug_struct("HetznerConfig")
            .field("token", &token)
            .field("endpoint", &self.endpoint)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait_secs", &self.max_retry_wait_secs)
            .field("timeout_secs", &self.timeout_secs)
            .field("action_poll_ms", &self.action_poll_ms)
            .finish()
    }
}

impl ProvidersConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let h = &self.hetzner;
        let bad = |key: &str, why: String| {
            Err(ConfigError(format!(
                "bad value for key `providers.hetzner.{key}`: {why}"
            )))
        };
        if h.token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            // Never echo the value: it is a secret.
            return bad(
                "token",
                "must not contain spaces or control characters".into(),
            );
        }
        let scheme_ok = h.endpoint.starts_with("https://") || h.endpoint.starts_with("http://");
        if !scheme_ok
            || h.endpoint
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return bad(
                "endpoint",
                "use an http:// or https:// URL like https://api.hetzner.cloud/v1".into(),
            );
        }
        if h.max_retries > 20 {
            return bad("max_retries", "at most 20".into());
        }
        if h.max_retry_wait_secs > 3600 {
            return bad("max_retry_wait_secs", "at most 3600 (one hour)".into());
        }
        if h.timeout_secs == 0 || h.timeout_secs > 600 {
            return bad("timeout_secs", "must be from 1 to 600".into());
        }
        if !(50..=60_000).contains(&h.action_poll_ms) {
            return bad("action_poll_ms", "must be from 50 to 60000".into());
        }
        Ok(())
    }

    /// A copy fit for showing: the token replaced by `***` when set.
    pub(super) fn masked(&self) -> ProvidersConfig {
        let mut shown = self.clone();
        if !shown.hetzner.token.is_empty() {
            shown.hetzner.token = "***".into();
        }
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_and_masks() {
        assert!(ProvidersConfig::default().validate().is_ok());
        for broken in [
            HetznerConfig {
                token: "a b".into(),
                ..HetznerConfig::default()
            },
            HetznerConfig {
                endpoint: "api.hetzner.cloud".into(),
                ..HetznerConfig::default()
            },
            HetznerConfig {
                timeout_secs: 0,
                ..HetznerConfig::default()
            },
            HetznerConfig {
                max_retries: 21,
                ..HetznerConfig::default()
            },
        ] {
            let config = ProvidersConfig { hetzner: broken };
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("providers.hetzner."), "{err}");
            assert!(!err.contains("a b"), "{err}");
        }
        let config = ProvidersConfig {
            hetzner: HetznerConfig {
                token: "t0ken".into(),
                ..HetznerConfig::default()
            },
        };
        assert!(!format!("{config:?}").contains("t0ken"));
        assert_eq!(config.masked().hetzner.token, "***");
    }
}
