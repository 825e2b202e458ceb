//! The tables of the screens: their columns and rows from the fetched data. Low-bandwidth mode
//! keeps fewer columns (fewer cells to send on every change).

use super::app::{Data, Screen};
use super::data::{clean, percent, short_time, size};
use super::table::{Cell, Column, Row};
use crate::domain::ui::StyleName;

const SERVERS: &[Column] = &[
    Column::text("NAME", 16),
    Column::text("PROVIDER", 9),
    Column::text("STATUS", 12),
    Column::text("TYPE", 8),
    Column::text("LOCATION", 9),
    Column::text("IPV4", 16),
    Column::number("CPU", 6),
    Column::number("MEM", 6),
    Column::number("DISK", 6),
    Column::number("SITES", 5),
];
const SERVERS_LOW: &[Column] = &[
    Column::text("NAME", 16),
    Column::text("STATUS", 12),
    Column::number("CPU", 6),
    Column::number("MEM", 6),
    Column::number("DISK", 6),
];
const SITES: &[Column] = &[
    Column::text("DOMAIN", 28),
    Column::text("TYPE", 7),
    Column::text("PHP", 5),
    Column::text("STATUS", 9),
    Column::text("ENABLED", 8),
    Column::text("TENANT", 12),
    Column::text("LAST APPLY", 17),
];
const SITES_LOW: &[Column] = &[
    Column::text("DOMAIN", 28),
    Column::text("TYPE", 7),
    Column::text("STATUS", 9),
];
const JOBS: &[Column] = &[
    Column::number("ID", 6),
    Column::text("KIND", 16),
    Column::text("STATE", 10),
    Column::number("PROGRESS", 16),
    Column::text("TRIES", 6),
    Column::text("CREATED", 17),
    Column::text("MESSAGE", 20),
];
const JOBS_LOW: &[Column] = &[
    Column::number("ID", 6),
    Column::text("KIND", 16),
    Column::text("STATE", 10),
    Column::number("DONE", 5),
];
const AUDIT: &[Column] = &[
    Column::text("TIME", 17),
    Column::text("ACTOR", 12),
    Column::text("ACTION", 16),
    Column::text("TARGET", 24),
    Column::text("RESULT", 8),
];
const LOG: &[Column] = &[Column::text("LINE", 200)];
const USERS: &[Column] = &[
    Column::text("NAME", 16),
    Column::text("TENANT", 12),
    Column::text("ROLE", 9),
    Column::text("LOCKED", 7),
    Column::number("KEYS", 5),
];

/// The columns of a screen's table (`site_log`: the Logs screen shows that site's log).
pub fn columns(screen: Screen, low: bool, site_log: Option<&str>) -> &'static [Column] {
    match (screen, low) {
        (Screen::Logs, _) if site_log.is_some() => LOG,
        (Screen::Servers, false) => SERVERS,
        (Screen::Servers, true) => SERVERS_LOW,
        (Screen::Sites, false) => SITES,
        (Screen::Sites, true) => SITES_LOW,
        (Screen::Jobs, false) => JOBS,
        (Screen::Jobs, true) => JOBS_LOW,
        (Screen::Users, _) => USERS,
        (Screen::Logs | Screen::Overview, _) => AUDIT,
    }
}

/// The rows of a screen's table.
pub fn rows(screen: Screen, data: &Data, site_log: Option<&str>, low: bool) -> Vec<Row> {
    match screen {
        Screen::Servers => data.servers.iter().map(|s| server_row(s, low)).collect(),
        Screen::Sites => data.sites.iter().map(|s| site_row(s, low)).collect(),
        Screen::Jobs => data.jobs.iter().map(|j| job_row(j, low)).collect(),
        Screen::Users => data.users.iter().map(user_row).collect(),
        Screen::Logs if site_log.is_some() => data
            .site_log
            .iter()
            .enumerate()
            .map(|(i, l)| Row {
                id: i.to_string(),
                cells: vec![Cell::plain(l.clone())],
            })
            .collect(),
        Screen::Logs | Screen::Overview => data.audit.iter().map(audit_row).collect(),
    }
}

/// The style of a status word.
pub fn status_style(status: &str) -> Option<StyleName> {
    match status {
        "active" | "running" | "succeeded" | "ok" => Some(StyleName::Ok),
        "error" | "failed" | "denied" | "off" | "unreachable" => Some(StyleName::Error),
        "pending" | "queued" | "creating" | "initializing" | "starting" | "rebuilding"
        | "migrating" | "deleting" | "stopping" => Some(StyleName::Warning),
        "disabled" | "cancelled" => Some(StyleName::Muted),
        _ => None,
    }
}

fn status_cell(status: &str) -> Cell {
    Cell {
        text: clean(status),
        style: status_style(status),
    }
}

