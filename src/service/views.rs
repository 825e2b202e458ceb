//! What services return: plain, serializable views with stable snake_case field names
//! (documented in `docs/commands.md`; never renamed silently).

use crate::domain::{MetricValues, Resolution};
use crate::store::{AuditRow, KeyRow, MetricPointRow, ServerRow, SiteRow, TenantRow, UserRow};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WhoAmI {
    pub user: String,
    pub tenant: String,
    pub role: String,
    pub key_fingerprint: Option<String>,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub name: String,
    pub users: i64,
    pub sites: i64,
    pub created_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            name: r.name,
            users: r.users,
            sites: r.sites,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub name: String,
    pub tenant: String,
    pub role: String,
    pub locked: bool,
    pub keys: i64,
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            name: r.name,
            tenant: r.tenant,
            role: r.role,
            locked: r.locked,
            keys: r.keys,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Key {
    pub fingerprint: String,
    pub user: String,
    pub algorithm: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// An automation key: no second step, only from `allowed_from`, with at most `max_role`.
    pub automation: bool,
    pub allowed_from: Vec<String>,
    pub max_role: Option<String>,
}

impl From<KeyRow> for Key {
    fn from(r: KeyRow) -> Self {
        Key {
            fingerprint: r.fingerprint,
            user: r.user,
            algorithm: r.algorithm,
            comment: r.comment,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            automation: r.automation,
            allowed_from: r
                .allowed_from
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            max_role: r.max_role,
        }
    }
}

/// A user just created, with the keys it was given.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: User,
    pub key_fingerprints: Vec<String>,
    /// The one-time code the new user types before enrolling its authenticator (shown once).
    pub enroll_code: String,
    pub enroll_code_expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Site {
    pub domain: String,
    pub tenant: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub php: Option<String>,
    pub upstream: Option<String>,
    pub aliases: Vec<String>,
    /// pending (recorded, not applied yet), active, disabled, error, deleting.
    pub status: String,
    /// Whether the site should serve (`site enable|disable`).
    pub enabled: bool,
    pub server: String,
    /// The site's own system account (owns its files, runs its PHP).
    pub system_user: Option<String>,
    /// When the host last matched the site.
    pub applied_at: Option<DateTime<Utc>>,
    /// Why the last apply failed (status `error`).
    pub last_error: Option<String>,
    /// The last health check (`health.check`): `ok`, `failing`, or null (not checked yet).
    pub health: Option<String>,
    /// What the check saw (`HTTP 200 in 3 ms`, `no answer within 3000 ms`, …).
    pub health_detail: Option<String>,
    pub health_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SiteRow> for Site {
    fn from(r: SiteRow) -> Self {
        Site {
            domain: r.domain,
            tenant: r.tenant,
            kind: r.kind,
            php: r.php_version,
            upstream: r.upstream,
            aliases: r.aliases,
            status: r.status,
            enabled: r.enabled,
            server: r.server,
            system_user: r.system_user,
            applied_at: r.applied_at,
            last_error: r.last_error,
            health: r.health,
            health_detail: r.health_detail,
            health_at: r.health_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub name: String,
    pub provider: String,
    pub status: String,
    #[serde(rename = "type")]
    pub server_type: Option<String>,
    pub location: Option<String>,
    pub image: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    /// `None` for shared servers such as `local` (the panel host).
    pub tenant: Option<String>,
    pub sites: i64,
    pub created_at: DateTime<Utc>,
    /// The last reachability check (`health.check`): `ok`, `failing`, or null (not checked).
    pub health: Option<String>,
    pub health_detail: Option<String>,
    pub health_at: Option<DateTime<Utc>>,
    /// The newest sample (all null when there is none): when it was taken and its values.
    pub sampled_at: Option<DateTime<Utc>>,
    pub cpu_pct: Option<f64>,
    pub load1: Option<f64>,
    pub mem_used_bytes: Option<i64>,
    pub mem_total_bytes: Option<i64>,
    pub disk_used_bytes: Option<i64>,
    pub disk_total_bytes: Option<i64>,
}

impl From<ServerRow> for Server {
    fn from(r: ServerRow) -> Self {
        Server {
            name: r.name,
            provider: r.provider,
            status: r.status,
            server_type: r.server_type,
            location: r.location,
            image: r.image,
            ipv4: r.ipv4,
            ipv6: r.ipv6,
            tenant: r.tenant,
            sites: r.sites,
            created_at: r.created_at,
            health: r.health,
            health_detail: r.health_detail,
            health_at: r.health_at,
            sampled_at: r.sampled_at.and_then(DateTime::from_timestamp_millis),
            cpu_pct: r.cpu_pct.map(round2),
            load1: r.load1.map(round2),
            mem_used_bytes: r.mem_used_bytes,
            mem_total_bytes: r.mem_total_bytes,
            disk_used_bytes: r.disk_used_bytes,
            disk_total_bytes: r.disk_total_bytes,
        }
    }
}

/// Two decimals: samples are not more precise than that, and JSON stays short.
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// One point of `metrics SERVER`: averages over the bucket starting at `at`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricPoint {
    pub at: DateTime<Utc>,
    /// Which stored rows it was computed from: `raw`, `5m` or `1h`.
    pub resolution: &'static str,
    /// Raw samples behind the point.
    pub samples: i64,
    /// The averages, rates and loads to two decimals.
    #[serde(flatten)]
    pub values: MetricValues,
}

impl MetricPoint {
    pub(super) fn from_row(r: MetricPointRow, resolution: Resolution) -> MetricPoint {
        MetricPoint {
            at: DateTime::from_timestamp_millis(r.at).unwrap_or_default(),
            resolution: resolution.as_str(),
            samples: r.samples,
            values: r.values().rounded(),
        }
    }
}

/// `dashboard`: counts within the actor's scope (admins: the whole platform).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dashboard {
    pub scope: String,
    pub tenants: i64,
    pub users: i64,
    pub keys: i64,
    pub servers: i64,
    pub sites: i64,
    pub sites_by_status: std::collections::BTreeMap<String, i64>,
    /// Sites whose last health check failed.
    pub sites_failing_health: i64,
    /// When a site in scope was last applied to the host (null: never).
    pub sites_last_applied_at: Option<DateTime<Utc>>,
}

/// One row of the audit trail (`audit list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub tenant: String,
    pub role: String,
    pub key_fingerprint: Option<String>,
    pub source: String,
    pub action: String,
    pub target: String,
    pub result: String,
    pub detail: String,
    /// The command line with secrets masked, for a command's row.
    pub command: Option<String>,
    pub exit_code: Option<i32>,
    /// Why the row is suspicious (`burst …`, `new-network …`, `lockout`), or empty.
    pub flag: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            tenant: r.tenant,
            role: r.role,
            key_fingerprint: r.key_fingerprint,
            source: r.source,
            action: r.action,
            target: r.target,
            result: r.result,
            detail: r.detail,
            command: r.command,
            exit_code: r.exit_code,
            flag: r.flag,
        }
    }
}

