//! Configuration: documented defaults, then the TOML file, then `VIPANEL_…` environment overrides,
//! then command-line flags. Unknown keys are warned about; bad values refuse to start, naming the key.
//!
//! `DEFAULT_FILE` is the documented default configuration (`vipanel config default` prints it) and
//! is also the source of truth for which keys exist and what type each has.

mod health;
mod host;
mod jobs;
mod metrics;
mod providers;
mod session;

pub use health::HealthConfig;
pub use host::{HostConfig, HostMode, ReloadMethod};
pub use jobs::JobsConfig;
pub use metrics::MetricsConfig;
pub use providers::{HetznerConfig, ProvidersConfig};
pub use session::SessionConfig;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The documented default configuration file, embedded in the binary.
pub const DEFAULT_FILE: &str = include_str!("../docs/config.default.toml");

/// Environment variables with the `VIPANEL_` prefix that are not configuration keys.
const RESERVED_ENV: [&str; 3] = [
    "VIPANEL_CONFIG",
    "VIPANEL_INITIAL_ADMIN_KEYS",
    "VIPANEL_REQUIRE_SERVICES",
];
const RESERVED_ENV_PREFIX: &str = "VIPANEL_TEST_";
/// The longest penalty a source can be given (`penalties.max_secs`), in seconds.
const MAX_PENALTY_SECS: u64 = 365 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub redis_url: String,
    /// Prefix of every Redis key this panel writes, so panels (or tests) can share one Redis.
    pub redis_key_prefix: String,
    pub host_key_file: String,
    pub log: String,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub penalties: PenaltiesConfig,
    pub host: HostConfig,
    pub audit: AuditConfig,
    pub session: SessionConfig,
    pub providers: ProvidersConfig,
    pub jobs: JobsConfig,
    pub metrics: MetricsConfig,
    pub health: HealthConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub totp: TotpMode,
    pub secret_key_file: String,
    pub lockout_failures: u32,
    pub lockout_window_secs: u64,
    pub lockout_secs: u64,
    pub code_failure_delay_ms: u64,
    pub enroll_code_ttl_secs: u64,
    pub enrollment_timeout_secs: u64,
    pub issuer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TotpMode {
    Off,
    Required,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    pub max_auth_attempts: u32,
    pub auth_rejection_ms: u64,
    pub pre_auth_timeout_secs: u64,
    pub max_unauthenticated_per_source: u32,
    pub startups_begin: u32,
    pub startups_rate: u32,
    pub startups_full: u32,
    pub inactivity_timeout_secs: u64,
    pub keepalive_interval_secs: u64,
    pub shutdown_grace_secs: u64,
    pub max_connections: u32,
    pub max_channels_per_connection: u32,
    pub max_stdin_bytes: u64,
    pub db_pool_size: u32,
    pub db_busy_timeout_ms: u64,
}

/// Per-source penalties, like OpenSSH's `PerSourcePenalties`: a source address (IPv4 /32,
/// IPv6 /64) whose connections misbehave is refused at accept for a while.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PenaltiesConfig {
    pub enabled: bool,
    pub authfail_secs: u64,
    pub noauth_secs: u64,
    pub grace_exceeded_secs: u64,
    pub overflow_secs: u64,
    pub max_secs: u64,
    pub max_sources: u32,
    pub exempt: Vec<String>,
}

/// `[audit]`: retention of the audit trail and the suspicious-activity flags.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    /// Rows older than this many days are pruned behind a checkpoint; 0 keeps them forever.
    pub retention_days: u32,
    /// How often the daemon applies the retention (it also does at start).
    pub prune_interval_secs: u64,
    /// A failed login step is flagged `burst` when it is at least the this-many-th failure
    /// from the same source address or for the same user within `burst_window_secs`.
    pub burst_failures: u32,
    pub burst_window_secs: u64,
    /// How often `audit list --follow` and the subscriptions of interactive sessions look for
    /// new rows, in milliseconds.
    pub follow_interval_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: 90,
            prune_interval_secs: 3600,
            burst_failures: 5,
            burst_window_secs: 600,
            follow_interval_ms: 500,
        }
    }
}