/// A percentage with its level's style (≥ 90 error, ≥ 75 warning).
pub fn pct_cell(value: Option<f64>) -> Cell {
    match value {
        None => Cell::styled("-", StyleName::Muted),
        Some(v) => {
            let style = if v >= 90.0 {
                Some(StyleName::Error)
            } else if v >= 75.0 {
                Some(StyleName::Warning)
            } else {
                None
            };
            Cell {
                text: format!("{v:.0}%"),
                style,
            }
        }
    }
}

fn opt(text: &Option<String>) -> String {
    text.as_deref().map(clean).unwrap_or_else(|| "-".to_owned())
}

fn server_row(s: &super::data::Server, low: bool) -> Row {
    let cells = if low {
        vec![
            Cell::plain(clean(&s.name)),
            status_cell(&s.status),
            pct_cell(s.cpu_pct),
            pct_cell(s.mem_pct()),
            pct_cell(s.disk_pct()),
        ]
    } else {
        vec![
            Cell::plain(clean(&s.name)),
            Cell::plain(clean(&s.provider)),
            status_cell(&s.status),
            Cell::plain(opt(&s.server_type)),
            Cell::plain(opt(&s.location)),
            Cell::plain(opt(&s.ipv4)),
            pct_cell(s.cpu_pct),
            pct_cell(s.mem_pct()),
            pct_cell(s.disk_pct()),
            Cell::plain(s.sites.to_string()),
        ]
    };
    Row {
        id: s.name.clone(),
        cells,
    }
}

fn site_row(s: &super::data::Site, low: bool) -> Row {
    let cells = if low {
        vec![
            Cell::plain(clean(&s.domain)),
            Cell::plain(clean(&s.kind)),
            status_cell(&s.status),
        ]
    } else {
        vec![
            Cell::plain(clean(&s.domain)),
            Cell::plain(clean(&s.kind)),
            Cell::plain(opt(&s.php)),
            status_cell(&s.status),
            if s.enabled {
                Cell::plain("yes")
            } else {
                Cell::styled("no", StyleName::Muted)
            },
            Cell::plain(clean(&s.tenant)),
            Cell::plain(s.applied_at.as_deref().map(short_time).unwrap_or("-".into())),
        ]
    };
    Row {
        id: s.domain.clone(),
        cells,
    }
}

/// A progress bar in text: `██████░░░░ 60%`.
pub fn progress_text(progress: i64, width: usize) -> String {
    let p = progress.clamp(0, 100) as usize;
    let filled = p * width / 100;
    format!(
        "{}{} {p:>3}%",
        "█".repeat(filled),
        "░".repeat(width - filled)
    )
}

fn job_row(j: &super::data::Job, low: bool) -> Row {
    let mut cells = vec![
        Cell::plain(j.id.to_string()),
        Cell::plain(clean(&j.kind)),
        status_cell(&j.state),
    ];
    if low {
        cells.push(Cell::plain(format!("{}%", j.progress.clamp(0, 100))));
    } else {
        cells.push(Cell::plain(progress_text(j.progress, 10)));
        cells.push(Cell::plain(format!("{}/{}", j.attempts, j.max_attempts)));
        cells.push(Cell::plain(short_time(&j.created_at)));
        let message = j.error.as_ref().or(j.message.as_ref());
        cells.push(match (&j.error, message) {
            (Some(e), _) => Cell::styled(clean(e), StyleName::Error),
            (None, Some(m)) => Cell::plain(clean(m)),
            (None, None) => Cell::plain(""),
        });
    }
    Row {
        id: j.id.to_string(),
        cells,
    }
}

fn audit_row(a: &super::data::AuditRow) -> Row {
    let result = match a.result.as_str() {
        "ok" => Cell::styled("ok", StyleName::Ok),
        other => Cell::styled(clean(other), StyleName::Error),
    };
    let action = if a.flag.is_empty() {
        Cell::plain(clean(&a.action))
    } else {
        Cell::styled(clean(&a.action), StyleName::Warning)
    };
    Row {
        id: a.seq.to_string(),
        cells: vec![
            Cell::plain(short_time(&a.at)),
            Cell::plain(clean(&a.actor)),
            action,
            Cell::plain(clean(&a.target)),
            result,
        ],
    }
}

fn user_row(u: &super::data::User) -> Row {
    Row {
        id: u.name.clone(),
        cells: vec![
            Cell::plain(clean(&u.name)),
            Cell::plain(clean(&u.tenant)),
            Cell::plain(clean(&u.role)),
            if u.locked {
                Cell::styled("locked", StyleName::Error)
            } else {
                Cell::plain("no")
            },
            Cell::plain(u.keys.to_string()),
        ],
    }
}

/// A memory or disk figure: `1.2G/4.0G`.
pub fn used_of(used: Option<i64>, total: Option<i64>) -> String {
    match (used, total) {
        (Some(u), Some(t)) => format!(
            "{}/{} ({:.0}%)",
            size(u),
            size(t),
            percent(used, total).unwrap_or(0.0)
        ),
        _ => "-".to_owned(),
    }
}
