//! Command tests: the dispatcher run as each role against a seeded store, on SQLite and (when
//! configured) PostgreSQL. Output is parsed as JSON, never string-matched, and exit codes checked.

mod db_support;

use serde_json::Value;
use std::sync::Arc;
use vipanel::command::{self, Invocation, NoInput, Outcome, StdinBytes};
use vipanel::config::Config;
use vipanel::service::{Actor, InitialKeySource, Services};
use vipanel::store::NewAudit;

const KEY_BOB: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGjQmLz1hTnzsbEGHrbPAZhKm6vBR1dkkmYoKG4pGvt9 bob@laptop";
const KEY_NEW: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOJ7vT1aqyVf9B2c5NxVQ2sZ0O9Xqk8q0bD5o2F2zq1H new@laptop";

struct World {
    services: Services,
    admin: Actor,
    /// Holds the secret key file that seals TOTP secrets.
    _secrets: tempfile::TempDir,
}

impl World {
    async fn new(db: vipanel::store::Db) -> World {
        let secrets = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.auth.secret_key_file = secrets.path().join("secret.key").display().to_string();
        // Sites are applied in sandbox mode under the data dir: keep it in the temp dir.
        config.data_dir = secrets.path().join("data");
        let services = Services::new(db, Arc::new(config));
        services.bootstrap(&InitialKeySource::None).await.unwrap();
        let admin = Actor::local_admin(services.system_tenant_id().await.unwrap());
        let world = World {
            services,
            admin,
            _secrets: secrets,
        };
        for line in [
            "tenant create acme",
            "tenant create beta",
            "user create olive --role owner --tenant acme",
            "user create oscar --role operator --tenant acme",
            "user create vera --role viewer --tenant acme",
            "user create bert --role owner --tenant beta",
            "site create beta.example --tenant beta",
        ] {
            let out = world.run(&world.admin, line).await;
            assert_eq!(out.exit, 0, "{line}: {}", out.stderr_text());
        }
        world
    }

    async fn actor(&self, name: &str) -> Actor {
        let user = self.services.db.user_by_name(name).await.unwrap().unwrap();
        Actor {
            user_id: Some(user.id),
            user: user.name,
            tenant_id: user.tenant_id,
            tenant: user.tenant,
            role: vipanel::domain::Role::parse(&user.role).unwrap(),
            key_fingerprint: None,
            source: "test".into(),
            automation: false,
        }
    }

    async fn run(&self, actor: &Actor, line: &str) -> Outcome {
        self.run_io(actor, line, &mut NoInput).await
    }

    async fn run_io<I: command::CommandIo>(
        &self,
        actor: &Actor,
        line: &str,
        io: &mut I,
    ) -> Outcome {
        let argv = shell_words::split(line).unwrap();
        let invocation = Invocation {
            prefix: "ssh panel@test".into(),
        };
        command::run(&self.services, actor, &argv, io, &invocation).await
    }

    async fn json(&self, actor: &Actor, line: &str) -> Value {
        let out = self.run(actor, &format!("{line} -o json")).await;
        assert_eq!(out.exit, 0, "{line}: {}", out.stderr_text());
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{line}: not JSON ({e}): {}", out.stdout_text()))
    }
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_role_gets_exactly_its_rights() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let (olive, oscar, vera) = (
            w.actor("olive").await,
            w.actor("oscar").await,
            w.actor("vera").await,
        );
        // (actor, command, expected exit)
        let cases: Vec<(&Actor, &str, u8)> = vec![
            (&vera, "site list", 0),
            (&vera, "site create v.example", 6),
            (&vera, "user list", 6),
            (&vera, "user show vera", 0),
            (&vera, "key list", 0),
            (&vera, "dashboard", 0),
            (&vera, "tenant create x", 6),
            (&oscar, "site create o.example", 0),
            (&oscar, "site delete o.example --yes", 0),
            (&oscar, "user list", 6),
            (&oscar, "user create z --role viewer", 6),
            (&oscar, "site list --tenant beta", 6),
            (&olive, "user create zed --role viewer", 0),
            (&olive, "user create zara --role admin", 6),
            (&olive, "user role zed operator", 0),
            (&olive, "user lock zed", 0),
            (&olive, "user unlock zed", 0),
            (&olive, "user delete zed --yes", 0),
            (&olive, "tenant create x", 6),
            (&olive, "tenant delete beta --yes", 6),
            (&olive, "user role olive viewer", 4),
            (&olive, "user delete olive --yes", 4),
        ];
        for (actor, line, want) in cases {
            let out = w.run(actor, line).await;
            assert_eq!(
                out.exit,
                want,
                "[{}] {} `{line}`: {}",
                t.name,
                actor.user,
                out.stderr_text()
            );
        }
        t.finish().await;
    }
}

#[tokio::test]
async fn other_tenants_are_invisible() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let olive = w.actor("olive").await;
        assert_eq!(
            w.run(&olive, "site show beta.example").await.exit,
            3,
            "{}",
            t.name
        );
        assert_eq!(
            w.run(&olive, "site delete beta.example --yes").await.exit,
            3
        );
        assert_eq!(w.run(&olive, "user show bert").await.exit, 3);
        assert_eq!(w.run(&olive, "tenant show beta").await.exit, 3);
        assert_eq!(w.run(&olive, "key list --user bert").await.exit, 3);
        let missing = w.run(&olive, "site show nothing.example").await;
        let hidden = w.run(&olive, "site show beta.example").await;
        assert_eq!(
            missing.stderr_text().replace("nothing.example", "X"),
            hidden.stderr_text().replace("beta.example", "X"),
            "hidden reads exactly like missing"
        );
        assert!(names(&w.json(&olive, "site list").await, "domain").is_empty());
        assert_eq!(
            names(&w.json(&olive, "tenant list").await, "name"),
            vec!["acme"]
        );
        assert_eq!(
            names(&w.json(&w.admin, "site list").await, "domain"),
            vec!["beta.example"]
        );
        let users = names(&w.json(&olive, "user list").await, "name");
        assert!(!users.contains(&"bert".to_owned()), "{users:?}");
        t.finish().await;
    }
}

#[tokio::test]
async fn exit_codes_and_json_errors() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let a = &w.admin;
        for (line, want) in [
            ("site list --bogus", 2),
            ("site", 2),
            ("frobnicate", 2),
            ("site delete beta.example", 2),
            ("site show none.example", 3),
            ("tenant create acme", 4),
            ("site create beta.example", 4),
            (
                "site create x.example --alias beta.example --tenant acme",
                4,
            ),
            ("site create 'a;b'", 5),
            ("site create good.example --php 8", 5),
            ("site create good.example --type static --php 8.2", 5),
            ("site create good.example --type proxy", 5),
            ("site create good.example --type ruby", 5),
            ("user create Bad --role owner --tenant acme", 5),
            ("user create good --role root --tenant acme", 5),
            ("user create panel --role owner --tenant acme", 5),
            ("user create good --role owner", 5),
            ("user create good --role admin --tenant acme", 5),
            ("tenant delete system --yes", 4),
            ("tenant delete acme --yes", 4),
        ] {
            let out = w.run(a, line).await;
            assert_eq!(
                out.exit,
                want,
                "[{}] `{line}`: {}",
                t.name,
                out.stderr_text()
            );
            if want != 0 {
                let json = w.run(a, &format!("{line} -o json")).await;
                let err: Value = serde_json::from_slice(&json.stderr).unwrap_or_else(|_| {
                    panic!(
                        "`{line} -o json` stderr is not JSON: {}",
                        json.stderr_text()
                    )
                });
                assert!(
                    err["error"]["code"].is_string() && err["error"]["message"].is_string(),
                    "{err}"
                );
            }
        }
        let sites = w.json(a, "site list").await;
        assert_eq!(
            names(&sites, "domain"),
            vec!["beta.example"],
            "nothing half-created"
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn json_shapes_are_stable() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let a = &w.admin;
        let site = w
            .json(
                a,
                "site create shop.example --tenant acme --alias www.shop.example --php 8.3",
            )
            .await;
        for field in [
            "domain",
            "tenant",
            "type",
            "php",
            "upstream",
            "aliases",
            "status",
            "enabled",
            "server",
            "system_user",
            "applied_at",
            "last_error",
            "created_at",
            "updated_at",
        ] {
            assert!(site.get(field).is_some(), "site field {field}: {site}");
        }
        // Applied in sandbox mode (the default) before the command returns.
        assert_eq!(
            (site["status"].as_str(), site["php"].as_str()),
            (Some("active"), Some("8.3"))
        );
        assert!(site["applied_at"].is_string(), "{site}");
        assert!(chrono::DateTime::parse_from_rfc3339(site["created_at"].as_str().unwrap()).is_ok());
        let who = w.json(a, "whoami").await;
        let keys: Vec<&str> = who
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["user", "tenant", "role", "key_fingerprint", "source"]
        );
        for line in [
            "tenant list",
            "user list",
            "key list",
            "site list",
            "server list",
        ] {
            assert!(w.json(a, line).await.is_array(), "{line}");
        }
        for line in [
            "tenant show acme",
            "user show olive",
            "site show shop.example",
            "server show local",
            "dashboard",
            "version",
        ] {
            assert!(w.json(a, line).await.is_object(), "{line}");
        }
        let plain = w.run(a, "site list -o plain").await.stdout_text();
        assert_eq!(plain.lines().count(), 2);
        assert!(plain.lines().all(|l| l.split('\t').count() == 7), "{plain}");
        t.finish().await;
    }
}

