//! The dashboard's state and what keys, data and events do to it. Nothing here touches the
//! terminal or the link: a key or an answer goes in, [`Effect`]s come out (fetch this, run that
//! command, switch to the shell), and [`App::dirty`] says whether the screen must be drawn
//! again. So the whole dashboard runs in tests on fixed data.
//!
//! [`actions`] turns the changes on a selected row and the `:` command line into commands;
//! [`live`] takes answers, events and timers.

mod actions;
mod live;

use super::data::{AuditRow, Dashboard, Job, MetricPoint, Query, Server, Site, SshKey, User};
use super::form::{Confirm, Edit, Form, FormResult, LineInput};
use super::keys::Bindings;
use super::rows;
use super::table::{Filter, Row, TableNav};
use super::theme::Styles;
use crate::domain::ui::{Action, Bandwidth, StyleName, UiSettings};
use crossterm::event::KeyEvent;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The screens, in the order of their number keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Screen {
    Overview,
    Servers,
    Sites,
    Jobs,
    Logs,
    Users,
}

impl Screen {
    pub const ALL: [Screen; 6] = [
        Screen::Overview,
        Screen::Servers,
        Screen::Sites,
        Screen::Jobs,
        Screen::Logs,
        Screen::Users,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Overview => "Overview",
            Screen::Servers => "Servers",
            Screen::Sites => "Sites",
            Screen::Jobs => "Jobs",
            Screen::Logs => "Logs",
            Screen::Users => "Users",
        }
    }

    fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }

    /// The screen a `:` word names: its title, or an alias as in k9s.
    pub fn named(word: &str) -> Option<Screen> {
        Some(match word {
            "overview" | "o" | "home" | "dash" | "dashboard" => Screen::Overview,
            "servers" | "server" | "srv" => Screen::Servers,
            "sites" | "site" | "vhosts" => Screen::Sites,
            "jobs" | "job" | "j" => Screen::Jobs,
            "logs" | "log" | "audit" => Screen::Logs,
            "users" | "user" | "keys" | "key" | "usr" => Screen::Users,
            _ => return None,
        })
    }

    /// What the screen shows, to fetch on a refresh.
    fn queries(self, app: &App) -> Vec<Query> {
        match self {
            Screen::Overview => vec![Query::Dashboard, Query::Servers, Query::Jobs],
            Screen::Servers => {
                let mut q = vec![Query::Servers];
                if app.detail.contains(&Screen::Servers)
                    && let Some(name) = app.selected_id(Screen::Servers)
                {
                    q.push(Query::Metrics(name));
                }
                q
            }
            Screen::Sites => vec![Query::Sites],
            Screen::Jobs => vec![Query::Jobs],
            Screen::Logs => match &app.log_site {
                Some(domain) => vec![Query::SiteLog(domain.clone(), app.error_log)],
                None => vec![],
            },
            Screen::Users if app.manages_users() => vec![Query::Users, Query::Keys],
            Screen::Users => vec![],
        }
    }
}

/// What the dashboard asks its runner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Run a query (`-o json`) and hand its answer to [`App::loaded`].
    Fetch(Query),
    /// Run a command of the tree (a change); its end goes to [`App::ran`].
    Run {
        argv: Vec<String>,
        label: String,
    },
    /// Switch to the shell (the state stays for the way back).
    Shell,
    Quit,
}

/// Who is logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub tenant: String,
    pub role: String,
}

/// The user's preferences as the screens use them.
#[derive(Debug, Clone)]
pub struct Prefs {
    pub styles: Styles,
    pub bindings: Bindings,
    pub refresh: Duration,
    pub low: bool,
    pub theme: String,
    pub keymap: String,
}