/// `audit verify` when the chain is intact.
#[derive(Debug, Clone, Serialize)]
pub struct AuditChain {
    pub intact: bool,
    pub checked: i64,
    /// Rows up to this `seq` were removed by retention; the walk started from their checkpoint.
    pub pruned_through: Option<i64>,
}

/// `audit prune`: what retention removed.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPruned {
    /// Rows removed (0 when none was old enough, or retention is off).
    pub rows: i64,
    /// The last removed `seq`, kept as a checkpoint; null when nothing was removed.
    pub through_seq: Option<i64>,
    /// Rows written before this time were removed; null when retention is off.
    pub cutoff: Option<DateTime<Utc>>,
    pub retention_days: u32,
}

/// One live session (`session list`).
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub id: String,
    pub user: String,
    pub tenant: String,
    pub role: String,
    pub source: String,
    pub key_fingerprint: Option<String>,
    pub started_at: DateTime<Utc>,
    pub last_command_at: Option<DateTime<Utc>>,
    pub commands: u64,
    /// Whether this is the session the listing command runs on.
    pub current: bool,
}

/// `totp enroll`: the secret (base32) and otpauth URI to put in an authenticator app, and the
/// recovery codes, shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrollment {
    pub user: String,
    pub secret: String,
    pub uri: String,
    pub recovery_codes: Vec<String>,
}

/// A one-time enrollment code for a user (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct EnrollCode {
    pub user: String,
    pub enroll_code: String,
    pub expires_at: DateTime<Utc>,
}

/// New recovery codes (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryCodes {
    pub user: String,
    pub recovery_codes: Vec<String>,
}