#[tokio::test]
async fn keys_from_stdin_and_ownership() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let olive = w.actor("olive").await;
        let out = w
            .run_io(
                &olive,
                "key add --user oscar -o json",
                &mut StdinBytes(format!("# c\n{KEY_BOB}\n").into_bytes()),
            )
            .await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());
        let added: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(added[0]["user"], "oscar");
        assert_eq!(added[0]["comment"], "bob@laptop");
        let again = w
            .run_io(
                &w.admin,
                "key add --user bert",
                &mut StdinBytes(KEY_BOB.into()),
            )
            .await;
        assert_eq!(again.exit, 4, "a key belongs to one user only");
        let empty = w
            .run_io(&olive, "key add", &mut StdinBytes(Vec::new()))
            .await;
        assert_eq!(empty.exit, 2);
        let bad = w
            .run_io(
                &olive,
                "key add",
                &mut StdinBytes(b"ssh-ed25519 AAAA".to_vec()),
            )
            .await;
        assert_eq!(bad.exit, 5);
        let fingerprint = added[0]["fingerprint"].as_str().unwrap().to_owned();
        let vera = w.actor("vera").await;
        assert_eq!(
            w.run(&vera, &format!("key remove {fingerprint} --yes"))
                .await
                .exit,
            6
        );
        let oscar = w.actor("oscar").await;
        assert_eq!(
            w.run(&oscar, &format!("key remove {fingerprint} --yes"))
                .await
                .exit,
            4,
            "own last key"
        );
        let out = w
            .run_io(&oscar, "key add", &mut StdinBytes(KEY_NEW.into()))
            .await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());
        assert_eq!(
            w.run(&oscar, &format!("key remove {fingerprint} --yes"))
                .await
                .exit,
            0
        );
        assert_eq!(
            names(&w.json(&oscar, "key list").await, "fingerprint").len(),
            1
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn every_change_and_refusal_is_audited() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let vera = w.actor("vera").await;
        assert_eq!(w.run(&vera, "site create v.example").await.exit, 6);
        let rows = w.services.db.audit_rows(None, None, 100).await.unwrap();
        let actions: Vec<(&str, &str, &str)> = rows
            .iter()
            .rev()
            .map(|r| (r.actor.as_str(), r.action.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("@local", "user.create", "ok"),
                ("@local", "tenant.create", "ok"),
                ("@local", "tenant.create", "ok"),
                ("@local", "user.create", "ok"),
                ("@local", "user.create", "ok"),
                ("@local", "user.create", "ok"),
                ("@local", "user.create", "ok"),
                ("@local", "site.create", "ok"),
                ("vera", "site.create", "forbidden"),
            ],
            "[{}]",
            t.name
        );
        assert_eq!(rows[0].source, "test");
        assert_eq!(rows[0].tenant, "acme");
        t.finish().await;
    }
}

#[tokio::test]
async fn audit_list_is_scoped_and_verify_is_for_admins() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let (olive, vera) = (w.actor("olive").await, w.actor("vera").await);
        assert_eq!(w.run(&vera, "site create v.example").await.exit, 6);
        let all = w.json(&w.admin, "audit list --limit 100").await;
        assert_eq!(all.as_array().unwrap().len(), 9, "[{}] {all}", t.name);
        let seqs: Vec<i64> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=9).rev().collect::<Vec<_>>(), "newest first");
        let mine = w.json(&vera, "audit list").await;
        assert_eq!(
            names(&mine, "actor"),
            vec!["vera"],
            "others see only their own entries"
        );
        assert_eq!(w.run(&vera, "audit list --user olive").await.exit, 6);
        let tenant = w.json(&olive, "audit list").await;
        assert!(
            names(&tenant, "tenant").iter().all(|t| t == "acme"),
            "{tenant}"
        );
        // An admin's changes inside acme are recorded under acme, so its owners see them.
        let targets = names(&tenant, "target");
        for created in ["olive", "oscar", "vera"] {
            assert!(
                targets.contains(&created.to_owned()),
                "{created} in {targets:?}"
            );
        }
        assert!(
            !targets.contains(&"bert".to_owned()),
            "beta's user stays invisible"
        );
        let creates = w
            .json(&w.admin, "audit list --action tenant.create --since 1h")
            .await;
        assert_eq!(names(&creates, "target"), vec!["beta", "acme"]);
        assert_eq!(w.run(&w.admin, "audit list --since soon").await.exit, 5);
        assert_eq!(w.run(&w.admin, "audit list --limit 0").await.exit, 5);
        let verdict = w.json(&w.admin, "audit verify").await;
        assert_eq!(
            (verdict["intact"].as_bool(), verdict["checked"].as_i64()),
            (Some(true), Some(9))
        );
        assert_eq!(w.run(&olive, "audit verify").await.exit, 6);
        t.finish().await;
    }
}

#[tokio::test]
async fn second_factor_commands_follow_the_roles() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let (olive, oscar, vera, bert) = (
            w.actor("olive").await,
            w.actor("oscar").await,
            w.actor("vera").await,
            w.actor("bert").await,
        );
        // Everyone enrolls itself; the secret, URI and ten recovery codes come back once.
        let own = w.json(&oscar, "totp enroll").await;
        assert_eq!(own["user"], "oscar", "{}", t.name);
        let secret = own["secret"].as_str().unwrap();
        assert!(vipanel::secret::Totp::from_base32(secret).is_ok());
        assert!(
            own["uri"]
                .as_str()
                .unwrap()
                .contains(&format!("secret={secret}"))
        );
        assert_eq!(own["recovery_codes"].as_array().unwrap().len(), 10);
        // Provisioning another user's secret is for admins only.
        assert_eq!(w.run(&oscar, "totp enroll vera").await.exit, 6);
        assert_eq!(w.run(&olive, "totp enroll oscar").await.exit, 6);
        assert_eq!(w.json(&w.admin, "totp enroll vera").await["user"], "vera");
        assert_eq!(
            w.run(&w.admin, "totp enroll").await.exit,
            2,
            "@local has no own"
        );
        // Reset: owners in their tenant, admins anywhere; other tenants read as not found.
        assert_eq!(w.run(&oscar, "totp reset vera").await.exit, 6);
        assert_eq!(w.run(&bert, "totp reset oscar").await.exit, 3);
        let reset = w.json(&olive, "totp reset oscar").await;
        assert_eq!(reset["user"], "oscar");
        assert!(reset["enroll_code"].is_string() && reset["expires_at"].is_string());
        // An enrollment code only for users without an authenticator.
        assert_eq!(w.run(&olive, "user enroll-code vera").await.exit, 4);
        assert_eq!(w.run(&vera, "user enroll-code oscar").await.exit, 6);
        assert!(
            w.json(&olive, "user enroll-code oscar").await["enroll_code"]
                .as_str()
                .is_some_and(|c| c.len() == 14)
        );
        // Recovery codes: only with an authenticator.
        assert_eq!(w.run(&oscar, "totp recovery-codes").await.exit, 4);
        let codes = w.json(&vera, "totp recovery-codes").await;
        assert_eq!(codes["recovery_codes"].as_array().unwrap().len(), 10);
        // Automation keys: --role above the user's is invalid; bad networks too.
        let mut stdin = StdinBytes(KEY_NEW.as_bytes().to_vec());
        let out = w
            .run_io(
                &oscar,
                "key add --automation --from 10.0.0.0/8 --role owner",
                &mut stdin,
            )
            .await;
        assert_eq!(out.exit, 5, "{}", out.stderr_text());
        let mut stdin = StdinBytes(KEY_NEW.as_bytes().to_vec());
        let out = w
            .run_io(&oscar, "key add --automation --from 10.1.2.3/8", &mut stdin)
            .await;
        assert_eq!(out.exit, 5, "{}", out.stderr_text());
        assert!(
            out.stderr_text().contains("10.0.0.0/8"),
            "suggests the network"
        );
        let mut stdin = StdinBytes(KEY_NEW.as_bytes().to_vec());
        let out = w
            .run_io(
                &oscar,
                "key add --automation --from 10.0.0.0/8,192.0.2.7 -o json",
                &mut stdin,
            )
            .await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());
        let added: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            added[0]["allowed_from"],
            serde_json::json!(["10.0.0.0/8", "192.0.2.7/32"])
        );
        assert_eq!(added[0]["max_role"], Value::Null);
        // Secrets never reach the audit trail.
        let rows = w.services.db.audit_rows(None, None, 1000).await.unwrap();
        for row in &rows {
            assert!(!row.detail.contains(secret), "{row:?}");
        }
        drop(w);
        t.finish().await;
    }
}

/// `actor` as if connected from `source` (sessions are told apart by user and source).
fn from(actor: &Actor, source: &str) -> Actor {
    Actor {
        source: source.into(),
        ..actor.clone()
    }
}

