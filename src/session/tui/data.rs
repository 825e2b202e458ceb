//! What the dashboard shows, as the commands' `-o json` output gives it, and the queries that
//! fetch it. Only the fields the screens use are read; unknown fields are ignored, so the
//! command output may grow without breaking an older session.

use crate::domain::MetricValues;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `dashboard`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Dashboard {
    pub scope: String,
    pub tenants: i64,
    pub users: i64,
    pub keys: i64,
    pub servers: i64,
    pub sites: i64,
    #[serde(default)]
    pub sites_by_status: BTreeMap<String, i64>,
    /// Sites whose last health check failed.
    #[serde(default)]
    pub sites_failing_health: i64,
}

/// A row of `server list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Server {
    pub name: String,
    pub provider: String,
    pub status: String,
    #[serde(rename = "type")]
    pub server_type: Option<String>,
    pub location: Option<String>,
    pub image: Option<String>,
    pub ipv4: Option<String>,
    pub tenant: Option<String>,
    #[serde(default)]
    pub sites: i64,
    pub cpu_pct: Option<f64>,
    pub load1: Option<f64>,
    pub mem_used_bytes: Option<i64>,
    pub mem_total_bytes: Option<i64>,
    pub disk_used_bytes: Option<i64>,
    pub disk_total_bytes: Option<i64>,
    /// The last reachability check: `ok`, `failing`, or none yet.
    #[serde(default)]
    pub health: Option<String>,
    #[serde(default)]
    pub health_detail: Option<String>,
}

impl Server {
    pub fn mem_pct(&self) -> Option<f64> {
        percent(self.mem_used_bytes, self.mem_total_bytes)
    }
    pub fn disk_pct(&self) -> Option<f64> {
        percent(self.disk_used_bytes, self.disk_total_bytes)
    }
}

/// `used` of `total` in percent.
pub fn percent(used: Option<i64>, total: Option<i64>) -> Option<f64> {
    match (used, total) {
        (Some(u), Some(t)) if t > 0 => Some(u as f64 * 100.0 / t as f64),
        _ => None,
    }
}

/// A row of `site list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Site {
    pub domain: String,
    pub tenant: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub php: Option<String>,
    pub upstream: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub status: String,
    pub enabled: bool,
    pub server: String,
    pub system_user: Option<String>,
    pub applied_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: Option<String>,
    /// The last health check: `ok`, `failing`, or none yet.
    #[serde(default)]
    pub health: Option<String>,
    #[serde(default)]
    pub health_detail: Option<String>,
}

/// A row of `job list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub tenant: Option<String>,
    pub created_by: String,
    pub state: String,
    pub progress: i64,
    pub message: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub error: Option<String>,
    pub created_at: String,
}

impl Job {
    /// Queued or running.
    pub fn is_live(&self) -> bool {
        matches!(self.state.as_str(), "queued" | "running")
    }
}

/// A row of `audit list` (and an `audit` event).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub tenant: String,
    pub action: String,
    pub target: String,
    pub result: String,
    #[serde(default)]
    pub flag: String,
}

/// A row of `user list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct User {
    pub name: String,
    pub tenant: String,
    pub role: String,
    pub locked: bool,
    pub keys: i64,
}

/// A row of `key list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SshKey {
    pub fingerprint: String,
    pub user: String,
    pub algorithm: String,
    pub comment: String,
    pub automation: bool,
    pub last_used_at: Option<String>,
}

/// A point of `metrics SERVER`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MetricPoint {
    pub at: String,
    #[serde(flatten)]
    pub values: MetricValues,
}

/// Something the dashboard fetches: one command of the tree, run with `-o json`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Query {
    Ui,
    Dashboard,
    Servers,
    Sites,
    Jobs,
    Audit,
    Users,
    Keys,
    /// A server's history for its detail view.
    Metrics(String),
    /// The tail of a site's access log, or of its error log (`true`).
    SiteLog(String, bool),
}

/// Audit rows kept for the Logs screen and the Overview's recent events.
pub const AUDIT_ROWS: usize = 200;
/// Log lines kept for a site's log view.
pub const LOG_LINES: usize = 200;

impl Query {
    /// The command words (the session adds nothing else: the daemon knows who asks).
    pub fn argv(&self) -> Vec<String> {
        let words: Vec<String> = match self {
            Query::Ui => words(&["ui", "show"]),
            Query::Dashboard => words(&["dashboard"]),
            Query::Servers => words(&["server", "list"]),
            Query::Sites => words(&["site", "list"]),
            Query::Jobs => words(&["job", "list"]),
            Query::Audit => words(&["audit", "list", "--limit", &AUDIT_ROWS.to_string()]),
            Query::Users => words(&["user", "list"]),
            Query::Keys => words(&["key", "list"]),
            Query::Metrics(server) => words(&["metrics", server, "--since", "1h"]),
            Query::SiteLog(domain, error) => {
                let lines = LOG_LINES.to_string();
                let mut w = vec!["site", "logs", domain, "--lines", &lines];
                if *error {
                    w.push("--error");
                }
                words(&w)
            }
        };
        let mut argv = words;
        argv.extend(["-o".to_owned(), "json".to_owned()]);
        argv
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

/// Text from the panel made safe for a terminal cell: control characters (a log line is
/// written by visitors) become `?`.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A timestamp as `YYYY-MM-DD HH:MM` (RFC 3339 in, UTC out as given).
pub fn short_time(at: &str) -> String {
    let t = clean(at).replace('T', " ");
    t.chars().take(16).collect()
}

/// Bytes as a short human size (`1.5G`).
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}
