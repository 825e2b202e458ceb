//! The dashboard's own work per keypress at scale, in-process: the Sites screen of a panel with
//! many sites, `↓` pressed and the frame drawn through the session's backend (crossterm, rows
//! ended with erases) into memory. What benches/tui_bytes.sh measures end to end with 20 sites,
//! here with thousands, without SSH; the data is what `site list -o json` gives.
//!
//!     cargo bench --bench tui_render -- [--sites 1000] [--more 10000] [--presses 200]
//!
//! Prints, for each size: the time to load the list (JSON parse), the first frame, and each
//! press (key handled + frame drawn): p50, p99, max; and the bytes per press. Without `--bench`
//! (which `cargo bench` passes) it does nothing, so `cargo test --all-targets` skips it; the
//! smoke run in .ci/run is `cargo test --bench tui_render -- --bench --sites 50 --more 100
//! --presses 5`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use vipanel::domain::ui::UiSettings;
use vipanel::session::tui::app::{App, Identity};
use vipanel::session::tui::data::Query;
use vipanel::session::tui::trim::Trimmed;
use vipanel::session::tui::view;

#[allow(dead_code)]
mod scratch;

const COLS: u16 = 120;
const ROWS: u16 = 40;

/// What the backend wrote, shared with the bench.
#[derive(Clone, Default)]
struct Written(Rc<RefCell<usize>>);

impl std::io::Write for Written {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        *self.0.borrow_mut() += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `site list -o json` of `n` sites.
fn sites(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"domain":"site{i}.example","tenant":"acme","type":"static","php":null,"upstream":null,"aliases":[],"status":"active","enabled":true,"server":"local","system_user":"vpsite{i}","applied_at":"2026-11-27T10:15:00Z","last_error":null,"created_at":"2026-11-25T08:00:00Z","updated_at":"2026-11-27T10:15:00Z"}}"#
            )
        })
        .collect();
    format!("[{}]", rows.join(","))
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn run(n: usize, presses: usize) {
    let settings = UiSettings::shipped("default", "default").expect("shipped settings");
    let me = Identity {
        user: "admin".into(),
        tenant: "system".into(),
        role: "admin".into(),
    };
    let mut app = App::new(me, &settings, false, (COLS, ROWS));
    let json = sites(n);
    let t = Instant::now();
    app.loaded(Query::Sites, Ok(json));
    let load = t.elapsed();
    let written = Written::default();
    let mut terminal = Terminal::with_options(
        Trimmed::new(CrosstermBackend::new(written.clone()), COLS, ROWS),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, COLS, ROWS)),
        },
    )
    .expect("terminal");
    let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
    app.key(&key(KeyCode::Char('3')));
    let t = Instant::now();
    terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
    let first = t.elapsed();
    let first_bytes = *written.0.borrow();
    let mut times = Vec::with_capacity(presses);
    for i in 0..presses {
        let code = if i % 2 == 0 {
            KeyCode::Down
        } else {
            KeyCode::Up
        };
        let t = Instant::now();
        app.key(&key(code));
        terminal.draw(|f| view::draw(f, &mut app)).expect("draw");
        times.push(t.elapsed());
    }
    let press_bytes = (*written.0.borrow() - first_bytes) / presses.max(1);
    times.sort();
    println!(
        "| {n} | {:.1} | {:.2} | {:.3} / {:.3} / {:.3} | {press_bytes} |",
        load.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        pct(&times, 50).as_secs_f64() * 1e3,
        pct(&times, 99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let Some(args) = scratch::Args::requested() else {
        return;
    };
    let presses = args.number("--presses", 200).max(1) as usize;
    let sizes = [
        args.number("--sites", 1000).max(1) as usize,
        args.number("--more", 10_000).max(1) as usize,
    ];
    println!("Sites screen at {COLS}x{ROWS}, {presses} presses (↓ and ↑) per size, in-process");
    println!();
    println!(
        "| sites | load list ms | first frame ms | press p50 / p99 / max ms | bytes per press |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for n in sizes {
        run(n, presses);
    }
}