/// Waits (bounded) until the trail holds a row with `action` and `target`: session rows are
/// written in the background.
async fn wait_for_row(w: &World, action: &str, target: &str) -> vipanel::store::AuditRow {
    for _ in 0..200 {
        let rows = w.services.db.audit_rows(None, None, 1000).await.unwrap();
        if let Some(row) = rows
            .into_iter()
            .find(|r| r.action == action && r.target == target)
        {
            return row;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no audit row {action} {target}");
}

#[tokio::test]
async fn sessions_are_listed_and_killed_by_role_and_tenant() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let olive = from(&w.actor("olive").await, "10.0.0.1:1001");
        let oscar = from(&w.actor("oscar").await, "10.0.0.2:1002");
        let vera = from(&w.actor("vera").await, "10.0.0.3:1003");
        let bert = from(&w.actor("bert").await, "10.0.0.4:1004");
        let guards: Vec<_> = [&olive, &oscar, &vera, &bert]
            .into_iter()
            .map(|a| w.services.session_start(a))
            .collect();
        let ids: Vec<String> = guards.iter().map(|g| g.id().to_string()).collect();
        let id = |i: usize| ids[i].clone();
        let seen = |list: Value| {
            let mut users = names(&list, "user");
            users.sort();
            users
        };
        // Admins see every session, owners their tenant's, everyone else only its own.
        assert_eq!(
            seen(w.json(&w.admin, "session list").await),
            ["bert", "olive", "oscar", "vera"],
            "[{}]",
            t.name
        );
        assert_eq!(
            seen(w.json(&olive, "session list").await),
            ["olive", "oscar", "vera"]
        );
        assert_eq!(seen(w.json(&oscar, "session list").await), ["oscar"]);
        assert_eq!(seen(w.json(&vera, "session ls").await), ["vera"]);
        let mine = w.json(&olive, "session list").await;
        let me = mine
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["user"] == "olive")
            .unwrap();
        let fields: Vec<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            [
                "id",
                "user",
                "tenant",
                "role",
                "source",
                "key_fingerprint",
                "started_at",
                "last_command_at",
                "commands",
                "current"
            ]
        );
        assert_eq!(
            (
                me["id"].as_str(),
                me["current"].as_bool(),
                me["source"].as_str()
            ),
            (Some(id(0).as_str()), Some(true), Some("10.0.0.1:1001"))
        );
        assert!(
            me["commands"].as_u64().unwrap() >= 1,
            "commands on a session are counted: {me}"
        );

        // (actor, command, exit): killing is for owners (their tenant) and admins; another
        // tenant's session reads as not found; the session the command runs on is a conflict.
        let cases: Vec<(&Actor, String, u8)> = vec![
            (&vera, format!("session kill {} --yes", id(1)), 6),
            (&oscar, format!("session kill {} --yes", id(2)), 6),
            (&olive, format!("session kill {} --yes", id(3)), 3),
            (&bert, format!("session kill {} --yes", id(0)), 3),
            (&olive, "session kill deadbeef --yes".into(), 3),
            (&olive, "session kill 'x;y' --yes".into(), 5),
            (&olive, format!("session kill {}", id(1)), 2),
            (&olive, format!("session kill {} --yes", id(0)), 4),
        ];
        for (actor, line, want) in &cases {
            let out = w.run(actor, line).await;
            assert_eq!(
                out.exit,
                *want,
                "[{}] {} `{line}`: {}",
                t.name,
                actor.user,
                out.stderr_text()
            );
        }
        let killed = w
            .json(&olive, &format!("session kill {} --yes", id(1)))
            .await;
        assert_eq!(killed["user"], "oscar");
        let signal = guards[1].kill_signal();
        let by = tokio::time::timeout(std::time::Duration::from_secs(5), signal.killed())
            .await
            .expect("the kill signal fires");
        assert_eq!(by.as_deref(), Some("olive"));
        let out = w
            .run(&w.admin, &format!("session kill {} --yes", id(3)))
            .await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());

        // Killing is audited like any change, refusals included, with the command line.
        let ok = wait_for_row(&w, "session.kill", &id(1)).await;
        assert_eq!((ok.actor.as_str(), ok.result.as_str()), ("olive", "ok"));
        assert_eq!(ok.tenant, "acme");
        assert_eq!(
            ok.command.as_deref(),
            Some(format!("session kill {} --yes -o json", id(1)).as_str())
        );
        assert_eq!(ok.exit_code, Some(0));
        let rows = w.services.db.audit_rows(None, None, 1000).await.unwrap();
        let refused: Vec<(String, Option<i32>)> = rows
            .iter()
            .filter(|r| r.action == "session.kill" && r.result != "ok")
            .map(|r| (r.result.clone(), r.exit_code))
            .collect();
        assert!(
            refused.contains(&("forbidden".into(), Some(6)))
                && refused.contains(&("not_found".into(), Some(3)))
                && refused.contains(&("conflict".into(), Some(4))),
            "{refused:?}"
        );

        // Start and end are recorded; the end says how long and how many commands.
        let started = wait_for_row(&w, "session.start", &id(1)).await;
        assert_eq!(
            (started.actor.as_str(), started.source.as_str()),
            ("oscar", "10.0.0.2:1002")
        );
        drop(guards);
        let ended = wait_for_row(&w, "session.end", &id(1)).await;
        assert!(
            ended.detail.contains("duration=") && ended.detail.contains("killed_by=olive"),
            "{}",
            ended.detail
        );
        assert!(
            w.json(&w.admin, "session list")
                .await
                .as_array()
                .unwrap()
                .is_empty()
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn sessions_are_only_in_the_daemon() {
    for t in db_support::all().await {
        let mut w = World::new(t.db.clone()).await;
        w.services.sessions = vipanel::service::SessionRegistry::elsewhere();
        let out = w.run(&w.admin, "session list").await;
        assert_eq!(out.exit, 8, "{}", out.stderr_text());
        assert!(
            out.stderr_text().contains("over SSH"),
            "{}",
            out.stderr_text()
        );
        assert_eq!(w.run(&w.admin, "session kill 0123abcd --yes").await.exit, 8);
        t.finish().await;
    }
}

#[tokio::test]
async fn command_rows_record_the_masked_line_and_the_exit_code() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let vera = w.actor("vera").await;
        let line = format!("key add --user olive {KEY_NEW} token=hunter2");
        assert_eq!(w.run(&w.admin, &line).await.exit, 0);
        assert_eq!(w.run(&vera, "site create v.example").await.exit, 6);
        let rows = w.services.db.audit_rows(None, None, 100).await.unwrap();
        let added = rows.iter().find(|r| r.action == "key.add").unwrap();
        let masked = added.command.as_deref().unwrap();
        assert!(!masked.contains("hunter2"), "{masked}");
        assert!(
            masked.starts_with("key add --user olive ssh-ed25519 ")
                && masked.ends_with(" token=***"),
            "{masked}"
        );
        assert_eq!(added.exit_code, Some(0));
        let refused = &rows[0];
        assert_eq!(
            (
                refused.action.as_str(),
                refused.command.as_deref(),
                refused.exit_code
            ),
            ("site.create", Some("site create v.example"), Some(6))
        );
        let bootstrap = rows.last().unwrap();
        assert_eq!(
            (bootstrap.command.as_deref(), bootstrap.exit_code),
            (None, None)
        );
        let json = w.json(&w.admin, "audit list --limit 1").await;
        assert_eq!(json[0]["command"], "site create v.example");
        assert_eq!(json[0]["exit_code"], 6);
        assert_eq!(json[0]["flag"], "");
        assert_eq!(w.json(&w.admin, "audit verify").await["intact"], true);
        t.finish().await;
    }
}

/// A login row as the identity service writes it.
fn login_row<'a>(actor: &'a str, source: &'a str, result: &'a str) -> NewAudit<'a> {
    NewAudit {
        actor,
        tenant: "acme",
        role: "",
        source,
        action: "login",
        target: actor,
        result,
        ..NewAudit::default()
    }
}

#[tokio::test]
async fn suspicious_rows_are_flagged_when_written_and_listed_apart() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let s = &w.services;
        let olive = w.actor("olive").await;
        // A burst: the fifth refused login from one address within the window, and later ones.
        for port in 0..6 {
            let source = format!("198.51.100.7:{}", 4000 + port);
            s.append_flagged(login_row("panel", &source, "refused"), None)
                .await;
        }
        // Failures for one user from different addresses count too.
        for i in 0..5 {
            let source = format!("192.0.2.{i}:22");
            s.append_flagged(login_row("vera", &source, "refused"), None)
                .await;
        }
        // Logins: the first ever is not flagged, a new network is, a known one is not.
        let id = olive.user_id;
        for source in [
            "203.0.113.5:1",
            "203.0.113.200:2",
            "[2001:db8:1::9]:3",
            "203.0.113.7:4",
        ] {
            s.append_flagged(login_row("olive", source, "ok"), id).await;
        }
        s.append_flagged(
            NewAudit {
                action: vipanel::service::LOCKOUT_ACTION,
                ..login_row("vera", "192.0.2.9:22", "locked")
            },
            None,
        )
        .await;

        let flagged = w
            .json(&w.admin, "audit list --suspicious --limit 100")
            .await;
        let flags = names(&flagged, "flag");
        assert_eq!(
            flags,
            [
                "lockout",
                "new-network 2001:db8:1::/48",
                "burst user=vera failures=5 window=600s",
                "burst source=198.51.100.7 failures=6 window=600s",
                "burst source=198.51.100.7 failures=5 window=600s",
            ],
            "[{}]",
            t.name
        );
        // Owners see their tenant's flagged rows; the filter combines with the others.
        let olives = w
            .json(
                &olive,
                "audit list --suspicious --action login --user olive",
            )
            .await;
        assert_eq!(names(&olives, "flag"), ["new-network 2001:db8:1::/48"]);
        let table = w
            .run(&w.admin, "audit list --suspicious")
            .await
            .stdout_text();
        assert!(table.lines().next().unwrap().ends_with("FLAG"), "{table}");
        assert!(table.contains("new-network"), "{table}");
        assert_eq!(w.json(&w.admin, "audit verify").await["intact"], true);
        t.finish().await;
    }
}

#[tokio::test]
async fn audit_prune_is_for_admins_and_keeps_the_chain_verifiable() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let olive = w.actor("olive").await;
        assert_eq!(w.run(&olive, "audit prune").await.exit, 6);
        // Nothing is 90 days old: nothing goes, and the attempt is recorded.
        let out = w.run(&w.admin, "audit prune").await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());
        assert!(
            out.stderr_text().contains("nothing pruned"),
            "{}",
            out.stderr_text()
        );
        let none = w.json(&w.admin, "audit prune").await;
        assert_eq!(
            (none["rows"].as_i64(), none["retention_days"].as_u64()),
            (Some(0), Some(90))
        );
        assert!(none["through_seq"].is_null());

        // Tests cannot wait 90 days: prune up to now directly.
        let before = w
            .services
            .db
            .audit_rows(None, None, 1000)
            .await
            .unwrap()
            .len();
        let cutoff = vipanel::store::now() + chrono::Duration::seconds(1);
        let pruned = w
            .services
            .prune_before(&w.admin, Some(cutoff), false)
            .await
            .unwrap();
        assert_eq!(pruned.rows as usize, before, "[{}]", t.name);
        let left = w.json(&w.admin, "audit list").await;
        assert_eq!(names(&left, "action"), ["audit.prune"]);
        let verdict = w.json(&w.admin, "audit verify").await;
        assert_eq!(
            (
                verdict["intact"].as_bool(),
                verdict["checked"].as_i64(),
                verdict["pruned_through"].as_i64()
            ),
            (Some(true), Some(1), pruned.through_seq)
        );
        // With retention off, nothing is pruned and nothing recorded.
        let mut config = Config::default();
        config.audit.retention_days = 0;
        let off = Services::new(t.db.clone(), Arc::new(config));
        let out = command::run(
            &off,
            &w.admin,
            &["audit".into(), "prune".into()],
            &mut NoInput,
            &Invocation {
                prefix: "test".into(),
            },
        )
        .await;
        assert_eq!(out.exit, 0);
        assert!(
            out.stderr_text().contains("retention is off"),
            "{}",
            out.stderr_text()
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn owners_do_not_manage_other_owners_keys_or_authenticators() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let out = w
            .run(&w.admin, "user create opal --role owner --tenant acme")
            .await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());
        let olive = w.actor("olive").await;
        // Another owner of the same tenant: not olive's to impersonate.
        let mut stdin = StdinBytes(KEY_NEW.as_bytes().to_vec());
        let out = w.run_io(&olive, "key add --user opal", &mut stdin).await;
        assert_eq!(out.exit, 6, "{}", out.stderr_text());
        assert_eq!(w.run(&olive, "totp reset opal").await.exit, 6);
        assert_eq!(w.run(&olive, "user enroll-code opal").await.exit, 6);
        // Operators and viewers of the tenant stay olive's to manage.
        let mut stdin = StdinBytes(KEY_NEW.as_bytes().to_vec());
        let out = w.run_io(&olive, "key add --user oscar", &mut stdin).await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());
        // An automation login manages no keys or authenticators, even its user's own.
        let oscar = Actor {
            automation: true,
            ..w.actor("oscar").await
        };
        assert_eq!(w.run(&oscar, "totp enroll").await.exit, 6);
        let mut stdin = StdinBytes(KEY_BOB.as_bytes().to_vec());
        assert_eq!(w.run_io(&oscar, "key add", &mut stdin).await.exit, 6);
        drop(w);
        t.finish().await;
    }
}

