//! The dashboard's side of the link: queries and commands in flight, answered without
//! blocking, and the subscription to changes and new audit rows.

use super::data::{AuditRow, Query};
use crate::rpc::{self, Reply, Request, Topic};
use crate::session::link::{Event, Link, LinkError, Pending, Subscription};
use std::time::{Duration, Instant};

/// What came back.
#[derive(Debug)]
pub enum Arrived {
    /// A query's stdout, or its error.
    Data(Query, Result<String, String>),
    /// A command ended.
    Ran {
        label: String,
        exit: u8,
        stdout: String,
        stderr: String,
    },
    /// An object changed (its kind: `site`, `server`, …).
    Changed(String),
    /// A new row of the audit trail.
    Audited(AuditRow),
}

enum Purpose {
    Query(Query),
    Run(String),
}

struct InFlight {
    pending: Pending,
    purpose: Purpose,
    started: Instant,
    stdout: String,
    stderr: String,
}

/// Requests in flight on the link.
pub struct Source {
    link: Link,
    inflight: Vec<InFlight>,
    events: Option<Subscription>,
    /// The daemon's notices (idle warning, restart) while the dashboard shows.
    notices: (
        std::sync::mpsc::SyncSender<String>,
        std::sync::mpsc::Receiver<String>,
    ),
    /// When a query last came back.
    pub last_answer: Option<Instant>,
}

impl Source {
    pub fn new(link: Link) -> Source {
        Source {
            link,
            inflight: Vec::new(),
            events: None,
            last_answer: None,
            notices: std::sync::mpsc::sync_channel(16),
        }
    }

    /// Makes the dashboard the receiver of the daemon's notices (the shell takes them while
    /// it runs); held ones come at once.
    pub fn take_notices(&self) {
        self.link.set_notice_sink(self.notices.0.clone());
    }

    /// Notices that arrived since the last call.
    pub fn notices(&self) -> Vec<String> {
        self.notices.1.try_iter().collect()
    }

    /// Subscribes to changes, audit rows and jobs (once; again after the subscription ended).
    pub fn subscribe(&mut self) -> bool {
        if self.events.is_none() {
            self.events = self
                .link
                .subscribe(vec![Topic::Changes, Topic::Audit, Topic::Jobs])
                .ok();
        }
        self.events.is_some()
    }

    /// Stops the subscription (while the shell runs).
    pub fn unsubscribe(&mut self) {
        self.events = None;
    }

    /// Sends a query unless the same one is in flight.
    pub fn fetch(&mut self, query: Query) -> Result<(), LinkError> {
        if self
            .inflight
            .iter()
            .any(|f| matches!(&f.purpose, Purpose::Query(q) if *q == query))
        {
            return Ok(());
        }
        let argv = query.argv();
        self.start(argv, Purpose::Query(query))
    }

    /// Runs a command (already with `-o json`).
    pub fn run(&mut self, argv: Vec<String>, label: String) -> Result<(), LinkError> {
        self.start(argv, Purpose::Run(label))
    }

    fn start(&mut self, argv: Vec<String>, purpose: Purpose) -> Result<(), LinkError> {
        let pending = self.link.start(|id| Request::Run {
            id,
            argv,
            tty: false,
        })?;
        self.inflight.push(InFlight {
            pending,
            purpose,
            started: Instant::now(),
            stdout: String::new(),
            stderr: String::new(),
        });
        Ok(())
    }

    /// Whether anything is in flight.
    pub fn busy(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// How long the oldest query has been waiting (commands may take long on purpose).
    pub fn oldest_query(&self) -> Option<Duration> {
        self.inflight
            .iter()
            .filter(|f| matches!(f.purpose, Purpose::Query(_)))
            .map(|f| f.started.elapsed())
            .max()
    }

    /// Everything that arrived, without waiting. `Err` once the link has ended.
    pub fn poll(&mut self) -> Result<Vec<Arrived>, LinkError> {
        let mut arrived = Vec::new();
        let mut closed = false;
        let mut i = 0;
        while i < self.inflight.len() {
            let mut done = None;
            let f = &mut self.inflight[i];
            while let Some(event) = f.pending.recv_timeout(Duration::ZERO) {
                match event {
                    Event::Reply(Reply::Output { stdout, stderr, .. }) => {
                        f.stdout.push_str(&stdout);
                        f.stderr.push_str(&stderr);
                    }
                    Event::Reply(Reply::Done {
                        exit,
                        stdout,
                        stderr,
                        ..
                    }) => {
                        f.stdout.push_str(&stdout);
                        f.stderr.push_str(&stderr);
                        done = Some(exit);
                        break;
                    }
                    Event::Reply(Reply::Confirm { id, .. }) => {
                        // The dashboard asks before it sends (`--yes`); never answer yes here.
                        let _ = self.link.send(&Request::Confirm { id, yes: false });
                    }
                    Event::Reply(Reply::Error { message, .. }) => {
                        f.stderr.push_str(&message);
                        done = Some(1);
                        break;
                    }
                    Event::Reply(_) | Event::Interrupt => {}
                    Event::Closed => {
                        closed = true;
                        break;
                    }
                }
            }
            match done {
                Some(exit) => {
                    let f = self.inflight.remove(i);
                    arrived.push(match f.purpose {
                        Purpose::Query(q) => {
                            self.last_answer = Some(Instant::now());
                            if exit == 0 {
                                Arrived::Data(q, Ok(f.stdout))
                            } else {
                                Arrived::Data(q, Err(f.stderr))
                            }
                        }
                        Purpose::Run(label) => Arrived::Ran {
                            label,
                            exit,
                            stdout: f.stdout,
                            stderr: f.stderr,
                        },
                    });
                }
                None => i += 1,
            }
        }
        if let Some(sub) = &mut self.events {
            while let Some(next) = sub.try_recv() {
                match next {
                    Ok(rpc::Event::Change(change)) => arrived.push(Arrived::Changed(change.kind)),
                    // A job moved on: the jobs shown are fetched again (debounced).
                    Ok(rpc::Event::Job(_)) => arrived.push(Arrived::Changed("job".into())),
                    Ok(rpc::Event::Audit(entry)) => {
                        if let Ok(row) = serde_json::to_value(&entry)
                            .and_then(serde_json::from_value::<AuditRow>)
                        {
                            arrived.push(Arrived::Audited(row));
                        }
                    }
                    Err(_) => {
                        self.events = None;
                        break;
                    }
                }
            }
        }
        if closed || self.link.is_closed() {
            return Err(LinkError::Closed);
        }
        Ok(arrived)
    }
}
