//! Shell history (`shell_history`): the lines each user typed in the interactive shell, newest
//! kept, oldest dropped.

use super::{Db, on_db, on_tx};
use crate::error::Result;

impl Db {
    /// Appends `line` to the history of user `user_id` (unless it repeats the newest line) and
    /// keeps only its newest `keep` lines.
    pub async fn shell_history_add(&self, user_id: i64, line: &str, keep: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        let newest = "SELECT line FROM shell_history WHERE user_id = $1 ORDER BY id DESC LIMIT 1";
        let last: Option<String> = on_tx!(&mut tx, c => sqlx::query_scalar(newest)
            .bind(user_id).fetch_optional(c).await)?;
        if last.as_deref() == Some(line) {
            return Ok(());
        }
        let insert = "INSERT INTO shell_history (user_id, line, at) VALUES ($1, $2, $3)";
        on_tx!(&mut tx, c => sqlx::query(insert)
            .bind(user_id).bind(line).bind(super::now())
            .execute(c).await.map(drop))?;
        let trim = "DELETE FROM shell_history WHERE user_id = $1 AND id NOT IN
            (SELECT id FROM shell_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2)";
        on_tx!(&mut tx, c => sqlx::query(trim)
            .bind(user_id).bind(keep)
            .execute(c).await.map(drop))?;
        tx.commit().await
    }

    /// The newest `limit` lines of user `user_id`, oldest first.
    pub async fn shell_history(&self, user_id: i64, limit: i64) -> Result<Vec<String>> {
        let sql = "SELECT line FROM (SELECT id, line FROM shell_history WHERE user_id = $1
            ORDER BY id DESC LIMIT $2) AS newest ORDER BY id";
        Ok(on_db!(self, pool => sqlx::query_scalar(sql)
            .bind(user_id).bind(limit).fetch_all(pool).await)?)
    }
}