#[tokio::test]
async fn an_enrollment_whose_code_was_replaced_meanwhile_is_void() {
    use vipanel::service::{LoginIdentity, SecondStep};
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let vera = w.actor("vera").await;
        let identity = LoginIdentity {
            key_id: 0,
            actor: vera.clone(),
            second_step: SecondStep::Enroll,
        };
        let s = &w.services;
        let first = s.start_enrollment(&identity).await.unwrap();
        let code_now = |pending: &vipanel::service::PendingEnrollment| {
            let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
            vipanel::secret::Totp::from_base32(&pending.secret_base32)
                .unwrap()
                .code_at(now)
        };
        // An owner issues a new code (revoking the one this enrollment passed).
        let olive = w.actor("olive").await;
        assert_eq!(w.run(&olive, "user enroll-code vera").await.exit, 0);
        let err = s
            .finish_enrollment(&identity, "panel", &first, &code_now(&first))
            .await
            .expect_err("void");
        assert_eq!(err.kind, vipanel::error::ErrorKind::Conflict, "{}", t.name);
        assert!(s.db.totp_of(vera.user_id.unwrap()).await.unwrap().is_none());
        // With the live code, one enrollment wins and a second one racing it is void.
        let (a, b) = (
            s.start_enrollment(&identity).await.unwrap(),
            s.start_enrollment(&identity).await.unwrap(),
        );
        let codes = s
            .finish_enrollment(&identity, "panel", &a, &code_now(&a))
            .await
            .unwrap();
        assert_eq!(codes.map(|c| c.len()), Some(10));
        let second = s
            .finish_enrollment(&identity, "panel", &b, &code_now(&b))
            .await;
        assert!(second.is_err(), "{}", t.name);
        drop(w);
        t.finish().await;
    }
}

/// A caller that collects streamed output and stops the command at a deadline.
struct FollowIo {
    chunks: Vec<String>,
    until: tokio::time::Instant,
}

impl command::CommandIo for FollowIo {
    fn has_tty(&self) -> bool {
        false
    }
    async fn read_stdin(&mut self, _limit: usize) -> vipanel::error::Result<Vec<u8>> {
        Ok(Vec::new())
    }
    async fn confirm(&mut self, _prompt: &str) -> vipanel::error::Result<bool> {
        Ok(false)
    }
    async fn stream(&mut self, stdout: Vec<u8>) -> vipanel::error::Result<()> {
        self.chunks.push(String::from_utf8(stdout).unwrap());
        Ok(())
    }
    async fn stopped(&mut self) {
        tokio::time::sleep_until(self.until).await;
    }
}

#[tokio::test]
async fn audit_follow_streams_new_rows_within_the_actors_scope() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let vera = w.actor("vera").await;
        let follow = |actor: &Actor, line: &'static str| {
            let actor = actor.clone();
            let w = &w;
            async move {
                let mut io = FollowIo {
                    chunks: Vec::new(),
                    until: tokio::time::Instant::now() + std::time::Duration::from_millis(1500),
                };
                let out = w.run_io(&actor, line, &mut io).await;
                (out, io.chunks)
            }
        };
        let append = async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            w.run(&w.admin, "tenant create late").await
        };
        let ((admin_out, admin_chunks), (vera_out, vera_chunks), created) = tokio::join!(
            follow(&w.admin, "audit list --follow --limit 3"),
            follow(&vera, "audit list -f -o json"),
            append
        );
        assert_eq!(created.exit, 0);
        assert_eq!(admin_out.exit, 0, "{}", admin_out.stderr_text());
        assert!(admin_out.stdout.is_empty(), "all output was streamed");
        assert!(admin_chunks[0].starts_with("SEQ"), "{admin_chunks:?}");
        assert_eq!(admin_chunks[0].lines().count(), 4, "header and 3 rows");
        let later = admin_chunks[1..].concat();
        assert!(
            later.contains("tenant.create") && later.contains("late"),
            "{admin_chunks:?}"
        );
        assert!(!later.contains("SEQ"), "one header: {admin_chunks:?}");
        // A viewer sees only its own rows: nothing of the admin's new tenant.
        assert_eq!(vera_out.exit, 0);
        assert!(
            !vera_chunks.concat().contains("\"late\""),
            "{vera_chunks:?}"
        );
        // A caller that cannot stream is told so.
        let out = w.run(&w.admin, "audit list --follow").await;
        assert_eq!(out.exit, 2, "{}", out.stderr_text());
        t.finish().await;
    }
}

/// The site verbs as each role, applied in sandbox mode (the default) under the data dir.
#[tokio::test]
async fn site_verbs_follow_roles_and_reach_the_sandbox() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let olive = w.actor("olive").await;
        let oscar = w.actor("oscar").await;
        let vera = w.actor("vera").await;
        let bert = w.actor("bert").await;
        let site = w.json(&olive, "site create shop.acme.example").await;
        assert_eq!(site["status"], "active", "{}", t.name);

        // Viewers read, operators and owners change, other tenants see nothing.
        assert_eq!(w.run(&vera, "site disable shop.acme.example").await.exit, 6);
        assert_eq!(w.run(&bert, "site disable shop.acme.example").await.exit, 3);
        let off = w.json(&oscar, "site disable shop.acme.example").await;
        assert_eq!(
            (off["status"].as_str(), off["enabled"].as_bool()),
            (Some("disabled"), Some(false))
        );
        let on = w.json(&oscar, "site enable shop.acme.example").await;
        assert_eq!(on["status"], "active");

        // Aliases: taken names are 4, a name the site does not have is 3, bad names 5.
        let with = w
            .json(
                &olive,
                "site alias add shop.acme.example www.shop.acme.example",
            )
            .await;
        assert_eq!(
            with["aliases"],
            serde_json::json!(["www.shop.acme.example"])
        );
        let taken = w
            .run(&olive, "site alias add shop.acme.example beta.example")
            .await;
        assert_eq!(taken.exit, 4, "{}", taken.stderr_text());
        assert_eq!(
            w.run(
                &olive,
                "site alias remove shop.acme.example nope.acme.example"
            )
            .await
            .exit,
            3
        );
        assert_eq!(
            w.run(&olive, "site alias add shop.acme.example 'a;b.example'")
                .await
                .exit,
            5
        );

        // PHP versions: any valid one in a sandbox; only PHP sites have one.
        let moved = w.json(&olive, "site php shop.acme.example 8.3").await;
        assert_eq!(moved["php"], "8.3");
        w.json(&olive, "site create docs.acme.example --type static")
            .await;
        let static_php = w.run(&olive, "site php docs.acme.example 8.3").await;
        assert_eq!(static_php.exit, 5, "{}", static_php.stderr_text());

        // The sandbox holds what system mode would write.
        let data = w.services.config.data_dir.clone();
        let vhost = std::fs::read_to_string(
            data.join("host/etc/nginx/vipanel/sites/shop.acme.example.conf"),
        )
        .expect("the vhost in the sandbox");
        assert!(
            vhost.contains("server_name shop.acme.example www.shop.acme.example;"),
            "{vhost}"
        );
        let pool = data.join("host/etc/php/8.3/fpm/pool.d/vipanel-shop.acme.example.conf");
        assert!(pool.exists(), "the pool moved to 8.3");
        assert!(
            !data
                .join("host/etc/php/8.2/fpm/pool.d/vipanel-shop.acme.example.conf")
                .exists(),
            "and left 8.2"
        );

        // apply, logs, php list for everyone who reads the site; reconcile for admins only.
        assert_eq!(
            w.json(&oscar, "site apply shop.acme.example").await["status"],
            "active"
        );
        assert_eq!(
            w.json(&vera, "site logs shop.acme.example").await,
            serde_json::json!([])
        );
        assert_eq!(w.run(&vera, "php list").await.exit, 0);
        assert_eq!(w.run(&olive, "host reconcile").await.exit, 6);
        let report = w.json(&w.admin, "host reconcile").await;
        assert_eq!(
            (report["sites"].as_u64(), report["changed"].as_u64()),
            (Some(3), Some(0)),
            "{report}"
        );

        // Delete with purge: files gone from the sandbox too.
        w.json(&olive, "site delete shop.acme.example --purge --yes")
            .await;
        assert!(!data.join("host/srv/vipanel/shop.acme.example").exists());
        assert!(
            !data
                .join("host/etc/nginx/vipanel/sites/shop.acme.example.conf")
                .exists()
        );
        t.finish().await;
    }
}

/// A job kind for tests: reports progress, then fails when the payload says so, sleeps when it
/// says so, or loops until cancelled.
struct TestJob;

impl vipanel::service::JobKind for TestJob {
    async fn run(&self, ctx: vipanel::service::JobContext) -> vipanel::error::Result<Value> {
        ctx.progress(50, "half way").await?;
        if ctx.payload["fail"] == true {
            return Err(vipanel::error::Error::invalid("asked to fail"));
        }
        if let Some(ms) = ctx.payload["sleep_ms"].as_u64() {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if ctx.payload["hang_first_attempt"] == true && ctx.attempt == 1 {
            std::future::pending::<()>().await;
        }
        if let Some(path) = ctx.payload["hang_while"].as_str() {
            while std::path::Path::new(path).exists() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        if ctx.payload["until_cancelled"] == true {
            while !ctx.cancelled() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                ctx.progress(60, "looping").await?;
            }
            return Err(vipanel::error::Error::conflict("stopped at a checkpoint"));
        }
        Ok(serde_json::json!({"echo": ctx.payload}))
    }
}

impl World {
    /// The same world with quick job settings (one attempt, fast polling) and `test.job`.
    fn with_fast_jobs(mut self, timeout_secs: u64, max_attempts: u32) -> World {
        let mut config = (*self.services.config).clone();
        config.jobs.max_attempts = max_attempts;
        config.jobs.poll_interval_ms = 50;
        config.jobs.lease_secs = 3;
        config.jobs.default_timeout_secs = timeout_secs;
        config.audit.follow_interval_ms = 50;
        self.services = Services::new(self.services.db.clone(), Arc::new(config));
        self.services.register_job_kind("test.job", TestJob);
        self
    }