impl AuditConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| {
            Err(ConfigError(format!(
                "bad value for key `audit.{key}`: {why}"
            )))
        };
        // Ten years: beyond that a date computed from it could leave chrono's range.
        if self.retention_days > 3650 {
            return bad(
                "retention_days",
                "at most 3650 (ten years); 0 keeps rows forever",
            );
        }
        for (key, value, max) in [
            ("prune_interval_secs", self.prune_interval_secs, 7 * 86400),
            ("burst_failures", u64::from(self.burst_failures), 1000),
            ("burst_window_secs", self.burst_window_secs, 86400),
            ("follow_interval_ms", self.follow_interval_ms, 60_000),
        ] {
            if value == 0 || value > max {
                return bad(key, &format!("must be from 1 to {max}"));
            }
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:2222".into(),
            data_dir: PathBuf::from("./var"),
            database_url: String::new(),
            redis_url: String::new(),
            redis_key_prefix: "vipanel:".into(),
            host_key_file: String::new(),
            log: "info".into(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            penalties: PenaltiesConfig::default(),
            host: HostConfig::default(),
            audit: AuditConfig::default(),
            session: SessionConfig::default(),
            providers: ProvidersConfig::default(),
            jobs: JobsConfig::default(),
            metrics: MetricsConfig::default(),
            health: HealthConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            totp: TotpMode::Required,
            secret_key_file: String::new(),
            lockout_failures: 5,
            lockout_window_secs: 900,
            lockout_secs: 900,
            code_failure_delay_ms: 1000,
            enroll_code_ttl_secs: 86400,
            enrollment_timeout_secs: 300,
            issuer: "vipanel".into(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_auth_attempts: 6,
            auth_rejection_ms: 10,
            pre_auth_timeout_secs: 30,
            max_unauthenticated_per_source: 5,
            startups_begin: 10,
            startups_rate: 30,
            startups_full: 100,
            inactivity_timeout_secs: 600,
            keepalive_interval_secs: 0,
            shutdown_grace_secs: 10,
            max_connections: 256,
            max_channels_per_connection: 10,
            max_stdin_bytes: 1024 * 1024,
            db_pool_size: 10,
            db_busy_timeout_ms: 5000,
        }
    }
}

impl Default for PenaltiesConfig {
    fn default() -> Self {
        PenaltiesConfig {
            enabled: true,
            authfail_secs: 5,
            noauth_secs: 1,
            grace_exceeded_secs: 10,
            overflow_secs: 15,
            max_secs: 600,
            max_sources: 65536,
            exempt: Vec::new(),
        }
    }
}

impl PenaltiesConfig {
    /// The exempt networks, parsed: `ADDRESS/PREFIX` or a bare address (one host). A network
    /// with host bits set (`10.0.0.5/8`) is refused as a likely typo.
    pub fn exempt_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.exempt
            .iter()
            .map(|text| {
                let text = text.trim();
                let net = match text.parse::<std::net::IpAddr>() {
                    Ok(addr) => ipnet::IpNet::from(addr.to_canonical()),
                    Err(_) => text
                        .parse::<ipnet::IpNet>()
                        .map_err(|_| format!("{text:?} is not an address or ADDRESS/PREFIX"))?,
                };
                if net.trunc() != net {
                    return Err(format!(
                        "{text:?} has host bits set; did you mean {}?",
                        net.trunc()
                    ));
                }
                // Penalties track an IPv6 source by its /64, so a longer prefix never matches.
                if let ipnet::IpNet::V6(v6) = net
                    && v6.prefix_len() > 64
                {
                    return Err(format!(
                        "{text:?}: IPv6 sources are penalised per /64; exempt {} instead",
                        ipnet::IpNet::new(std::net::IpAddr::V6(v6.addr()), 64)
                            .map(|n| n.trunc().to_string())
                            .unwrap_or_default()
                    ));
                }
                Ok(net)
            })
            .collect()
    }
}

