//! Test databases: SQLite always; PostgreSQL when `VIPANEL_TEST_POSTGRES_URL` names a server
//! (required when `VIPANEL_REQUIRE_SERVICES=1`). Each PostgreSQL test gets its own fresh
//! database, dropped at the end, so tests never see each other's rows.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use vipanel::store::{ConnectOptions, Db};

/// A migrated, empty database and what to clean up after it.
pub struct TestDb {
    pub name: &'static str,
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl TestDb {
    /// The URL of the per-test PostgreSQL database (`None` for SQLite), for a daemon to use.
    pub fn postgres_url(&self) -> Option<String> {
        let (admin_url, name) = self.drop_pg.as_ref()?;
        let (base, _) = admin_url.rsplit_once('/')?;
        Some(format!("{base}/{name}"))
    }

    /// Drops the per-test PostgreSQL database (SQLite's temp dir goes with `self`).
    pub async fn finish(self) {
        self.db.close().await;
        if let Some((admin_url, name)) = &self.drop_pg {
            let admin = connect(admin_url).await;
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if let Db::Postgres(pool) = &admin {
                // An autovacuum worker may be in the database (tests that write many rows
                // invite one); FORCE may not end it without superuser rights, so wait for it.
                let mut tries = 0;
                loop {
                    match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .execute(pool)
                        .await
                    {
                        Ok(_) => break,
                        Err(err) if tries < 100 && is_insufficient_privilege(&err) => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(err) => panic!("drop test database {name}: {err}"),
                    }
                }
            }
            admin.close().await;
        }
    }
}

/// PostgreSQL's 42501, which `DROP DATABASE … WITH (FORCE)` returns when a backend it may not
/// terminate (autovacuum) is connected.
fn is_insufficient_privilege(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("42501"))
}

async fn connect(url: &str) -> Db {
    Db::connect(&ConnectOptions {
        url: url.to_owned(),
        pool_size: 4,
        busy_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let db = connect(&url).await;
    db.migrate(Some(&dir.path().join("migrate.lock")))
        .await
        .expect("migrate sqlite");
    TestDb {
        name: "sqlite",
        db,
        _dir: Some(dir),
        drop_pg: None,
    }
}

/// A fresh PostgreSQL database, or `None` (with the reason printed) when none is configured.
pub async fn postgres() -> Option<TestDb> {
    let Ok(url) = std::env::var("VIPANEL_TEST_POSTGRES_URL") else {
        if std::env::var("VIPANEL_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("VIPANEL_REQUIRE_SERVICES=1 but VIPANEL_TEST_POSTGRES_URL is not set");
        }
        eprintln!("skipping PostgreSQL: VIPANEL_TEST_POSTGRES_URL is not set");
        return None;
    };
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "vipanel_t_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        rand_suffix()
    );
    let admin = connect(&url).await;
    if let Db::Postgres(pool) = &admin {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(pool)
            .await
            .expect("create test database (the role needs CREATEDB)");
    }
    admin.close().await;
    let (base, _) = url.rsplit_once('/').expect("database URL with a /dbname");
    let db = connect(&format!("{base}/{name}")).await;
    db.migrate(None).await.expect("migrate postgres");
    Some(TestDb {
        name: "postgres",
        db,
        _dir: None,
        drop_pg: Some((url, name)),
    })
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0)
}

/// Every backend available here: SQLite, and PostgreSQL when configured.
pub async fn all() -> Vec<TestDb> {
    let mut dbs = vec![sqlite().await];
    if let Some(pg) = postgres().await {
        dbs.push(pg);
    }
    dbs
}