/// The shortest periodic refresh in low-bandwidth mode.
pub const LOW_BANDWIDTH_REFRESH: Duration = Duration::from_secs(30);
/// How often running jobs are looked at while they show (normal mode, without job events).
const LIVE_JOBS_REFRESH: Duration = Duration::from_secs(1);
/// How long after a change event the affected data is fetched (changes come in bursts).
const CHANGE_DEBOUNCE: Duration = Duration::from_millis(100);
/// How often the spinner of running commands turns.
const SPINNER_STEP: Duration = Duration::from_millis(250);
/// The smallest terminal the dashboard draws in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

impl Prefs {
    /// From `ui show`; `no_color`: the client sent `NO_COLOR`.
    pub fn new(settings: &UiSettings, no_color: bool) -> Prefs {
        let low = settings.bandwidth == Bandwidth::Low;
        let refresh = Duration::from_secs(u64::from(settings.refresh_secs).max(1));
        Prefs {
            styles: Styles::new(&settings.styles, !(low || no_color)),
            bindings: Bindings::new(&settings.bindings),
            refresh: if low {
                refresh.max(LOW_BANDWIDTH_REFRESH)
            } else {
                refresh
            },
            low,
            theme: settings.theme.clone(),
            keymap: settings.keymap.clone(),
        }
    }
}

/// Something over the screen that takes the keys first.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help,
    Confirm(Confirm),
    Form(Form),
    Filter(LineInput),
    Command(LineInput),
}

/// A line for the user in the bottom bar, until the next key.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub text: String,
    pub style: StyleName,
}

/// Everything fetched, as the commands answered it.
#[derive(Debug, Clone, Default)]
pub struct Data {
    pub dashboard: Option<Dashboard>,
    pub servers: Vec<Server>,
    pub sites: Vec<Site>,
    pub jobs: Vec<Job>,
    pub audit: Vec<AuditRow>,
    pub users: Vec<User>,
    pub keys: Vec<SshKey>,
    pub metrics: BTreeMap<String, Vec<MetricPoint>>,
    pub site_log: Vec<String>,
    /// Queries answered at least once.
    pub loaded: BTreeSet<Query>,
    /// The last error of a query, shown where its data would be.
    pub errors: BTreeMap<Query, String>,
}

/// The dashboard.
pub struct App {
    pub me: Identity,
    pub prefs: Prefs,
    no_color: bool,
    pub screen: Screen,
    history: Vec<Screen>,
    pub data: Data,
    pub navs: BTreeMap<Screen, TableNav>,
    /// Screens showing the selected row's detail.
    pub detail: BTreeSet<Screen>,
    pub overlay: Option<Overlay>,
    pub status: Option<Status>,
    /// Labels of the commands running now.
    pub running: Vec<String>,
    /// The data may be old: the link is slow (set by the runner).
    pub stale: bool,
    /// The site whose access log the Logs screen shows (else the audit trail).
    pub log_site: Option<String>,
    /// The Logs screen shows the site's error log rather than its access log.
    pub error_log: bool,
    pub size: (u16, u16),
    /// Something visible changed since the last draw.
    pub dirty: bool,
    pub spinner: usize,
    /// Audit rows and job progress arrive as events (no periodic fetch needed).
    pub live_audit: bool,
    next_refresh: Option<Instant>,
    next_spin: Option<Instant>,
    wanted: BTreeMap<Query, Instant>,
    /// Bumped whenever fetched data changes (the rows built from it are kept until then).
    generation: u64,
    /// Each screen's rows as shown, kept while their inputs stay the same: a keypress on a
    /// table of thousands of sites then costs no rebuilding, filtering or sorting.
    shown: RefCell<BTreeMap<Screen, Shown>>,
}

/// A screen's rows as shown (filtered, sorted) and what they were made from.
struct Shown {
    key: ShownKey,
    rows: Rc<Vec<Row>>,
    total: usize,
}

#[derive(PartialEq)]
struct ShownKey {
    generation: u64,
    form: rows::Form,
    log_site: Option<String>,
    error_log: bool,
    sort: Option<usize>,
    reverse: bool,
    filter: String,
}

