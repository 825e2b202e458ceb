//! How the dashboard stays current: answers to its queries, ends of its commands, events
//! (changes, audit rows) and its timers (periodic refresh, debounced fetches, the spinner).
//! Data that did not change leaves the screen alone.

use super::{App, CHANGE_DEBOUNCE, Effect, LIVE_JOBS_REFRESH, Prefs, SPINNER_STEP, Screen};
use crate::domain::ui::{StyleName, UiSettings};
use crate::session::tui::data::{AUDIT_ROWS, AuditRow, Job, MetricPoint, Query, clean};
use std::time::Instant;

impl App {
    /// Fetches what the current screen shows, and sets the next periodic refresh.
    pub fn refresh_screen(&mut self) -> Vec<Effect> {
        let mut queries = self.screen.queries(self);
        let shows_audit = self.screen == Screen::Overview
            || (self.screen == Screen::Logs && self.log_site.is_none());
        if shows_audit && (!self.live_audit || !self.data.loaded.contains(&Query::Audit)) {
            queries.push(Query::Audit);
        }
        self.next_refresh = None;
        queries.into_iter().map(Effect::Fetch).collect()
    }

    /// A query's answer: its stdout (`Ok`) or what went wrong (`Err`).
    pub fn loaded(&mut self, query: Query, answer: Result<String, String>) {
        let text = match answer {
            Ok(text) => text,
            Err(message) => {
                let message = clean(message.lines().next().unwrap_or("failed"));
                if self.data.errors.get(&query) != Some(&message) {
                    self.data.errors.insert(query, message);
                    self.dirty = true;
                }
                return;
            }
        };
        if self.data.errors.remove(&query).is_some() {
            self.dirty = true;
        }
        self.data.loaded.insert(query.clone());
        let changed = match self.take(&query, &text) {
            Ok(changed) => changed,
            Err(e) => {
                self.data.errors.insert(
                    query,
                    clean(&format!("unexpected answer from the panel: {e}")),
                );
                true
            }
        };
        if changed {
            self.data_changed();
        }
    }

    /// Stores a query's answer; whether it differs from what was there.
    fn take(&mut self, query: &Query, text: &str) -> serde_json::Result<bool> {
        let d = &mut self.data;
        Ok(match query {
            Query::Ui => {
                let settings: UiSettings = serde_json::from_str(text)?;
                self.apply_settings(&settings);
                true
            }
            Query::Dashboard => set(&mut d.dashboard, Some(serde_json::from_str(text)?)),
            Query::Servers => set(&mut d.servers, serde_json::from_str(text)?),
            Query::Sites => set(&mut d.sites, serde_json::from_str(text)?),
            Query::Jobs => set(&mut d.jobs, serde_json::from_str(text)?),
            Query::Audit => set(&mut d.audit, serde_json::from_str(text)?),
            Query::Users => set(&mut d.users, serde_json::from_str(text)?),
            Query::Keys => set(&mut d.keys, serde_json::from_str(text)?),
            Query::Metrics(name) => {
                let points: Vec<MetricPoint> = serde_json::from_str(text)?;
                let old = d.metrics.insert(name.clone(), points.clone());
                old.as_ref() != Some(&points)
            }
            Query::SiteLog(..) => {
                let lines: Vec<String> = serde_json::from_str(text)?;
                set(&mut d.site_log, lines.iter().map(|l| clean(l)).collect())
            }
        })
    }

    /// Uses new preferences (from `ui show`).
    pub fn apply_settings(&mut self, settings: &UiSettings) {
        self.prefs = Prefs::new(settings, self.no_color);
        self.next_refresh = None;
        self.dirty = true;
    }

    /// A command started with [`Effect::Run`] ended.
    /// A notice from the daemon (the idle warning, a restart): on the message line.
    pub fn notice(&mut self, text: &str) {
        self.say(clean(text), StyleName::Warning);
    }

    pub fn ran(&mut self, label: &str, exit: u8, stdout: &str, stderr: &str) -> Vec<Effect> {
        if let Some(i) = self.running.iter().position(|l| l == label) {
            self.running.remove(i);
        }
        if exit == 0 {
            let extra = what_it_made(stdout);
            self.say(format!("done: {}{extra}", clean(label)), StyleName::Ok);
        } else {
            let why = stderr
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("failed");
            self.say(
                format!("{}: {} (exit {exit})", clean(label), clean(why)),
                StyleName::Error,
            );
        }
        let mut effects = self.refresh_screen();
        if label.starts_with("ui ") {
            effects.push(Effect::Fetch(Query::Ui));
        }
        effects
    }