    async fn enqueue(&self, actor: &Actor, tenant: Option<&str>, payload: Value) -> i64 {
        let tenant_id = match tenant {
            Some(name) => Some(
                self.services
                    .db
                    .tenant_by_name(name)
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
            ),
            None => None,
        };
        let request = vipanel::service::JobRequest {
            kind: "test.job".into(),
            tenant_id,
            payload,
            idempotency_key: None,
            run_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            node: None,
        };
        self.services.job_enqueue(actor, request).await.unwrap().id
    }
}

#[tokio::test]
async fn jobs_follow_roles_and_tenancy() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await.with_fast_jobs(60, 1);
        let (oscar, vera, bert) = (
            w.actor("oscar").await,
            w.actor("vera").await,
            w.actor("bert").await,
        );
        let acme = w.enqueue(&oscar, Some("acme"), serde_json::json!({})).await;
        let beta = w.enqueue(&bert, Some("beta"), serde_json::json!({})).await;
        let platform = w.enqueue(&w.admin, None, serde_json::json!({})).await;
        let cases: Vec<(&Actor, String, u8)> = vec![
            (&vera, format!("job show {acme}"), 0),
            (&vera, format!("job show {beta}"), 3),
            (&vera, format!("job show {platform}"), 3),
            (&vera, format!("job cancel {acme} --yes"), 6),
            (&vera, format!("job retry {acme}"), 6),
            (&bert, format!("job show {acme}"), 3),
            (&bert, format!("job cancel {acme} --yes"), 3),
            (&oscar, format!("job cancel {platform} --yes"), 3),
            (&oscar, format!("job cancel {acme}"), 2),
            (&oscar, format!("job retry {acme}"), 4),
            (&oscar, format!("job cancel {acme} --yes"), 0),
            (&oscar, format!("job cancel {acme} --yes"), 4),
            (&oscar, format!("job retry {acme}"), 0),
            (&w.admin, format!("job show {beta}"), 0),
            (&w.admin, format!("job cancel {platform} -y"), 0),
            (&w.admin, "job show 9999".into(), 3),
            (&w.admin, "job show x1".into(), 5),
            (&w.admin, "job list --state nope".into(), 5),
            (&w.admin, "job list --limit 0".into(), 5),
            (&vera, "host reconcile --no-wait".into(), 6),
        ];
        for (actor, line, exit) in &cases {
            let out = w.run(actor, line).await;
            assert_eq!(
                out.exit,
                *exit,
                "{} {line}: {}",
                actor.user,
                out.stderr_text()
            );
        }
        let ids = |list: &Value| -> Vec<i64> {
            list.as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_i64().unwrap())
                .collect()
        };
        assert_eq!(ids(&w.json(&vera, "job list").await), [acme], "{}", t.name);
        // The world's seeded site brought a `site.apply` job of its own.
        let all = w.json(&w.admin, "job list --kind test.job").await;
        assert_eq!(ids(&all), [platform, beta, acme]);
        let cancelled = w.json(&w.admin, "job list --state cancelled").await;
        assert_eq!(ids(&cancelled), [platform]);
        assert_eq!(
            ids(&w.json(&w.admin, "job list --limit 1").await),
            [platform]
        );
        let shown = w.json(&vera, &format!("job show {acme}")).await;
        assert_eq!(shown["state"], "queued");
        assert_eq!(shown["tenant"], "acme");
        assert_eq!(shown["created_by"], "oscar");
        assert_eq!(shown["attempts"], 0);
        let platform_job = w.json(&w.admin, &format!("job show {platform}")).await;
        assert_eq!(platform_job["tenant"], Value::Null);
        assert_eq!(platform_job["state"], "cancelled");

        let queued = w.json(&w.admin, "host reconcile --no-wait").await;
        assert_eq!(queued["kind"], "host.reconcile");
        assert_eq!(queued["state"], "queued");
        let out = w.run(&w.admin, "host reconcile --no-wait").await;
        assert_eq!(out.exit, 0);
        assert!(
            out.stdout_text().trim().parse::<i64>().is_ok(),
            "{}",
            out.stdout_text()
        );

        for action in ["job.enqueue", "job.cancel", "job.retry"] {
            let rows = w
                .json(&w.admin, &format!("audit list --action {action}"))
                .await;
            assert!(!rows.as_array().unwrap().is_empty(), "{action}");
        }
        // The acme operator sees its tenant's job rows in the trail scope of its role.
        t.finish().await;
    }
}

/// Collects `job watch`'s progress lines.
struct WatchIo {
    stderr: Vec<String>,
}

impl command::CommandIo for WatchIo {
    fn has_tty(&self) -> bool {
        false
    }
    async fn read_stdin(&mut self, _limit: usize) -> vipanel::error::Result<Vec<u8>> {
        Ok(Vec::new())
    }
    async fn confirm(&mut self, _prompt: &str) -> vipanel::error::Result<bool> {
        Ok(false)
    }
    async fn stream_stderr(&mut self, stderr: Vec<u8>) -> vipanel::error::Result<()> {
        self.stderr.push(String::from_utf8(stderr).unwrap());
        Ok(())
    }
    async fn stopped(&mut self) {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
}

#[tokio::test]
async fn job_watch_ends_with_the_jobs_outcome() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await.with_fast_jobs(1, 1);
        let oscar = w.actor("oscar").await;
        let due = |payload: Value| vipanel::service::JobRequest {
            kind: "test.job".into(),
            tenant_id: Some(oscar.tenant_id),
            payload,
            idempotency_key: None,
            run_at: None,
            node: None,
        };
        let pool = w.services.start_job_workers();
        let watch = |id: i64| {
            let w = &w;
            let oscar = oscar.clone();
            async move {
                let mut io = WatchIo { stderr: Vec::new() };
                let out = w
                    .run_io(&oscar, &format!("job watch {id} -o json"), &mut io)
                    .await;
                let job: Value = serde_json::from_slice(&out.stdout).unwrap();
                (out.exit, job, io.stderr.concat())
            }
        };
        let ok = w
            .services
            .job_enqueue(&oscar, due(serde_json::json!({"n": 1})));
        let ok = ok.await.unwrap().id;
        let (exit, job, progress) = watch(ok).await;
        assert_eq!(exit, 0, "{}: {job}", t.name);
        assert_eq!(job["state"], "succeeded");
        assert_eq!(job["result"]["echo"]["n"], 1);
        assert_eq!(job["progress"], 100);
        assert!(progress.contains("succeeded"), "{progress}");

        let fail = w
            .services
            .job_enqueue(&oscar, due(serde_json::json!({"fail": true})));
        let (exit, job, _) = watch(fail.await.unwrap().id).await;
        assert_eq!(exit, 8, "{job}");
        assert_eq!(job["state"], "failed");
        assert_eq!(job["error"], "asked to fail");

        let slow = w
            .services
            .job_enqueue(&oscar, due(serde_json::json!({"sleep_ms": 5000})));
        let (exit, job, _) = watch(slow.await.unwrap().id).await;
        assert_eq!(exit, 8, "{job}");
        assert!(
            job["error"].as_str().unwrap().contains("timed out"),
            "{job}"
        );

        // Cancelled at a checkpoint while running.
        let looping = w
            .services
            .job_enqueue(
                &oscar,
                due(serde_json::json!({"until_cancelled": true, "n": 2})),
            )
            .await
            .unwrap()
            .id;
        let cancel = async {
            loop {
                let job = w.json(&oscar, &format!("job show {looping}")).await;
                if job["message"] == "looping" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            w.run(&oscar, &format!("job cancel {looping} --yes")).await
        };
        let ((exit, job, _), cancelled) = tokio::join!(watch(looping), cancel);
        assert_eq!(cancelled.exit, 0, "{}", cancelled.stderr_text());
        assert_eq!(exit, 4, "{job}");
        assert_eq!(job["state"], "cancelled");

        // A caller that cannot stream is told so.
        let out = w.run(&oscar, &format!("job watch {ok}")).await;
        assert_eq!(out.exit, 2, "{}", out.stderr_text());
        pool.shutdown(std::time::Duration::from_secs(5)).await;
        t.finish().await;
    }
}

/// A daemon that stops mid-job (its shutdown grace over) puts the job back in the queue at
/// once (no backoff; the interrupted attempt counted), and the next pool runs it to its end. (A daemon
/// that dies leaves its job to the reaper: `tests/e2e_jobs.rs`, `tests/e2e_sites.rs`.)
#[tokio::test]
async fn a_job_stopped_by_a_shutdown_is_queued_again_at_once() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await.with_fast_jobs(60, 2);
        let oscar = w.actor("oscar").await;
        let first = w.services.start_job_workers();
        let hold = tempfile::NamedTempFile::new().unwrap();
        let request = vipanel::service::JobRequest {
            kind: "test.job".into(),
            tenant_id: Some(oscar.tenant_id),
            payload: serde_json::json!({"hang_while": hold.path().display().to_string()}),
            idempotency_key: Some("once".into()),
            run_at: None,
            node: None,
        };
        let id = w
            .services
            .job_enqueue(&oscar, request.clone())
            .await
            .unwrap()
            .id;
        let again = w.services.job_enqueue(&oscar, request).await.unwrap().id;
        assert_eq!(again, id, "same idempotency key, same job");
        loop {
            let job = w.json(&oscar, &format!("job show {id}")).await;
            if job["message"] == "half way" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // No grace: the job is stopped mid-way and put back.
        first.shutdown(std::time::Duration::ZERO).await;
        let left = w.json(&oscar, &format!("job show {id}")).await;
        assert_eq!(left["state"], "queued", "{}: {left}", t.name);
        assert_eq!(left["attempts"], 1, "the stopped attempt counts: {left}");
        assert_eq!(left["worker"], Value::Null, "{left}");
        assert_eq!(
            left["message"], "stopped by a daemon shutdown; queued again",
            "{left}"
        );
        drop(hold);
        let second = w.services.start_job_workers();
        let mut io = WatchIo { stderr: Vec::new() };
        let out = w
            .run_io(&oscar, &format!("job watch {id} -o json"), &mut io)
            .await;
        let job: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.exit, 0, "{job}");
        assert_eq!(
            job["attempts"], 2,
            "the stopped attempt and the one that ended"
        );
        assert_eq!(job["state"], "succeeded");
        second.shutdown(std::time::Duration::from_secs(5)).await;
        t.finish().await;
    }
}