/// A configuration that could not be loaded; the message names the key and where it came from.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// What to load: the file (if any) and flag overrides from the command line.
#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    pub file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// A loaded configuration plus the warnings met on the way (unknown keys).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads defaults → file (`--config` or `VIPANEL_CONFIG`) → environment → flags, validated.
    pub fn load(options: &LoadOptions) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(options, &env)
    }

    /// Like [`Config::load`] with an explicit environment (for tests).
    pub fn load_from(
        options: &LoadOptions,
        env: &[(String, String)],
    ) -> Result<Loaded, ConfigError> {
        let mut warnings = Vec::new();
        let file = options.file.clone().or_else(|| {
            env.iter()
                .find(|(k, _)| k == "VIPANEL_CONFIG")
                .map(|(_, v)| PathBuf::from(v))
        });
        let mut tree = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| {
                    ConfigError(format!(
                        "config file {} is not valid TOML: {e}",
                        path.display()
                    ))
                })?
            }
            None => toml::Table::new(),
        };
        let defaults: toml::Table = toml::from_str(DEFAULT_FILE)
            .map_err(|e| ConfigError(format!("built-in default config is broken: {e}")))?;
        let mut from_env = Vec::new();
        for (name, raw) in env {
            let Some(key) = name.strip_prefix("VIPANEL_") else {
                continue;
            };
            if RESERVED_ENV.contains(&name.as_str()) || name.starts_with(RESERVED_ENV_PREFIX) {
                continue;
            }
            let path: Vec<String> = key.split("__").map(str::to_lowercase).collect();
            match typed_env_value(&defaults, &path, raw) {
                Some(Ok(value)) => {
                    insert_path(&mut tree, &path, value);
                    from_env.push((path.join("."), name.clone()));
                }
                Some(Err(expected)) => {
                    return Err(ConfigError(format!(
                        "bad value for key `{}` (from {name}): expected {expected}",
                        path.join(".")
                    )));
                }
                None => warnings.push(format!(
                    "unknown environment variable {name} ignored (no config key `{}`)",
                    path.join(".")
                )),
            }
        }
        let mut unknown = Vec::new();
        let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let de = serde_ignored::Deserializer::new(toml::Value::Table(tree), &mut on_unknown);
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let source = from_env
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, var)| format!(" (from {var})"))
                .unwrap_or_default();
            ConfigError(format!("bad value for key `{key}`{source}: {}", e.inner()))
        })?;
        warnings.extend(
            unknown
                .into_iter()
                .map(|key| format!("unknown config key `{key}` ignored")),
        );
        if let Some(listen) = &options.listen {
            config.listen = listen.clone();
        }
        if let Some(dir) = &options.data_dir {
            config.data_dir = dir.clone();
        }
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |key: &str, why: String| Err(ConfigError(format!("bad value for key `{key}`: {why}")));
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad(
                "listen",
                format!("{:?} is not an address like 127.0.0.1:2222", self.listen),
            );
        }
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty".into());
        }
        let url = &self.database_url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return bad("database_url", "use sqlite://PATH or postgres://…".into());
        }
        if self.redis_url.starts_with("rediss://") {
            // The redis crate is built without TLS (build time, no second TLS stack).
            return bad(
                "redis_url",
                "rediss:// (TLS) is not supported: use redis://HOST:PORT on a private network \
                 or a TLS tunnel"
                    .into(),
            );
        }
        if !(self.redis_url.is_empty()
            || (self.redis_url.starts_with("redis://")
                && redis::Client::open(self.redis_url.as_str()).is_ok()))
        {
            return bad(
                "redis_url",
                "use redis://[:PASSWORD@]HOST:PORT[/DB] or leave it empty".into(),
            );
        }
        if self.redis_key_prefix.is_empty()
            || self.redis_key_prefix.len() > 64
            || !self
                .redis_key_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b))
        {
            return bad(
                "redis_key_prefix",
                "1 to 64 of the characters a-z A-Z 0-9 - _ : .".into(),
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log).is_err() {
            return bad(
                "log",
                format!("{:?} is not a log filter like \"info\"", self.log),
            );
        }
        let l = &self.limits;
        for (key, value) in [
            ("limits.max_auth_attempts", u64::from(l.max_auth_attempts)),
            (
                "auth.lockout_failures",
                u64::from(self.auth.lockout_failures),
            ),
            ("auth.lockout_window_secs", self.auth.lockout_window_secs),
            ("auth.lockout_secs", self.auth.lockout_secs),
            ("auth.enroll_code_ttl_secs", self.auth.enroll_code_ttl_secs),
            (
                "auth.enrollment_timeout_secs",
                self.auth.enrollment_timeout_secs,
            ),
            ("limits.pre_auth_timeout_secs", l.pre_auth_timeout_secs),
            (
                "limits.max_unauthenticated_per_source",
                u64::from(l.max_unauthenticated_per_source),
            ),
            ("limits.startups_full", u64::from(l.startups_full)),
            ("limits.inactivity_timeout_secs", l.inactivity_timeout_secs),
            ("limits.max_connections", u64::from(l.max_connections)),
            (
                "limits.max_channels_per_connection",
                u64::from(l.max_channels_per_connection),
            ),
            ("limits.max_stdin_bytes", l.max_stdin_bytes),
            ("limits.db_pool_size", u64::from(l.db_pool_size)),
            ("penalties.max_secs", self.penalties.max_secs),
            (
                "penalties.max_sources",
                u64::from(self.penalties.max_sources),
            ),
        ] {
            if value == 0 {
                return bad(key, "must be greater than 0".into());
            }
        }
        if l.startups_begin > l.startups_full || l.startups_rate > 100 {
            return bad(
                "limits.startups_begin",
                "startups_begin must not exceed startups_full, and startups_rate is a percentage (0-100)".into(),
            );
        }
        let p = &self.penalties;
        if p.max_secs > MAX_PENALTY_SECS {
            return bad(
                "penalties.max_secs",
                format!("at most {MAX_PENALTY_SECS} (one year)"),
            );
        }
        for (key, base) in [
            ("penalties.authfail_secs", p.authfail_secs),
            ("penalties.noauth_secs", p.noauth_secs),
            ("penalties.grace_exceeded_secs", p.grace_exceeded_secs),
            ("penalties.overflow_secs", p.overflow_secs),
        ] {
            if base > p.max_secs {
                return bad(
                    key,
                    format!("must not exceed penalties.max_secs ({})", p.max_secs),
                );
            }
        }
        if let Err(why) = p.exempt_networks() {
            return bad("penalties.exempt", why);
        }
        let issuer = &self.auth.issuer;
        if issuer.is_empty()
            || issuer.len() > 64
            || issuer.contains(':')
            || issuer.chars().any(char::is_control)
        {
            return bad(
                "auth.issuer",
                "use a short name without ':' (it names the panel in authenticator apps)".into(),
            );
        }
        self.host.validate()?;
        self.audit.validate()?;
        self.session.validate()?;
        self.providers.validate()?;
        self.jobs.validate()?;
        self.health.validate()?;
        self.metrics.validate()
    }

    /// The database URL in effect: `database_url`, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("vipanel.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// Where the secret key that encrypts TOTP secrets lives.
    pub fn secret_key_path(&self) -> PathBuf {
        if self.auth.secret_key_file.is_empty() {
            self.data_dir.join("secret.key")
        } else {
            PathBuf::from(&self.auth.secret_key_file)
        }
    }

    /// Where the SSH host key lives.
    pub fn host_key_path(&self) -> PathBuf {
        if self.host_key_file.is_empty() {
            self.data_dir.join("ssh_host_ed25519_key")
        } else {
            PathBuf::from(&self.host_key_file)
        }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 2222)))
    }

    /// The effective configuration as TOML, with secrets (passwords in URLs) masked.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = mask_url_password(&self.database_url());
        shown.redis_url = mask_url_password(&self.redis_url);
        shown.host_key_file = self.host_key_path().display().to_string();
        shown.auth.secret_key_file = self.secret_key_path().display().to_string();
        shown.providers = self.providers.masked();
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Turns an environment string into the TOML type of the default at `path`.
/// `None`: no such key. `Some(Err(expected))`: the value does not fit the key's type.
fn typed_env_value(
    defaults: &toml::Table,
    path: &[String],
    raw: &str,
) -> Option<Result<toml::Value, &'static str>> {
    let (last, parents) = path.split_last()?;
    let mut table = defaults;
    for part in parents {
        table = table.get(part)?.as_table()?;
    }
    Some(match table.get(last)? {
        toml::Value::String(_) => Ok(toml::Value::String(raw.to_owned())),
        toml::Value::Integer(_) => raw
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| "a whole number"),
        toml::Value::Boolean(_) => match raw.trim() {
            "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
            _ => Err("true or false"),
        },
        // Lists of strings (like `penalties.exempt`): comma-separated.
        toml::Value::Array(_) => Ok(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| toml::Value::String(item.to_owned()))
                .collect(),
        )),
        _ => Err("a value that can be set from the environment"),
    })
}

