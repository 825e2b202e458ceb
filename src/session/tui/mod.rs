//! The dashboard (ratatui): screens of servers, sites, jobs, logs, users and keys, fed by
//! `-o json` commands and events over the link, never by the store.
//!
//! [`app`] holds the state and reacts to keys, answers and events; [`view`] draws it; [`rows`]
//! and [`data`] turn command output into table rows; [`table`], [`form`], [`keys`] and
//! [`theme`] are the pieces; [`source`] is the link side. This module owns the terminal: raw
//! mode, the alternate screen, and a loop that draws only when something visible changed, so
//! an idle dashboard writes nothing.

pub mod app;
pub mod data;
pub mod form;
pub mod keys;
pub mod rows;
pub mod source;
pub mod table;
pub mod theme;
pub mod trim;
pub mod view;

use crate::domain::ui::{DEFAULT_NAME, UiSettings};
use crate::session::link::{Link, Welcome};
use app::{App, Effect, Identity};
use crossterm::event::{self, Event, KeyEventKind};
use crossterm::{cursor, execute, terminal};
use data::Query;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use source::{Arrived, Source};
use std::io::{BufWriter, Stdout, Write};
use std::time::{Duration, Instant};
use trim::Trimmed;

/// How long the first frame waits for its data (so it is drawn once, complete).
const FIRST_FRAME_WAIT: Duration = Duration::from_millis(1500);
/// How often the link is looked at while requests are in flight, and while idle.
const BUSY_POLL: Duration = Duration::from_millis(10);
const IDLE_POLL: Duration = Duration::from_millis(100);
/// A query older than this marks the data stale.
const STALE_AFTER: Duration = Duration::from_secs(3);

/// Why the dashboard returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Quit,
    Shell,
    /// The link to the panel ended.
    Closed,
    /// The terminal failed.
    Failed,
}

/// The dashboard between its runs (its state survives a trip to the shell).
pub struct Dashboard {
    app: App,
    source: Source,
    started: bool,
}

/// The settings of a user who chose nothing, until `ui show` answers.
fn fallback_settings() -> UiSettings {
    UiSettings::shipped(DEFAULT_NAME, DEFAULT_NAME)
        .expect("the shipped default theme and keymap resolve")
}

impl Dashboard {
    pub fn new(link: &Link, welcome: &Welcome, no_color: bool) -> Dashboard {
        let me = Identity {
            user: welcome.user.clone(),
            tenant: welcome.tenant.clone(),
            role: welcome.role.clone(),
        };
        let size = terminal::size().unwrap_or((80, 24));
        Dashboard {
            app: App::new(me, &fallback_settings(), no_color, size),
            source: Source::new(link.clone()),
            started: false,
        }
    }

    /// Runs until the user quits or asks for the shell.
    pub fn run(&mut self) -> Exit {
        let mut terminal = match enter() {
            Ok(t) => t,
            Err(err) => {
                leave();
                eprintln!("vipanel: cannot draw the dashboard: {err}");
                return Exit::Failed;
            }
        };
        let exit = self.run_on(&mut terminal);
        leave();
        self.source.unsubscribe();
        exit
    }

