//! The six screens: Overview, Servers, Sites, Jobs, Logs, Users (with the detail views of a
//! server, a site and a job).

use super::{error_of, screen_table, section, st, table};
use crate::domain::ui::StyleName;
use crate::session::tui::app::{App, Screen};
use crate::session::tui::data::{clean, short_time, size};
use crate::session::tui::rows::{self, pct_cell, progress_text, used_of};
use crate::session::tui::table::{Cell, Column, Row as TableRow};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Wrap};

pub(super) fn overview(frame: &mut Frame, app: &mut App, area: Rect) {
    let low = app.prefs.low;
    let [summary, middle, events] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(if low { 7 } else { middle_height(app, area) }),
        Constraint::Min(3),
    ])
    .areas(area);
    // Counts.
    let mut spans = Vec::new();
    match &app.data.dashboard {
        Some(d) => {
            let mut push = |label: &str, n: i64| {
                spans.push(Span::styled(format!("{label} "), st(app, StyleName::Muted)));
                spans.push(Span::styled(n.to_string(), st(app, StyleName::Title)));
                spans.push(Span::raw("   "));
            };
            push("Servers", d.servers);
            push("Sites", d.sites);
            push("Users", d.users);
            push("Keys", d.keys);
            if d.scope == "platform" || d.tenants > 1 {
                push("Tenants", d.tenants);
            }
            let by: Vec<String> = d
                .sites_by_status
                .iter()
                .map(|(k, v)| format!("{} {v}", clean(k)))
                .collect();
            if !by.is_empty() {
                spans.push(Span::styled(
                    format!("sites: {}", by.join(" · ")),
                    st(app, StyleName::Muted),
                ));
            }
            if d.sites_failing_health > 0 {
                spans.push(Span::styled(
                    format!(" · {} unhealthy", d.sites_failing_health),
                    st(app, StyleName::Error),
                ));
            }
        }
        None => spans.push(Span::styled(
            error_of(app, Screen::Overview).unwrap_or_else(|| "loading…".to_owned()),
            st(app, StyleName::Muted),
        )),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), summary);
    // Servers' health beside running jobs.
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(middle);
    let health_cols: &[Column] = &[
        Column::text("NAME", 14),
        Column::text("STATUS", 10),
        Column::number("CPU", 5),
        Column::number("MEM", 5),
        Column::number("DISK", 5),
        Column::number("LOAD", 5),
    ];
    let health: Vec<TableRow> = app
        .data
        .servers
        .iter()
        .map(|s| TableRow {
            id: s.name.clone(),
            cells: vec![
                Cell::plain(clean(&s.name)),
                Cell {
                    text: clean(&s.status),
                    style: rows::status_style(&s.status),
                },
                pct_cell(s.cpu_pct),
                pct_cell(s.mem_pct()),
                pct_cell(s.disk_pct()),
                Cell::plain(s.load1.map(|l| format!("{l:.2}")).unwrap_or("-".into())),
            ],
        })
        .collect();
    let block = section(app, format!(" Servers {} ", health.len()));
    let inner = block.inner(left);
    frame.render_widget(block, left);
    table(frame, app, inner, health_cols, &health, None);

    let live: Vec<&crate::session::tui::data::Job> =
        app.data.jobs.iter().filter(|j| j.is_live()).collect();
    let block = section(app, format!(" Running jobs {} ", live.len()));
    let inner = block.inner(right);
    frame.render_widget(block, right);
    if live.is_empty() {
        frame.render_widget(
            Paragraph::new("nothing running").style(st(app, StyleName::Muted)),
            inner,
        );
    } else {
        let job_cols: &[Column] = &[
            Column::number("ID", 5),
            Column::text("KIND", 14),
            Column::text("PROGRESS", 15),
            Column::text("MESSAGE", 10),
        ];
        let rows: Vec<TableRow> = live
            .iter()
            .map(|j| TableRow {
                id: j.id.to_string(),
                cells: vec![
                    Cell::plain(j.id.to_string()),
                    Cell::plain(clean(&j.kind)),
                    Cell::styled(
                        if low {
                            format!("{}%", j.progress)
                        } else {
                            progress_text(j.progress, 9)
                        },
                        StyleName::Chart,
                    ),
                    Cell::plain(j.message.as_deref().map(clean).unwrap_or_default()),
                ],
            })
            .collect();
        table(frame, app, inner, job_cols, &rows, None);
    }
    // Recent events.
    let form = if low {
        rows::Form::Compact
    } else {
        rows::Form::Full
    };
    let mut audit: Vec<TableRow> = rows::rows(Screen::Overview, &app.data, None, form);
    if low {
        audit.truncate(5);
    }
    let block = section(app, " Recent events ".to_owned());
    let inner = block.inner(events);
    frame.render_widget(block, events);
    let cols = rows::columns(Screen::Overview, form, None);
    table(frame, app, inner, &cols, &audit, None);
}

