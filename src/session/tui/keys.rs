//! The user's keymap as the dashboard uses it: a terminal key event looked up to an [`Action`].
//!
//! The keymap itself (names, parents, conflicts) is resolved by the daemon (`ui show`); here it
//! is only indexed. Shift is part of a character (`G`), never a modifier of its own.

use crate::domain::ui::{Action, Key, KeyCode as UiKey};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::{BTreeMap, HashMap};

/// Key → action, and action → its keys (for the help overlay and the bottom bar).
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    by_key: HashMap<Key, Action>,
    by_action: BTreeMap<Action, Vec<Key>>,
}

impl Bindings {
    pub fn new(bindings: &BTreeMap<Action, Vec<Key>>) -> Bindings {
        let mut by_key = HashMap::new();
        for (action, keys) in bindings {
            for key in keys {
                // The daemon refuses conflicts; should one slip through, the first action wins.
                by_key.entry(*key).or_insert(*action);
            }
        }
        Bindings {
            by_key,
            by_action: bindings.clone(),
        }
    }

    /// The action bound to a terminal key event, if any.
    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        self.by_key.get(&key_of(event)?).copied()
    }

    /// The keys of `action`, as the user would type them (`ctrl-d`, `j`), joined by `/`.
    pub fn label(&self, action: Action) -> Option<String> {
        let keys = self.by_action.get(&action)?;
        if keys.is_empty() {
            return None;
        }
        Some(
            keys.iter()
                .map(|k| short(&k.to_string()))
                .collect::<Vec<_>>()
                .join("/"),
        )
    }

    /// The first key of `action`, short (for the bottom bar).
    pub fn first(&self, action: Action) -> Option<String> {
        let key = self.by_action.get(&action)?.first()?;
        Some(short(&key.to_string()))
    }
}

/// Shorter spellings of key names for narrow bars: `ctrl-d` → `^d`, `pagedown` → `pgdn`.
fn short(name: &str) -> String {
    let name = name.replace("ctrl-", "^");
    match name.as_str() {
        "pagedown" => "pgdn".into(),
        "pageup" => "pgup".into(),
        "backtab" => "S-tab".into(),
        "enter" => "↵".into(),
        _ => name,
    }
}

/// The domain key of a terminal key event (`None` for keys no keymap can name).
pub fn key_of(event: &KeyEvent) -> Option<Key> {
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    let alt = event.modifiers.contains(KeyModifiers::ALT);
    let code = match event.code {
        KeyCode::Char(' ') => UiKey::Space,
        KeyCode::Char(c) => UiKey::Char(c),
        KeyCode::Up => UiKey::Up,
        KeyCode::Down => UiKey::Down,
        KeyCode::Left => UiKey::Left,
        KeyCode::Right => UiKey::Right,
        KeyCode::Enter => UiKey::Enter,
        KeyCode::Esc => UiKey::Esc,
        KeyCode::Tab => UiKey::Tab,
        KeyCode::BackTab => UiKey::BackTab,
        KeyCode::Backspace => UiKey::Backspace,
        KeyCode::Delete => UiKey::Delete,
        KeyCode::Insert => UiKey::Insert,
        KeyCode::Home => UiKey::Home,
        KeyCode::End => UiKey::End,
        KeyCode::PageUp => UiKey::PageUp,
        KeyCode::PageDown => UiKey::PageDown,
        KeyCode::F(n) if (1..=12).contains(&n) => UiKey::F(n),
        _ => return None,
    };
    Some(Key { code, ctrl, alt })
}