/// Adds a server of tenant `tenant` (cloud servers have no command yet).
async fn insert_tenant_server(db: &vipanel::store::Db, tenant: &str, name: &str) -> i64 {
    let tenant_id = db.tenant_by_name(tenant).await.unwrap().unwrap().id;
    let sql = "INSERT INTO servers (tenant_id, name, provider, status, created_at)
               VALUES ($1, $2, 'hetzner', 'running', $3) RETURNING id";
    let now = vipanel::store::now();
    match db {
        vipanel::store::Db::Sqlite(pool) => sqlx::query_scalar(sql)
            .bind(tenant_id)
            .bind(name)
            .bind(now)
            .fetch_one(pool)
            .await
            .unwrap(),
        vipanel::store::Db::Postgres(pool) => sqlx::query_scalar(sql)
            .bind(tenant_id)
            .bind(name)
            .bind(now)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

const METRIC_FIELDS: &[&str] = &[
    "at",
    "resolution",
    "samples",
    "cpu_pct",
    "load1",
    "load5",
    "load15",
    "mem_used_bytes",
    "mem_total_bytes",
    "disk_used_bytes",
    "disk_total_bytes",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
];

#[tokio::test]
async fn metrics_command_and_live_samples_in_server_views() {
    use vipanel::domain::MetricValues;
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let a = &w.admin;
        let db = &w.services.db;
        let local = db.local_server_id().await.unwrap().unwrap();
        let betabox = insert_tenant_server(db, "beta", "betabox").await;
        let now = vipanel::store::now().timestamp_millis();
        let values = |i: i64| MetricValues {
            cpu_pct: Some(10.0 * i as f64),
            load1: Some(1.25),
            load5: Some(1.0),
            load15: Some(0.75),
            mem_used_bytes: Some(1 << 30),
            mem_total_bytes: Some(4 << 30),
            disk_used_bytes: Some(5 << 30),
            disk_total_bytes: Some(20 << 30),
            net_rx_bytes_per_s: Some(1234.5),
            net_tx_bytes_per_s: Some(99.0),
        };
        // Five samples, 10 s apart, the newest 2 s ago; an hour of older ones, one a minute.
        for i in 1..=5 {
            db.insert_metric_sample(local, now - 2_000 - (5 - i) * 10_000, &values(i))
                .await
                .unwrap();
        }
        for minute in 10..70 {
            db.insert_metric_sample(local, now - minute * 60_000, &values(0))
                .await
                .unwrap();
        }
        db.insert_metric_sample(betabox, now - 1_000, &values(2))
            .await
            .unwrap();

        // Every point of a short range, oldest first, with all its fields.
        let points = w.json(a, "metrics local --since 5m").await;
        let points = points.as_array().unwrap();
        assert_eq!(points.len(), 5, "{}: {points:?}", t.name);
        let keys: Vec<&str> = points[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, METRIC_FIELDS);
        let cpu: Vec<f64> = points
            .iter()
            .map(|p| p["cpu_pct"].as_f64().unwrap())
            .collect();
        assert_eq!(cpu, [10.0, 20.0, 30.0, 40.0, 50.0]);
        assert_eq!(points[0]["resolution"], "raw");
        assert_eq!(points[0]["mem_total_bytes"], 4_i64 << 30);
        assert!(chrono::DateTime::parse_from_rfc3339(points[0]["at"].as_str().unwrap()).is_ok());
        // --step averages: one minute holds all five (or they straddle two minutes).
        let coarse = w.json(a, "metrics local --since 5m --step 1m").await;
        let coarse = coarse.as_array().unwrap();
        let samples: i64 = coarse.iter().map(|p| p["samples"].as_i64().unwrap()).sum();
        assert_eq!((samples, coarse.len() <= 2), (5, true), "{coarse:?}");
        // The default range is an hour.
        let hour = w.json(a, "metrics local --step 1h").await;
        let total: i64 = hour
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["samples"].as_i64().unwrap())
            .sum();
        assert_eq!(total, 5 + 50, "{}", t.name);

        // Longer ranges read the 5-minute roll-ups.
        w.services
            .metrics_maintenance(vipanel::store::now())
            .await
            .unwrap();
        let days = w.json(a, "metrics local --since 2d").await;
        let days = days.as_array().unwrap();
        assert!(!days.is_empty(), "{}", t.name);
        assert!(days.iter().all(|p| p["resolution"] == "5m"), "{days:?}");
        // Two days in about 300 points: 576 s, rounded up to whole 5-minute buckets (600 s).
        for point in days {
            let at = chrono::DateTime::parse_from_rfc3339(point["at"].as_str().unwrap()).unwrap();
            assert_eq!(at.timestamp() % 600, 0, "{point}");
        }

        // server list|show carry the newest sample.
        let servers = w.json(a, "server list").await;
        let l = servers
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "local")
            .unwrap()
            .clone();
        assert_eq!(
            (l["cpu_pct"].as_f64(), l["load1"].as_f64()),
            (Some(50.0), Some(1.25))
        );
        assert_eq!(
            (&l["mem_used_bytes"], &l["disk_total_bytes"]),
            (&Value::from(1_i64 << 30), &Value::from(20_i64 << 30))
        );
        let sampled = chrono::DateTime::parse_from_rfc3339(l["sampled_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        assert_eq!(sampled, now - 2_000);
        let shown = w.json(a, "server show betabox").await;
        assert_eq!(shown["cpu_pct"].as_f64(), Some(20.0));
        let table = w.run(a, "server list").await;
        assert!(
            table.stdout_text().contains("CPU PCT"),
            "{}",
            table.stdout_text()
        );
        let table = w.run(a, "metrics local --since 5m").await;
        assert_eq!(table.exit, 0);
        assert_eq!(table.stdout_text().lines().count(), 6);

        // Who may read them: as `server show`. A tenant's server is hidden from others.
        let (vera, olive, bert) = (
            w.actor("vera").await,
            w.actor("olive").await,
            w.actor("bert").await,
        );
        let cases: Vec<(&Actor, &str, u8)> = vec![
            (&vera, "metrics local", 0),
            (&olive, "metrics local --since 1d --step 1h", 0),
            (&bert, "metrics betabox", 0),
            (&olive, "metrics betabox", 3),
            (&vera, "metrics betabox", 3),
            (a, "metrics betabox", 0),
            (a, "metrics nowhere", 3),
            (a, "metrics 'bad name!'", 3),
            (a, "metrics local --since 1y", 5),
            (a, "metrics local --since 0s", 5),
            (a, "metrics local --step 0m", 5),
            (a, "metrics local --step soon", 5),
            (a, "metrics local --since 2w --step 1s", 5),
            (a, "metrics", 2),
        ];
        for (actor, line, code) in cases {
            let out = w.run(actor, line).await;
            assert_eq!(
                out.exit,
                code,
                "{} as {}: {line}: {}",
                t.name,
                actor.user,
                out.stderr_text()
            );
        }
        let hidden = w.run(&olive, "metrics betabox -o json").await;
        let error: Value = serde_json::from_slice(&hidden.stderr).unwrap();
        let missing = w.run(&olive, "metrics nowhere -o json").await;
        let missing: Value = serde_json::from_slice(&missing.stderr).unwrap();
        assert_eq!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .replace("betabox", "X"),
            missing["error"]["message"]
                .as_str()
                .unwrap()
                .replace("nowhere", "X"),
            "a hidden server reads as a missing one"
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn server_changes_check_roles_names_and_providers() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        // A cloud server of acme; no [providers.hetzner] token here: hetzner is unconfigured.
        insert_tenant_server(&w.services.db, "acme", "acmebox").await;
        let (oscar, vera, bert) = (
            w.actor("oscar").await,
            w.actor("vera").await,
            w.actor("bert").await,
        );
        let admin = w.admin.clone();
        let order = "--provider hetzner --type cx22 --location fsn1 --image ubuntu-24.04";
        let cases: Vec<(&Actor, String, u8)> = vec![
            (&vera, format!("server create web1 {order}"), 6),
            (&oscar, format!("server create Web_1 {order}"), 5),
            (&oscar, format!("server create web- {order}"), 5),
            (
                &oscar,
                format!("server create {} {order}", "a".repeat(64)),
                5,
            ),
            (
                &oscar,
                format!("server create web1 {order} --tenant beta"),
                6,
            ),
            (
                &oscar,
                "server create web1 --provider hetzner --type 'c x' --location fsn1 --image u"
                    .into(),
                5,
            ),
            // Not configured: exit 5 naming those that are.
            (&oscar, format!("server create web1 {order}"), 5),
            (
                &oscar,
                "server create web1 --provider local --type a --location b --image c".into(),
                5,
            ),
            (&oscar, "server create web1 --provider hetzner".into(), 2),
            (&vera, "server reboot acmebox".into(), 6),
            (&vera, "server power acmebox off".into(), 6),
            (&vera, "server resize acmebox cx32 --yes".into(), 6),
            (&vera, "server delete acmebox --yes".into(), 6),
            (&bert, "server reboot acmebox".into(), 3),
            (&oscar, "server reboot acmebox".into(), 5),
            (&oscar, "server power acmebox sideways".into(), 2),
            (&oscar, "server reboot nosuch".into(), 3),
            (&oscar, "server power local off".into(), 6),
            (&admin, "server power local off".into(), 5),
            (&admin, "server delete local --yes".into(), 5),
            (&admin, "server resize local cx32 --yes".into(), 5),
            (&vera, "server types".into(), 5),
            (&vera, "server locations --provider local".into(), 0),
        ];
        for (actor, line, want) in cases {
            let out = w.run(actor, &line).await;
            assert_eq!(
                out.exit,
                want,
                "{} `{line}`: {}",
                actor.user,
                out.stderr_text()
            );
        }
        let out = w.run(&oscar, &format!("server create web1 {order}")).await;
        assert!(
            out.stderr_text().contains("configured: local"),
            "{}",
            out.stderr_text()
        );
        let out = w.run(&admin, "server power local off").await;
        assert!(
            out.stderr_text().contains("panel host"),
            "{}",
            out.stderr_text()
        );
        // Nothing was written or queued by the refusals.
        let servers = w.json(&admin, "server list").await;
        assert_eq!(names(&servers, "name").len(), 2, "{servers}");
        let jobs = w.json(&admin, "job list").await;
        let server_jobs: Vec<&Value> = jobs
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"].as_str().is_some_and(|k| k.starts_with("server.")))
            .collect();
        assert!(server_jobs.is_empty(), "{jobs}");
        let types = w.json(&vera, "server images --provider local").await;
        assert_eq!(types, serde_json::json!([]));
        t.finish().await;
    }
}

#[tokio::test]
async fn metrics_rollup_runs_as_one_job_per_period() {
    use vipanel::domain::MetricValues;
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await.with_fast_jobs(30, 1);
        let a = &w.admin;
        let db = &w.services.db;
        let local = db.local_server_id().await.unwrap().unwrap();
        let now = vipanel::store::now();
        let values = MetricValues {
            cpu_pct: Some(25.0),
            ..MetricValues::default()
        };
        for minute in 10..70 {
            db.insert_metric_sample(local, now.timestamp_millis() - minute * 60_000, &values)
                .await
                .unwrap();
        }
        // Two nodes enqueueing the same period make one job.
        let first = w.services.enqueue_metrics_rollup(now).await.unwrap();
        let again = w.services.enqueue_metrics_rollup(now).await.unwrap();
        assert_eq!(first.id, again.id, "{}", t.name);
        assert_eq!(first.kind, vipanel::service::METRICS_ROLLUP);
        let period = w.services.config.metrics.rollup_interval_secs as i64;
        let next = now + chrono::Duration::seconds(period);
        let other = w.services.enqueue_metrics_rollup(next).await.unwrap();
        assert_ne!(other.id, first.id);

        let pool = w.services.start_job_workers();
        let watch = |id: i64| {
            let w = &w;
            async move {
                let mut io = WatchIo { stderr: Vec::new() };
                let out = w
                    .run_io(&w.admin, &format!("job watch {id} -o json"), &mut io)
                    .await;
                serde_json::from_slice::<Value>(&out.stdout).unwrap()
            }
        };
        let done = watch(first.id).await;
        assert_eq!(done["state"], "succeeded", "{}: {done}", t.name);
        assert!(done["result"]["rolled_up"].as_u64() > Some(0), "{done}");
        assert_eq!(done["tenant"], Value::Null, "a platform job: {done}");
        let listed = w.json(a, "job list --kind metrics.rollup").await;
        assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
        let days = w.json(a, "metrics local --since 2d").await;
        let days = days.as_array().unwrap();
        assert!(!days.is_empty(), "{}", t.name);
        assert!(days.iter().all(|p| p["resolution"] == "5m"), "{days:?}");
        assert!(
            days.iter().all(|p| p["cpu_pct"].as_f64() == Some(25.0)),
            "{days:?}"
        );
        // The next period's job runs too (roll-ups are idempotent: it only recomputes).
        let second = watch(other.id).await;
        assert_eq!(second["state"], "succeeded", "{second}");
        pool.shutdown(std::time::Duration::from_secs(5)).await;
    }
}
/// A second pool on the same database: what `vipanel admin` opens in its own process.
async fn second_pool(db: &vipanel::store::Db) -> vipanel::store::Db {
    use vipanel::store::Db;
    match db {
        Db::Sqlite(pool) => Db::Sqlite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with((*pool.connect_options()).clone())
                .await
                .unwrap(),
        ),
        Db::Postgres(pool) => Db::Postgres(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect_with((*pool.connect_options()).clone())
                .await
                .unwrap(),
        ),
    }
}

