//! The tables of the screens: their columns and rows from the fetched data. Low-bandwidth mode
//! keeps fewer columns (fewer cells to send on every change).

use super::app::{Data, Screen};
use super::data::{clean, percent, short_time, size};
use super::table::{Cell, Column, Row};
use crate::domain::ui::StyleName;

/// How much of a table a screen has room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Every column (120 columns and wider).
    Full,
    /// Below 100 columns: the less important columns go.
    Narrow,
    /// Low-bandwidth mode, or beside a detail view: the essential columns only.
    Compact,
}

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
const SITES: &[Column] = &[
    Column::text("DOMAIN", 28),
    Column::text("TYPE", 7),
    Column::text("PHP", 5),
    Column::text("STATUS", 9),
    Column::text("ENABLED", 8),
    Column::text("TENANT", 12),
    Column::text("LAST APPLY", 17),
];
const JOBS: &[Column] = &[
    Column::number("ID", 6),
    Column::text("KIND", 16),
    Column::text("STATE", 10),
    Column::number("PROGRESS", 15),
    Column::text("TRIES", 6),
    Column::text("CREATED", 17),
    Column::text("MESSAGE", 20),
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

/// A screen's full columns and which of them each form keeps.
fn layout(screen: Screen, site_log: Option<&str>) -> (&'static [Column], [&'static [usize]; 3]) {
    match screen {
        Screen::Servers => (
            SERVERS,
            [
                &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
                &[0, 2, 3, 6, 7, 8, 9],
                &[0, 2, 6, 7, 8],
            ],
        ),
        Screen::Sites => (
            SITES,
            [&[0, 1, 2, 3, 4, 5, 6], &[0, 1, 2, 3, 6], &[0, 1, 3]],
        ),
        Screen::Jobs => (
            JOBS,
            [&[0, 1, 2, 3, 4, 5, 6], &[0, 1, 2, 3, 6], &[0, 1, 2, 3]],
        ),
        Screen::Users => (USERS, [&[0, 1, 2, 3, 4]; 3]),
        Screen::Logs if site_log.is_some() => (LOG, [&[0]; 3]),
        Screen::Logs | Screen::Overview => (AUDIT, [&[0, 1, 2, 3, 4]; 3]),
    }
}

fn kept(form: Form) -> usize {
    match form {
        Form::Full => 0,
        Form::Narrow => 1,
        Form::Compact => 2,
    }
}

/// The columns of a screen's table (`site_log`: the Logs screen shows that site's log).
pub fn columns(screen: Screen, form: Form, site_log: Option<&str>) -> Vec<Column> {
    let (all, keep) = layout(screen, site_log);
    keep[kept(form)].iter().map(|i| all[*i]).collect()
}

/// The rows of a screen's table, with the cells of [`columns`].
pub fn rows(screen: Screen, data: &Data, site_log: Option<&str>, form: Form) -> Vec<Row> {
    let low = form == Form::Compact;
    let full: Vec<Row> = match screen {
        Screen::Servers => data.servers.iter().map(server_row).collect(),
        Screen::Sites => data.sites.iter().map(site_row).collect(),
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
    };
    let keep = layout(screen, site_log).1[kept(form)];
    full.into_iter()
        .map(|r| Row {
            id: r.id,
            cells: keep
                .iter()
                .filter_map(|i| r.cells.get(*i).cloned())
                .collect(),
        })
        .collect()
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

fn server_row(s: &super::data::Server) -> Row {
    Row {
        id: s.name.clone(),
        cells: vec![
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
        ],
    }
}

fn site_row(s: &super::data::Site) -> Row {
    Row {
        id: s.domain.clone(),
        cells: vec![
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
            Cell::plain(
                s.applied_at
                    .as_deref()
                    .map(short_time)
                    .unwrap_or("-".into()),
            ),
        ],
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
    // A bar costs three bytes a cell: low-bandwidth mode shows the number only.
    cells.push(Cell::plain(if low {
        format!("{}%", j.progress.clamp(0, 100))
    } else {
        progress_text(j.progress, 10)
    }));
    cells.push(Cell::plain(format!("{}/{}", j.attempts, j.max_attempts)));
    cells.push(Cell::plain(short_time(&j.created_at)));
    cells.push(match (&j.error, &j.message) {
        (Some(e), _) => Cell::styled(clean(e), StyleName::Error),
        (None, Some(m)) => Cell::plain(clean(m)),
        (None, None) => Cell::plain(""),
    });
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