    /// An object changed (an event of the `changes` topic): what shows it is fetched soon.
    pub fn changed(&mut self, kind: &str, now: Instant) {
        let queries: &[Query] = match kind {
            "site" => &[Query::Sites, Query::Dashboard, Query::Servers],
            "server" => &[Query::Servers, Query::Dashboard, Query::Jobs],
            "user" | "key" | "tenant" | "totp" => &[Query::Users, Query::Keys, Query::Dashboard],
            "job" | "host" => &[Query::Jobs],
            "ui" => &[Query::Ui],
            _ => &[Query::Dashboard],
        };
        for q in queries {
            self.wanted
                .entry(q.clone())
                .or_insert(now + CHANGE_DEBOUNCE);
        }
        // A change starts jobs: look at them soon too.
        self.wanted
            .entry(Query::Jobs)
            .or_insert(now + CHANGE_DEBOUNCE);
    }

    /// A new row of the audit trail (an event of the `audit` topic).
    pub fn audited(&mut self, row: AuditRow) {
        if self.data.audit.iter().any(|r| r.seq == row.seq) {
            return;
        }
        self.data.audit.insert(0, row);
        self.data.audit.truncate(AUDIT_ROWS);
        let shown = matches!(self.screen, Screen::Overview | Screen::Logs);
        self.data_changed();
        self.dirty = shown || self.dirty;
    }

    /// Timers: periodic refresh, debounced fetches after changes, the spinner.
    pub fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        let visible: Vec<Query> = self.screen.queries(self);
        let due: Vec<Query> = self
            .wanted
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(q, _)| q.clone())
            .collect();
        for q in due {
            self.wanted.remove(&q);
            // Only what the screen shows (or the preferences); the rest when it is shown.
            if visible.contains(&q) || q == Query::Ui || q == Query::Dashboard {
                effects.push(Effect::Fetch(q.clone()));
            } else {
                self.data.loaded.remove(&q);
            }
        }
        // Job events (the `jobs` topic) bring progress as it happens; without them, running
        // jobs are looked at every second while they show.
        let period = if !self.prefs.low
            && !self.live_audit
            && matches!(self.screen, Screen::Overview | Screen::Jobs)
            && self.data.jobs.iter().any(Job::is_live)
        {
            LIVE_JOBS_REFRESH.min(self.prefs.refresh)
        } else {
            self.prefs.refresh
        };
        match self.next_refresh {
            None => self.next_refresh = Some(now + period),
            Some(at) if at <= now => {
                for e in self.refresh_screen() {
                    if !effects.contains(&e) {
                        effects.push(e);
                    }
                }
                self.next_refresh = Some(now + period);
            }
            Some(_) => {}
        }
        if !self.prefs.low && !self.running.is_empty() {
            match self.next_spin {
                Some(at) if at > now => {}
                _ => {
                    self.spinner = self.spinner.wrapping_add(1);
                    self.next_spin = Some(now + SPINNER_STEP);
                    self.dirty = true;
                }
            }
        }
        effects
    }

    /// When [`App::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut at = self.next_refresh;
        for t in self.wanted.values() {
            at = Some(at.map_or(*t, |a| a.min(*t)));
        }
        if !self.prefs.low && !self.running.is_empty() {
            let spin = self.next_spin.unwrap_or_else(Instant::now);
            at = Some(at.map_or(spin, |a| a.min(spin)));
        }
        at
    }

    /// The terminal's new size.
    pub fn resized(&mut self, cols: u16, rows: u16) {
        self.size = (cols, rows);
        self.dirty = true;
    }

    /// The runner's view of the link: stale or not.
    pub fn set_stale(&mut self, stale: bool) {
        if self.stale != stale {
            self.stale = stale;
            self.dirty = true;
        }
    }
}

/// Replaces `slot` with `new`; whether it changed.
fn set<T: PartialEq>(slot: &mut T, new: T) -> bool {
    if *slot == new {
        return false;
    }
    *slot = new;
    true
}

/// What a command's JSON answer says the user must see: a new user's one-time enrollment code,
/// the job a change was queued as.
fn what_it_made(stdout: &str) -> String {
    let Ok(serde_json::Value::Object(answer)) = serde_json::from_str(stdout) else {
        return String::new();
    };
    if let Some(code) = answer.get("enroll_code").and_then(|c| c.as_str()) {
        return format!(" · enrollment code {} (give it to the user)", clean(code));
    }
    match (answer.get("id"), answer.get("kind"), answer.get("state")) {
        (Some(id), Some(_), Some(_)) => format!(" · job {id} (see Jobs)"),
        _ => String::new(),
    }
}
