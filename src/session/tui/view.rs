//! Drawing the dashboard: the tab bar, the current screen, the bottom bar of keys (gitui
//! style) and whatever is over the screen (help, a confirmation, a form, the `/` and `:`
//! lines). Drawing is a pure function of [`App`]; ratatui writes only the cells that changed.

use super::app::{App, Overlay, Screen};
use super::data::{clean, short_time, size};
use super::form::{FieldKind, Form};
use super::rows::{self, pct_cell, progress_text, used_of};
use super::table::{Column, Row as TableRow, TableNav};
use crate::domain::ui::{Action, StyleName};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState, Wrap,
};

/// Spinner frames for running commands (normal bandwidth only).
const SPINNER: [&str; 4] = ["|", "/", "-", "\\"];

/// Draws the whole dashboard.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    if !app.fits() {
        too_small(frame, app, area);
        return;
    }
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    tab_bar(frame, app, top);
    match app.screen {
        Screen::Overview => overview(frame, app, body),
        Screen::Servers => servers(frame, app, body),
        Screen::Sites => sites(frame, app, body),
        Screen::Jobs => jobs(frame, app, body),
        Screen::Logs => logs(frame, app, body),
        Screen::Users => users(frame, app, body),
    }
    bottom_bar(frame, app, bottom);
    match app.overlay.clone() {
        Some(Overlay::Help) => help(frame, app, body),
        Some(Overlay::Confirm(c)) => confirm(frame, app, body, &c.title, &c.question),
        Some(Overlay::Form(f)) => form(frame, app, body, &f),
        _ => {}
    }
}

fn st(app: &App, name: StyleName) -> Style {
    app.prefs.styles.get(name)
}

fn too_small(frame: &mut Frame, app: &App, area: Rect) {
    let (w, h) = app.size;
    let text = format!(
        "The terminal is {w}×{h}; the dashboard needs at least {}×{}. Enlarge it, or press ! for \
         the shell, q to quit.",
        super::app::MIN_WIDTH,
        super::app::MIN_HEIGHT
    );
    frame.render_widget(
        Paragraph::new(text)
            .style(st(app, StyleName::Warning))
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn tab_bar(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = Vec::new();
    let wide = area.width >= 100;
    for (i, screen) in Screen::ALL.iter().enumerate() {
        let style = if *screen == app.screen {
            st(app, StyleName::TabActive)
        } else if *screen == Screen::Users && !app.manages_users() {
            st(app, StyleName::Disabled)
        } else {
            st(app, StyleName::Tab)
        };
        spans.push(Span::styled(
            format!(" {} {} ", i + 1, screen.title()),
            style,
        ));
        if wide {
            spans.push(Span::raw(" "));
        }
    }
    let left = Line::from(spans);
    let mut right = Vec::new();
    if let Some(label) = app.running.first() {
        let spin = if app.prefs.low {
            "…".to_owned()
        } else {
            format!("{} ", SPINNER[app.spinner % SPINNER.len()])
        };
        let more = if app.running.len() > 1 {
            format!(" +{}", app.running.len() - 1)
        } else {
            String::new()
        };
        right.push(Span::styled(
            format!("{spin}{}{more} ", truncate(label, 24)),
            st(app, StyleName::Info),
        ));
    }
    if app.stale {
        right.push(Span::styled(" stale ", st(app, StyleName::Stale)));
        right.push(Span::raw(" "));
    }
    let who = if wide {
        format!("{}@{} ({})", app.me.user, app.me.tenant, app.me.role)
    } else {
        format!("{}@{}", app.me.user, app.me.tenant)
    };
    right.push(Span::styled(clean(&who), st(app, StyleName::Muted)));
    let right = Line::from(right);
    let right_width = (right.width() as u16).min(area.width);
    let [l, r] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(right_width)]).areas(area);
    frame.render_widget(Paragraph::new(left), l);
    frame.render_widget(Paragraph::new(right), r);
}

