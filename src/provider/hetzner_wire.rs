//! The JSON shapes of the Hetzner Cloud API v1 (only the fields we use; unknown ones are
//! ignored) and their translation into the provider's plain types and our errors.

use super::{
    Action, ActionStatus, Image, Location, Metrics, Price, Sample, Server, ServerStatus, ServerType,
};
use crate::error::{Error, ErrorKind};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    pub error: ApiError,
}

#[derive(Debug, Deserialize)]
pub(super) struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: Option<serde_json::Value>,
}

/// How a Hetzner error becomes ours. The API's `error.code` decides; an unknown code falls
/// back on the HTTP status.
///
/// | Hetzner `error.code` (HTTP status) | our kind | exit |
/// |---|---|---|
/// | `invalid_input`, `json_error`, `unsupported_error`, `invalid_server_type` (400/422) | Invalid | 5 |
/// | `not_found` (404) | NotFound | 3 |
/// | `uniqueness_error`, `conflict`, `locked`, `protected`, `resource_limit_exceeded`, `server_not_stopped`, `server_already_stopped`, `server_already_running` (409/423/403) | Conflict | 4 |
/// | `forbidden`, `token_readonly` (403) | Forbidden | 6 |
/// | `unauthorized` (401): the panel's token was refused — a configuration problem the person running the command cannot fix, so not Forbidden | Unavailable | 8 |
/// | `rate_limit_exceeded` (429), `server_error` (500), `service_error`, `unavailable`, `maintenance` (503), `timeout` (504), `resource_unavailable`, `placement_error` | Unavailable | 8 |
/// | any other code: by status 400/422 → 5, 401 → 8, 403 → 6, 404 → 3, 409/423 → 4, 429/5xx → 8, else Internal (1) | | |
///
/// `locked` is Conflict, not our Locked (7): ours means the caller's own identity is locked,
/// Hetzner's that another action is still running on the resource.
pub(super) fn map_error(
    status: u16,
    code: &str,
    message: &str,
    details: Option<&serde_json::Value>,
) -> Error {
    let kind = match code {
        "invalid_input" | "json_error" | "unsupported_error" | "invalid_server_type" => {
            ErrorKind::Invalid
        }
        "not_found" => ErrorKind::NotFound,
        "uniqueness_error"
        | "conflict"
        | "locked"
        | "protected"
        | "resource_limit_exceeded"
        | "server_not_stopped"
        | "server_already_stopped"
        | "server_already_running" => ErrorKind::Conflict,
        "forbidden" | "token_readonly" => ErrorKind::Forbidden,
        "unauthorized"
        | "rate_limit_exceeded"
        | "server_error"
        | "service_error"
        | "unavailable"
        | "maintenance"
        | "timeout"
        | "resource_unavailable"
        | "placement_error" => ErrorKind::Unavailable,
        _ => match status {
            400 | 422 => ErrorKind::Invalid,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 | 423 => ErrorKind::Conflict,
            401 | 429 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        },
    };
    let message = clean(message);
    let text = match code {
        "unauthorized" => "the Hetzner API refused the configured token \
                           (providers.hetzner.token): check that it is valid and not revoked"
            .to_owned(),
        "forbidden" | "token_readonly" => format!(
            "the Hetzner API forbids this with the configured token (is it read-only?): {message}"
        ),
        "rate_limit_exceeded" => {
            "the Hetzner API rate limit is exhausted; try again in a minute".to_owned()
        }
        _ => format!("Hetzner API: {message} ({code}){}", field_details(details)),
    };
    Error::new(kind, text)
}

/// `invalid_input` names the fields at fault: `details.fields[].{name, messages[]}`.
fn field_details(details: Option<&serde_json::Value>) -> String {
    let Some(fields) = details
        .and_then(|d| d.get("fields"))
        .and_then(|f| f.as_array())
    else {
        return String::new();
    };
    let named: Vec<String> = fields
        .iter()
        .take(10)
        .filter_map(|field| {
            let name = clean(field.get("name")?.as_str()?);
            let messages: Vec<String> = field
                .get("messages")
                .and_then(|m| m.as_array())
                .map(|m| m.iter().filter_map(|x| x.as_str()).map(clean).collect())
                .unwrap_or_default();
            Some(if messages.is_empty() {
                name
            } else {
                format!("{name}: {}", messages.join(", "))
            })
        })
        .collect();
    if named.is_empty() {
        String::new()
    } else {
        format!("; {}", named.join("; "))
    }
}

