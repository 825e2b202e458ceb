//! What the dashboard runs: a change on the selected row (a form, a confirmation, or the
//! command at once) and the `:` command line (screens by name or alias, a few verbs).

use super::{App, Effect, Overlay, Screen};
use crate::domain::ui::{Action, StyleName};
use crate::session::tui::data::clean;
use crate::session::tui::form::{self, Confirm};

impl App {
    /// A change on the selected row: a form, a confirmation, or the command at once.
    pub(super) fn change(&mut self, action: Action) -> Vec<Effect> {
        if !self.screen_actions().contains(&action) {
            return Vec::new();
        }
        if self.screen == Screen::Logs {
            // `l` on a site's log: its access log or its error log.
            if self.log_site.is_some() {
                self.error_log = !self.error_log;
                self.clear_site_log();
                return self.refresh_screen();
            }
            return Vec::new();
        }
        if !self.allowed(action) {
            let why = if self.may_change() {
                "only owners and admins manage users"
            } else {
                "a viewer can look but not change anything"
            };
            self.say(why.to_owned(), StyleName::Warning);
            return Vec::new();
        }
        if action == Action::Create {
            self.overlay = Some(Overlay::Form(match self.screen {
                Screen::Servers => form::server_create(),
                Screen::Users => form::user_create(),
                _ => form::site_create(),
            }));
            return Vec::new();
        }
        let Some(id) = self.selected_id(self.screen) else {
            self.say("nothing selected".to_owned(), StyleName::Warning);
            return Vec::new();
        };
        let w = |words: &[&str]| words.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let ask = |title: String, question: String, argv: Vec<String>| {
            Some(Overlay::Confirm(Confirm {
                title,
                question,
                argv,
            }))
        };
        match (self.screen, action) {
            (Screen::Sites, Action::Delete) => {
                self.overlay = ask(
                    format!("Delete {id}"),
                    format!(
                        "Delete the site {id}? Its nginx and PHP-FPM configuration is removed; \
                         its files are moved aside, not erased."
                    ),
                    w(&["site", "delete", &id, "--yes"]),
                );
            }
            (Screen::Sites, Action::Enable) => {
                return self.run(w(&["site", "enable", &id]), format!("enable {id}"));
            }
            (Screen::Sites, Action::Disable) => {
                return self.run(w(&["site", "disable", &id]), format!("disable {id}"));
            }
            (Screen::Sites, Action::Logs) => {
                self.log_site = Some(id);
                self.error_log = false;
                self.clear_site_log();
                return self.go(Screen::Logs);
            }
            (Screen::Servers, Action::Delete) => {
                self.overlay = ask(
                    format!("Delete {id}"),
                    format!("Delete the server {id} and everything on its disk?"),
                    w(&["server", "delete", &id, "--yes", "--no-wait"]),
                );
            }
            (Screen::Servers, Action::Reboot) => {
                self.overlay = ask(
                    format!("Reboot {id}"),
                    format!("Reboot the server {id}?"),
                    w(&["server", "reboot", &id, "--no-wait"]),
                );
            }
            (Screen::Servers, Action::Resize) => {
                self.overlay = Some(Overlay::Form(form::server_resize(&id)));
            }
            (Screen::Servers, Action::Power) => {
                let off = self
                    .data
                    .servers
                    .iter()
                    .any(|s| s.name == id && s.status == "off");
                let state = if off { "on" } else { "off" };
                self.overlay = ask(
                    format!("Power {id} {state}"),
                    if off {
                        format!("Power the server {id} on?")
                    } else {
                        format!("Power the server {id} off? This is a hard stop, not a shutdown.")
                    },
                    w(&["server", "power", &id, state, "--no-wait"]),
                );
            }
            (Screen::Jobs, Action::Delete) => {
                self.overlay = ask(
                    format!("Cancel job {id}"),
                    format!("Cancel job {id}?"),
                    w(&["job", "cancel", &id, "--yes"]),
                );
            }
            (Screen::Jobs, Action::Retry) => {
                return self.run(w(&["job", "retry", &id]), format!("retry job {id}"));
            }
            (Screen::Users, Action::Delete) => {
                self.overlay = ask(
                    format!("Delete {id}"),
                    format!("Delete the user {id} and their keys?"),
                    w(&["user", "delete", &id, "--yes"]),
                );
            }
            (Screen::Users, Action::Enable) => {
                return self.run(w(&["user", "unlock", &id]), format!("unlock {id}"));
            }
            (Screen::Users, Action::Disable) => {
                self.overlay = ask(
                    format!("Lock {id}"),
                    format!("Lock the user {id}? Their sessions end at once."),
                    w(&["user", "lock", &id]),
                );
            }
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn run(&mut self, argv: Vec<String>, label: String) -> Vec<Effect> {
        self.running.push(label.clone());
        let mut argv = argv;
        argv.extend(["-o".to_owned(), "json".to_owned()]);
        vec![Effect::Run { argv, label }]
    }

    /// A `:` command line: a screen by name or alias, or one of a few verbs.
    pub(super) fn command(&mut self, line: &str) -> Vec<Effect> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = words.first() else {
            return Vec::new();
        };
        let first = first.trim_start_matches(':');
        match (first, words.get(1)) {
            ("q" | "quit" | "exit", _) => vec![Effect::Quit],
            ("shell" | "sh", _) => vec![Effect::Shell],
            ("help" | "h" | "?", _) => {
                self.overlay = Some(Overlay::Help);
                Vec::new()
            }
            ("refresh" | "r", _) => self.refresh_screen(),
            ("logs" | "log", Some(domain)) => {
                self.log_site = Some(clean(domain));
                self.error_log = false;
                self.clear_site_log();
                self.go(Screen::Logs)
            }
            ("theme" | "keymap" | "bandwidth" | "refresh-secs", Some(value)) => {
                let noun = if first == "refresh-secs" {
                    "refresh"
                } else {
                    first
                };
                let argv = vec!["ui".to_owned(), noun.to_owned(), (*value).to_owned()];
                self.run(argv, format!("ui {noun} {value}"))
            }
            (word, _) => match Screen::named(word) {
                Some(screen) => {
                    if screen == Screen::Logs {
                        self.log_site = None;
                    }
                    self.go(screen)
                }
                None => {
                    self.say(
                        format!(
                            "unknown command :{}; try :sites :servers :jobs :logs :users :overview \
                             :shell :quit (? shows the keys)",
                            clean(word)
                        ),
                        StyleName::Error,
                    );
                    Vec::new()
                }
            },
        }
    }
}