fn bottom_bar(frame: &mut Frame, app: &App, area: Rect) {
    let input = match &app.overlay {
        Some(Overlay::Filter(input)) => Some((
            "/",
            &input.text,
            "  plain text, or re:REGEX · enter keep · esc clear",
        )),
        Some(Overlay::Command(input)) => Some((
            ":",
            &input.text,
            "  sites servers jobs logs users overview · shell · quit",
        )),
        _ => None,
    };
    if let Some((mark, text, hint)) = input {
        let line = Line::from(vec![
            Span::styled(mark, st(app, StyleName::Key)),
            Span::styled(clean(text), st(app, StyleName::Input)),
            Span::styled(" ", st(app, StyleName::Selected)),
            Span::styled(hint, st(app, StyleName::Muted)),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let mut spans = Vec::new();
    if let Some(status) = &app.status {
        spans.push(Span::styled(
            format!("{} ", status.text),
            st(app, status.style),
        ));
    }
    let b = &app.prefs.bindings;
    let mut hints: Vec<(Action, &str)> = Vec::new();
    for action in app.screen_actions() {
        hints.push((*action, hint_word(*action, app.screen)));
    }
    hints.extend([
        (Action::Filter, "filter"),
        (Action::Command, "cmd"),
        (Action::Help, "help"),
        (Action::Shell, "shell"),
        (Action::Quit, "quit"),
    ]);
    if matches!(app.screen, Screen::Overview) {
        hints.retain(|(a, _)| *a != Action::Filter);
    }
    let mut width: usize = spans.iter().map(|s| s.width()).sum();
    for (action, word) in hints {
        let Some(key) = b.first(action) else {
            continue;
        };
        let piece = key.chars().count() + word.len() + 2;
        if width + piece > area.width as usize {
            break;
        }
        width += piece;
        let (ks, ws) = if app.allowed(action) {
            (st(app, StyleName::Key), st(app, StyleName::KeyText))
        } else {
            (st(app, StyleName::Disabled), st(app, StyleName::Disabled))
        };
        spans.push(Span::styled(key, ks));
        spans.push(Span::styled(format!(" {word} "), ws));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(st(app, StyleName::StatusBar)),
        area,
    );
}

fn hint_word(action: Action, screen: Screen) -> &'static str {
    match (action, screen) {
        (Action::Open, _) => "detail",
        (Action::Create, _) => "create",
        (Action::Delete, Screen::Jobs) => "cancel",
        (Action::Delete, _) => "delete",
        (Action::Enable, Screen::Users) => "unlock",
        (Action::Disable, Screen::Users) => "lock",
        (Action::Enable, _) => "enable",
        (Action::Disable, _) => "disable",
        (Action::Reboot, _) => "reboot",
        (Action::Resize, _) => "resize",
        (Action::Power, _) => "power",
        (Action::Retry, _) => "retry",
        (Action::Logs, _) => "logs",
        _ => "",
    }
}

/// A section: a top rule with a title.
fn section<'a>(app: &App, title: String) -> Block<'a> {
    Block::new()
        .borders(Borders::TOP)
        .border_style(st(app, StyleName::Border))
        .title(Span::styled(title, st(app, StyleName::Title)))
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut t: String = text.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Draws a table of rows with its header; `nav`: the selection, sort and scroll (else none).
fn table(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    columns: &[Column],
    rows: &[TableRow],
    nav: Option<&mut TableNav>,
) {
    let sort = nav.as_ref().and_then(|n| n.sort.map(|c| (c, n.reverse)));
    let header = Row::new(columns.iter().enumerate().map(|(i, c)| {
        let mark = match sort {
            Some((s, false)) if s == i => "▲",
            Some((s, true)) if s == i => "▼",
            _ => "",
        };
        Cell::from(format!("{}{mark}", c.title))
    }))
    .style(st(app, StyleName::Header));
    let widths: Vec<Constraint> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i + 1 == columns.len() {
                Constraint::Min(c.width.min(12))
            } else {
                Constraint::Length(c.width)
            }
        })
        .collect();
    let body = rows.iter().map(|r| {
        Row::new(r.cells.iter().map(|c| {
            let style = c.style.map(|s| st(app, s)).unwrap_or_default();
            Cell::from(Span::styled(c.text.clone(), style))
        }))
    });
    let table = Table::new(body, widths)
        .header(header)
        .column_spacing(1)
        .style(st(app, StyleName::Text));
    match nav {
        Some(nav) => {
            let height = usize::from(area.height.saturating_sub(1));
            nav.scroll_into_view(height);
            let mut state =
                TableState::default()
                    .with_offset(nav.offset)
                    .with_selected(if rows.is_empty() {
                        None
                    } else {
                        Some(nav.index)
                    });
            let table = table.row_highlight_style(st(app, StyleName::Selected));
            frame.render_stateful_widget(table, area, &mut state);
            nav.offset = state.offset();
        }
        None => frame.render_widget(table, area),
    }
}

/// The title of a table section: `Sites 3/20 /shop`.
fn counted(name: &str, shown: usize, total: usize, nav: &TableNav) -> String {
    if nav.filter.is_active() {
        format!(" {name} {shown}/{total} /{} ", clean(nav.filter.text()))
    } else {
        format!(" {name} {total} ")
    }
}

/// A screen's table in `area` with its section title.
fn screen_table(frame: &mut Frame, app: &mut App, area: Rect, name: &str) {
    let screen = app.screen;
    let shown = app.visible_rows(screen);
    let form = app.table_form(screen);
    let total = rows::rows(screen, &app.data, app.log_site.as_deref(), form).len();
    let columns = rows::columns(screen, form, app.log_site.as_deref());
    let mut nav = app.navs.get(&screen).cloned().unwrap_or_default();
    let block = section(app, counted(name, shown.len(), total, &nav));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(query) = error_of(app, screen) {
        frame.render_widget(
            Paragraph::new(query).style(st(app, StyleName::Error)),
            inner,
        );
        return;
    }
    table(frame, app, inner, &columns, &shown, Some(&mut nav));
    app.navs.insert(screen, nav);
}

/// The error of the query behind a screen, if it failed.
fn error_of(app: &App, screen: Screen) -> Option<String> {
    use super::data::Query;
    let query = match screen {
        Screen::Servers => Query::Servers,
        Screen::Sites => Query::Sites,
        Screen::Jobs => Query::Jobs,
        Screen::Users => Query::Users,
        Screen::Logs => match &app.log_site {
            Some(d) => Query::SiteLog(d.clone()),
            None => Query::Audit,
        },
        Screen::Overview => Query::Dashboard,
    };
    app.data.errors.get(&query).cloned()
}

fn overview(frame: &mut Frame, app: &mut App, area: Rect) {
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
                super::table::Cell::plain(clean(&s.name)),
                super::table::Cell {
                    text: clean(&s.status),
                    style: rows::status_style(&s.status),
                },
                pct_cell(s.cpu_pct),
                pct_cell(s.mem_pct()),
                pct_cell(s.disk_pct()),
                super::table::Cell::plain(s.load1.map(|l| format!("{l:.2}")).unwrap_or("-".into())),
            ],
        })
        .collect();
    let block = section(app, format!(" Servers {} ", health.len()));
    let inner = block.inner(left);
    frame.render_widget(block, left);
    table(frame, app, inner, health_cols, &health, None);

    let live: Vec<&super::data::Job> = app.data.jobs.iter().filter(|j| j.is_live()).collect();
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
                    super::table::Cell::plain(j.id.to_string()),
                    super::table::Cell::plain(clean(&j.kind)),
                    super::table::Cell::styled(
                        if low {
                            format!("{}%", j.progress)
                        } else {
                            progress_text(j.progress, 9)
                        },
                        StyleName::Chart,
                    ),
                    super::table::Cell::plain(j.message.as_deref().map(clean).unwrap_or_default()),
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

