//! Store tests: every query of `vipanel::store`, on SQLite always and on PostgreSQL when
//! `VIPANEL_TEST_POSTGRES_URL` is set (CI sets it and requires it).

mod db_support;

use vipanel::domain::{MetricValues, Resolution};
use vipanel::error::ErrorKind;
use vipanel::store::{
    ApplyRecord, AuditFilter, AuditPrune, Db, NewAudit, NewKey, NewSite, NewUiPreferences,
    SITE_DELETING, SiteChange,
};

const ED_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGjQmLz1hTnzsbEGHrbPAZhKm6vBR1dkkmYoKG4pGvt9";

fn audit<'a>(action: &'a str, target: &'a str, result: &'a str) -> NewAudit<'a> {
    NewAudit {
        actor: "admin",
        tenant: "system",
        role: "admin",
        key_fingerprint: Some("SHA256:x"),
        source: "127.0.0.1:1",
        action,
        target,
        result,
        ..NewAudit::default()
    }
}

async fn seed_tenant_user(db: &Db, tenant: &str, user: &str, role: &str) -> (i64, i64) {
    let mut tx = db.begin().await.unwrap();
    let t = tx.insert_tenant(tenant).await.unwrap();
    let u = tx.insert_user(t, user, role).await.unwrap();
    tx.commit().await.unwrap();
    (t, u)
}

#[tokio::test]
async fn migrations_are_idempotent_and_complete() {
    for t in db_support::all().await {
        assert_eq!(t.db.migrate(None).await.unwrap(), 0, "{}", t.name);
        assert_eq!(Db::known_migrations(), 10);
        t.finish().await;
    }
}

#[tokio::test]
async fn tenants_users_and_uniqueness() {
    for t in db_support::all().await {
        let db = &t.db;
        let (acme, alice) = seed_tenant_user(db, "acme", "alice", "owner").await;
        let listed = db.tenants(None).await.unwrap();
        assert_eq!(listed.len(), 1, "{}", t.name);
        assert_eq!(listed[0].users, 1);
        assert_eq!(db.tenants(Some(acme + 100)).await.unwrap().len(), 0);
        assert_eq!(db.tenant_by_name("acme").await.unwrap().unwrap().id, acme);

        let mut tx = db.begin().await.unwrap();
        let dup = tx.insert_tenant("acme").await.unwrap_err();
        assert_eq!(dup.kind, ErrorKind::Conflict, "{}: {dup}", t.name);
        drop(tx);

        let user = db.user_by_name("alice").await.unwrap().unwrap();
        assert_eq!(
            (
                user.id,
                user.tenant.as_str(),
                user.role.as_str(),
                user.locked
            ),
            (alice, "acme", "owner", false)
        );
        assert_eq!(db.user_by_id(alice).await.unwrap().unwrap().name, "alice");
        assert!(db.user_by_name("nobody").await.unwrap().is_none());
        assert_eq!(db.count_users().await.unwrap(), 1);

        let mut tx = db.begin().await.unwrap();
        tx.set_user_role(alice, "viewer").await.unwrap();
        tx.set_user_locked(alice, true).await.unwrap();
        assert_eq!(tx.count_other_admins(alice).await.unwrap(), 0);
        tx.commit().await.unwrap();
        let user = db.user_by_id(alice).await.unwrap().unwrap();
        assert_eq!((user.role.as_str(), user.locked), ("viewer", true));
        assert_eq!(db.users(Some(acme)).await.unwrap().len(), 1);
        assert_eq!(db.users(None).await.unwrap().len(), 1);
        t.finish().await;
    }
}

#[tokio::test]
async fn uncommitted_transactions_leave_nothing() {
    for t in db_support::all().await {
        let mut tx = t.db.begin().await.unwrap();
        tx.insert_tenant("ghost").await.unwrap();
        tx.append_audit(&audit("tenant.create", "ghost", "ok"))
            .await
            .unwrap();
        drop(tx);
        assert!(
            t.db.tenant_by_name("ghost").await.unwrap().is_none(),
            "{}",
            t.name
        );
        assert!(t.db.audit_rows(None, None, 10).await.unwrap().is_empty());
        t.finish().await;
    }
}

