//! Tab completion: nouns, verbs and flags from the [`Grammar`], fixed choices (`-o json`, roles,
//! site types) and live values (site domains, server, user and tenant names) asked of the daemon
//! through a [`ValueSource`], cached for a few seconds so walking the menu does not ask again.
//! The cache of a kind is dropped at once when a command has run or when the shell's `changes`
//! subscription tells of a change to that kind of object (a site created in another session
//! completes at the next Tab).

use super::grammar::{BUILTINS, Grammar, Node, Values, WordKind};
use super::words;
use crate::rpc::{CompletionKind, Event, Reply, Request, Topic};
use crate::session::link::{Link, Subscription};
use reedline::{Completer, CompletionResult, Span, Suggestion};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long the daemon may take to list values before Tab gives up on them.
const VALUES_TIMEOUT: Duration = Duration::from_secs(2);
/// How long listed values are reused.
const VALUES_FRESH: Duration = Duration::from_secs(5);

/// Where live completion values come from.
pub trait ValueSource: Send {
    fn values(&mut self, kind: CompletionKind) -> Vec<String>;
}

/// Live values from the daemon, as the bound user may see them.
pub struct LinkValues {
    link: Link,
    cache: Vec<(CompletionKind, Instant, Vec<String>)>,
    commands: CommandCount,
    seen_commands: u64,
    /// Whether to subscribe to `changes` (at the first live value asked for).
    follow_changes: bool,
    /// The `changes` subscription, while it lasts.
    changes: Option<Subscription>,
}

/// How many commands have run: a command may have created or deleted what is cached.
#[derive(Clone, Default)]
pub struct CommandCount(Arc<AtomicU64>);

impl CommandCount {
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl LinkValues {
    pub fn new(link: Link, commands: CommandCount) -> LinkValues {
        LinkValues {
            link,
            cache: Vec::new(),
            seen_commands: commands.get(),
            commands,
            follow_changes: false,
            changes: None,
        }
    }

    /// Subscribes to the `changes` topic when live values are first asked for (a shell that
    /// never completes one costs the daemon no poller), and from then on forgets cached values
    /// as soon as a change to their kind of object arrives.
    pub fn following_changes(mut self) -> LinkValues {
        self.follow_changes = true;
        self
    }

    /// Forgets the cached values that the changes received since the last call concern.
    fn take_changes(&mut self) {
        if self.follow_changes {
            self.follow_changes = false;
            // Refused or closed: the expiry alone keeps values fresh.
            self.changes = self.link.subscribe(vec![Topic::Changes]).ok();
        }
        let Some(changes) = &mut self.changes else {
            return;
        };
        loop {
            match changes.try_recv() {
                None => return,
                Some(Ok(Event::Change(change))) => {
                    let stale = affected(&change.kind);
                    self.cache.retain(|(kind, _, _)| !stale.contains(kind));
                }
                Some(Ok(_)) => {}
                // Ended (the link, or the daemon): the expiry alone keeps values fresh.
                Some(Err(_)) => {
                    self.changes = None;
                    return;
                }
            }
        }
    }
}

/// The completion values a change of `kind` (`site`, `user`, …) may have made stale.
pub fn affected(kind: &str) -> &'static [CompletionKind] {
    match kind {
        "site" => &[CompletionKind::Sites],
        "server" => &[CompletionKind::Servers],
        "user" => &[CompletionKind::Users],
        "tenant" => &[CompletionKind::Tenants],
        _ => &[],
    }
}

impl ValueSource for LinkValues {
    fn values(&mut self, kind: CompletionKind) -> Vec<String> {
        let commands = self.commands.get();
        if commands != self.seen_commands {
            self.cache.clear();
            self.seen_commands = commands;
        }
        self.take_changes();
        self.cache.retain(|(_, at, _)| at.elapsed() < VALUES_FRESH);
        if let Some((_, _, values)) = self.cache.iter().find(|(k, _, _)| *k == kind) {
            return values.clone();
        }
        let values = match self
            .link
            .call(|id| Request::Complete { id, kind }, VALUES_TIMEOUT)
        {
            Ok(Reply::Values { values, .. }) => values,
            // No values is the answer to a refusal, a timeout or a closed link: Tab stays quiet.
            _ => Vec::new(),
        };
        self.cache.push((kind, Instant::now(), values.clone()));
        values
    }
}

