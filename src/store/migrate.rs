//! Applying the embedded migrations, under a lock so several starting nodes do it once.
//!
//! PostgreSQL: sqlx's migrator takes an advisory lock. SQLite: an exclusive `flock` on the lock
//! file the caller names (the daemon uses `<data_dir>/migrate.lock`), held for the whole run.

use super::Db;
use crate::error::{Error, Result};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Db {
    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self, sqlite_lock_path: Option<&std::path::Path>) -> Result<usize> {
        let fail = |e: sqlx::migrate::MigrateError| {
            Error::unavailable(format!("database migration failed: {e}"))
        };
        match self {
            Db::Sqlite(pool) => {
                let _lock = match sqlite_lock_path {
                    Some(path) => Some(FileLock::acquire(path)?),
                    None => None,
                };
                let before = applied_count(self).await?;
                SQLITE.run(pool).await.map_err(fail)?;
                Ok(applied_count(self).await?.saturating_sub(before))
            }
            Db::Postgres(pool) => {
                let before = applied_count(self).await.unwrap_or(0);
                POSTGRES.run(pool).await.map_err(fail)?;
                Ok(applied_count(self).await?.saturating_sub(before))
            }
        }
    }

    /// How many migrations the binary carries (the same for both dialects).
    pub fn known_migrations() -> usize {
        SQLITE.iter().count()
    }
}

async fn applied_count(db: &Db) -> Result<usize> {
    let sql = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
    let count: std::result::Result<i64, sqlx::Error> =
        super::on_db!(db, pool => sqlx::query_scalar(sql).fetch_one(pool).await);
    Ok(usize::try_from(count.unwrap_or(0)).unwrap_or(0))
}

/// An exclusive advisory lock on a file, released on drop (when the file is closed).
struct FileLock(#[allow(dead_code)] std::fs::File);

impl FileLock {
    fn acquire(path: &std::path::Path) -> Result<FileLock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::unavailable(format!("cannot open {}: {e}", path.display())))?;
        file.lock()
            .map_err(|e| Error::unavailable(format!("cannot lock {}: {e}", path.display())))?;
        Ok(FileLock(file))
    }
}