/// Polls `check` every few ms until it holds, for at most `within`.
async fn eventually<F, Fut>(within: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// The dashboard cache: hits answer without the database; a change in this process is seen by
/// the next call; a change written through another `Services` on the same database (as
/// `vipanel admin` does) within a bounded wait; a change in one tenant leaves another's entry.
#[tokio::test]
async fn the_dashboard_cache_follows_changes_here_and_elsewhere() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let cache = w.services.cache.clone();
        let watcher = w.services.start_cache_watcher();
        let within = std::time::Duration::from_secs(5);
        assert!(eventually(within, || async { cache.is_live() }).await);
        let olive = w.actor("olive").await;
        let bert = w.actor("bert").await;
        let oscar = w.actor("oscar").await;
        let dash = |actor: &Actor| {
            let actor = actor.clone();
            let services = w.services.clone();
            async move { services.dashboard(&actor).await.unwrap() }
        };

        // Miss, then hit with the same answer; an operator's entry is its own (own keys).
        let before = cache.stats();
        let first = dash(&olive).await;
        let again = dash(&olive).await;
        assert_eq!(first.sites, again.sites);
        let after = cache.stats();
        assert_eq!(after.misses, before.misses + 1, "{}", t.name);
        assert_eq!(after.hits, before.hits + 1, "{}", t.name);
        dash(&oscar).await;
        assert_eq!(
            cache.stats().misses,
            after.misses + 1,
            "operator: another key"
        );
        let beta = dash(&bert).await;
        assert_eq!(beta.sites, 1);
        let platform = dash(&w.admin).await;

        // A change in this process: seen by the next call, when the command has returned.
        let out = w
            .run(&w.admin, "site create a1.example --tenant acme")
            .await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());
        let acme = dash(&olive).await;
        assert_eq!(acme.sites, first.sites + 1, "{}", t.name);
        assert_eq!(acme.sites_by_status.get("active"), Some(&acme.sites));
        assert_eq!(dash(&w.admin).await.sites, platform.sites + 1);
        // Beta's entry was left alone: a hit.
        let hits = cache.stats().hits;
        assert_eq!(dash(&bert).await.sites, beta.sites);
        assert_eq!(
            cache.stats().hits,
            hits + 1,
            "beta's entry survived: {}",
            t.name
        );

        // Another process: a second pool and `Services`, running `vipanel admin`'s commands.
        let elsewhere = Services::new(second_pool(&t.db).await, w.services.config.clone());
        let argv = shell_words::split("site create b2.example --tenant beta").unwrap();
        let out = command::run(
            &elsewhere,
            &w.admin,
            &argv,
            &mut NoInput,
            &Invocation {
                prefix: "vipanel admin".into(),
            },
        )
        .await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());
        // Within a bounded wait, with the apply's outcome (a change mark, no audit row).
        let seen = eventually(within, || async {
            let d = dash(&bert).await;
            d.sites == 2 && d.sites_by_status.get("active") == Some(&2)
        })
        .await;
        assert!(seen, "{}: {:?}", t.name, dash(&bert).await);
        // Acme's entry was left alone.
        let hits = cache.stats().hits;
        assert_eq!(dash(&olive).await.sites, acme.sites);
        assert_eq!(
            cache.stats().hits,
            hits + 1,
            "acme's entry survived: {}",
            t.name
        );
        // A key added elsewhere reaches the owner's count.
        let keys = dash(&olive).await.keys;
        let argv = shell_words::split("key add --user olive").unwrap();
        let out = command::run(
            &elsewhere,
            &w.admin,
            &argv,
            &mut StdinBytes(KEY_NEW.into()),
            &Invocation {
                prefix: "vipanel admin".into(),
            },
        )
        .await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());
        let seen = eventually(within, || async { dash(&olive).await.keys == keys + 1 }).await;
        assert!(seen, "{}", t.name);

        watcher.abort();
        elsewhere.db.close().await;
        t.finish().await;
    }
}

#[tokio::test]
async fn ui_preferences_are_per_user_and_validated() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let (vera, olive) = (w.actor("vera").await, w.actor("olive").await);
        let shown = w.json(&vera, "ui show").await;
        assert_eq!(shown["theme"], "default", "[{}] {shown}", t.name);
        assert_eq!(shown["keymap"], "default");
        assert_eq!(shown["refresh_secs"], 5);
        assert_eq!(shown["bandwidth"], "normal");
        assert_eq!(
            shown["bindings"]["quit"],
            serde_json::json!(["q", "ctrl-c"])
        );
        assert_eq!(shown["warnings"], serde_json::json!([]));
        let settings: vipanel::domain::ui::UiSettings =
            serde_json::from_value(shown.clone()).expect("the TUI can read ui show -o json");
        assert_eq!(
            settings.styles.len(),
            vipanel::domain::ui::StyleName::ALL.len()
        );
        assert_eq!(
            settings.bindings.len(),
            vipanel::domain::ui::Action::ALL.len()
        );
        for line in [
            "ui theme dark",
            "ui keymap vim",
            "ui refresh 30",
            "ui bandwidth low",
        ] {
            let out = w.run(&vera, line).await;
            assert_eq!(out.exit, 0, "[{}] {line}: {}", t.name, out.stderr_text());
        }
        let shown = w.json(&vera, "ui show").await;
        assert_eq!(shown["theme"], "dark");
        assert_eq!(shown["keymap"], "vim");
        assert_eq!(shown["refresh_secs"], 30);
        assert_eq!(shown["bandwidth"], "low");
        assert_eq!(shown["bindings"]["down"], serde_json::json!(["j", "down"]));
        assert_eq!(
            shown["styles"]["selected"],
            serde_json::json!({"fg": "black", "bg": "cyan", "modifiers": ["bold"]})
        );
        let table = w.run(&vera, "ui show").await;
        assert!(
            table.stdout_text().contains("vim"),
            "{}",
            table.stdout_text()
        );
        assert!(!table.stdout_text().contains("bindings"));
        let other = w.json(&olive, "ui show").await;
        assert_eq!(
            (&other["theme"], &other["keymap"], &other["refresh_secs"]),
            (
                &Value::from("default"),
                &Value::from("default"),
                &Value::from(5)
            ),
            "another user is unaffected"
        );
        let themes = w.json(&vera, "ui theme list").await;
        assert_eq!(
            names(&themes, "name"),
            vec!["default", "dark", "light", "high-contrast", "mono"]
        );
        assert_eq!(themes[1]["selected"], true);
        assert_eq!(themes[1]["shipped"], true);
        assert_eq!(themes[1]["parent"], "default");
        assert_eq!(
            names(&w.json(&vera, "ui keymap ls").await, "name"),
            vec!["default", "vim", "emacs"]
        );
        for (line, want) in [
            ("ui theme nope", 3),
            ("ui keymap nope", 3),
            ("ui refresh 0", 5),
            ("ui refresh 99999", 5),
            ("ui refresh soon", 5),
            ("ui bandwidth medium", 5),
            ("ui theme", 2),
            ("ui theme dark light", 2),
            ("ui theme export nope", 3),
            ("ui theme remove dark --yes", 5),
            ("ui theme remove nope --yes", 3),
        ] {
            let out = w.run(&vera, line).await;
            assert_eq!(out.exit, want, "[{}] {line}: {}", t.name, out.stderr_text());
        }
        let unknown = w.run(&vera, "ui theme nope").await;
        assert!(
            unknown.stderr_text().contains("high-contrast"),
            "lists the available ones"
        );
        let exported = w.run(&vera, "ui keymap export vim").await;
        assert_eq!(exported.exit, 0);
        assert!(exported.stdout_text().contains("parent = \"default\""));
        let shown = w.json(&vera, "ui show").await;
        assert_eq!(shown["refresh_secs"], 30, "refused changes changed nothing");
        t.finish().await;
    }
}

const PARTIAL_THEME: &str = "description = \"mine\"\nparent = \"dark\"\n\n[styles]\nerror = { fg = \"#ff0000\", modifiers = [\"bold\", \"underlined\"] }\n";

