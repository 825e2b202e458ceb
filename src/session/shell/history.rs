//! Shell history kept by the daemon, per user and shared by all of its sessions; nothing on disk.
//!
//! [`LinkHistory`] is reedline's [`History`] over an in-memory list: loaded from the daemon at
//! start, each entered line is also sent to it (`HistoryAdd`), and a reverse search (Ctrl-R)
//! reloads the list first so lines from the user's other sessions are found too.

use crate::rpc::{Reply, Request};
use crate::session::link::Link;
use reedline::{
    CommandLineSearch, FileBackedHistory, History, HistoryItem, HistoryItemId, HistorySessionId,
    SearchQuery,
};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How many of the newest lines are loaded and kept.
pub const HISTORY_LINES: u32 = 1000;
/// How long the daemon may take to list the history.
const LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// Where history lines are kept.
pub trait HistoryStore: Send {
    /// Records an entered line.
    fn add(&self, line: &str);
    /// The newest `limit` lines, oldest first; `None` when they cannot be had now.
    fn list(&self, limit: u32) -> Option<Vec<String>>;
}

impl HistoryStore for Link {
    fn add(&self, line: &str) {
        // A line that cannot be recorded is still run; the link's end shows elsewhere.
        let _ = self.send(&Request::HistoryAdd {
            line: line.to_owned(),
        });
    }

    fn list(&self, limit: u32) -> Option<Vec<String>> {
        match self.call(|id| Request::HistoryList { id, limit }, LIST_TIMEOUT) {
            Ok(Reply::History { lines, .. }) => Some(lines),
            _ => None,
        }
    }
}

pub struct LinkHistory<S> {
    store: S,
    state: Mutex<State>,
}

struct State {
    lines: FileBackedHistory,
    /// A reverse search is going on (it reloaded the list when it began).
    searching: bool,
}

impl<S: HistoryStore> LinkHistory<S> {
    /// The history with the daemon's newest lines loaded.
    pub fn load(store: S) -> reedline::Result<Self> {
        let lines = memory(store.list(HISTORY_LINES).unwrap_or_default())?;
        Ok(LinkHistory {
            store,
            state: Mutex::new(State {
                lines,
                searching: false,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An in-memory (file-less) history holding `lines`.
fn memory(lines: Vec<String>) -> reedline::Result<FileBackedHistory> {
    let mut history = FileBackedHistory::new(HISTORY_LINES as usize)?;
    for line in lines {
        history.save(HistoryItem::from_command_line(line))?;
    }
    Ok(history)
}

impl<S: HistoryStore> History for LinkHistory<S> {
    fn save(&mut self, mut item: HistoryItem) -> reedline::Result<HistoryItem> {
        // A completion leaves a space after the last word: not worth keeping.
        let trimmed = item.command_line.trim_end_matches([' ', '\t']);
        if !trimmed.ends_with('\\') {
            item.command_line.truncate(trimmed.len());
        }
        if item.id.is_none() && !item.command_line.is_empty() {
            self.store.add(&item.command_line);
        }
        let mut state = self.state();
        state.searching = false;
        state.lines.save(item)
    }

    fn load(&self, id: HistoryItemId) -> reedline::Result<HistoryItem> {
        self.state().lines.load(id)
    }

    fn count(&self, query: SearchQuery) -> reedline::Result<i64> {
        self.state().lines.count(query)
    }

    fn search(&self, query: SearchQuery) -> reedline::Result<Vec<HistoryItem>> {
        let substring = matches!(
            query.filter.command_line,
            Some(CommandLineSearch::Substring(_))
        );
        let mut state = self.state();
        if substring && !state.searching {
            if let Some(lines) = self.store.list(HISTORY_LINES) {
                state.lines = memory(lines)?;
            }
            state.searching = true;
        } else if !substring {
            state.searching = false;
        }
        state.lines.search(query)
    }

    fn update(
        &mut self,
        id: HistoryItemId,
        updater: &dyn Fn(HistoryItem) -> HistoryItem,
    ) -> reedline::Result<()> {
        self.state().lines.update(id, updater)
    }

    fn clear(&mut self) -> reedline::Result<()> {
        self.state().lines.clear()
    }

    fn delete(&mut self, id: HistoryItemId) -> reedline::Result<()> {
        self.state().lines.delete(id)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn session(&self) -> Option<HistorySessionId> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reedline::SearchDirection;
    use std::sync::Arc;

    /// The daemon's list of lines, and how often it was listed.
    #[derive(Clone, Default)]
    struct Store {
        lines: Arc<Mutex<Vec<String>>>,
        lists: Arc<Mutex<u32>>,
    }

    impl HistoryStore for Store {
        fn add(&self, line: &str) {
            self.lines.lock().unwrap().push(line.to_owned());
        }
        fn list(&self, limit: u32) -> Option<Vec<String>> {
            *self.lists.lock().unwrap() += 1;
            let lines = self.lines.lock().unwrap();
            let skip = lines.len().saturating_sub(limit as usize);
            Some(lines[skip..].to_vec())
        }
    }

    fn all(history: &dyn History) -> Vec<String> {
        history
            .search(SearchQuery::everything(SearchDirection::Forward, None))
            .unwrap()
            .into_iter()
            .map(|i| i.command_line)
            .collect()
    }

    fn found(history: &dyn History, text: &str) -> Vec<String> {
        history
            .search(SearchQuery::all_that_contain_rev(text.to_owned()))
            .unwrap()
            .into_iter()
            .map(|i| i.command_line)
            .collect()
    }

    #[test]
    fn loads_at_start_and_records_entered_lines() {
        let store = Store::default();
        store.add("site list");
        store.add("user list");
        let mut history = LinkHistory::load(store.clone()).unwrap();
        assert_eq!(all(&history), ["site list", "user list"]);
        history
            .save(HistoryItem::from_command_line("whoami"))
            .unwrap();
        // Trailing blanks go, unless escaped.
        history
            .save(HistoryItem::from_command_line("site show x.com  "))
            .unwrap();
        history
            .save(HistoryItem::from_command_line("key add x\\ "))
            .unwrap();
        assert_eq!(
            all(&history),
            [
                "site list",
                "user list",
                "whoami",
                "site show x.com",
                "key add x\\ "
            ]
        );
        assert_eq!(store.lines.lock().unwrap().len(), 5);
    }

    #[test]
    fn a_reverse_search_reloads_once_to_see_other_sessions() {
        let store = Store::default();
        store.add("site list");
        let history = LinkHistory::load(store.clone()).unwrap();
        // Another session of the same user enters a line.
        store.add("site show example.com");
        assert_eq!(*store.lists.lock().unwrap(), 1);
        assert_eq!(
            found(&history, "site"),
            ["site show example.com", "site list"]
        );
        assert_eq!(found(&history, "site s"), ["site show example.com"]);
        assert_eq!(*store.lists.lock().unwrap(), 2, "one reload per search");
        // Up-arrow navigation (a prefix search) ends the search; the next one reloads again.
        history
            .search(SearchQuery::last_with_prefix("s".into(), None))
            .unwrap();
        found(&history, "x");
        assert_eq!(*store.lists.lock().unwrap(), 3);
    }

    #[test]
    fn keeps_the_newest_lines() {
        let store = Store::default();
        for n in 0..(HISTORY_LINES + 10) {
            store.add(&format!("line {n}"));
        }
        let history = LinkHistory::load(store).unwrap();
        let lines = all(&history);
        assert_eq!(lines.len(), HISTORY_LINES as usize);
        assert_eq!(
            lines.last().unwrap(),
            &format!("line {}", HISTORY_LINES + 9)
        );
    }
}