impl App {
    pub fn new(me: Identity, settings: &UiSettings, no_color: bool, size: (u16, u16)) -> App {
        App {
            me,
            prefs: Prefs::new(settings, no_color),
            no_color,
            screen: Screen::Overview,
            history: Vec::new(),
            data: Data::default(),
            navs: Screen::ALL
                .iter()
                .map(|s| (*s, TableNav::default()))
                .collect(),
            detail: BTreeSet::new(),
            overlay: None,
            status: None,
            running: Vec::new(),
            stale: false,
            log_site: None,
            error_log: false,
            size,
            dirty: true,
            spinner: 0,
            live_audit: false,
            next_refresh: None,
            next_spin: None,
            wanted: BTreeMap::new(),
            generation: 0,
            shown: RefCell::default(),
        }
    }

    /// Whether the terminal is large enough to draw in.
    pub fn fits(&self) -> bool {
        self.size.0 >= MIN_WIDTH && self.size.1 >= MIN_HEIGHT
    }

    /// How much of a screen's table shows: the essential columns in low-bandwidth mode and
    /// beside a detail view, fewer below 100 columns, else all.
    pub fn table_form(&self, screen: Screen) -> rows::Form {
        if self.prefs.low || (self.detail.contains(&screen) && self.size.0 >= 100) {
            rows::Form::Compact
        } else if self.size.0 < 100 {
            rows::Form::Narrow
        } else {
            rows::Form::Full
        }
    }

    /// Owners and admins see users and keys.
    pub fn manages_users(&self) -> bool {
        matches!(self.me.role.as_str(), "owner" | "admin")
    }

    /// Viewers change nothing.
    pub fn may_change(&self) -> bool {
        self.me.role != "viewer"
    }

    /// Whether `action` can be done on the current screen by this user (else it is greyed).
    pub fn allowed(&self, action: Action) -> bool {
        let change = matches!(
            action,
            Action::Create
                | Action::Delete
                | Action::Enable
                | Action::Disable
                | Action::Reboot
                | Action::Resize
                | Action::Power
                | Action::Retry
        );
        if !change {
            return true;
        }
        if !self.may_change() {
            return false;
        }
        self.screen != Screen::Users || self.manages_users()
    }