#[tokio::test]
async fn ui_imports_are_validated_before_anything_is_stored() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let vera = w.actor("vera").await;
        let import = |line: &'static str, body: String| {
            let vera = vera.clone();
            let w = &w;
            async move {
                w.run_io(&vera, line, &mut StdinBytes(body.into_bytes()))
                    .await
            }
        };
        let out = import("ui theme import mine -o json", PARTIAL_THEME.into()).await;
        assert_eq!(out.exit, 0, "[{}] {}", t.name, out.stderr_text());
        let imported: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(imported["replaced"], false);
        assert_eq!(imported["parent"], "dark");
        assert_eq!(w.run(&vera, "ui theme mine").await.exit, 0);
        let shown = w.json(&vera, "ui show").await;
        assert_eq!(shown["theme"], "mine");
        assert_eq!(
            shown["styles"]["error"],
            serde_json::json!({"fg": "#ff0000", "bg": null, "modifiers": ["bold", "underlined"]})
        );
        assert_eq!(shown["styles"]["ok"]["fg"], "#a3be8c", "the rest from dark");
        assert_eq!(shown["themes"].as_array().unwrap().last().unwrap(), "mine");
        let again = import("ui theme import mine -o json", PARTIAL_THEME.into()).await;
        assert_eq!(again.exit, 0);
        let again: Value = serde_json::from_slice(&again.stdout).unwrap();
        assert_eq!(again["replaced"], true);
        let exported = w.run(&vera, "ui theme export mine").await;
        assert_eq!(exported.stdout_text(), PARTIAL_THEME);

        let conflict = "parent = \"vim\"\n[bindings]\ndelete = [\"j\"]\n";
        let out = import("ui keymap import clash", conflict.into()).await;
        assert_eq!(out.exit, 5, "[{}] {}", t.name, out.stderr_text());
        let message = out.stderr_text();
        for part in ["\"delete\"", "\"down\"", "key \"j\""] {
            assert!(message.contains(part), "{part} in {message}");
        }
        let json = import("ui keymap import clash -o json", conflict.into()).await;
        let err: Value = serde_json::from_slice(&json.stderr).unwrap();
        assert_eq!(err["error"]["code"], "invalid");
        let big = format!("parent = \"default\"\n#{}\n", "x".repeat(20 * 1024));
        let evil = [
            (
                "ui keymap import vim",
                "parent = \"default\"\n".to_owned(),
                5,
            ),
            ("ui theme import list", PARTIAL_THEME.to_owned(), 5),
            ("ui theme import Bad_Name", PARTIAL_THEME.to_owned(), 5),
            ("ui theme import big", big, 5),
            (
                "ui theme import bad",
                "[styles]\ntext = { fg = \"purple\" }\n".into(),
                5,
            ),
            (
                "ui theme import bad",
                "parent = \"default\"\n[styles]\nshiny = {}\n".into(),
                5,
            ),
            ("ui theme import bad", "parent = \"bad\"\n".into(), 5),
            ("ui keymap import bad", "parent = \"x\"\n".into(), 3),
            (
                "ui keymap import bad",
                "parent = \"default\"\n[bindings]\nfly = \"f\"\n".into(),
                5,
            ),
            ("ui keymap import bad", String::new(), 2),
            // mine's parent is dark: replacing it with a file of a cycle breaks nothing else,
            // but the file itself is refused.
            ("ui theme import mine", "parent = \"mine\"\n".into(), 5),
        ];
        for (line, body, want) in evil {
            let out = import(line, body).await;
            assert_eq!(out.exit, want, "[{}] {line}: {}", t.name, out.stderr_text());
        }
        let big = import("ui theme import big", format!("#{}", "x".repeat(20 * 1024))).await;
        assert!(
            big.stderr_text().contains("16 KiB"),
            "{}",
            big.stderr_text()
        );
        assert_eq!(
            names(&w.json(&vera, "ui keymap list").await, "name"),
            vec!["default", "vim", "emacs"],
            "nothing stored"
        );
        assert_eq!(
            names(&w.json(&vera, "ui theme list").await, "name"),
            vec!["default", "dark", "light", "high-contrast", "mono", "mine"]
        );
        assert_eq!(
            w.run(&vera, "ui theme export mine").await.stdout_text(),
            PARTIAL_THEME
        );
        // Children keep resolving: a replaced parent that would break one is refused.
        let base = "parent = \"default\"\n[bindings]\nquit = \"q\"\n";
        assert_eq!(import("ui keymap import base", base.into()).await.exit, 0);
        let child = "parent = \"base\"\n[bindings]\nhelp = \"h\"\n";
        assert_eq!(import("ui keymap import child", child.into()).await.exit, 0);
        let breaking = "parent = \"default\"\n[bindings]\nquit = \"h\"\n";
        let out = import("ui keymap import base", breaking.into()).await;
        assert_eq!(out.exit, 5);
        assert!(
            out.stderr_text().contains("\"child\""),
            "{}",
            out.stderr_text()
        );
        assert_eq!(
            w.run(&vera, "ui keymap export base").await.stdout_text(),
            base
        );
        let olive = w.actor("olive").await;
        assert_eq!(
            w.run(&olive, "ui theme mine").await.exit,
            3,
            "another user's theme is not there"
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn ui_remove_resets_the_selection_and_changes_are_audited() {
    for t in db_support::all().await {
        let w = World::new(t.db.clone()).await;
        let vera = w.actor("vera").await;
        let keymap = "parent = \"emacs\"\n[bindings]\nquit = [\"ctrl-x\"]\n";
        let out = w
            .run_io(
                &vera,
                "ui keymap import mine",
                &mut StdinBytes(keymap.into()),
            )
            .await;
        assert_eq!(out.exit, 0, "[{}] {}", t.name, out.stderr_text());
        assert_eq!(w.run(&vera, "ui keymap mine").await.exit, 0);
        assert_eq!(w.run(&vera, "ui refresh 2").await.exit, 0);
        assert_eq!(w.run(&vera, "ui bandwidth normal").await.exit, 0);
        assert_eq!(w.run(&vera, "ui theme mono").await.exit, 0);
        let shown = w.json(&vera, "ui show").await;
        assert_eq!(shown["bindings"]["quit"], serde_json::json!(["ctrl-x"]));
        assert_eq!(
            shown["bindings"]["back"],
            serde_json::json!(["esc", "ctrl-g"])
        );
        assert_eq!(
            w.run(&vera, "ui keymap remove mine").await.exit,
            2,
            "no terminal to ask on"
        );
        let out = w.run(&vera, "ui keymap remove mine --yes -o json").await;
        assert_eq!(out.exit, 0, "{}", out.stderr_text());
        let removed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(removed["selection_reset"], true);
        let shown = w.json(&vera, "ui show").await;
        assert_eq!(shown["keymap"], "default");
        assert_eq!(shown["theme"], "mono", "the theme is another preference");
        assert_eq!(shown["refresh_secs"], 2);
        assert_eq!(w.run(&vera, "ui theme nope").await.exit, 3);
        let rows = w.services.db.audit_rows(None, None, 100).await.unwrap();
        let ui: Vec<(&str, &str, &str)> = rows
            .iter()
            .rev()
            .filter(|r| r.action.starts_with("ui."))
            .map(|r| (r.action.as_str(), r.target.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(
            ui,
            vec![
                ("ui.import", "keymap:mine", "ok"),
                ("ui.keymap", "vera", "ok"),
                ("ui.refresh", "vera", "ok"),
                ("ui.bandwidth", "vera", "ok"),
                ("ui.theme", "vera", "ok"),
                ("ui.remove", "keymap:mine", "ok"),
                ("ui.theme", "vera", "not_found"),
            ],
            "[{}]",
            t.name
        );
        assert!(
            rows.iter()
                .all(|r| !r.action.starts_with("ui.") || r.actor == "vera")
        );
        // The local administrator has defaults and nothing to change.
        let shown = w.json(&w.admin, "ui show").await;
        assert_eq!(shown["theme"], "default");
        assert_eq!(w.run(&w.admin, "ui theme dark").await.exit, 2);
        t.finish().await;
    }
}

/// `health.check` on servers: a running cloud server whose address accepts connections at
/// `health.server_port` is `ok`, one whose address refuses is `failing`, a stopped one is not
/// probed, and `local` is `ok`. Loopback addresses only (127.0.0.2 refuses: nothing listens on
/// it). Periods: two nodes enqueueing the same one get one job.
#[tokio::test]
async fn health_checks_mark_servers_reachable_or_failing() {
    use vipanel::store::{NewServer, ServerUpdate};
    for t in db_support::all().await {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut w = World::new(t.db.clone()).await.with_fast_jobs(30, 1);
        let mut config = (*w.services.config).clone();
        config.health.server_port = port;
        config.health.timeout_ms = 2000;
        w.services = Services::new(w.services.db.clone(), Arc::new(config));
        let db = &w.services.db;
        let system = w.services.system_tenant_id().await.unwrap();
        let mut ids = Vec::new();
        for (name, ip, status) in [
            ("up1", "127.0.0.1", "running"),
            ("down1", "127.0.0.2", "running"),
            ("off1", "127.0.0.1", "off"),
        ] {
            let mut tx = db.begin().await.unwrap();
            let id = tx
                .insert_server(&NewServer {
                    tenant_id: system,
                    name,
                    provider: "hetzner",
                    status,
                    server_type: "cx22",
                    location: "fsn1",
                    image: "debian-12",
                })
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let update = ServerUpdate {
                provider_id: None,
                status: None,
                server_type: None,
                ipv4: Some(ip),
                ipv6: None,
            };
            db.update_server(id, &update).await.unwrap();
            ids.push(id);
        }
        let now = vipanel::store::now();
        let job = w
            .services
            .enqueue_periodic(vipanel::service::HEALTH_CHECK, 60, now)
            .await
            .unwrap();
        let again = w
            .services
            .enqueue_periodic(vipanel::service::HEALTH_CHECK, 60, now)
            .await
            .unwrap();
        assert_eq!(job.id, again.id, "one job per period ({})", t.name);
        let pool = w.services.start_job_workers();
        let mut io = WatchIo { stderr: Vec::new() };
        let out = w
            .run_io(&w.admin, &format!("job watch {} -o json", job.id), &mut io)
            .await;
        let done: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(done["state"], "succeeded", "{}: {done}", t.name);
        assert_eq!(
            done["result"]["servers_failing"],
            serde_json::json!(["down1"]),
            "{done}"
        );
        let show = |name: &str| {
            let w = &w;
            let name = name.to_owned();
            async move { w.json(&w.admin, &format!("server show {name}")).await }
        };
        let up = show("up1").await;
        assert_eq!(up["health"], "ok", "{}: {up}", t.name);
        assert!(
            up["health_detail"]
                .as_str()
                .is_some_and(|d| d.contains("accepted a connection")),
            "{up}"
        );
        let down = show("down1").await;
        assert_eq!(down["health"], "failing", "{}: {down}", t.name);
        assert!(
            show("off1").await["health"].is_null(),
            "a stopped server is not probed"
        );
        assert_eq!(show("local").await["health"], "ok");
        pool.shutdown(std::time::Duration::from_secs(1)).await;
        drop(listener);
        t.finish().await;
    }
}