    fn run_on(&mut self, terminal: &mut Tty) -> Exit {
        self.app.live_audit = self.source.subscribe();
        self.source.take_notices();
        let effects = if self.started {
            let mut e = self.app.refresh_screen();
            e.push(Effect::Fetch(Query::Ui));
            e
        } else {
            self.started = true;
            self.app.start()
        };
        if let Some(exit) = self.apply(effects) {
            return exit;
        }
        // The first frame waits (briefly) for the preferences and the screen's data.
        let deadline = Instant::now() + FIRST_FRAME_WAIT;
        while self.source.busy() && Instant::now() < deadline {
            if let Some(exit) = self.pump() {
                return exit;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // The terminal may have been resized while the data came.
        if let Ok((w, h)) = terminal::size() {
            let area = Rect::new(0, 0, w, h);
            if terminal.get_frame().area() != area {
                terminal.backend_mut().set_size(w, h);
                let _ = terminal.resize(area);
            }
            if (w, h) != self.app.size {
                self.app.resized(w, h);
            }
        }
        self.app.dirty = true;
        loop {
            if self.app.dirty {
                self.app.dirty = false;
                if terminal.draw(|f| view::draw(f, &mut self.app)).is_err() {
                    return Exit::Failed;
                }
            }
            let now = Instant::now();
            let poll = if self.source.busy() {
                BUSY_POLL
            } else {
                IDLE_POLL
            };
            let wait = self
                .app
                .next_deadline()
                .map(|d| d.saturating_duration_since(now))
                .unwrap_or(poll)
                .min(poll);
            match event::poll(wait) {
                Ok(true) => {
                    if let Some(exit) = self.input(terminal) {
                        return exit;
                    }
                }
                Ok(false) => {}
                Err(_) => return Exit::Failed,
            }
            if let Some(exit) = self.pump() {
                return exit;
            }
            let stale = self.source.oldest_query().is_some_and(|d| d > STALE_AFTER);
            self.app.set_stale(stale);
            let effects = self.app.tick(Instant::now());
            if let Some(exit) = self.apply(effects) {
                return exit;
            }
        }
    }

    /// Every terminal event waiting now.
    fn input(&mut self, terminal: &mut Tty) -> Option<Exit> {
        loop {
            match event::read() {
                Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                    let effects = self.app.key(&key);
                    if let Some(exit) = self.apply(effects) {
                        return Some(exit);
                    }
                }
                Ok(Event::Resize(w, h)) => {
                    terminal.backend_mut().set_size(w, h);
                    let _ = terminal.resize(Rect::new(0, 0, w, h));
                    self.app.resized(w, h);
                }
                Ok(_) => {}
                Err(_) => return Some(Exit::Failed),
            }
            if !matches!(event::poll(Duration::ZERO), Ok(true)) {
                return None;
            }
        }
    }

    /// Hands what arrived on the link to the app.
    fn pump(&mut self) -> Option<Exit> {
        for notice in self.source.notices() {
            self.app.notice(&notice);
        }
        let arrived = match self.source.poll() {
            Ok(a) => a,
            Err(_) => return Some(Exit::Closed),
        };
        for a in arrived {
            let effects = match a {
                Arrived::Data(q, answer) => {
                    self.app.loaded(q, answer);
                    Vec::new()
                }
                Arrived::Ran {
                    label,
                    exit,
                    stdout,
                    stderr,
                } => self.app.ran(&label, exit, &stdout, &stderr),
                Arrived::Changed(kind) => {
                    self.app.changed(&kind, Instant::now());
                    Vec::new()
                }
                Arrived::Audited(row) => {
                    self.app.audited(row);
                    Vec::new()
                }
            };
            if let Some(exit) = self.apply(effects) {
                return Some(exit);
            }
        }
        None
    }

    fn apply(&mut self, effects: Vec<Effect>) -> Option<Exit> {
        for effect in effects {
            let sent = match effect {
                Effect::Fetch(q) => self.source.fetch(q),
                Effect::Run { argv, label } => self.source.run(argv, label),
                Effect::Shell => return Some(Exit::Shell),
                Effect::Quit => return Some(Exit::Quit),
            };
            if sent.is_err() {
                return Some(Exit::Closed);
            }
        }
        None
    }
}

type Tty = Terminal<Trimmed<CrosstermBackend<BufWriter<Stdout>>>>;

fn enter() -> std::io::Result<Tty> {
    terminal::enable_raw_mode()?;
    let mut out = std::io::stdout();
    // Cleared here rather than by ratatui's `clear`, which asks the terminal where its cursor
    // is (a round trip on every start).
    execute!(
        out,
        terminal::EnterAlternateScreen,
        cursor::Hide,
        terminal::Clear(terminal::ClearType::All)
    )?;
    let (w, h) = terminal::size()?;
    // A fixed viewport: ratatui never asks the terminal for its size or cursor itself.
    Terminal::with_options(
        Trimmed::new(
            CrosstermBackend::new(BufWriter::with_capacity(16 * 1024, out)),
            w,
            h,
        ),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, w, h)),
        },
    )
}

fn leave() {
    let mut out = std::io::stdout();
    let _ = execute!(out, terminal::LeaveAlternateScreen, cursor::Show);
    let _ = out.flush();
    let _ = terminal::disable_raw_mode();
}