/// Provider messages are shown to people: one line, bounded, no control characters.
fn clean(message: &str) -> String {
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    one_line.trim().to_owned()
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Meta {
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Pagination {
    #[serde(default)]
    pub next_page: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Named {
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireServer {
    pub id: u64,
    pub name: String,
    pub status: ServerStatus,
    pub created: String,
    pub server_type: Named,
    #[serde(default)]
    pub location: Option<Named>,
    #[serde(default)]
    pub datacenter: Option<WireDatacenter>,
    #[serde(default)]
    pub image: Option<Named>,
    #[serde(default)]
    pub public_net: Option<PublicNet>,
    #[serde(default)]
    pub locked: bool,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireDatacenter {
    pub location: Named,
}

#[derive(Debug, Deserialize)]
pub(super) struct PublicNet {
    pub ipv4: Option<Ip>,
    pub ipv6: Option<Ip>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Ip {
    pub ip: String,
}

impl From<WireServer> for Server {
    fn from(s: WireServer) -> Server {
        // Newer answers name the location directly; older ones only through the datacenter.
        let location = s
            .location
            .and_then(|l| l.name)
            .or_else(|| s.datacenter.and_then(|d| d.location.name))
            .unwrap_or_default();
        let (ipv4, ipv6) = match s.public_net {
            Some(net) => (net.ipv4.map(|ip| ip.ip), net.ipv6.map(|ip| ip.ip)),
            None => (None, None),
        };
        Server {
            id: s.id,
            name: s.name,
            status: s.status,
            server_type: s.server_type.name.unwrap_or_default(),
            location,
            image: s.image.and_then(|i| i.name),
            ipv4,
            ipv6,
            created: s.created,
            locked: s.locked,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireAction {
    pub id: u64,
    pub command: String,
    pub status: ActionStatus,
    pub progress: u8,
    pub started: String,
    pub finished: Option<String>,
    pub error: Option<ApiError>,
}

impl From<WireAction> for Action {
    fn from(a: WireAction) -> Action {
        Action {
            id: a.id,
            command: a.command,
            status: a.status,
            progress: a.progress.min(100),
            started: a.started,
            finished: a.finished,
            error: a
                .error
                .map(|e| format!("{} ({})", clean(&e.message), e.code)),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireServerType {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub cores: u32,
    pub memory: f64,
    pub disk: u64,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub deprecated: Option<bool>,
    #[serde(default)]
    pub prices: Vec<WirePrice>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WirePrice {
    pub location: String,
    pub price_hourly: Amount,
    pub price_monthly: Amount,
}

#[derive(Debug, Deserialize)]
pub(super) struct Amount {
    pub net: String,
    pub gross: String,
}

impl From<WireServerType> for ServerType {
    fn from(t: WireServerType) -> ServerType {
        ServerType {
            id: t.id,
            name: t.name,
            description: t.description,
            cores: t.cores,
            memory_gb: t.memory,
            disk_gb: t.disk,
            architecture: t.architecture,
            deprecated: t.deprecated.unwrap_or(false),
            prices: t
                .prices
                .into_iter()
                .map(|p| Price {
                    location: p.location,
                    hourly_net: p.price_hourly.net,
                    hourly_gross: p.price_hourly.gross,
                    monthly_net: p.price_monthly.net,
                    monthly_gross: p.price_monthly.gross,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireLocation {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub country: String,
    pub city: String,
    #[serde(default)]
    pub network_zone: String,
}

impl From<WireLocation> for Location {
    fn from(l: WireLocation) -> Location {
        Location {
            id: l.id,
            name: l.name,
            description: l.description,
            country: l.country,
            city: l.city,
            network_zone: l.network_zone,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireImage {
    pub id: u64,
    pub name: Option<String>,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub os_flavor: String,
    pub os_version: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    pub status: String,
}

impl From<WireImage> for Image {
    fn from(i: WireImage) -> Image {
        Image {
            id: i.id,
            name: i.name,
            description: i.description,
            kind: i.kind,
            os_flavor: i.os_flavor,
            os_version: i.os_version,
            architecture: i.architecture,
            status: i.status,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireMetrics {
    pub start: String,
    pub end: String,
    pub step: f64,
    pub time_series: BTreeMap<String, WireSeries>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireSeries {
    /// `[[unix_time, "value"], …]`: values come as strings.
    pub values: Vec<(f64, String)>,
}

impl TryFrom<WireMetrics> for Metrics {
    type Error = Error;
    fn try_from(m: WireMetrics) -> Result<Metrics, Error> {
        let mut series = BTreeMap::new();
        for (name, wire) in m.time_series {
            let samples = wire
                .values
                .into_iter()
                .map(|(time, value)| {
                    value
                        .parse::<f64>()
                        .map(|value| Sample { time, value })
                        .map_err(|_| {
                            Error::unavailable(format!(
                                "Hetzner API: metric {name} has a value that is not a number"
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            series.insert(name, samples);
        }
        Ok(Metrics {
            start: m.start,
            end: m.end,
            step_secs: m.step,
            series,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_table() {
        for (status, code, exit) in [
            (400, "invalid_input", 5),
            (400, "json_error", 5),
            (404, "not_found", 3),
            (409, "uniqueness_error", 4),
            (409, "conflict", 4),
            (423, "locked", 4),
            (403, "resource_limit_exceeded", 4),
            (403, "forbidden", 6),
            (401, "unauthorized", 8),
            (429, "rate_limit_exceeded", 8),
            (500, "server_error", 8),
            (503, "maintenance", 8),
            (422, "something_new", 5),
            (404, "something_new", 3),
            (502, "something_new", 8),
            (418, "something_new", 1),
        ] {
            let err = map_error(status, code, "msg", None);
            assert_eq!(err.kind.exit_code(), exit, "{status} {code}");
        }
        let err = map_error(400, "invalid_input", "bad\nname\u{1b}[31m", None);
        assert!(!err.message.contains('\n') && !err.message.contains('\u{1b}'));
        let details = serde_json::json!({"fields": [{"name": "name", "messages": ["too long"]}]});
        let err = map_error(400, "invalid_input", "invalid input", Some(&details));
        assert!(err.message.ends_with("; name: too long"), "{err}");
    }

    #[test]
    fn metrics_values_are_parsed() {
        let wire: WireMetrics = serde_json::from_str(
            r#"{"start":"s","end":"e","step":60,"time_series":
                {"cpu":{"values":[[1435781470.622,"42"],[1435781471.622,"43.5"]]}}}"#,
        )
        .unwrap();
        let metrics = Metrics::try_from(wire).unwrap();
        assert_eq!(metrics.series["cpu"][1].value, 43.5);
    }
}
