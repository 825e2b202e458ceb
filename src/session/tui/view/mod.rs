//! Drawing the dashboard: the tab bar, the current screen, the bottom bar of keys (gitui
//! style) and whatever is over the screen (help, a confirmation, a form, the `/` and `:`
//! lines). Drawing is a pure function of [`App`]; ratatui writes only the cells that changed.
//!
//! [`screens`] draws the six screens, [`overlays`] the help, confirmation and form boxes; this
//! module the frame around them and the pieces they share (sections, tables, styles).

mod overlays;
mod screens;

use super::app::{App, Overlay, Screen};
use super::rows;
use super::table::{Column, Row as TableRow, TableNav};
use crate::domain::ui::{Action, StyleName};
use crate::session::tui::data::clean;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState, Wrap};

/// Spinner frames for running commands (normal bandwidth only).
const SPINNER: [&str; 4] = ["|", "/", "-", "\\"];

/// Draws the whole dashboard.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    // The theme's text style under everything (a theme with a background paints it all).
    frame.render_widget(Block::new().style(st(app, StyleName::Text)), area);
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
        Screen::Overview => screens::overview(frame, app, body),
        Screen::Servers => screens::servers(frame, app, body),
        Screen::Sites => screens::sites(frame, app, body),
        Screen::Jobs => screens::jobs(frame, app, body),
        Screen::Logs => screens::logs(frame, app, body),
        Screen::Users => screens::users(frame, app, body),
    }
    bottom_bar(frame, app, bottom);
    match app.overlay.clone() {
        Some(Overlay::Help) => overlays::help(frame, app, body),
        Some(Overlay::Confirm(c)) => overlays::confirm(frame, app, body, &c.title, &c.question),
        Some(Overlay::Form(f)) => overlays::form(frame, app, body, &f),
        _ => {}
    }
}

pub(super) fn st(app: &App, name: StyleName) -> Style {
    app.prefs.styles.get(name)
}

fn too_small(frame: &mut Frame, app: &App, area: Rect) {
    let (w, h) = app.size;
    let text = format!(
        "The terminal is {w}×{h}; the dashboard needs at least {}×{}. Enlarge it, or press ! for \
         the shell, q to quit.",
        crate::session::tui::app::MIN_WIDTH,
        crate::session::tui::app::MIN_HEIGHT
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

pub(super) fn hint_word(action: Action, screen: Screen) -> &'static str {
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
        (Action::Logs, Screen::Logs) => "access/error",
        (Action::Logs, _) => "logs",
        _ => "",
    }
}

/// A section: a top rule with a title.
pub(super) fn section<'a>(app: &App, title: String) -> Block<'a> {
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
pub(super) fn table(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    columns: &[Column],
    rows: &[TableRow],
    mut nav: Option<&mut TableNav>,
) {
    if let Some(nav) = nav.as_deref_mut() {
        nav.scroll_into_view(usize::from(area.height.saturating_sub(1)));
    }
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
    // Only the rows in view become widgets (a table may hold thousands).
    let height = usize::from(area.height.saturating_sub(1));
    let (first, selected) = match &nav {
        Some(nav) => (nav.offset, (!rows.is_empty()).then_some(nav.index)),
        None => (0, None),
    };
    let body = rows.iter().skip(first).take(height).map(|r| {
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
        Some(_) => {
            let mut state =
                TableState::default().with_selected(selected.map(|i| i.saturating_sub(first)));
            let table = table.row_highlight_style(st(app, StyleName::Selected));
            frame.render_stateful_widget(table, area, &mut state);
        }
        None => frame.render_widget(table, area),
    }
}

/// The title of a table section: `Sites 3/20 /shop`.
fn counted<'a>(app: &App, name: &str, shown: usize, total: usize, nav: &TableNav) -> Line<'a> {
    let title = st(app, StyleName::Title);
    if nav.filter.is_active() {
        Line::from(vec![
            Span::styled(format!(" {name} {shown}/{total} "), title),
            Span::styled(
                format!("/{}", clean(nav.filter.text())),
                st(app, StyleName::FilterMatch),
            ),
            Span::styled(" ", title),
        ])
    } else {
        Line::from(Span::styled(format!(" {name} {total} "), title))
    }
}

/// A screen's table in `area` with its section title.
pub(super) fn screen_table(frame: &mut Frame, app: &mut App, area: Rect, name: &str) {
    let screen = app.screen;
    let shown = app.visible_rows(screen);
    let (_, total) = app.shown(screen);
    let form = app.table_form(screen);
    let columns = rows::columns(screen, form, app.log_site.as_deref());
    let mut nav = app.navs.get(&screen).cloned().unwrap_or_default();
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(st(app, StyleName::Border))
        .title(counted(app, name, shown.len(), total, &nav));
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
pub(super) fn error_of(app: &App, screen: Screen) -> Option<String> {
    use crate::session::tui::data::Query;
    let query = match screen {
        Screen::Servers => Query::Servers,
        Screen::Sites => Query::Sites,
        Screen::Jobs => Query::Jobs,
        Screen::Users => Query::Users,
        Screen::Logs => match &app.log_site {
            Some(d) => Query::SiteLog(d.clone(), app.error_log),
            None => Query::Audit,
        },
        Screen::Overview => Query::Dashboard,
    };
    app.data.errors.get(&query).cloned()
}