#[tokio::test]
async fn keys_are_unique_and_go_with_their_user() {
    for t in db_support::all().await {
        let db = &t.db;
        let (acme, alice) = seed_tenant_user(db, "acme", "alice", "owner").await;
        let key = NewKey {
            user_id: alice,
            fingerprint: "SHA256:aaa",
            algorithm: "ssh-ed25519",
            public_key: &format!("ssh-ed25519 {ED_A}"),
            comment: "laptop",
            ..Default::default()
        };
        let mut tx = db.begin().await.unwrap();
        tx.insert_key(&key).await.unwrap();
        assert!(tx.key_exists("SHA256:aaa").await.unwrap());
        assert!(!tx.key_exists("SHA256:bbb").await.unwrap());
        tx.commit().await.unwrap();

        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            tx.insert_key(&key).await.unwrap_err().kind,
            ErrorKind::Conflict,
            "{}",
            t.name
        );
        drop(tx);

        let row = db.key_by_fingerprint("SHA256:aaa").await.unwrap().unwrap();
        assert_eq!(
            (row.user.as_str(), row.tenant_id, row.comment.as_str()),
            ("alice", acme, "laptop")
        );
        assert!(row.last_used_at.is_none());
        db.touch_key(row.id).await.unwrap();
        let used = db
            .key_by_fingerprint("SHA256:aaa")
            .await
            .unwrap()
            .unwrap()
            .last_used_at
            .unwrap();
        assert!((chrono::Utc::now() - used).num_seconds().abs() < 60);
        assert_eq!(db.keys(Some(alice), None).await.unwrap().len(), 1);
        assert_eq!(db.keys(None, Some(acme)).await.unwrap().len(), 1);
        assert_eq!(db.keys(None, Some(acme + 1)).await.unwrap().len(), 0);
        assert_eq!(db.user_by_id(alice).await.unwrap().unwrap().keys, 1);

        let mut tx = db.begin().await.unwrap();
        tx.delete_user(alice).await.unwrap();
        tx.commit().await.unwrap();
        assert!(
            db.key_by_fingerprint("SHA256:aaa").await.unwrap().is_none(),
            "{}: cascade",
            t.name
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn sites_aliases_servers_and_counts() {
    for t in db_support::all().await {
        let db = &t.db;
        let (acme, _) = seed_tenant_user(db, "acme", "alice", "owner").await;
        let (beta, _) = seed_tenant_user(db, "beta", "bob", "owner").await;
        let mut tx = db.begin().await.unwrap();
        let local = tx.ensure_local_server().await.unwrap();
        assert_eq!(tx.ensure_local_server().await.unwrap(), local, "idempotent");
        let aliases = vec!["www.example.com".to_owned()];
        tx.insert_site(&NewSite {
            tenant_id: acme,
            server_id: local,
            domain: "example.com",
            kind: "php",
            php_version: Some("8.2"),
            upstream: None,
            status: "pending",
            aliases: &aliases,
        })
        .await
        .unwrap();
        tx.insert_site(&NewSite {
            tenant_id: beta,
            server_id: local,
            domain: "beta.example",
            kind: "proxy",
            php_version: None,
            upstream: Some("http://127.0.0.1:3000"),
            status: "pending",
            aliases: &[],
        })
        .await
        .unwrap();
        assert!(tx.hostname_taken("example.com").await.unwrap());
        assert!(tx.hostname_taken("www.example.com").await.unwrap());
        assert!(!tx.hostname_taken("other.example").await.unwrap());
        tx.commit().await.unwrap();

        let acme_sites = db.sites(Some(acme)).await.unwrap();
        assert_eq!(acme_sites.len(), 1, "{}", t.name);
        assert_eq!(acme_sites[0].aliases, vec!["www.example.com"]);
        assert_eq!(acme_sites[0].server, "local");
        assert_eq!(db.sites(None).await.unwrap().len(), 2);
        let site = db.site_by_domain("beta.example").await.unwrap().unwrap();
        assert_eq!(
            (site.tenant.as_str(), site.upstream.as_deref()),
            ("beta", Some("http://127.0.0.1:3000"))
        );
        assert_eq!(
            db.site_status_counts(Some(acme)).await.unwrap(),
            vec![("pending".to_owned(), 1)]
        );
        assert_eq!(
            db.site_status_counts(None).await.unwrap(),
            vec![("pending".to_owned(), 2)]
        );

        let servers = db.servers(Some(acme)).await.unwrap();
        assert_eq!(
            (servers.len(), servers[0].name.as_str(), servers[0].sites),
            (1, "local", 1)
        );
        assert_eq!(db.servers(None).await.unwrap()[0].sites, 2);
        assert!(
            db.server_by_name("local", Some(beta))
                .await
                .unwrap()
                .is_some()
        );
        assert!(db.server_by_name("nope", None).await.unwrap().is_none());

        let mut tx = db.begin().await.unwrap();
        tx.delete_site(acme_sites[0].id).await.unwrap();
        assert!(
            !tx.hostname_taken("www.example.com").await.unwrap(),
            "aliases cascade"
        );
        tx.commit().await.unwrap();
        let tenant = db.tenant_by_name("acme").await.unwrap().unwrap();
        assert_eq!(tenant.sites, 0);
        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            tx.delete_tenant(tenant.id).await.unwrap_err().kind,
            ErrorKind::Internal,
            "user still references it"
        );
        drop(tx);
        t.finish().await;
    }
}

#[tokio::test]
async fn audit_rows_filter_and_order() {
    for t in db_support::all().await {
        let db = &t.db;
        db.append_audit(&audit("site.create", "a.example", "forbidden"))
            .await
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        tx.append_audit(&NewAudit {
            actor: "bob",
            tenant: "beta",
            ..audit("site.create", "b.example", "ok")
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let all = db.audit_rows(None, None, 10).await.unwrap();
        assert_eq!(all.len(), 2, "{}", t.name);
        assert_eq!(all[0].actor, "bob", "newest first");
        assert_eq!(all[1].result, "forbidden");
        assert_eq!(all[1].key_fingerprint.as_deref(), Some("SHA256:x"));
        assert_eq!(
            db.audit_rows(Some("beta"), None, 10).await.unwrap().len(),
            1
        );
        assert_eq!(
            db.audit_rows(None, Some("admin"), 10).await.unwrap().len(),
            1
        );
        assert_eq!(db.audit_rows(None, None, 1).await.unwrap().len(), 1);
        t.finish().await;
    }
}

#[tokio::test]
async fn audit_chain_is_append_only_serialised_and_detects_tampering() {
    for t in db_support::all().await {
        let db = &t.db;
        // Concurrent appenders (pool and transactions) never fork the chain.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..5 {
                    let target = format!("t{i}-{j}");
                    if j % 2 == 0 {
                        db.append_audit(&audit("site.create", &target, "ok"))
                            .await
                            .unwrap();
                    } else {
                        let mut tx = db.begin().await.unwrap();
                        tx.append_audit(&audit("site.delete", &target, "ok"))
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let verdict = db.verify_audit_chain().await.unwrap();
        assert_eq!(
            (verdict.checked, verdict.first_broken),
            (40, None),
            "{}",
            t.name
        );

        // The database itself refuses changes and deletions.
        let update = "UPDATE audit_log SET result = 'ok' WHERE seq = 7";
        let delete = "DELETE FROM audit_log WHERE seq = 7";
        for sql in [update, delete] {
            let refused = on_any(db, sql).await;
            assert!(refused.is_err(), "{}: `{sql}` must be refused", t.name);
        }

        // Someone with the database file drops the guard and edits a row: verify names it.
        let disable = match db {
            Db::Sqlite(_) => "DROP TRIGGER audit_log_no_update",
            Db::Postgres(_) => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
        };
        on_any(db, disable).await.unwrap();
        on_any(
            db,
            "UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 7",
        )
        .await
        .unwrap();
        let verdict = db.verify_audit_chain().await.unwrap();
        assert_eq!(
            (verdict.checked, verdict.first_broken),
            (6, Some(7)),
            "{}",
            t.name
        );
        t.finish().await;
    }
}

/// Appends `n` rows (`site.create` of `t{i}`).
async fn append_rows(db: &Db, from: usize, n: usize) {
    for i in from..from + n {
        db.append_audit(&audit("site.create", &format!("t{i}"), "ok"))
            .await
            .unwrap();
    }
}

/// Ten rows, the first five written before the returned cutoff.
async fn ten_rows_around_a_cutoff(db: &Db) -> chrono::DateTime<chrono::Utc> {
    append_rows(db, 1, 5).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let cutoff = vipanel::store::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    append_rows(db, 6, 5).await;
    cutoff
}

#[tokio::test]
async fn pruning_keeps_the_chain_verifiable_and_the_database_guards_the_rest() {
    for t in db_support::all().await {
        let db = &t.db;
        let cutoff = ten_rows_around_a_cutoff(db).await;
        let mut tx = db.begin().await.unwrap();
        let pruned = tx.prune_audit(cutoff).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            pruned,
            Some(AuditPrune {
                through_seq: 5,
                rows: 5
            }),
            "{}",
            t.name
        );
        let verdict = db.verify_audit_chain().await.unwrap();
        assert_eq!(
            (
                verdict.checked,
                verdict.first_broken,
                verdict.pruned_through
            ),
            (5, None, Some(5)),
            "{}",
            t.name
        );
        let left: Vec<i64> = db
            .audit_rows(None, None, 100)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(left, vec![10, 9, 8, 7, 6]);
        assert_eq!(db.audit_checkpoints().await.unwrap().len(), 1);

        // Nothing else is old enough: a second prune finds nothing.
        let mut tx = db.begin().await.unwrap();
        assert_eq!(tx.prune_audit(cutoff).await.unwrap(), None);
        drop(tx);

        // Rows no checkpoint covers cannot be deleted, no row can be changed, and the
        // checkpoints themselves are append-only.
        for sql in [
            "DELETE FROM audit_log WHERE seq = 6",
            "DELETE FROM audit_log",
            "UPDATE audit_log SET detail = 'x' WHERE seq = 7",
            "UPDATE audit_checkpoints SET seq = 9",
            "DELETE FROM audit_checkpoints",
        ] {
            let refused = on_any(db, sql).await;
            assert!(refused.is_err(), "{}: `{sql}` must be refused", t.name);
        }
        if let Db::Postgres(_) = db {
            for sql in ["TRUNCATE audit_log", "TRUNCATE audit_checkpoints"] {
                let refused = on_any(db, sql).await.expect_err(sql);
                assert!(
                    refused.to_string().contains("append-only"),
                    "{sql}: {refused}"
                );
            }
        }
        assert_eq!(db.audit_rows(None, None, 100).await.unwrap().len(), 5);

        // An edit after pruning is still found, at its own row.
        let disable = match db {
            Db::Sqlite(_) => "DROP TRIGGER audit_log_no_update",
            Db::Postgres(_) => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
        };
        on_any(db, disable).await.unwrap();
        on_any(db, "UPDATE audit_log SET target = 'evil' WHERE seq = 8")
            .await
            .unwrap();
        let verdict = db.verify_audit_chain().await.unwrap();
        assert_eq!(
            (verdict.checked, verdict.first_broken),
            (2, Some(8)),
            "{}",
            t.name
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn rows_removed_behind_the_guard_after_a_checkpoint_are_found() {
    for t in db_support::all().await {
        let db = &t.db;
        let cutoff = ten_rows_around_a_cutoff(db).await;
        let mut tx = db.begin().await.unwrap();
        tx.prune_audit(cutoff).await.unwrap();
        tx.commit().await.unwrap();
        // Someone drops the guard and removes the oldest remaining row: the next one no longer
        // follows the checkpoint.
        let disable = match db {
            Db::Sqlite(_) => "DROP TRIGGER audit_log_no_delete",
            Db::Postgres(_) => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
        };
        on_any(db, disable).await.unwrap();
        on_any(db, "DELETE FROM audit_log WHERE seq = 6")
            .await
            .unwrap();
        let verdict = db.verify_audit_chain().await.unwrap();
        assert_eq!(
            (verdict.checked, verdict.first_broken),
            (0, Some(6)),
            "{}",
            t.name
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn after_pruning_everything_the_chain_goes_on_from_the_checkpoint() {
    for t in db_support::all().await {
        let db = &t.db;
        append_rows(db, 1, 3).await;
        let future = vipanel::store::now() + chrono::Duration::seconds(5);
        let mut tx = db.begin().await.unwrap();
        let pruned = tx.prune_audit(future).await.unwrap().unwrap();
        // The prune's own row, in the same transaction, chains to the checkpoint.
        tx.append_audit(&audit("audit.prune", "audit", "ok"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!((pruned.through_seq, pruned.rows), (3, 3));
        append_rows(db, 4, 1).await;
        let rows = db.audit_rows(None, None, 10).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![5, 4],
            "{}",
            t.name
        );
        let checkpoint = &db.audit_checkpoints().await.unwrap()[0];
        assert_eq!(rows[1].prev_hash, checkpoint.1);
        let verdict = db.verify_audit_chain().await.unwrap();
        assert_eq!(
            (
                verdict.checked,
                verdict.first_broken,
                verdict.pruned_through
            ),
            (2, None, Some(3))
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn flags_failures_and_networks() {
    for t in db_support::all().await {
        let db = &t.db;
        let (_, alice) = seed_tenant_user(db, "acme", "alice", "owner").await;
        for (source, actor, action, result, flag) in [
            ("127.0.0.1:1000", "panel", "login", "refused", ""),
            ("127.0.0.1:1001", "alice", "login", "refused", "burst"),
            ("127.0.0.10:1002", "panel", "login.code", "refused", ""),
            ("[::1]:1003", "alice", "login", "ok", ""),
            ("127.0.0.1:1004", "alice", "site.create", "forbidden", ""),
        ] {
            db.append_audit(&NewAudit {
                source,
                actor,
                flag,
                ..audit(action, "x", result)
            })
            .await
            .unwrap();
        }
        let hour_ago = vipanel::store::now() - chrono::Duration::hours(1);
        for (host, actor, want) in [
            (Some("127.0.0.1"), Some("alice"), (2, 1)),
            (Some("127.0.0.10"), None, (1, 0)),
            (Some("[::1]"), Some("alice"), (0, 1)),
            (None, Some("bob"), (0, 0)),
        ] {
            let got = db
                .login_failures_since(hour_ago, host, actor)
                .await
                .unwrap();
            assert_eq!(got, want, "{}: {host:?} {actor:?}", t.name);
        }
        let later = vipanel::store::now() + chrono::Duration::seconds(5);
        assert_eq!(
            db.login_failures_since(later, Some("127.0.0.1"), Some("alice"))
                .await
                .unwrap(),
            (0, 0)
        );
        let flagged = db
            .audit_query(
                &AuditFilter {
                    flagged: true,
                    ..AuditFilter::default()
                },
                10,
            )
            .await
            .unwrap();
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].flag, "burst");

        let first = db.record_user_network(alice, "127.0.0.0/24").await.unwrap();
        assert_eq!((first.new, first.known_before), (true, 0), "{}", t.name);
        let again = db.record_user_network(alice, "127.0.0.0/24").await.unwrap();
        assert_eq!((again.new, again.known_before), (false, 1));
        let other = db
            .record_user_network(alice, "2001:db8::/48")
            .await
            .unwrap();
        assert_eq!((other.new, other.known_before), (true, 1));
        assert_eq!(db.user_networks(alice).await.unwrap().len(), 2);
        t.finish().await;
    }
}

/// Runs one raw statement on either backend.
async fn on_any(db: &Db, sql: &'static str) -> Result<(), sqlx::Error> {
    match db {
        Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
}

#[tokio::test]
async fn a_totp_step_is_accepted_once_and_recovery_codes_once() {
    for t in db_support::all().await {
        let db = &t.db;
        let (_, alice) = seed_tenant_user(db, "acme", "alice", "owner").await;
        assert!(db.totp_of(alice).await.unwrap().is_none());
        let mut tx = db.begin().await.unwrap();
        tx.set_totp(alice, "v1.sealed", None).await.unwrap();
        tx.replace_recovery_codes(alice, &["h1".into(), "h2".into()])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // Steps only move forward: the same or an older step is a replay.
        let mut tx = db.begin().await.unwrap();
        assert!(tx.accept_totp_step(alice, 100).await.unwrap(), "{}", t.name);
        assert!(!tx.accept_totp_step(alice, 100).await.unwrap());
        assert!(!tx.accept_totp_step(alice, 99).await.unwrap());
        assert!(tx.accept_totp_step(alice, 101).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(
            db.totp_of(alice).await.unwrap().unwrap().last_step,
            Some(101)
        );
        // Recovery codes are single use.
        let codes = db.unused_recovery_codes(alice).await.unwrap();
        assert_eq!(codes.len(), 2);
        let mut tx = db.begin().await.unwrap();
        assert!(tx.use_recovery_code(codes[0].0).await.unwrap());
        assert!(!tx.use_recovery_code(codes[0].0).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(db.recovery_codes_left(alice).await.unwrap(), 1);
        // Deleting the authenticator takes the recovery codes with it.
        let mut tx = db.begin().await.unwrap();
        assert!(tx.delete_totp(alice).await.unwrap());
        tx.commit().await.unwrap();
        assert!(db.totp_of(alice).await.unwrap().is_none());
        assert_eq!(db.recovery_codes_left(alice).await.unwrap(), 0);
        t.finish().await;
    }
}

#[tokio::test]
async fn concurrent_logins_with_one_step_accept_it_once() {
    for t in db_support::all().await {
        let db = &t.db;
        let (_, alice) = seed_tenant_user(db, "acme", "alice", "owner").await;
        let mut tx = db.begin().await.unwrap();
        tx.set_totp(alice, "v1.sealed", Some(10)).await.unwrap();
        tx.commit().await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    let mut tx = db.begin().await.unwrap();
                    let won = tx.accept_totp_step(alice, 11).await.unwrap();
                    tx.commit().await.unwrap();
                    won
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.unwrap());
        }
        assert_eq!(winners, 1, "{}", t.name);
        t.finish().await;
    }
}

#[tokio::test]
async fn failures_count_in_their_window_and_unlock_forgets_them() {
    for t in db_support::all().await {
        let db = &t.db;
        let (_, alice) = seed_tenant_user(db, "acme", "alice", "owner").await;
        let long_ago = vipanel::store::now() - chrono::Duration::hours(1);
        let mut tx = db.begin().await.unwrap();
        for n in 1..=3 {
            assert_eq!(
                tx.add_second_step_failure(alice, long_ago).await.unwrap(),
                n
            );
        }
        let future = vipanel::store::now() + chrono::Duration::seconds(1);
        assert_eq!(
            tx.add_second_step_failure(alice, future).await.unwrap(),
            0,
            "outside the window"
        );
        let until = vipanel::store::now() + chrono::Duration::minutes(15);
        tx.set_locked_until(alice, Some(until)).await.unwrap();
        assert!(tx.locked_until(alice).await.unwrap().is_some());
        tx.set_locked_until(alice, None).await.unwrap();
        assert!(tx.locked_until(alice).await.unwrap().is_none());
        assert_eq!(
            tx.add_second_step_failure(alice, long_ago).await.unwrap(),
            1
        );
        tx.commit().await.unwrap();
        // One live enrollment code a user: a new one replaces the old.
        let mut tx = db.begin().await.unwrap();
        tx.set_enroll_code(alice, "hash1", until, "admin")
            .await
            .unwrap();
        tx.set_enroll_code(alice, "hash2", until, "admin")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            db.enroll_code_of(alice).await.unwrap().unwrap().hash,
            "hash2"
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn a_forged_checkpoint_that_hides_the_newest_rows_is_found() {
    for t in db_support::all().await {
        let db = &t.db;
        append_rows(db, 1, 5).await;
        // With only the application's rights (no trigger removed): a checkpoint past the end
        // makes the newest rows deletable…
        on_any(
            db,
            "INSERT INTO audit_checkpoints (seq, hash, pruned_at, cutoff, rows)
             VALUES (1000000000, 'x', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 0)",
        )
        .await
        .unwrap();
        on_any(db, "DELETE FROM audit_log WHERE seq > 3")
            .await
            .unwrap();
        // …but verify names the forged checkpoint.
        let verdict = db.verify_audit_chain().await.unwrap();
        assert_eq!(verdict.first_broken, Some(1_000_000_000), "{}", t.name);
        // Deleting everything behind it is found too.
        on_any(db, "DELETE FROM audit_log").await.unwrap();
        let verdict = db.verify_audit_chain().await.unwrap();
        assert!(verdict.first_broken.is_some(), "{}", t.name);
        t.finish().await;
    }
}

#[tokio::test]
async fn shell_history_keeps_the_newest_lines_per_user() {
    for t in db_support::all().await {
        let db = &t.db;
        let (_, alice) = seed_tenant_user(db, "acme", "alice", "owner").await;
        let (_, bob) = seed_tenant_user(db, "beta", "bob", "owner").await;
        for line in ["one", "two", "two", "three", "four"] {
            db.shell_history_add(alice, line, 3).await.unwrap();
        }
        db.shell_history_add(bob, "bobs", 3).await.unwrap();
        assert_eq!(
            db.shell_history(alice, 10).await.unwrap(),
            ["two", "three", "four"],
            "{}: the newest 3, oldest first; a repeated newest line once",
            t.name
        );
        assert_eq!(db.shell_history(alice, 2).await.unwrap(), ["three", "four"]);
        assert_eq!(db.shell_history(bob, 10).await.unwrap(), ["bobs"]);
        // Deleting the user deletes its history.
        let mut tx = db.begin().await.unwrap();
        tx.delete_user(bob).await.unwrap();
        tx.commit().await.unwrap();
        assert!(db.shell_history(bob, 10).await.unwrap().is_empty());
        t.finish().await;
    }
}

#[tokio::test]
async fn ui_preferences_and_files_per_user() {
    for t in db_support::all().await {
        let db = &t.db;
        let (_, alice) = seed_tenant_user(db, "acme", "alice", "viewer").await;
        let (_, bob) = seed_tenant_user(db, "beta", "bob", "owner").await;
        assert_eq!(db.ui_preferences(alice).await.unwrap(), None, "{}", t.name);
        let prefs = NewUiPreferences {
            theme: "dark",
            keymap: "vim",
            refresh_secs: 30,
            bandwidth: "low",
        };
        let mut tx = db.begin().await.unwrap();
        tx.put_ui_preferences(alice, &prefs).await.unwrap();
        tx.put_ui_preferences(
            alice,
            &NewUiPreferences {
                theme: "mine",
                ..prefs
            },
        )
        .await
        .unwrap();
        assert!(!tx.put_ui_file(alice, "theme", "mine", "a").await.unwrap());
        assert!(
            tx.put_ui_file(alice, "theme", "mine", "b").await.unwrap(),
            "replaced"
        );
        assert!(!tx.put_ui_file(alice, "keymap", "mine", "k").await.unwrap());
        assert!(!tx.put_ui_file(bob, "theme", "other", "o").await.unwrap());
        assert_eq!(tx.ui_files(alice, Some("theme")).await.unwrap().len(), 1);
        tx.commit().await.unwrap();
        let row = db.ui_preferences(alice).await.unwrap().unwrap();
        assert_eq!(
            (
                row.theme.as_str(),
                row.keymap.as_str(),
                row.refresh_secs,
                row.bandwidth.as_str()
            ),
            ("mine", "vim", 30, "low"),
            "{}",
            t.name
        );
        assert_eq!(db.ui_preferences(bob).await.unwrap(), None);
        let files = db.ui_files(alice, None).await.unwrap();
        let listed: Vec<(&str, &str, &str)> = files
            .iter()
            .map(|f| (f.kind.as_str(), f.name.as_str(), f.body.as_str()))
            .collect();
        assert_eq!(listed, [("keymap", "mine", "k"), ("theme", "mine", "b")]);
        assert!(files[1].updated_at >= files[1].created_at);
        let mut tx = db.begin().await.unwrap();
        assert_eq!(tx.delete_ui_file(alice, "theme", "mine").await.unwrap(), 1);
        assert_eq!(tx.delete_ui_file(alice, "theme", "mine").await.unwrap(), 0);
        let bad = tx
            .put_ui_preferences(
                bob,
                &NewUiPreferences {
                    bandwidth: "huge",
                    ..prefs
                },
            )
            .await;
        assert!(bad.is_err(), "{}: the schema checks bandwidth", t.name);
        drop(tx);
        assert_eq!(
            db.ui_files(alice, Some("theme")).await.unwrap().len(),
            1,
            "the dropped transaction deleted nothing"
        );
        // Deleting a user deletes its preferences and files.
        let mut tx = db.begin().await.unwrap();
        tx.delete_user(alice).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(db.ui_preferences(alice).await.unwrap(), None);
        assert!(db.ui_files(alice, None).await.unwrap().is_empty());
        assert_eq!(db.ui_files(bob, None).await.unwrap().len(), 1);
        t.finish().await;
    }
}

#[tokio::test]
async fn site_changes_and_apply_records() {
    for t in db_support::all().await {
        let db = &t.db;
        let (acme, _) = seed_tenant_user(db, "acme", "alice", "owner").await;
        let mut tx = db.begin().await.unwrap();
        let local = tx.ensure_local_server().await.unwrap();
        let id = tx
            .insert_site(&NewSite {
                tenant_id: acme,
                server_id: local,
                domain: "example.com",
                kind: "php",
                php_version: Some("8.2"),
                upstream: None,
                status: "pending",
                aliases: &[],
            })
            .await
            .unwrap();
        tx.set_site_user(id, "vpsite1").await.unwrap();
        tx.commit().await.unwrap();
        let fresh = db.sites_by_ids(&[id, id + 1000]).await.unwrap();
        assert_eq!(fresh.len(), 1, "{}: a missing id is skipped", t.name);
        let site = &fresh[0];
        assert_eq!(
            (site.enabled, site.revision, site.applied_revision),
            (true, 1, 0),
            "{}",
            t.name
        );
        assert_eq!(site.system_user.as_deref(), Some("vpsite1"));
        assert!(site.applied_at.is_none() && site.last_error.is_none());

        // A change moves the revision on; an apply records it.
        let mut tx = db.begin().await.unwrap();
        tx.update_site(
            id,
            &SiteChange {
                enabled: Some(false),
                php_version: Some("8.3".into()),
                ..SiteChange::default()
            },
        )
        .await
        .unwrap();
        tx.add_site_alias(id, "www.example.com").await.unwrap();
        assert!(!tx.remove_site_alias(id, "nope.example.com").await.unwrap());
        tx.commit().await.unwrap();
        let site = db.site_by_domain("example.com").await.unwrap().unwrap();
        assert_eq!(
            (site.enabled, site.php_version.as_deref(), site.revision),
            (false, Some("8.3"), 2),
            "{}",
            t.name
        );
        assert_eq!(site.aliases, vec!["www.example.com"]);
        db.record_site_apply(
            id,
            &ApplyRecord::Failed {
                error: "nginx: [emerg] x",
            },
        )
        .await
        .unwrap();
        let site = db.site_by_domain("example.com").await.unwrap().unwrap();
        assert_eq!(
            (site.status.as_str(), site.last_error.as_deref()),
            ("error", Some("nginx: [emerg] x"))
        );
        db.record_site_apply(
            id,
            &ApplyRecord::Applied {
                revision: 2,
                status: "disabled",
            },
        )
        .await
        .unwrap();
        // An older apply finishing late never moves the applied revision back.
        db.record_site_apply(
            id,
            &ApplyRecord::Applied {
                revision: 1,
                status: "active",
            },
        )
        .await
        .unwrap();
        let site = db.site_by_domain("example.com").await.unwrap().unwrap();
        assert_eq!(
            (site.status.as_str(), site.applied_revision, site.last_error),
            ("disabled", 2, None),
            "{}",
            t.name
        );
        assert!(site.applied_at.is_some());

        // Deleting: the status stays `deleting` whatever an apply records, until the row goes.
        let mut tx = db.begin().await.unwrap();
        assert!(tx.remove_site_alias(id, "www.example.com").await.unwrap());
        tx.update_site(
            id,
            &SiteChange {
                status: Some(SITE_DELETING),
                ..SiteChange::default()
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        db.record_site_apply(
            id,
            &ApplyRecord::Applied {
                revision: 3,
                status: "active",
            },
        )
        .await
        .unwrap();
        let site = db.site_by_domain("example.com").await.unwrap().unwrap();
        assert_eq!(site.status, SITE_DELETING, "{}", t.name);
        db.finish_site_deletion(id).await.unwrap();
        assert!(db.site_by_domain("example.com").await.unwrap().is_none());
        t.finish().await;
    }
}

/// Adds a server besides `local` (cloud servers have no store API yet).
async fn insert_server(db: &Db, name: &str) -> i64 {
    let sql = "INSERT INTO servers (tenant_id, name, provider, status, created_at)
               VALUES (NULL, $1, 'hetzner', 'running', $2) RETURNING id";
    let now = vipanel::store::now();
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql)
            .bind(name)
            .bind(now)
            .fetch_one(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar(sql)
            .bind(name)
            .bind(now)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

fn sample(i: i64) -> MetricValues {
    MetricValues {
        cpu_pct: Some((i % 10) as f64),
        load1: Some(0.5),
        load5: Some(0.25),
        load15: Some(0.125),
        mem_used_bytes: Some(1000 + i),
        mem_total_bytes: Some(4000),
        disk_used_bytes: Some(2000),
        disk_total_bytes: Some(8000),
        net_rx_bytes_per_s: Some(100.0),
        net_tx_bytes_per_s: None,
    }
}

#[tokio::test]
async fn server_metrics_samples_latest_rollups_and_pruning() {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 3_600_000;
    for t in db_support::all().await {
        let db = &t.db;
        let mut tx = db.begin().await.unwrap();
        let local = tx.ensure_local_server().await.unwrap();
        tx.commit().await.unwrap();
        let cloud = insert_server(db, "cloud1").await;
        assert_eq!(db.local_server_id().await.unwrap(), Some(local));
        let servers = db.servers(None).await.unwrap();
        assert!(servers.iter().all(|s| s.sampled_at.is_none()), "{}", t.name);

        // Two hours of one sample a minute for `local`, from an hour boundary.
        let base = (vipanel::store::now().timestamp_millis() / HOUR - 3) * HOUR;
        for i in 0..120 {
            db.insert_metric_sample(local, base + i * MIN, &sample(i))
                .await
                .unwrap();
        }
        // The same millisecond again is ignored.
        db.insert_metric_sample(local, base, &sample(5))
            .await
            .unwrap();
        db.insert_metric_sample(cloud, base + 7 * MIN, &sample(7))
            .await
            .unwrap();

        // The newest sample of each server comes with the servers.
        let servers = db.servers(None).await.unwrap();
        let l = servers.iter().find(|s| s.id == local).unwrap();
        assert_eq!(l.sampled_at, Some(base + 119 * MIN), "{}", t.name);
        assert_eq!(
            (l.cpu_pct, l.load1, l.mem_used_bytes, l.mem_total_bytes),
            (Some(9.0), Some(0.5), Some(1119), Some(4000))
        );
        assert_eq!(
            (l.disk_used_bytes, l.disk_total_bytes),
            (Some(2000), Some(8000))
        );
        let c = db.server_by_name("cloud1", None).await.unwrap().unwrap();
        assert_eq!(c.sampled_at, Some(base + 7 * MIN));
        assert_eq!(c.mem_used_bytes, Some(1007));

        // A range bucketed by 5 minutes: 24 points of 5 samples each.
        let points = db
            .metric_points(local, Resolution::Raw, base, base + 2 * HOUR, 5 * MIN)
            .await
            .unwrap();
        assert_eq!(points.len(), 24, "{}", t.name);
        assert_eq!(points[0].at, base);
        assert_eq!(points[1].at, base + 5 * MIN);
        assert_eq!(points[0].samples, 5);
        assert_eq!(points[0].cpu_pct, Some(2.0)); // 0..4
        assert_eq!(points[1].cpu_pct, Some(7.0)); // 5..9
        assert_eq!(points[0].mem_used_bytes, Some(1002));
        assert_eq!(points[0].net_tx_bytes_per_s, None);
        // A half-open range, and a step that is not a divisor of the data.
        let points = db
            .metric_points(
                local,
                Resolution::Raw,
                base + 10 * MIN,
                base + 20 * MIN,
                3 * MIN,
            )
            .await
            .unwrap();
        assert_eq!(points.iter().map(|p| p.samples).sum::<i64>(), 10);

        // Roll-ups: complete buckets only, every raw sample from base kept.
        let now = base + 2 * HOUR + 30_000;
        let five = db
            .rollup_metrics(Resolution::FiveMinutes, base, now)
            .await
            .unwrap();
        assert_eq!(five, 24 + 1, "{}", t.name);
        let hourly = db
            .rollup_metrics(Resolution::Hourly, base, now)
            .await
            .unwrap();
        assert_eq!(hourly, 2 + 1);
        let rolled = db
            .metric_points(local, Resolution::FiveMinutes, base, now, 5 * MIN)
            .await
            .unwrap();
        assert_eq!(rolled.len(), 24);
        assert_eq!((rolled[1].cpu_pct, rolled[1].samples), (Some(7.0), 5));
        let hours = db
            .metric_points(local, Resolution::Hourly, base, now, HOUR)
            .await
            .unwrap();
        assert_eq!(hours.len(), 2);
        assert_eq!((hours[0].samples, hours[0].cpu_pct), (60, Some(4.5)));
        // Again: only each server's newest bucket is computed again, to the same values.
        let again = db
            .rollup_metrics(Resolution::FiveMinutes, base, now)
            .await
            .unwrap();
        assert_eq!(again, 2);
        let same = db
            .metric_points(local, Resolution::FiveMinutes, base, now, 5 * MIN)
            .await
            .unwrap();
        assert_eq!(same.len(), 24);
        assert_eq!(same[23].cpu_pct, rolled[23].cpu_pct);
        // A raw range that starts inside a bucket does not roll up that partial bucket.
        let partial = db
            .rollup_metrics(Resolution::Hourly, base + 30 * MIN, base + 3 * HOUR)
            .await
            .unwrap();
        assert_eq!(partial, 1, "only the hour from base+1h (again): {}", t.name);
        let hours = db
            .metric_points(local, Resolution::Hourly, base, now, HOUR)
            .await
            .unwrap();
        assert_eq!(hours[0].samples, 60);
        // Coarser steps over roll-ups add their samples up.
        let two_hours = db
            .metric_points(local, Resolution::FiveMinutes, base, now, 2 * HOUR)
            .await
            .unwrap();
        assert_eq!(two_hours.iter().map(|p| p.samples).sum::<i64>(), 120);
        assert!(two_hours.len() <= 2);

        // Pruning removes only the resolution and age asked for.
        let pruned = db
            .prune_metrics(Resolution::Raw, base + HOUR)
            .await
            .unwrap();
        assert_eq!(pruned, 60 + 1, "{}", t.name);
        let left = db
            .metric_points(local, Resolution::Raw, 0, i64::MAX / 2, HOUR)
            .await
            .unwrap();
        assert_eq!(left.iter().map(|p| p.samples).sum::<i64>(), 60);
        assert_eq!(
            db.metric_points(local, Resolution::FiveMinutes, base, now, 5 * MIN)
                .await
                .unwrap()
                .len(),
            24
        );
        let l = db.server_by_name("local", None).await.unwrap().unwrap();
        assert_eq!(l.sampled_at, Some(base + 119 * MIN));
        assert_eq!(
            db.prune_metrics(Resolution::Hourly, base + 10 * HOUR)
                .await
                .unwrap(),
            2 + 1
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn newest_sample_per_server_is_a_search_of_the_primary_key() {
    for t in db_support::all().await {
        let plan = t.db.explain_servers().await.unwrap().join("\n");
        println!("{} plan:\n{plan}", t.name);
        if t.name == "sqlite" {
            assert!(
                plan.contains("SEARCH m USING PRIMARY KEY (server_id=? AND resolution=? AND at=?)"),
                "{plan}"
            );
            assert!(
                plan.contains("SEARCH mx USING PRIMARY KEY (server_id=? AND resolution=?)"),
                "{plan}"
            );
            assert!(!plan.contains("SCAN m"), "{plan}");
        } else {
            // A fresh database has no statistics; docs/metrics.md shows the same plan for a
            // table of millions of rows.
            assert!(
                plan.contains("Index Scan Backward using server_metrics_pkey on server_metrics mx"),
                "{plan}"
            );
        }
        t.finish().await;
    }
}

#[tokio::test]
async fn cloud_server_rows_are_inserted_updated_and_deleted() {
    use vipanel::store::{NewServer, ServerUpdate};
    for t in db_support::all().await {
        let db = &t.db;
        let (acme, _) = seed_tenant_user(db, "acme", "alice", "owner").await;
        let new = NewServer {
            tenant_id: acme,
            name: "web1",
            provider: "hetzner",
            status: "creating",
            server_type: "cx22",
            location: "fsn1",
            image: "ubuntu-24.04",
        };
        let mut tx = db.begin().await.unwrap();
        let id = tx.insert_server(&new).await.unwrap();
        let dup = tx.insert_server(&new).await.unwrap_err();
        assert_eq!(dup.kind.exit_code(), 4, "{}: {dup:?}", t.name);
        tx.set_server_status(id, "deleting").await.unwrap();
        tx.commit().await.unwrap();
        let row = db.server_by_id(id).await.unwrap().unwrap();
        assert_eq!(
            (
                row.status.as_str(),
                row.tenant.as_deref(),
                row.provider_id.as_deref()
            ),
            ("deleting", Some("acme"), None),
            "{}",
            t.name
        );
        db.update_server(
            id,
            &ServerUpdate {
                provider_id: Some("42"),
                status: Some("running"),
                ipv4: Some("192.0.2.10"),
                ..ServerUpdate::default()
            },
        )
        .await
        .unwrap();
        // `None` keeps what is stored.
        db.update_server(
            id,
            &ServerUpdate {
                server_type: Some("cx32"),
                ..ServerUpdate::default()
            },
        )
        .await
        .unwrap();
        let row = db.server_by_id(id).await.unwrap().unwrap();
        assert_eq!(row.provider_id.as_deref(), Some("42"));
        assert_eq!(row.status, "running");
        assert_eq!(row.server_type.as_deref(), Some("cx32"));
        assert_eq!(row.ipv4.as_deref(), Some("192.0.2.10"));
        assert_eq!(row.location.as_deref(), Some("fsn1"));
        assert!(db.delete_server(id).await.unwrap());
        assert!(!db.delete_server(id).await.unwrap());
        assert!(db.server_by_id(id).await.unwrap().is_none());
        t.finish().await;
    }
}

/// Change marks: appended in `seq` order with the site's tenant, read after a `seq`; and a
/// PostgreSQL listener is notified at commit by both marks and audit appends.
#[tokio::test]
async fn change_marks_and_the_dashboard_counts() {
    for t in db_support::all().await {
        let db = &t.db;
        let (acme, alice) = seed_tenant_user(db, "acme", "alice", "owner").await;
        let (beta, _) = seed_tenant_user(db, "beta", "bert", "owner").await;
        let mut listener = match db {
            Db::Postgres(pool) => {
                let mut l = sqlx::postgres::PgListener::connect_with(pool)
                    .await
                    .unwrap();
                l.listen(vipanel::store::CHANGES_CHANNEL).await.unwrap();
                Some(l)
            }
            Db::Sqlite(_) => None,
        };
        let (_, head) = db.change_marks_bounds().await.unwrap();
        db.mark_tenant_sites_changed(acme).await.unwrap();
        db.mark_tenant_sites_changed(beta).await.unwrap();
        db.mark_tenant_sites_changed(9999).await.unwrap();
        let marks = db.change_marks_after(head, 10).await.unwrap();
        let seen: Vec<(&str, &str)> = marks
            .iter()
            .map(|m| (m.tenant.as_str(), m.kind.as_str()))
            .collect();
        assert_eq!(seen, vec![("acme", "site"), ("beta", "site")], "{}", t.name);
        assert!(marks[0].seq < marks[1].seq);
        assert!(
            db.change_marks_after(marks[1].seq, 10)
                .await
                .unwrap()
                .is_empty()
        );
        if let Some(l) = listener.as_mut() {
            let note = l.recv().await.unwrap();
            assert_eq!(note.payload(), marks[0].seq.to_string());
            db.append_audit(&audit("site.create", "x", "ok"))
                .await
                .unwrap();
            let head = db.audit_head_seq().await.unwrap();
            // The second mark's notification, then the audit row's.
            l.recv().await.unwrap();
            assert_eq!(l.recv().await.unwrap().payload(), head.to_string());
        }

        // The dashboard's counts: the platform and one tenant, with its own and shared servers.
        let mut tx = db.begin().await.unwrap();
        let local = tx.ensure_local_server().await.unwrap();
        tx.commit().await.unwrap();
        let all = db.dashboard_counts(None, None).await.unwrap();
        assert_eq!(
            (all.tenants, all.users, all.servers),
            (2, 2, 1),
            "{}",
            t.name
        );
        let mine = db.dashboard_counts(Some(acme), Some(alice)).await.unwrap();
        assert_eq!(
            (mine.tenants, mine.users, mine.keys, mine.servers),
            (1, 1, 0, 1)
        );
        let (by_status, last) = db.dashboard_sites(Some(acme)).await.unwrap();
        assert!(by_status.is_empty() && last.is_none());
        let mut tx = db.begin().await.unwrap();
        tx.insert_site(&NewSite {
            tenant_id: acme,
            server_id: local,
            domain: "a.example",
            kind: "static",
            php_version: None,
            upstream: None,
            status: "pending",
            aliases: &[],
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let (by_status, _) = db.dashboard_sites(None).await.unwrap();
        assert_eq!(by_status, vec![("pending".to_owned(), 1)]);
        assert!(db.dashboard_sites(Some(beta)).await.unwrap().0.is_empty());
        // The listener holds a connection of the pool, which closing waits for.
        drop(listener);
        t.finish().await;
    }
}