fn servers(frame: &mut Frame, app: &mut App, area: Rect) {
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
    type Pick = fn(&super::data::MetricPoint) -> Option<f64>;
    let series: [(&str, Pick); 4] = [
        ("CPU %", |p| p.values.cpu_pct),
        ("Memory %", |p| {
            super::data::percent(p.values.mem_used_bytes, p.values.mem_total_bytes)
        }),
        ("Disk %", |p| {
            super::data::percent(p.values.disk_used_bytes, p.values.disk_total_bytes)
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

fn sites(frame: &mut Frame, app: &mut App, area: Rect) {
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

fn jobs(frame: &mut Frame, app: &mut App, area: Rect) {
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

fn logs(frame: &mut Frame, app: &mut App, area: Rect) {
    let title = match &app.log_site {
        Some(domain) => format!("Access log of {}", clean(domain)),
        None => "Audit trail".to_owned(),
    };
    screen_table(frame, app, area, &title);
}

fn users(frame: &mut Frame, app: &mut App, area: Rect) {
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
                super::table::Cell::plain(clean(&k.fingerprint)),
                super::table::Cell::plain(clean(&k.algorithm)),
                super::table::Cell::plain(if k.automation { "automation" } else { "login" }),
                super::table::Cell::plain(
                    k.last_used_at
                        .as_deref()
                        .map(short_time)
                        .unwrap_or("never".into()),
                ),
                super::table::Cell::plain(clean(&k.comment)),
            ],
        })
        .collect();
    let block = section(app, format!(" Keys of {} {} ", clean(&user), keys.len()));
    let inner = block.inner(bottom);
    frame.render_widget(block, bottom);
    table(frame, app, inner, key_cols, &keys, None);
}

/// A box in the middle of `area`, at most `w`×`h`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn dialog<'a>(app: &App, title: String) -> Block<'a> {
    Block::bordered()
        .border_style(st(app, StyleName::BorderFocus))
        .title(Span::styled(title, st(app, StyleName::DialogTitle)))
        .style(st(app, StyleName::Dialog))
}

fn help(frame: &mut Frame, app: &App, area: Rect) {
    let b = &app.prefs.bindings;
    let screens: Vec<String> = [
        Action::ScreenOverview,
        Action::ScreenServers,
        Action::ScreenSites,
        Action::ScreenJobs,
        Action::ScreenLogs,
        Action::ScreenUsers,
    ]
    .iter()
    .filter_map(|a| b.first(*a))
    .collect();
    let mut wanted: Vec<(Option<Action>, String)> = app
        .screen_actions()
        .iter()
        .map(|a| {
            let what = match a {
                Action::Create => "create (a form)".to_owned(),
                Action::Open => "detail of the row".to_owned(),
                other => format!("{} the row", hint_word(*other, app.screen)),
            };
            (Some(*a), what)
        })
        .collect();
    for (action, what) in [
        (Action::Up, "up"),
        (Action::Down, "down"),
        (Action::PageUp, "page up"),
        (Action::PageDown, "page down"),
        (Action::Top, "first row"),
        (Action::Bottom, "last row"),
        (Action::SortNext, "sort by the next column"),
        (Action::SortReverse, "reverse the sort"),
        (Action::Filter, "filter (re: for a regex)"),
        (Action::Back, "back / close / clear filter"),
        (Action::Command, "command (:sites, :srv, …)"),
        (Action::Refresh, "refresh now"),
        (Action::NextScreen, "next screen"),
        (Action::PrevScreen, "previous screen"),
    ] {
        wanted.push((Some(action), what.to_owned()));
    }
    wanted.push((None, "the six screens".to_owned()));
    for (action, what) in [
        (Action::Shell, "the shell (tui: back)"),
        (Action::Help, "this help"),
        (Action::Quit, "quit"),
    ] {
        wanted.push((Some(action), what.to_owned()));
    }
    let entries: Vec<(String, String)> = wanted
        .into_iter()
        .filter_map(|(action, what)| match action {
            Some(a) => b.label(a).map(|k| (k, what)),
            None => Some((screens.join(" "), what)),
        })
        .collect();
    let key_width = entries
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(4);
    let lines: Vec<Line> = entries
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:<key_width$} "), st(app, StyleName::Key)),
                Span::styled(what.clone(), st(app, StyleName::KeyText)),
            ])
        })
        .collect();
    let rows_fit = area.height.saturating_sub(3) as usize;
    let two = lines.len() > rows_fit;
    let per_col = if two {
        lines.len().div_ceil(2)
    } else {
        lines.len()
    };
    let width = if two {
        area.width.min(116)
    } else {
        area.width.min(60)
    };
    let boxed = centered(area, width, per_col as u16 + 3);
    frame.render_widget(Clear, boxed);
    let block = dialog(
        app,
        format!(" Keys: {} (any key closes) ", app.screen.title()),
    );
    let inner = block.inner(boxed);
    frame.render_widget(block, boxed);
    if two {
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(inner);
        let (a, b2) = lines.split_at(per_col);
        frame.render_widget(Paragraph::new(a.to_vec()), l);
        frame.render_widget(Paragraph::new(b2.to_vec()), r);
    } else {
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

fn confirm(frame: &mut Frame, app: &App, area: Rect, title: &str, question: &str) {
    let boxed = centered(area, 60, 8);
    frame.render_widget(Clear, boxed);
    let block = dialog(app, format!(" {} ", clean(title)));
    let inner = block.inner(boxed);
    frame.render_widget(block, boxed);
    let lines = vec![
        Line::from(clean(question)),
        Line::from(""),
        Line::from(vec![
            Span::styled("y", st(app, StyleName::Key)),
            Span::styled(" yes   ", st(app, StyleName::KeyText)),
            Span::styled("n", st(app, StyleName::Key)),
            Span::styled("/", st(app, StyleName::KeyText)),
            Span::styled("esc", st(app, StyleName::Key)),
            Span::styled(" no", st(app, StyleName::KeyText)),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}

fn form(frame: &mut Frame, app: &App, area: Rect, f: &Form) {
    let shown: Vec<usize> = (0..f.fields.len()).filter(|i| f.applies(*i)).collect();
    let boxed = centered(area, 64, shown.len() as u16 + 4);
    frame.render_widget(Clear, boxed);
    let block = dialog(app, format!(" {} ", f.title));
    let inner = block.inner(boxed);
    frame.render_widget(block, boxed);
    let mut lines = Vec::new();
    for i in shown {
        let field = &f.fields[i];
        let focus = i == f.focus;
        let label_style = if focus {
            st(app, StyleName::Key)
        } else {
            st(app, StyleName::Muted)
        };
        let mut spans = vec![Span::styled(
            format!("{}{:<10}", if focus { "> " } else { "  " }, field.label),
            label_style,
        )];
        match &field.kind {
            FieldKind::Choice(choices) => {
                for c in choices {
                    let style = if *c == field.value.text {
                        st(app, StyleName::Selected)
                    } else {
                        st(app, StyleName::Muted)
                    };
                    spans.push(Span::styled(format!(" {c} "), style));
                }
            }
            FieldKind::Text => {
                if field.value.text.is_empty() && !field.hint.is_empty() {
                    if focus {
                        spans.push(Span::styled(" ", st(app, StyleName::Selected)));
                    }
                    spans.push(Span::styled(field.hint, st(app, StyleName::Disabled)));
                } else {
                    spans.push(Span::styled(
                        clean(&field.value.text),
                        st(app, StyleName::Input),
                    ));
                    if focus {
                        spans.push(Span::styled(" ", st(app, StyleName::Selected)));
                    }
                }
            }
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    match &f.error {
        Some(e) => lines.push(Line::from(Span::styled(
            clean(e),
            st(app, StyleName::Error),
        ))),
        None => lines.push(Line::from(Span::styled(
            "tab next · ←/→ choose · enter create · esc cancel",
            st(app, StyleName::Muted),
        ))),
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