/// The shell's completer.
pub struct ShellCompleter<V> {
    grammar: Arc<Grammar>,
    values: V,
}

impl<V: ValueSource> ShellCompleter<V> {
    pub fn new(grammar: Arc<Grammar>, values: V) -> Self {
        ShellCompleter { grammar, values }
    }

    /// The suggestions for the word that ends at `pos`.
    pub fn suggest(&mut self, line: &str, pos: usize) -> Vec<Suggestion> {
        let pos = pos.min(line.len());
        let Some(before) = line.get(..pos) else {
            return Vec::new();
        };
        let split = words::split(before);
        // The word being completed: the last one, unless the cursor follows a delimiter.
        let ends_in_word = split
            .words
            .last()
            .is_some_and(|w| w.span.end == pos && !before.ends_with([' ', '\t', '\n']));
        let (done, current) = match split.words.split_last() {
            Some((last, done)) if ends_in_word => (done, Some(last)),
            _ => (&split.words[..], None),
        };
        let typed: Vec<&str> = done.iter().map(|w| w.text.as_str()).collect();
        let (at, kinds) = self.grammar.walk(&typed);
        if at.lost || kinds.contains(&WordKind::Unknown) {
            return Vec::new();
        }
        let (prefix, span) = match current {
            Some(word) => (word.text.as_str(), Span::new(word.span.start, pos)),
            None => ("", Span::new(pos, pos)),
        };
        let mut out = Vec::new();
        if let Some(flag) = at.expecting {
            if let Some(values) = at.node.values_for(&at.path, &flag.id) {
                self.push_values(&mut out, values, prefix, span);
            }
            return out;
        }
        if prefix.starts_with('-') && !at.help {
            for flag in &at.node.flags {
                if let Some(long) = &flag.long {
                    let value = format!("--{long}");
                    if value.starts_with(prefix) {
                        out.push(suggestion(value, &flag.about, span));
                    }
                }
            }
            return out;
        }
        if !at.node.children.is_empty() {
            for child in &at.node.children {
                // `help` explains the panel's commands, not the shell's own words.
                let builtin = BUILTINS.iter().any(|(name, _)| *name == child.name);
                if child.name.starts_with(prefix) && !(at.help && builtin) {
                    out.push(suggestion(child.name.clone(), &child.about, span));
                }
            }
            return out;
        }
        if at.help {
            return out;
        }
        if let Some(id) = positional(at.node, at.positionals)
            && let Some(values) = at.node.values_for(&at.path, id)
        {
            self.push_values(&mut out, values, prefix, span);
        }
        out
    }

    fn push_values(&mut self, out: &mut Vec<Suggestion>, values: Values, prefix: &str, span: Span) {
        let values = match values {
            Values::Fixed(values) => values,
            Values::Live(kind) => self.values.values(kind),
        };
        for value in values {
            if value.starts_with(prefix) {
                out.push(suggestion(
                    shell_words::quote(&value).into_owned(),
                    "",
                    span,
                ));
            }
        }
    }
}

/// The id of the positional argument number `index` (the trailing one repeats).
fn positional(node: &Node, index: usize) -> Option<&str> {
    match node.positionals.get(index) {
        Some(id) => Some(id),
        None if node.trailing => node.positionals.last().map(String::as_str),
        None => None,
    }
}

fn suggestion(value: String, about: &str, span: Span) -> Suggestion {
    Suggestion {
        value,
        description: (!about.is_empty()).then(|| about.to_owned()),
        span,
        append_whitespace: true,
        ..Suggestion::default()
    }
}

impl<V: ValueSource> Completer for ShellCompleter<V> {
    fn complete(&mut self, line: &str, pos: usize) -> CompletionResult {
        CompletionResult::fresh(self.suggest(line, pos))
    }
}

#[cfg(test)]
#[path = "complete_tests.rs"]
mod tests;
