//! Shell history kept by the daemon: the lines a user typed in the interactive shell, shared by
//! all its sessions, the newest `session.history_lines` kept.
//!
//! The caller has already dropped lines that carry a secret (the command layer's masking decides
//! that); this layer refuses what is not one printable line of at most [`MAX_LINE_CHARS`]
//! characters. History is the user's own: no policy question, and not audited (it changes
//! nothing of the panel).

use super::{Actor, Services};
use crate::error::Result;

/// The longest line kept: a longer one is not stored at all (a cut command is worse than none).
pub const MAX_LINE_CHARS: usize = 1024;

impl Services {
    /// Appends `line` to the actor's history; false when it is not kept (empty, too long,
    /// control characters, or no user: the local admin).
    pub async fn shell_history_add(&self, actor: &Actor, line: &str) -> Result<bool> {
        let Some(user_id) = actor.user_id else {
            return Ok(false);
        };
        let line = line.trim();
        if line.is_empty()
            || line.chars().count() > MAX_LINE_CHARS
            || line.chars().any(char::is_control)
        {
            return Ok(false);
        }
        let keep = i64::from(self.config.session.history_lines);
        self.db.shell_history_add(user_id, line, keep).await?;
        Ok(true)
    }

    /// The actor's newest `limit` lines (at most `session.history_lines`), oldest first.
    pub async fn shell_history(&self, actor: &Actor, limit: u32) -> Result<Vec<String>> {
        let Some(user_id) = actor.user_id else {
            return Ok(Vec::new());
        };
        let limit = limit.min(self.config.session.history_lines);
        self.db.shell_history(user_id, i64::from(limit)).await
    }
}