    /// The actions of the current screen beyond moving around (for the bottom bar and help).
    pub fn screen_actions(&self) -> &'static [Action] {
        match self.screen {
            Screen::Overview => &[],
            Screen::Servers => &[
                Action::Open,
                Action::Create,
                Action::Delete,
                Action::Reboot,
                Action::Resize,
                Action::Power,
            ],
            Screen::Sites => &[
                Action::Open,
                Action::Create,
                Action::Delete,
                Action::Enable,
                Action::Disable,
                Action::Logs,
            ],
            Screen::Jobs => &[Action::Open, Action::Delete, Action::Retry],
            Screen::Logs if self.log_site.is_some() => &[Action::Logs],
            Screen::Logs => &[],
            Screen::Users => &[
                Action::Create,
                Action::Delete,
                Action::Enable,
                Action::Disable,
            ],
        }
    }

    /// The effects to start with: the preferences, then the first screen's data.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut effects = vec![Effect::Fetch(Query::Ui), Effect::Fetch(Query::Audit)];
        effects.extend(self.refresh_screen());
        effects
    }

    // ----- keys -----

    /// A key from the terminal.
    pub fn key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        self.dirty = true;
        if self.status.is_some() && self.overlay.is_none() {
            self.status = None;
        }
        if let Some(overlay) = self.overlay.take() {
            return self.overlay_key(overlay, key);
        }
        let Some(action) = self.prefs.bindings.action(key) else {
            return Vec::new();
        };
        if !self.fits() && !matches!(action, Action::Quit | Action::Shell) {
            return Vec::new();
        }
        self.action(action)
    }

    fn overlay_key(&mut self, overlay: Overlay, key: &KeyEvent) -> Vec<Effect> {
        match overlay {
            Overlay::Help => Vec::new(),
            Overlay::Confirm(confirm) => {
                use crossterm::event::KeyCode;
                match key.code {
                    KeyCode::Char('y' | 'Y') => {
                        let label = confirm.title.clone();
                        self.run(confirm.argv, label)
                    }
                    KeyCode::Char('n' | 'N') | KeyCode::Esc => Vec::new(),
                    _ => {
                        self.overlay = Some(Overlay::Confirm(confirm));
                        Vec::new()
                    }
                }
            }
            Overlay::Form(mut form) => match form.key(key) {
                FormResult::Editing => {
                    self.overlay = Some(Overlay::Form(form));
                    Vec::new()
                }
                FormResult::Cancel => Vec::new(),
                FormResult::Submit(argv) => {
                    let label = argv.join(" ");
                    self.run(argv, label)
                }
            },
            Overlay::Filter(mut input) => {
                let edit = input.key(key);
                match edit {
                    Edit::Cancel => {
                        self.nav().filter = Filter::None;
                    }
                    Edit::Submit | Edit::Changed | Edit::Unchanged => {
                        match Filter::parse(&input.text) {
                            Ok(filter) => self.nav().filter = filter,
                            Err(e) if edit == Edit::Submit => {
                                self.say(e, StyleName::Error);
                                self.overlay = Some(Overlay::Filter(input));
                                return Vec::new();
                            }
                            Err(_) => {}
                        }
                        if edit != Edit::Submit {
                            self.overlay = Some(Overlay::Filter(input));
                        }
                    }
                }
                Vec::new()
            }
            Overlay::Command(mut input) => match input.key(key) {
                Edit::Submit => self.command(&input.text),
                Edit::Cancel => Vec::new(),
                _ => {
                    self.overlay = Some(Overlay::Command(input));
                    Vec::new()
                }
            },
        }
    }

    fn action(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => vec![Effect::Quit],
            Action::Shell => vec![Effect::Shell],
            Action::Help => {
                self.overlay = Some(Overlay::Help);
                Vec::new()
            }
            Action::Command => {
                self.overlay = Some(Overlay::Command(LineInput::default()));
                Vec::new()
            }
            Action::Filter => {
                if self.table_screen() {
                    let text = self.nav().filter.text().to_owned();
                    self.overlay = Some(Overlay::Filter(LineInput::with(&text)));
                }
                Vec::new()
            }
            Action::Back => self.back(),
            Action::Refresh => self.refresh_screen(),
            Action::Up => self.step(-1),
            Action::Down => self.step(1),
            Action::PageUp => self.step(-(self.page() as isize)),
            Action::PageDown => self.step(self.page() as isize),
            Action::Top => self.step(isize::MIN / 2),
            Action::Bottom => self.step(isize::MAX / 2),
            Action::NextScreen => self.go(Screen::ALL[(self.screen.index() + 1) % 6]),
            Action::PrevScreen => self.go(Screen::ALL[(self.screen.index() + 5) % 6]),
            Action::ScreenOverview => self.go(Screen::Overview),
            Action::ScreenServers => self.go(Screen::Servers),
            Action::ScreenSites => self.go(Screen::Sites),
            Action::ScreenJobs => self.go(Screen::Jobs),
            Action::ScreenLogs => self.go(Screen::Logs),
            Action::ScreenUsers => self.go(Screen::Users),
            Action::SortNext => {
                let columns = rows::columns(
                    self.screen,
                    self.table_form(self.screen),
                    self.log_site.as_deref(),
                )
                .len();
                self.nav().sort_next(columns);
                Vec::new()
            }
            Action::SortReverse => {
                let nav = self.nav();
                nav.reverse = !nav.reverse;
                Vec::new()
            }
            Action::Open => self.open(),
            _ => self.change(action),
        }
    }

    fn back(&mut self) -> Vec<Effect> {
        if self.detail.remove(&self.screen) {
            return Vec::new();
        }
        if self.table_screen() && self.nav().filter.is_active() {
            self.nav().filter = Filter::None;
            return Vec::new();
        }
        if self.screen == Screen::Logs && self.log_site.take().is_some() {
            return Vec::new();
        }
        match self.history.pop() {
            Some(previous) => {
                self.screen = previous;
                self.refresh_screen()
            }
            None => Vec::new(),
        }
    }

    fn open(&mut self) -> Vec<Effect> {
        if !matches!(self.screen, Screen::Servers | Screen::Sites | Screen::Jobs) {
            return Vec::new();
        }
        if !self.detail.insert(self.screen) {
            self.detail.remove(&self.screen);
            return Vec::new();
        }
        self.refresh_screen()
    }

    fn go(&mut self, screen: Screen) -> Vec<Effect> {
        if screen != self.screen {
            self.history.push(self.screen);
            if self.history.len() > 32 {
                self.history.remove(0);
            }
            self.screen = screen;
        }
        self.refresh_screen()
    }

    fn step(&mut self, delta: isize) -> Vec<Effect> {
        if !self.table_screen() {
            return Vec::new();
        }
        let screen = self.screen;
        let len = self.visible_rows(screen).len();
        self.nav().step(delta, len);
        self.visible_rows(screen);
        if screen == Screen::Servers && self.detail.contains(&Screen::Servers) {
            return self.refresh_screen();
        }
        Vec::new()
    }

    /// Rows a page moves.
    fn page(&self) -> usize {
        usize::from(self.size.1.saturating_sub(8)).max(1)
    }

    fn table_screen(&self) -> bool {
        self.screen != Screen::Overview && (self.screen != Screen::Users || self.manages_users())
    }

    pub fn nav(&mut self) -> &mut TableNav {
        self.navs.entry(self.screen).or_default()
    }

    /// The rows of a screen's table as shown (filtered, sorted), the selection fixed up.
    pub fn visible_rows(&mut self, screen: Screen) -> Rc<Vec<Row>> {
        let (shown, _) = self.shown(screen);
        self.navs.entry(screen).or_default().follow(&shown);
        shown
    }

    /// The id of the selected row of a screen.
    pub fn selected_id(&self, screen: Screen) -> Option<String> {
        let (shown, _) = self.shown(screen);
        let mut nav = self.navs.get(&screen).cloned().unwrap_or_default();
        nav.follow(&shown);
        shown.get(nav.index).map(|r| r.id.clone())
    }

    /// A screen's rows as shown, and how many there are before the filter.
    pub fn shown(&self, screen: Screen) -> (Rc<Vec<Row>>, usize) {
        let form = self.table_form(screen);
        let nav = self.navs.get(&screen).cloned().unwrap_or_default();
        let key = ShownKey {
            generation: self.generation,
            form,
            log_site: self.log_site.clone(),
            error_log: self.error_log,
            sort: nav.sort,
            reverse: nav.reverse,
            filter: nav.filter.text().to_owned(),
        };
        if let Some(kept) = self.shown.borrow().get(&screen)
            && kept.key == key
        {
            return (Rc::clone(&kept.rows), kept.total);
        }
        let columns = rows::columns(screen, form, self.log_site.as_deref());
        let all = rows::rows(screen, &self.data, self.log_site.as_deref(), form);
        let arranged = Rc::new(nav.arrange(&columns, &all));
        let total = all.len();
        self.shown.borrow_mut().insert(
            screen,
            Shown {
                key,
                rows: Rc::clone(&arranged),
                total,
            },
        );
        (arranged, total)
    }

    /// Fetched data changed: rows are built again when next shown.
    pub(super) fn data_changed(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.dirty = true;
    }

    /// Forgets the site log shown (another site, or its other log, comes next).
    pub(super) fn clear_site_log(&mut self) {
        self.data.site_log.clear();
        self.data_changed();
    }

    fn say(&mut self, text: String, style: StyleName) {
        self.status = Some(Status { text, style });
        self.dirty = true;
    }
}