/// Rows for the servers and jobs panels: what they hold, within a third of the screen.
fn middle_height(app: &App, area: Rect) -> u16 {
    let live = app.data.jobs.iter().filter(|j| j.is_live()).count();
    let want = app.data.servers.len().max(live).max(1) as u16 + 2;
    want.clamp(4, (area.height / 3).max(4))
}

/// Splits `area` for a table and its detail: side by side when wide, else the detail alone.
fn with_detail(app: &App, area: Rect) -> (Option<Rect>, Option<Rect>) {
    if !app.detail.contains(&app.screen) {
        return (Some(area), None);
    }
    if area.width >= 100 {
        let [l, r] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(area);
        (Some(l), Some(r))
    } else {
        (None, Some(area))
    }
}

fn field_lines<'a>(app: &App, fields: Vec<(&'a str, Span<'a>)>) -> Vec<Line<'a>> {
    fields
        .into_iter()
        .map(|(label, value)| {
            Line::from(vec![
                Span::styled(format!("{label:<12}"), st(app, StyleName::Muted)),
                value,
            ])
        })
        .collect()
}

pub(super) fn servers(frame: &mut Frame, app: &mut App, area: Rect) {
    let (table_area, detail_area) = with_detail(app, area);
    if let Some(a) = table_area {
        screen_table(frame, app, a, "Servers");
    }
    let Some(area) = detail_area else { return };
    let Some(name) = app.selected_id(Screen::Servers) else {
        return;
    };
    let Some(s) = app.data.servers.iter().find(|s| s.name == name).cloned() else {
        return;
    };
    let block = section(app, format!(" {} ", clean(&s.name)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let plain = |t: String| Span::raw(t);
    let status = Span::styled(
        clean(&s.status),
        rows::status_style(&s.status)
            .map(|n| st(app, n))
            .unwrap_or_default(),
    );
    let opt = |o: &Option<String>| o.as_deref().map(clean).unwrap_or_else(|| "-".into());
    let lines = field_lines(
        app,
        vec![
            ("Provider", plain(clean(&s.provider))),
            ("Status", status),
            ("Type", plain(opt(&s.server_type))),
            ("Location", plain(opt(&s.location))),
            ("Image", plain(opt(&s.image))),
            ("IPv4", plain(opt(&s.ipv4))),
            ("Reachable", health_span(app, &s.health, &s.health_detail)),
            ("Sites", plain(s.sites.to_string())),
            (
                "Memory",
                plain(used_of(s.mem_used_bytes, s.mem_total_bytes)),
            ),
            (
                "Disk",
                plain(used_of(s.disk_used_bytes, s.disk_total_bytes)),
            ),
        ],
    );
    let n = lines.len() as u16;
    let [info, charts] =
        Layout::vertical([Constraint::Length(n + 1), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), info);
    let points = app.data.metrics.get(&s.name).cloned().unwrap_or_default();
    if points.is_empty() {
        frame.render_widget(
            Paragraph::new("no samples in the last hour").style(st(app, StyleName::Muted)),
            charts,
        );
        return;
    }
    type Pick = fn(&crate::session::tui::data::MetricPoint) -> Option<f64>;
    let series: [(&str, Pick); 4] = [
        ("CPU %", |p| p.values.cpu_pct),
        ("Memory %", |p| {
            crate::session::tui::data::percent(p.values.mem_used_bytes, p.values.mem_total_bytes)
        }),
        ("Disk %", |p| {
            crate::session::tui::data::percent(p.values.disk_used_bytes, p.values.disk_total_bytes)
        }),
        ("Network B/s", |p| {
            Some(
                p.values.net_rx_bytes_per_s.unwrap_or(0.0)
                    + p.values.net_tx_bytes_per_s.unwrap_or(0.0),
            )
        }),
    ];
    let rows_each = if app.prefs.low { 1 } else { 3 };
    let constraints: Vec<Constraint> = series
        .iter()
        .map(|_| Constraint::Length(rows_each))
        .collect();
    let areas = Layout::vertical(constraints).split(charts);
    for ((label, pick), a) in series.iter().zip(areas.iter()) {
        let values: Vec<f64> = points.iter().filter_map(pick).collect();
        let last = values.last().copied().unwrap_or(0.0);
        let max = values.iter().copied().fold(0.0, f64::max);
        let avg = if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        };
        let fmt = |v: f64| {
            if label.starts_with("Network") {
                format!("{}/s", size(v as i64))
            } else {
                format!("{v:.0}%")
            }
        };
        let head = Line::from(vec![
            Span::styled(format!("{label:<12}"), st(app, StyleName::Muted)),
            Span::raw(format!(
                "{} now · avg {} · max {}",
                fmt(last),
                fmt(avg),
                fmt(max)
            )),
        ]);
        if app.prefs.low {
            frame.render_widget(Paragraph::new(head), *a);
            continue;
        }
        let [h, chart] = Layout::vertical([Constraint::Length(1), Constraint::Length(2)]).areas(*a);
        frame.render_widget(Paragraph::new(head), h);
        let width = usize::from(chart.width);
        let data: Vec<u64> = values
            .iter()
            .skip(values.len().saturating_sub(width))
            .map(|v| (v * 100.0) as u64)
            .collect();
        frame.render_widget(
            Sparkline::default()
                .data(&data)
                .max(if label.starts_with("Network") {
                    (max * 100.0) as u64
                } else {
                    10_000
                })
                .style(st(app, StyleName::Chart)),
            chart,
        );
    }
}

pub(super) fn sites(frame: &mut Frame, app: &mut App, area: Rect) {
    let (table_area, detail_area) = with_detail(app, area);
    if let Some(a) = table_area {
        screen_table(frame, app, a, "Sites");
    }
    let Some(area) = detail_area else { return };
    let Some(domain) = app.selected_id(Screen::Sites) else {
        return;
    };
    let Some(s) = app.data.sites.iter().find(|s| s.domain == domain).cloned() else {
        return;
    };
    let block = section(app, format!(" {} ", clean(&s.domain)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let plain = |t: String| Span::raw(t);
    let kind = match (&s.php, &s.upstream) {
        (Some(php), _) => format!("{} (PHP {})", clean(&s.kind), clean(php)),
        (None, Some(up)) => format!("{} → {}", clean(&s.kind), clean(up)),
        _ => clean(&s.kind),
    };
    let status = Span::styled(
        format!(
            "{}{}",
            clean(&s.status),
            if s.enabled { "" } else { " (disabled)" }
        ),
        rows::status_style(&s.status)
            .map(|n| st(app, n))
            .unwrap_or_default(),
    );
    let aliases = if s.aliases.is_empty() {
        "-".to_owned()
    } else {
        s.aliases
            .iter()
            .map(|a| clean(a))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = field_lines(
        app,
        vec![
            (
                "Domains",
                plain(format!(
                    "{} {}",
                    clean(&s.domain),
                    if s.aliases.is_empty() {
                        String::new()
                    } else {
                        format!("+ {}", aliases)
                    }
                )),
            ),
            ("Type", plain(kind)),
            ("Status", status),
            ("Health", health_span(app, &s.health, &s.health_detail)),
            (
                "TLS",
                Span::styled("none (certificates come later)", st(app, StyleName::Muted)),
            ),
            (
                "Account",
                plain(s.system_user.as_deref().map(clean).unwrap_or("-".into())),
            ),
            (
                "Last apply",
                plain(
                    s.applied_at
                        .as_deref()
                        .map(short_time)
                        .unwrap_or("never".into()),
                ),
            ),
            ("Tenant", plain(clean(&s.tenant))),
            ("Server", plain(clean(&s.server))),
        ],
    );
    if let Some(err) = &s.last_error {
        lines.push(Line::from(Span::styled(
            "Last error",
            st(app, StyleName::Muted),
        )));
        lines.push(Line::from(Span::styled(
            clean(err),
            st(app, StyleName::Error),
        )));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

pub(super) fn jobs(frame: &mut Frame, app: &mut App, area: Rect) {
    let (table_area, detail_area) = with_detail(app, area);
    if let Some(a) = table_area {
        screen_table(frame, app, a, "Jobs");
    }
    let Some(area) = detail_area else { return };
    let Some(id) = app.selected_id(Screen::Jobs) else {
        return;
    };
    let Some(j) = app
        .data
        .jobs
        .iter()
        .find(|j| j.id.to_string() == id)
        .cloned()
    else {
        return;
    };
    let block = section(app, format!(" Job {} ", j.id));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let plain = |t: String| Span::raw(t);
    let mut lines = field_lines(
        app,
        vec![
            ("Kind", plain(clean(&j.kind))),
            (
                "State",
                Span::styled(
                    clean(&j.state),
                    rows::status_style(&j.state)
                        .map(|n| st(app, n))
                        .unwrap_or_default(),
                ),
            ),
            (
                "Progress",
                Span::styled(progress_text(j.progress, 20), st(app, StyleName::Chart)),
            ),
            (
                "Attempts",
                plain(format!("{} of {}", j.attempts, j.max_attempts)),
            ),
            ("By", plain(clean(&j.created_by))),
            (
                "Tenant",
                plain(j.tenant.as_deref().map(clean).unwrap_or("platform".into())),
            ),
            ("Created", plain(short_time(&j.created_at))),
            (
                "Message",
                plain(j.message.as_deref().map(clean).unwrap_or("-".into())),
            ),
        ],
    );
    if let Some(err) = &j.error {
        lines.push(Line::from(Span::styled("Error", st(app, StyleName::Muted))));
        lines.push(Line::from(Span::styled(
            clean(err),
            st(app, StyleName::Error),
        )));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

pub(super) fn logs(frame: &mut Frame, app: &mut App, area: Rect) {
    let title = match &app.log_site {
        Some(domain) if app.error_log => format!("Error log of {}", clean(domain)),
        Some(domain) => format!("Access log of {}", clean(domain)),
        None => "Audit trail".to_owned(),
    };
    screen_table(frame, app, area, &title);
}

pub(super) fn users(frame: &mut Frame, app: &mut App, area: Rect) {
    if !app.manages_users() {
        let block = section(app, " Users and keys ".to_owned());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new(
                "Users and keys are managed by owners and admins. Your own keys: `key list` in \
                 the shell (press !).",
            )
            .style(st(app, StyleName::Muted))
            .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
    screen_table(frame, app, top, "Users");
    let user = app.selected_id(Screen::Users).unwrap_or_default();
    let key_cols: &[Column] = &[
        Column::text("FINGERPRINT", 51),
        Column::text("TYPE", 11),
        Column::text("USE", 10),
        Column::text("LAST USED", 17),
        Column::text("COMMENT", 10),
    ];
    let keys: Vec<TableRow> = app
        .data
        .keys
        .iter()
        .filter(|k| k.user == user)
        .map(|k| TableRow {
            id: k.fingerprint.clone(),
            cells: vec![
                Cell::plain(clean(&k.fingerprint)),
                Cell::plain(clean(&k.algorithm)),
                Cell::plain(if k.automation { "automation" } else { "login" }),
                Cell::plain(
                    k.last_used_at
                        .as_deref()
                        .map(short_time)
                        .unwrap_or("never".into()),
                ),
                Cell::plain(clean(&k.comment)),
            ],
        })
        .collect();
    let block = section(app, format!(" Keys of {} {} ", clean(&user), keys.len()));
    let inner = block.inner(bottom);
    frame.render_widget(block, bottom);
    table(frame, app, inner, key_cols, &keys, None);
}

/// A health check's verdict and what it saw: `ok · HTTP 200 in 3 ms`, the failing ones in the
/// error style, `not checked yet` before the first check.
fn health_span(app: &App, health: &Option<String>, detail: &Option<String>) -> Span<'static> {
    let Some(verdict) = health else {
        return Span::styled("not checked yet", st(app, StyleName::Muted));
    };
    let text = match detail {
        Some(detail) => format!("{} · {}", clean(verdict), clean(detail)),
        None => clean(verdict),
    };
    if verdict == "ok" {
        Span::raw(text)
    } else {
        Span::styled(text, st(app, StyleName::Error))
    }
}