fn insert_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut table = table;
    for part in parents {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            return;
        };
        table = next;
    }
    table.insert(last.clone(), value);
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_file_matches_default_struct() {
        let loaded = Config::load_from(&LoadOptions::default(), &[]).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let from_file: Config = toml::from_str(DEFAULT_FILE).unwrap();
        assert_eq!(
            toml::to_string(&from_file).unwrap(),
            toml::to_string(&Config::default()).unwrap()
        );
    }

    #[test]
    fn env_overrides_nested_and_typed() {
        let e = env(&[
            ("VIPANEL_AUTH__TOTP", "required"),
            ("VIPANEL_LIMITS__MAX_AUTH_ATTEMPTS", "3"),
            ("VIPANEL_LISTEN", "127.0.0.1:0"),
            ("VIPANEL_HOST__DEFAULT_PHP", "8.3"),
            ("VIPANEL_INITIAL_ADMIN_KEYS", "x"),
            ("VIPANEL_TEST_POSTGRES_URL", "x"),
        ]);
        let loaded = Config::load_from(&LoadOptions::default(), &e).unwrap();
        assert_eq!(loaded.config.auth.totp, TotpMode::Required);
        assert_eq!(loaded.config.limits.max_auth_attempts, 3);
        assert_eq!(loaded.config.host.default_php, "8.3");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn unknown_keys_warn_and_bad_values_name_the_key() {
        let e = env(&[("VIPANEL_NOPE", "1")]);
        let loaded = Config::load_from(&LoadOptions::default(), &e).unwrap();
        assert!(loaded.warnings[0].contains("VIPANEL_NOPE"));

        let e = env(&[("VIPANEL_AUTH__TOTP", "maybe")]);
        let err = Config::load_from(&LoadOptions::default(), &e).unwrap_err();
        assert!(err.to_string().contains("auth.totp"), "{err}");
        assert!(err.to_string().contains("VIPANEL_AUTH__TOTP"), "{err}");

        let e = env(&[("VIPANEL_LIMITS__MAX_CONNECTIONS", "many")]);
        let err = Config::load_from(&LoadOptions::default(), &e).unwrap_err();
        assert!(err.to_string().contains("limits.max_connections"), "{err}");

        let e = env(&[("VIPANEL_LISTEN", "nowhere")]);
        let err = Config::load_from(&LoadOptions::default(), &e).unwrap_err();
        assert!(err.to_string().contains("`listen`"), "{err}");
    }

    #[test]
    fn redis_settings_are_checked() {
        for good in ["", "redis://127.0.0.1:6379/", "redis://:pw@10.0.0.5:6380/2"] {
            let e = env(&[("VIPANEL_REDIS_URL", good)]);
            assert!(
                Config::load_from(&LoadOptions::default(), &e).is_ok(),
                "{good}"
            );
        }
        for (bad, says) in [
            ("rediss://10.0.0.5:6380/", "not supported"),
            ("http://10.0.0.5/", "redis://"),
            ("redis://[::1/", "redis://"),
        ] {
            let e = env(&[("VIPANEL_REDIS_URL", bad)]);
            let err = Config::load_from(&LoadOptions::default(), &e).unwrap_err();
            assert!(err.to_string().contains("redis_url"), "{bad}: {err}");
            assert!(err.to_string().contains(says), "{bad}: {err}");
        }
        for bad in ["", "a b", "x{y}", "pre\nfix", &"p".repeat(65)] {
            let e = env(&[("VIPANEL_REDIS_KEY_PREFIX", bad)]);
            let err = Config::load_from(&LoadOptions::default(), &e).unwrap_err();
            assert!(
                err.to_string().contains("redis_key_prefix"),
                "{bad:?}: {err}"
            );
        }
        let e = env(&[("VIPANEL_REDIS_KEY_PREFIX", "panel-2:")]);
        assert!(Config::load_from(&LoadOptions::default(), &e).is_ok());
    }

    #[test]
    fn file_unknown_keys_are_warned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "colour = 1\n[auth]\ntotp = \"off\"\nshoe = 2\n").unwrap();
        let options = LoadOptions {
            file: Some(path),
            ..Default::default()
        };
        let loaded = Config::load_from(&options, &[]).unwrap();
        let all = loaded.warnings.join("\n");
        assert!(
            all.contains("`colour`") && all.contains("`auth.shoe`"),
            "{all}"
        );
    }

    #[test]
    fn penalty_settings_are_checked_and_exempt_lists_come_from_the_environment() {
        let e = env(&[(
            "VIPANEL_PENALTIES__EXEMPT",
            "10.0.0.0/8, 192.0.2.7 ,2001:db8::/64",
        )]);
        let loaded = Config::load_from(&LoadOptions::default(), &e).unwrap();
        let nets = loaded.config.penalties.exempt_networks().unwrap();
        let shown: Vec<String> = nets.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/64"]);

        for (var, value, key) in [
            (
                "VIPANEL_PENALTIES__EXEMPT",
                "10.0.0.5/8",
                "penalties.exempt",
            ),
            ("VIPANEL_PENALTIES__EXEMPT", "evil;rm", "penalties.exempt"),
            (
                "VIPANEL_PENALTIES__AUTHFAIL_SECS",
                "601",
                "penalties.authfail_secs",
            ),
            ("VIPANEL_PENALTIES__MAX_SECS", "0", "penalties.max_secs"),
            (
                "VIPANEL_PENALTIES__MAX_SECS",
                "99999999999",
                "penalties.max_secs",
            ),
            (
                "VIPANEL_PENALTIES__MAX_SOURCES",
                "0",
                "penalties.max_sources",
            ),
            ("VIPANEL_PENALTIES__ENABLED", "perhaps", "penalties.enabled"),
        ] {
            let err =
                Config::load_from(&LoadOptions::default(), &env(&[(var, value)])).expect_err(value);
            assert!(err.to_string().contains(key), "{var}={value}: {err}");
        }
        let e = env(&[("VIPANEL_PENALTIES__ENABLED", "false")]);
        let loaded = Config::load_from(&LoadOptions::default(), &e).unwrap();
        assert!(!loaded.config.penalties.enabled);
    }

    #[test]
    fn ipv6_exemptions_name_a_slash_64_at_most() {
        let with = |list: &[&str]| PenaltiesConfig {
            exempt: list.iter().map(|s| s.to_string()).collect(),
            ..PenaltiesConfig::default()
        };
        assert!(
            with(&["2001:db8::/64", "10.0.0.1", "::ffff:192.0.2.1"])
                .exempt_networks()
                .is_ok()
        );
        let err = with(&["2001:db8::10"]).exempt_networks().unwrap_err();
        assert!(err.contains("2001:db8::/64"), "{err}");
        assert!(with(&["2001:db8::/96"]).exempt_networks().is_err());
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url_password("postgres://u:hunter2@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        let c = Config {
            database_url: "postgres://u:hunter2@h/db".into(),
            ..Default::default()
        };
        assert!(!c.to_masked_toml().contains("hunter2"));
    }

    #[test]
    fn hetzner_token_comes_from_the_environment_and_is_masked() {
        let e = env(&[
            ("VIPANEL_PROVIDERS__HETZNER__TOKEN", "hz-s3cret"),
            ("VIPANEL_PROVIDERS__HETZNER__MAX_RETRIES", "2"),
        ]);
        let loaded = Config::load_from(&LoadOptions::default(), &e).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.config.providers.hetzner.token, "hz-s3cret");
        assert_eq!(loaded.config.providers.hetzner.max_retries, 2);
        let shown = loaded.config.to_masked_toml();
        assert!(!shown.contains("hz-s3cret"), "{shown}");
        assert!(shown.contains("token = \"***\""), "{shown}");
        assert!(!format!("{:?}", loaded.config).contains("hz-s3cret"));
    }
}
