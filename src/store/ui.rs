//! UI preferences (`ui_preferences`: one row per user who changed one) and the themes and
//! keymaps users imported (`ui_files`). Bodies are stored as given; the service validates them
//! before they get here.

use super::{Db, Tx, on_db, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

/// A user's stored preferences (no row: every default).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UiPreferencesRow {
    pub theme: String,
    pub keymap: String,
    pub refresh_secs: i32,
    pub bandwidth: String,
    pub updated_at: DateTime<Utc>,
}

/// One imported theme or keymap.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UiFileRow {
    pub kind: String,
    pub name: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The preferences to store for a user, all four.
#[derive(Debug, Clone, Copy)]
pub struct NewUiPreferences<'a> {
    pub theme: &'a str,
    pub keymap: &'a str,
    pub refresh_secs: i32,
    pub bandwidth: &'a str,
}

const SELECT_PREFERENCES: &str = "SELECT theme, keymap, refresh_secs, bandwidth, updated_at FROM ui_preferences WHERE user_id = $1";
const SELECT_FILES: &str = "SELECT kind, name, body, created_at, updated_at FROM ui_files
    WHERE user_id = $1 AND ($2 IS NULL OR kind = $2) ORDER BY kind, name";

impl Db {
    /// The preferences of user `user_id`, if it ever set one.
    pub async fn ui_preferences(&self, user_id: i64) -> Result<Option<UiPreferencesRow>> {
        Ok(on_db!(self, pool => sqlx::query_as(SELECT_PREFERENCES)
            .bind(user_id).fetch_optional(pool).await)?)
    }

    /// The files user `user_id` imported, of `kind` (`None`: both), by kind and name.
    pub async fn ui_files(&self, user_id: i64, kind: Option<&str>) -> Result<Vec<UiFileRow>> {
        Ok(on_db!(self, pool => sqlx::query_as(SELECT_FILES)
            .bind(user_id).bind(kind).fetch_all(pool).await)?)
    }
}

impl Tx {
    /// Like [`Db::ui_preferences`], inside the transaction.
    pub async fn ui_preferences(&mut self, user_id: i64) -> Result<Option<UiPreferencesRow>> {
        Ok(on_tx!(self, c => sqlx::query_as(SELECT_PREFERENCES)
            .bind(user_id).fetch_optional(c).await)?)
    }

    /// Like [`Db::ui_files`], inside the transaction.
    pub async fn ui_files(&mut self, user_id: i64, kind: Option<&str>) -> Result<Vec<UiFileRow>> {
        Ok(on_tx!(self, c => sqlx::query_as(SELECT_FILES)
            .bind(user_id).bind(kind).fetch_all(c).await)?)
    }

    /// Stores all four preferences of user `user_id`, creating its row if needed.
    pub async fn put_ui_preferences(
        &mut self,
        user_id: i64,
        prefs: &NewUiPreferences<'_>,
    ) -> Result<()> {
        let sql = "INSERT INTO ui_preferences (user_id, theme, keymap, refresh_secs, bandwidth,
                updated_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (user_id) DO UPDATE SET theme = excluded.theme, keymap = excluded.keymap,
                refresh_secs = excluded.refresh_secs, bandwidth = excluded.bandwidth,
                updated_at = excluded.updated_at";
        on_tx!(self, c => sqlx::query(sql)
            .bind(user_id).bind(prefs.theme).bind(prefs.keymap).bind(prefs.refresh_secs)
            .bind(prefs.bandwidth).bind(super::now())
            .execute(c).await.map(drop))?;
        Ok(())
    }

    /// Stores file `name` of `kind` for user `user_id`, replacing one of the same name; true
    /// when it replaced one.
    pub async fn put_ui_file(
        &mut self,
        user_id: i64,
        kind: &str,
        name: &str,
        body: &str,
    ) -> Result<bool> {
        let exists = "SELECT COUNT(*) FROM ui_files WHERE user_id = $1 AND kind = $2 AND name = $3";
        let n: i64 = on_tx!(self, c => sqlx::query_scalar(exists)
            .bind(user_id).bind(kind).bind(name).fetch_one(c).await)?;
        let sql = "INSERT INTO ui_files (user_id, kind, name, body, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $5)
            ON CONFLICT (user_id, kind, name) DO UPDATE SET body = excluded.body,
                updated_at = excluded.updated_at";
        on_tx!(self, c => sqlx::query(sql)
            .bind(user_id).bind(kind).bind(name).bind(body).bind(super::now())
            .execute(c).await.map(drop))?;
        Ok(n > 0)
    }

    /// Deletes file `name` of `kind` of user `user_id`; how many rows went (0 or 1).
    pub async fn delete_ui_file(&mut self, user_id: i64, kind: &str, name: &str) -> Result<u64> {
        let sql = "DELETE FROM ui_files WHERE user_id = $1 AND kind = $2 AND name = $3";
        Ok(on_tx!(self, c => sqlx::query(sql)
            .bind(user_id).bind(kind).bind(name)
            .execute(c).await.map(|r| r.rows_affected()))?)
    }
}
