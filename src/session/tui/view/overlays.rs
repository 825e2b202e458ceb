//! What opens over a screen: the help of its keys, a confirmation, a form.

use super::{hint_word, st};
use crate::domain::ui::{Action, StyleName};
use crate::session::tui::app::{App, Screen};
use crate::session::tui::data::clean;
use crate::session::tui::form::{FieldKind, Form};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

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

pub(super) fn help(frame: &mut Frame, app: &App, area: Rect) {
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
                Action::Logs if app.screen == Screen::Logs => {
                    "a site's access or error log".to_owned()
                }
                Action::Logs => "the site's logs".to_owned(),
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

pub(super) fn confirm(frame: &mut Frame, app: &App, area: Rect, title: &str, question: &str) {
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

pub(super) fn form(frame: &mut Frame, app: &App, area: Rect, f: &Form) {
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
