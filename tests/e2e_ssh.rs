//! End to end over SSH: the real `vipanel serve` (port 0, temporary data dir) driven by the real
//! OpenSSH client. Every test starts its own daemon; see `tests/support/mod.rs`.
//!
//! Tests skip (with a printed reason) when `ssh`/`ssh-keygen` are missing, unless
//! `VIPANEL_REQUIRE_SERVICES=1`.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use support::{Daemon, Key, PANEL};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The values of `field` in a JSON array of objects.
#[track_caller]
fn field_values(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {list}"))
        .iter()
        .map(|item| {
            item.get(field)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("item without string field {field:?}: {item}"))
                .to_owned()
        })
        .collect()
}

/// The domains of `site list -o json` as `key` sees them.
fn site_domains(d: &Daemon, key: &Key) -> Vec<String> {
    field_values(&d.ssh_json(key, &["site", "list"]), "domain")
}

/// Site domains as the local admin sees them (independent of any SSH identity).
fn stored_sites(d: &Daemon) -> Vec<String> {
    field_values(&d.admin_json(&["site", "list"]), "domain")
}

fn stored_tenants(d: &Daemon) -> Vec<String> {
    field_values(&d.admin_json(&["tenant", "list"]), "name")
}

fn stored_users(d: &Daemon) -> Vec<String> {
    field_values(&d.admin_json(&["user", "list"]), "name")
}

/// The keys of a JSON object, in order.
#[track_caller]
fn keys_of(object: &Value) -> Vec<String> {
    object
        .as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, got {object}"))
        .keys()
        .cloned()
        .collect()
}

/// Asserts a JSON object has exactly `fields`, in this (documented) order.
#[track_caller]
fn assert_fields(object: &Value, fields: &[&str]) {
    assert_eq!(keys_of(object), fields, "fields of {object}");
}

// Documented in docs/commands.md, "JSON fields", in this order.
const WHOAMI_FIELDS: &[&str] = &["user", "tenant", "role", "key_fingerprint", "source"];
const TENANT_FIELDS: &[&str] = &["name", "users", "sites", "created_at"];
const USER_FIELDS: &[&str] = &["name", "tenant", "role", "locked", "keys", "created_at"];
const KEY_FIELDS: &[&str] = &[
    "fingerprint",
    "user",
    "algorithm",
    "comment",
    "created_at",
    "last_used_at",
    "automation",
    "allowed_from",
    "max_role",
];
const SITE_FIELDS: &[&str] = &[
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
    "health",
    "health_detail",
    "health_at",
    "created_at",
    "updated_at",
];
const SERVER_FIELDS: &[&str] = &[
    "name",
    "provider",
    "status",
    "type",
    "location",
    "image",
    "ipv4",
    "ipv6",
    "tenant",
    "sites",
    "created_at",
    "health",
    "health_detail",
    "health_at",
    "sampled_at",
    "cpu_pct",
    "load1",
    "mem_used_bytes",
    "mem_total_bytes",
    "disk_used_bytes",
    "disk_total_bytes",
];

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// Asserts `field` of `object` is an RFC 3339 time.
#[track_caller]
fn assert_time(object: &Value, field: &str) {
    let text = object[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {object}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{field} = {text:?} is not RFC 3339: {e}"));
    assert!(text.ends_with('Z'), "{field} = {text:?} is not in UTC (Z)");
}

/// Asserts the JSON error object of a failed `-o json` command: `{"error":{"code","message"}}`.
#[track_caller]
fn assert_json_error(run: &support::Run, exit: i32, code: &str) {
    run.expect(exit);
    assert!(
        run.stdout.is_empty(),
        "`{}`: stdout should be empty on error, got {:?}",
        run.what,
        run.stdout
    );
    let err = run.stderr_json();
    assert_fields(&err, &["error"]);
    assert_fields(&err["error"], &["code", "message"]);
    assert_eq!(err["error"]["code"], code, "`{}`: {err}", run.what);
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{err}"
    );
}

/// The users of one tenant, each with its own key.
struct Team {
    owner: Key,
    operator: Key,
    viewer: Key,
}

/// Tenant `acme` with users `acme-owner`, `acme-operator`, `acme-viewer`, and the site
/// `existing.acme.test` created by the admin in that tenant.
fn acme(d: &Daemon) -> Team {
    let team = Team {
        owner: d.user("acme", "acme-owner", "owner"),
        operator: d.user("acme", "acme-operator", "operator"),
        viewer: d.user("acme", "acme-viewer", "viewer"),
    };
    d.panel(
        &d.admin_key,
        &["site", "create", "existing.acme.test", "--tenant", "acme"],
    )
    .expect(0);
    team
}

/// Runs `words` as `panel@` with `key` and asserts the exit code.
#[track_caller]
fn expect(d: &Daemon, key: &Key, words: &[&str], code: i32) -> support::Run {
    let run = d.panel(key, words);
    run.expect(code);
    run
}

/// The commands every non-admin is refused with `--tenant`, even naming its own tenant.
#[track_caller]
fn tenant_flag_is_forbidden(d: &Daemon, key: &Key) {
    for words in [
        &["site", "list", "--tenant", "acme"][..],
        &["user", "list", "--tenant", "acme"],
        &["site", "create", "flag.acme.test", "--tenant", "acme"],
        &[
            "user", "create", "flagged", "--role", "viewer", "--tenant", "acme",
        ],
    ] {
        let run = expect(d, key, words, 6);
        assert!(run.stderr.contains("--tenant"), "{run:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------------

#[test]
fn whoami_is_admin_for_bootstrap_key_over_panel_and_admin_logins() {
    let Some(d) = Daemon::start() else { return };
    for login in [PANEL, "admin"] {
        // Like whoami(1), the table form is the user name alone.
        let run = d.ssh(&d.admin_key, login, &["whoami"]);
        run.expect(0);
        assert_eq!(run.stdout, "admin\n", "login {login}: {run:?}");
        let run = d.ssh(&d.admin_key, login, &["whoami", "-o", "json"]);
        run.expect(0);
        let me = run.json();
        assert_eq!(me["user"], "admin", "login {login}");
        assert_eq!(me["tenant"], "system");
        assert_eq!(me["role"], "admin");
    }
}

#[test]
fn whoami_json_has_exactly_the_documented_fields_and_the_client_address() {
    let Some(d) = Daemon::start() else { return };
    let me = d.ssh_json(&d.admin_key, &["whoami"]);
    assert_fields(&me, WHOAMI_FIELDS);
    assert_eq!(me["key_fingerprint"], d.admin_key.fingerprint().as_str());
    let source: SocketAddr = me["source"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("source is not IP:PORT: {me}"));
    assert_eq!(source.ip().to_string(), "127.0.0.1");
    assert_ne!(source.port(), 0);
    assert_ne!(source.port(), d.port(), "source must be the client's port");
}

#[test]
fn unknown_key_is_refused_before_any_command_runs() {
    let Some(d) = Daemon::start() else { return };
    let stranger = d.new_key("stranger");
    for login in [PANEL, "admin"] {
        let run = d.ssh(&stranger, login, &["tenant", "create", "sneaky"]);
        run.expect(255);
        assert!(run.stderr.contains("Permission denied"), "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    assert!(!stored_tenants(&d).contains(&"sneaky".to_owned()));
    assert!(
        d.audit_rows()
            .iter()
            .all(|r| r.action != "tenant.create" && r.target != "sneaky"),
        "a refused login must not reach any command: {:?}",
        d.audit_rows()
    );
}

#[test]
fn too_many_refused_keys_close_the_connection_before_a_good_one_is_tried() {
    let Some(d) = Daemon::builder()
        .env("VIPANEL_LIMITS__MAX_AUTH_ATTEMPTS", "3")
        .env("VIPANEL_LIMITS__AUTH_REJECTION_MS", "10")
        .start()
    else {
        return;
    };
    let strangers: Vec<Key> = (0..4).map(|i| d.new_key(&format!("stranger{i}"))).collect();
    let whoami = support::remote_line(&["whoami"]);
    let mut options: Vec<String> = Vec::new();
    for key in &strangers[1..] {
        options.extend(["-i".to_owned(), key.private.display().to_string()]);
    }
    options.extend(["-i".to_owned(), d.admin_key.private.display().to_string()]);
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    // The good key comes fifth: the `none` probe and three refused keys use up the attempts.
    let run = d.ssh_with(&strangers[0], PANEL, &options, Some(&whoami), None);
    run.expect(255);
    assert!(
        run.stderr.contains("Too many authentication attempts"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "{run:?}");
    // One refused key before the good one is fine.
    let run = d.ssh_with(
        &strangers[0],
        PANEL,
        &["-i", &d.admin_key.private.display().to_string()],
        Some(&whoami),
        None,
    );
    run.expect(0);
}

#[test]
fn key_works_only_with_panel_or_its_owners_login_name() {
    let Some(d) = Daemon::start() else { return };
    let bob = d.user("acme", "bob", "viewer");
    // Bob's key under another user's name, and the admin's key under bob's name.
    d.ssh(&bob, "admin", &["whoami"]).expect(255);
    d.ssh(&d.admin_key, "bob", &["whoami"]).expect(255);
    // A login name nobody has.
    d.ssh(&d.admin_key, "nobody", &["whoami"]).expect(255);
    for login in ["bob", PANEL] {
        let run = d.ssh(&bob, login, &["whoami", "-o", "json"]);
        run.expect(0);
        let me = run.json();
        assert_eq!(me["user"], "bob", "login {login}");
        assert_eq!(me["tenant"], "acme");
        assert_eq!(me["role"], "viewer");
    }
}

#[test]
fn locked_user_cannot_log_in_until_unlocked() {
    let Some(d) = Daemon::start() else { return };
    let bob = d.user("acme", "bob", "operator");
    expect(&d, &d.admin_key, &["user", "lock", "bob"], 0);
    d.panel(&bob, &["whoami"]).expect(255);
    d.ssh(&bob, "bob", &["whoami"]).expect(255);
    expect(&d, &d.admin_key, &["user", "unlock", "bob"], 0);
    assert_eq!(d.ssh_json(&bob, &["whoami"])["user"], "bob");
}

#[test]
fn changes_to_a_user_apply_to_commands_on_its_open_connection() {
    let Some(d) = Daemon::start() else { return };
    let bob = d.user("acme", "bob", "operator");
    let conn = d.master(&bob, PANEL);
    let via = |words: &[&str]| {
        d.ssh_with(
            &bob,
            PANEL,
            &conn.options(),
            Some(&support::remote_line(words)),
            None,
        )
    };
    let first = via(&["whoami", "-o", "json"]);
    first.expect(0);
    let again = via(&["whoami", "-o", "json"]);
    again.expect(0);
    assert_eq!(
        first.json()["source"],
        again.json()["source"],
        "both commands ran on the same connection"
    );
    via(&["site", "create", "bob.acme.test"]).expect(0);
    // A new role applies to the next command, without logging in again.
    d.admin(&["user", "role", "bob", "viewer"]).expect(0);
    assert_eq!(via(&["whoami", "-o", "json"]).json()["role"], "viewer");
    via(&["site", "delete", "bob.acme.test", "--yes"]).expect(6);
    // Locking stops the open connection too.
    d.admin(&["user", "lock", "bob"]).expect(0);
    let locked = via(&["whoami", "-o", "json"]);
    assert_json_error(&locked, 7, "locked");
    d.admin(&["user", "unlock", "bob"]).expect(0);
    via(&["whoami"]).expect(0);
    // So does removing the key it logged in with.
    d.admin(&["key", "remove", &bob.fingerprint(), "--yes"])
        .expect(0);
    let removed = via(&["site", "list"]);
    removed.expect(7);
    assert_eq!(stored_sites(&d), vec!["bob.acme.test"]);
}

#[test]
fn key_add_from_stdin_then_the_new_key_logs_in() {
    let Some(d) = Daemon::start() else { return };
    // The admin adds a second key of its own from stdin (`ssh … key add < new.pub`).
    let second = d.new_key("admin-second");
    let run = d.ssh_stdin(
        &d.admin_key,
        PANEL,
        &["key", "add", "-o", "json"],
        second.public_bytes().as_slice(),
    );
    run.expect(0);
    assert_eq!(
        field_values(&run.json(), "fingerprint"),
        vec![second.fingerprint()]
    );
    assert_eq!(d.ssh_json(&second, &["whoami"])["user"], "admin");
    // Everyone manages its own keys: a viewer too.
    let viewer = d.user("acme", "vic", "viewer");
    let extra = d.new_key("vic-extra");
    d.ssh_stdin(
        &viewer,
        PANEL,
        &["key", "add"],
        extra.public_bytes().as_slice(),
    )
    .expect(0);
    let me = d.ssh_json(&extra, &["whoami"]);
    assert_eq!(
        (me["user"].as_str(), me["role"].as_str()),
        (Some("vic"), Some("viewer"))
    );
    assert_eq!(me["key_fingerprint"], extra.fingerprint().as_str());
    // ... and removes its own keys, but never its last one.
    let first = viewer.fingerprint();
    d.panel(&extra, &["key", "remove", &first, "--yes"])
        .expect(0);
    d.panel(&viewer, &["whoami"]).expect(255);
    let run = d.panel(&extra, &["key", "remove", &extra.fingerprint(), "--yes"]);
    run.expect(4);
    assert_eq!(d.ssh_json(&extra, &["whoami"])["user"], "vic");
}

#[test]
fn key_add_refuses_stdin_over_the_limit() {
    let Some(d) = Daemon::builder()
        .env("VIPANEL_LIMITS__MAX_STDIN_BYTES", "2000")
        .start()
    else {
        return;
    };
    let big = d.new_key("big");
    let mut input = big.public_bytes();
    input.extend(std::iter::repeat_n(b'#', 100_000));
    input.push(b'\n');
    let run = d.ssh_stdin(&d.admin_key, PANEL, &["key", "add", "-o", "json"], &input);
    assert_json_error(&run, 5, "invalid");
    d.panel(&big, &["whoami"]).expect(255);
    // Under the limit the same key goes in.
    d.ssh_stdin(&d.admin_key, PANEL, &["key", "add"], &big.public_bytes())
        .expect(0);
    assert_eq!(d.ssh_json(&big, &["whoami"])["user"], "admin");
}

#[test]
fn owner_adds_a_key_for_a_user_of_its_tenant_from_stdin() {
    let Some(d) = Daemon::start() else { return };
    let owner = d.user("acme", "alice", "owner");
    let operator = d.user("acme", "olga", "operator");
    let _bob = d.user("acme", "bob", "viewer");
    let _zed = d.user("globex", "zed", "viewer");
    let bob2 = d.new_key("bob2");
    let pubkey = bob2.public_bytes();
    // An operator may not manage another user's keys; another tenant's user is not found.
    d.ssh_stdin(&operator, PANEL, &["key", "add", "--user", "bob"], &pubkey)
        .expect(6);
    d.ssh_stdin(&owner, PANEL, &["key", "add", "--user", "zed"], &pubkey)
        .expect(3);
    d.ssh(&bob2, PANEL, &["whoami"]).expect(255);
    d.ssh_stdin(&owner, PANEL, &["key", "add", "--user", "bob"], &pubkey)
        .expect(0);
    let me = d.ssh_json(&bob2, &["whoami"]);
    assert_eq!(me["user"], "bob");
    d.ssh(&bob2, "bob", &["whoami"]).expect(0);
}

// ---------------------------------------------------------------------------------------------
// Roles and tenancy
// ---------------------------------------------------------------------------------------------

#[test]
fn owner_manages_sites_and_users_of_its_tenant_but_not_tenants() {
    let Some(d) = Daemon::start() else { return };
    let team = acme(&d);
    let k = &team.owner;
    assert_eq!(site_domains(&d, k), vec!["existing.acme.test"]);
    expect(&d, k, &["site", "show", "existing.acme.test"], 0);
    let site = d.ssh_json(k, &["site", "create", "owner.acme.test"]);
    assert_eq!(site["tenant"], "acme");
    expect(&d, k, &["site", "delete", "owner.acme.test", "--yes"], 0);
    let users = d.ssh_json(k, &["user", "list"]);
    assert_eq!(
        field_values(&users, "name")
            .into_iter()
            .collect::<BTreeSet<_>>(),
        set(&["acme-owner", "acme-operator", "acme-viewer"])
    );
    let created = d.ssh_json(k, &["user", "create", "newbie", "--role", "viewer"]);
    assert_eq!(created["tenant"], "acme");
    expect(&d, k, &["user", "show", "newbie"], 0);
    // An owner cannot hand out a role above its own, nor touch tenants.
    expect(&d, k, &["user", "create", "boss", "--role", "admin"], 6);
    expect(&d, k, &["tenant", "create", "other"], 6);
    expect(&d, k, &["tenant", "delete", "acme", "--yes"], 6);
    tenant_flag_is_forbidden(&d, k);
    assert_eq!(
        field_values(&d.ssh_json(k, &["tenant", "list"]), "name"),
        vec!["acme"]
    );
    assert!(!stored_tenants(&d).contains(&"other".to_owned()));
    assert!(!stored_users(&d).contains(&"boss".to_owned()));
}

#[test]
fn operator_manages_sites_but_not_users_or_tenants() {
    let Some(d) = Daemon::start() else { return };
    let team = acme(&d);
    let k = &team.operator;
    assert_eq!(site_domains(&d, k), vec!["existing.acme.test"]);
    expect(&d, k, &["site", "show", "existing.acme.test"], 0);
    let site = d.ssh_json(k, &["site", "create", "op.acme.test", "--php", "8.3"]);
    assert_eq!(
        (site["tenant"].as_str(), site["php"].as_str()),
        (Some("acme"), Some("8.3"))
    );
    expect(&d, k, &["site", "delete", "op.acme.test", "--yes"], 0);
    expect(&d, k, &["server", "list"], 0);
    expect(&d, k, &["user", "list"], 6);
    expect(&d, k, &["user", "create", "sneaky", "--role", "viewer"], 6);
    expect(&d, k, &["user", "show", "acme-viewer"], 6);
    // Permission before existence: the answer reveals nothing.
    expect(&d, k, &["user", "show", "nobody"], 6);
    expect(&d, k, &["key", "list", "--user", "acme-viewer"], 6);
    expect(&d, k, &["user", "lock", "acme-viewer"], 6);
    expect(&d, k, &["tenant", "create", "other"], 6);
    tenant_flag_is_forbidden(&d, k);
    // Its own record is readable.
    assert_eq!(
        d.ssh_json(k, &["user", "show", "acme-operator"])["role"],
        "operator"
    );
    assert_eq!(stored_sites(&d), vec!["existing.acme.test"]);
    assert!(!stored_users(&d).contains(&"sneaky".to_owned()));
}

#[test]
fn viewer_reads_but_changes_nothing() {
    let Some(d) = Daemon::start() else { return };
    let team = acme(&d);
    let k = &team.viewer;
    assert_eq!(site_domains(&d, k), vec!["existing.acme.test"]);
    expect(&d, k, &["site", "show", "existing.acme.test"], 0);
    expect(&d, k, &["dashboard"], 0);
    expect(&d, k, &["server", "list"], 0);
    let run = expect(&d, k, &["site", "create", "view.acme.test"], 6);
    assert!(run.stderr.contains("viewer"), "{run:?}");
    expect(&d, k, &["site", "delete", "existing.acme.test", "--yes"], 6);
    expect(&d, k, &["site", "delete", "missing.acme.test", "--yes"], 6);
    expect(&d, k, &["user", "list"], 6);
    expect(&d, k, &["user", "show", "acme-owner"], 6);
    expect(&d, k, &["user", "show", "nobody"], 6);
    assert_eq!(
        d.ssh_json(k, &["user", "show", "acme-viewer"])["role"],
        "viewer"
    );
    assert_eq!(
        field_values(&d.ssh_json(k, &["key", "list"]), "user"),
        vec!["acme-viewer"],
        "a viewer lists only its own keys"
    );
    expect(&d, k, &["user", "create", "sneaky", "--role", "viewer"], 6);
    expect(&d, k, &["tenant", "create", "other"], 6);
    tenant_flag_is_forbidden(&d, k);
    assert_eq!(stored_sites(&d), vec!["existing.acme.test"]);
    assert!(!stored_users(&d).contains(&"sneaky".to_owned()));
}

#[test]
fn admin_acts_in_every_tenant() {
    let Some(d) = Daemon::start() else { return };
    let _team = acme(&d);
    let a = &d.admin_key;
    expect(&d, a, &["tenant", "create", "globex"], 0);
    let site = d.ssh_json(
        a,
        &["site", "create", "shop.globex.test", "--tenant", "globex"],
    );
    assert_eq!(site["tenant"], "globex");
    assert_eq!(
        field_values(
            &d.ssh_json(a, &["site", "list", "--tenant", "globex"]),
            "domain"
        ),
        vec!["shop.globex.test"]
    );
    assert_eq!(
        site_domains(&d, a).into_iter().collect::<BTreeSet<_>>(),
        set(&["existing.acme.test", "shop.globex.test"])
    );
    expect(&d, a, &["site", "show", "existing.acme.test"], 0);
    let user = d.ssh_json(
        a,
        &[
            "user", "create", "gina", "--role", "owner", "--tenant", "globex",
        ],
    );
    assert_eq!(
        (user["tenant"].as_str(), user["role"].as_str()),
        (Some("globex"), Some("owner"))
    );
    assert_eq!(
        field_values(
            &d.ssh_json(a, &["user", "list", "--tenant", "globex"]),
            "name"
        ),
        vec!["gina"]
    );
    expect(&d, a, &["user", "show", "acme-owner"], 0);
    expect(&d, a, &["user", "role", "acme-viewer", "operator"], 0);
    expect(&d, a, &["site", "delete", "existing.acme.test", "--yes"], 0);
    expect(&d, a, &["site", "delete", "shop.globex.test", "--yes"], 0);
    expect(&d, a, &["user", "delete", "gina", "--yes"], 0);
    expect(&d, a, &["tenant", "delete", "globex", "--yes"], 0);
    assert!(stored_sites(&d).is_empty());
    assert!(!stored_tenants(&d).contains(&"globex".to_owned()));
}

#[test]
fn another_tenants_objects_read_as_not_found() {
    let Some(d) = Daemon::start() else { return };
    let a = d.user("acme", "alice", "owner");
    let b = d.user("globex", "bert", "owner");
    let admin = &d.admin_key;
    expect(
        &d,
        admin,
        &["site", "create", "a.acme.test", "--tenant", "acme"],
        0,
    );
    expect(
        &d,
        admin,
        &["site", "create", "b.globex.test", "--tenant", "globex"],
        0,
    );

    // Hidden objects answer exactly like missing ones.
    let hidden = d.panel(&a, &["site", "show", "b.globex.test", "-o", "json"]);
    assert_json_error(&hidden, 3, "not_found");
    let missing = d.panel(&a, &["site", "show", "c.globex.test", "-o", "json"]);
    assert_json_error(&missing, 3, "not_found");
    assert_eq!(
        hidden.stderr_json()["error"]["message"],
        "site b.globex.test not found"
    );
    expect(&d, &a, &["site", "delete", "b.globex.test", "--yes"], 3);
    expect(&d, &a, &["site", "delete", "b.globex.test"], 3);
    expect(&d, &a, &["user", "show", "bert"], 3);
    expect(&d, &a, &["user", "delete", "bert", "--yes"], 3);
    expect(&d, &a, &["tenant", "show", "globex"], 3);
    assert_eq!(site_domains(&d, &a), vec!["a.acme.test"]);
    let users = field_values(&d.ssh_json(&a, &["user", "list"]), "name");
    assert_eq!(users, vec!["alice"]);
    let keys = field_values(&d.ssh_json(&a, &["key", "list"]), "user");
    assert!(keys.iter().all(|u| u == "alice"), "{keys:?}");
    let dash = d.ssh_json(&a, &["dashboard"]);
    assert_eq!(
        (dash["sites"].as_i64(), dash["users"].as_i64()),
        (Some(1), Some(1)),
        "{dash}"
    );

    // Objects of the system tenant are just as invisible.
    expect(&d, &a, &["tenant", "show", "system"], 3);
    expect(&d, &a, &["user", "show", "admin"], 3);
    expect(&d, &a, &["user", "role", "admin", "viewer"], 3);
    expect(&d, &a, &["user", "lock", "admin"], 3);
    expect(&d, &a, &["key", "list", "--user", "admin"], 3);
    let admin_fp = d.admin_key.fingerprint();
    expect(&d, &a, &["key", "remove", &admin_fp, "--yes"], 3);
    // The shared server `local` counts only the caller's sites.
    assert_eq!(d.ssh_json(&a, &["server", "show", "local"])["sites"], 1);
    assert_eq!(d.ssh_json(admin, &["server", "show", "local"])["sites"], 2);

    // The same from the other side.
    assert_eq!(site_domains(&d, &b), vec!["b.globex.test"]);
    expect(&d, &b, &["site", "show", "a.acme.test"], 3);

    // Nothing was deleted, and the admin sees both tenants.
    assert_eq!(
        site_domains(&d, admin).into_iter().collect::<BTreeSet<_>>(),
        set(&["a.acme.test", "b.globex.test"])
    );
    expect(&d, admin, &["user", "show", "alice"], 0);
    expect(&d, admin, &["user", "show", "bert"], 0);
    expect(&d, admin, &["site", "show", "b.globex.test"], 0);
}

// ---------------------------------------------------------------------------------------------
// Exit codes
// ---------------------------------------------------------------------------------------------

#[test]
fn usage_errors_exit_2() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let run = expect(&d, a, &["site", "list", "--bogus"], 2);
    assert!(run.stderr.contains("--bogus"), "{run:?}");
    let run = expect(&d, a, &["site", "show"], 2);
    assert!(run.stderr.contains("DOMAIN"), "{run:?}");
    expect(&d, a, &["site", "create"], 2);
    expect(&d, a, &["user", "create", "carl"], 2); // --role is required
    let run = expect(&d, a, &["frobnicate"], 2);
    assert!(run.stderr.contains("frobnicate"), "{run:?}");
    expect(&d, a, &["site", "frobnicate"], 2);
    expect(&d, a, &["site", "list", "-o", "yaml"], 2);
    // An unbalanced quote cannot be split into words.
    d.ssh_with(a, PANEL, &[], Some("site show 'oops"), None)
        .expect(2);
    assert_json_error(
        &d.panel(a, &["site", "list", "--bogus", "-o", "json"]),
        2,
        "usage",
    );
    // No key on stdin; and the local admin has no keys of its own, so it must name --user.
    d.ssh_stdin(a, PANEL, &["key", "add"], b"").expect(2);
    let key = d.new_key("spare");
    d.admin_stdin(&["key", "add"], Some(&key.public_bytes()))
        .expect(2);
    // Help is not an error.
    expect(&d, a, &["site", "create", "--help"], 0);
}

#[test]
fn missing_objects_exit_3() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let run = expect(&d, a, &["site", "show", "missing.example.com"], 3);
    assert_eq!(run.stderr, "error: site missing.example.com not found\n");
    expect(
        &d,
        a,
        &["site", "delete", "missing.example.com", "--yes"],
        3,
    );
    expect(&d, a, &["tenant", "show", "nope"], 3);
    expect(&d, a, &["user", "show", "nobody"], 3);
    expect(&d, a, &["server", "show", "nowhere"], 3);
    expect(&d, a, &["site", "list", "--tenant", "nope"], 3);
    expect(
        &d,
        a,
        &[
            "key",
            "remove",
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "--yes",
        ],
        3,
    );
}

#[test]
fn duplicates_exit_4() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let bob = d.user("acme", "bob", "viewer");
    expect(&d, a, &["tenant", "create", "acme"], 4);
    expect(&d, a, &["tenant", "create", "system"], 4);
    expect(&d, a, &["site", "create", "dup.example.com"], 0);
    expect(&d, a, &["site", "create", "dup.example.com"], 4);
    // The name is taken across tenants, and aliases count too.
    expect(
        &d,
        a,
        &["site", "create", "dup.example.com", "--tenant", "acme"],
        4,
    );
    expect(
        &d,
        a,
        &[
            "site",
            "create",
            "other.example.com",
            "--alias",
            "dup.example.com",
        ],
        4,
    );
    expect(
        &d,
        a,
        &[
            "user", "create", "bob", "--role", "viewer", "--tenant", "acme",
        ],
        4,
    );
    expect(&d, a, &["tenant", "create", "globex"], 0);
    // User names are unique across tenants.
    expect(
        &d,
        a,
        &[
            "user", "create", "bob", "--role", "viewer", "--tenant", "globex",
        ],
        4,
    );
    // A key belongs to one user only.
    let bob_pub = bob.public_bytes();
    d.ssh_stdin(a, PANEL, &["key", "add"], &bob_pub).expect(4);
    let admin_pub = d.admin_key.public_bytes();
    d.ssh_stdin(a, PANEL, &["key", "add", "--user", "bob"], &admin_pub)
        .expect(4);
    expect(
        &d,
        a,
        &[
            "user",
            "create",
            "carl",
            "--role",
            "viewer",
            "--tenant",
            "acme",
            "--key",
            &bob.public_line(),
        ],
        4,
    );
    // Conflicts with the current state.
    expect(&d, a, &["tenant", "delete", "acme", "--yes"], 4); // still has a user
    expect(&d, a, &["tenant", "delete", "system", "--yes"], 4);
    expect(&d, a, &["user", "delete", "admin", "--yes"], 4); // yourself
    expect(&d, a, &["user", "lock", "admin"], 4);
    expect(&d, a, &["user", "role", "admin", "viewer"], 4);
    let own = d.admin_key.fingerprint();
    expect(&d, a, &["key", "remove", &own, "--yes"], 4); // your last key
    d.admin(&["user", "delete", "admin", "--yes"]).expect(4); // the last admin
    d.admin(&["user", "lock", "admin"]).expect(4);
    // Nobody deletes itself, whatever its role.
    expect(&d, &bob, &["user", "delete", "bob", "--yes"], 4);
    assert_eq!(stored_sites(&d), vec!["dup.example.com"]);
    assert!(!stored_users(&d).contains(&"carl".to_owned()));
    assert!(stored_tenants(&d).contains(&"acme".to_owned()));
    assert_eq!(d.ssh_json(a, &["whoami"])["role"], "admin");
    assert_eq!(d.ssh_json(&bob, &["whoami"])["user"], "bob");
}

#[test]
fn invalid_input_exits_5_and_stores_nothing() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    d.user("acme", "bob", "viewer");
    d.user("system", "admin2", "admin");
    for words in [
        &["site", "create", "bad_domain.com"][..],
        &["site", "create", "ok.example.com", "--php", "8.2.1"],
        &["site", "create", "ok.example.com", "--php", "12.0"],
        &["site", "create", "ok.example.com", "--php", "eight"],
        &["site", "create", "ok.example.com", "--type", "cgi"],
        &["site", "create", "ok.example.com", "--type", "proxy"],
        &[
            "site",
            "create",
            "ok.example.com",
            "--type",
            "proxy",
            "--upstream",
            "ftp://x:1",
        ],
        &[
            "user", "create", "Bob2", "--role", "viewer", "--tenant", "acme",
        ],
        &[
            "user", "create", "2bob", "--role", "viewer", "--tenant", "acme",
        ],
        &[
            "user", "create", "panel", "--role", "viewer", "--tenant", "acme",
        ],
        &[
            "user", "create", "carl", "--role", "root", "--tenant", "acme",
        ],
        &[
            "user", "create", "carl", "--role", "Owner", "--tenant", "acme",
        ],
        &[
            "user",
            "create",
            "carl",
            "--role",
            "viewer",
            "--tenant",
            "acme",
            "--key",
            "ssh-ed25519 AAAA",
        ],
        &["user", "role", "bob", "superuser"],
        // Customers never go into `system`; admins never leave it.
        &[
            "user", "create", "eve", "--role", "viewer", "--tenant", "system",
        ],
        &[
            "user", "create", "eve", "--role", "admin", "--tenant", "acme",
        ],
        &["user", "role", "admin2", "owner"],
        &[
            "site",
            "create",
            "docs.example.com",
            "--type",
            "static",
            "--php",
            "8.2",
        ],
        &[
            "site",
            "create",
            "ok.example.com",
            "--alias",
            "www.example.com",
            "--alias",
            "www.example.com",
        ],
        &["tenant", "create", "Big Corp"],
        &["tenant", "create", "a;b"],
    ] {
        let run = d.panel(a, &[words, &["-o", "json"]].concat());
        assert_json_error(&run, 5, "invalid");
    }
    // Not a public key at all, on stdin.
    d.ssh_stdin(a, PANEL, &["key", "add"], b"hello world\n")
        .expect(5);
    assert!(stored_sites(&d).is_empty());
    assert_eq!(
        stored_tenants(&d).into_iter().collect::<BTreeSet<_>>(),
        set(&["acme", "system"])
    );
    assert_eq!(
        stored_users(&d).into_iter().collect::<BTreeSet<_>>(),
        set(&["admin", "admin2", "bob"])
    );
    assert_eq!(d.ssh_json(a, &["user", "show", "bob"])["role"], "viewer");
    assert_eq!(d.ssh_json(a, &["user", "show", "admin2"])["role"], "admin");
}

#[test]
fn evil_domain_names_are_refused_with_exit_5_and_nothing_is_stored() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let long = "a".repeat(300);
    let long_labels = format!("{}.com", ["a".repeat(60).as_str(); 5].join("."));
    let evil = [
        "a;b",
        "a;b.com",
        "a b",
        "a b.com",
        "a\nb.com",
        "a\tb.com",
        "../x",
        "../../etc/passwd",
        "a/b.com",
        long.as_str(),
        long_labels.as_str(),
        "a..b",
        "a..b.com",
        "xn--zz.com",
        "xn--.com",
        "xn--a.com",
        "p\u{430}ypal.com", // Cyrillic 'а' (U+0430) in a Latin label
        "example.com\u{200b}",
        "$(touch x).com",
        "`id`.com",
        "a{b}.com",
        "a'b.com",
        "a\"b.com",
        "*.example.com",
        "example.com.",
        "localhost",
        "1.2.3.4",
    ];
    for domain in evil {
        let run = d.panel(a, &["site", "create", domain, "-o", "json"]);
        assert_json_error(&run, 5, "invalid");
        // The same name as an alias of a good site, and for `site show`.
        let run = d.panel(
            a,
            &["site", "create", "good.example.com", "--alias", domain],
        );
        run.expect(5);
        d.panel(a, &["site", "show", domain]).expect(5);
    }
    // A leading dash: without `--` clap takes it for a flag (usage, 2); after `--` it is a
    // value and the validator refuses it (5). Either way it is refused.
    d.panel(a, &["site", "create", "-bad.com"]).expect(2);
    d.panel(a, &["site", "create", "--", "-bad.com"]).expect(5);
    assert!(
        d.ssh_json(a, &["site", "list"])
            .as_array()
            .is_some_and(Vec::is_empty),
        "no site may have been stored"
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn concurrent_state_changes_never_fail_with_an_internal_error() {
    // Every login records the key's use in a background write while the command runs, and
    // several clients may change things at once: a write must wait for the other writer,
    // never fail with exit 1 ("database is locked").
    // Six clients from one address may be authenticating at once: above the default per-source
    // cap of 5, which is not what this test is about.
    let Some(d) = Daemon::builder()
        .env("VIPANEL_LIMITS__MAX_UNAUTHENTICATED_PER_SOURCE", "8")
        .start()
    else {
        return;
    };
    const CLIENTS: usize = 6;
    const EACH: usize = 12;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let d = &d;
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for i in 0..EACH {
                        let domain = format!("c{c}-{i}.example.com");
                        let run = d.panel(&d.admin_key, &["site", "create", &domain]);
                        if run.code != 0 {
                            failed.push(format!(
                                "{domain}: exit {} {}",
                                run.code,
                                run.stderr.trim()
                            ));
                        }
                    }
                    failed
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} `site create` failed:\n{}\n--- log ---\n{}",
        failures.len(),
        CLIENTS * EACH,
        failures.join("\n"),
        d.log()
    );
    assert_eq!(stored_sites(&d).len(), CLIENTS * EACH);
}

// ---------------------------------------------------------------------------------------------
// Output formats
// ---------------------------------------------------------------------------------------------

#[test]
fn json_output_of_every_list_and_show_command_parses() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let bob = d.user("acme", "bob", "owner");
    let _zoe = d.user("acme", "zoe", "viewer");
    expect(
        &d,
        a,
        &[
            "site",
            "create",
            "shop.acme.test",
            "--tenant",
            "acme",
            "--alias",
            "www.shop.acme.test",
            "--alias",
            "a.shop.acme.test",
        ],
        0,
    );
    expect(
        &d,
        a,
        &["site", "create", "blog.acme.test", "--tenant", "acme"],
        0,
    );

    // tenant list|show: sorted by name, documented fields in documented order.
    let tenants = d.ssh_json(a, &["tenant", "list"]);
    assert_eq!(field_values(&tenants, "name"), vec!["acme", "system"]);
    let tenant = d.ssh_json(a, &["tenant", "show", "acme"]);
    assert_fields(&tenant, TENANT_FIELDS);
    assert_eq!(tenant["users"], 2);
    assert_eq!(tenant["sites"], 2);
    assert_time(&tenant, "created_at");
    for item in tenants.as_array().into_iter().flatten() {
        assert_fields(item, TENANT_FIELDS);
    }

    // user list|show: sorted by tenant, then name.
    let users = d.ssh_json(a, &["user", "list"]);
    assert_eq!(field_values(&users, "name"), vec!["bob", "zoe", "admin"]);
    for item in users.as_array().into_iter().flatten() {
        assert_fields(item, USER_FIELDS);
    }
    let user = d.ssh_json(a, &["user", "show", "bob"]);
    assert_fields(&user, USER_FIELDS);
    assert_eq!(user["locked"], false);
    assert_eq!(user["keys"], 1);
    assert_time(&user, "created_at");

    // key list: every key for the admin, one user's with --user.
    let keys = d.ssh_json(a, &["key", "list"]);
    let fingerprints = field_values(&keys, "fingerprint");
    assert!(fingerprints.contains(&d.admin_key.fingerprint()), "{keys}");
    assert!(fingerprints.contains(&bob.fingerprint()), "{keys}");
    assert_eq!(fingerprints.len(), 3, "{keys}");
    for key in keys.as_array().into_iter().flatten() {
        assert_fields(key, KEY_FIELDS);
        assert_time(key, "created_at");
    }
    // A key's last use is recorded in the background after its login: wait (bounded) for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mine = loop {
        let mine = d.ssh_json(&bob, &["key", "list", "--user", "bob"]);
        if mine[0]["last_used_at"].is_string() || Instant::now() > deadline {
            break mine;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(field_values(&mine, "fingerprint"), vec![bob.fingerprint()]);
    assert_eq!(mine[0]["algorithm"], "ssh-ed25519");
    assert_eq!(mine[0]["comment"], "bob@e2e");
    assert_time(&mine[0], "last_used_at");

    // site list|show: sorted by domain, aliases sorted.
    let sites = d.ssh_json(a, &["site", "list"]);
    assert_eq!(
        field_values(&sites, "domain"),
        vec!["blog.acme.test", "shop.acme.test"]
    );
    assert_eq!(d.ssh_json(a, &["site", "ls"]), sites, "`ls` is `list`");
    let site = d.ssh_json(a, &["site", "show", "shop.acme.test"]);
    assert_fields(&site, SITE_FIELDS);
    assert_eq!(site["type"], "php");
    assert_eq!(site["php"], "8.2");
    assert_eq!(site["upstream"], Value::Null);
    assert_eq!(
        site["aliases"],
        serde_json::json!(["a.shop.acme.test", "www.shop.acme.test"])
    );
    assert_eq!(site["status"], "active");
    assert_eq!(site["server"], "local");
    assert_time(&site, "updated_at");

    // server list|show.
    let servers = d.ssh_json(a, &["server", "list"]);
    assert_eq!(field_values(&servers, "name"), vec!["local"]);
    let server = d.ssh_json(a, &["server", "show", "local"]);
    assert_fields(&server, SERVER_FIELDS);
    assert_eq!(
        (&server["provider"], &server["status"], &server["tenant"]),
        (&Value::from("local"), &Value::from("running"), &Value::Null)
    );
    assert_eq!(server["sites"], 2);
    assert_time(&server, "created_at");

    // dashboard, whoami, version.
    let dash = d.ssh_json(a, &["dashboard"]);
    assert_fields(
        &dash,
        &[
            "scope",
            "tenants",
            "users",
            "keys",
            "servers",
            "sites",
            "sites_by_status",
            "sites_failing_health",
            "sites_last_applied_at",
        ],
    );
    assert_eq!(dash["scope"], "platform");
    for (field, want) in [
        ("tenants", 2),
        ("users", 3),
        ("keys", 3),
        ("servers", 1),
        ("sites", 2),
    ] {
        assert_eq!(dash[field], want, "{field}: {dash}");
    }
    assert_eq!(dash["sites_by_status"], serde_json::json!({"active": 2}));
    assert!(dash["sites_last_applied_at"].is_string(), "{dash}");
    let me = d.ssh_json(a, &["whoami"]);
    assert_fields(&me, WHOAMI_FIELDS);
    let version = d.ssh_json(a, &["version"]);
    assert_fields(&version, &["name", "version"]);
    assert_eq!(version["name"], "vipanel");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    let plain = expect(&d, a, &["version"], 0);
    assert_eq!(
        plain.stdout,
        format!("vipanel {}\n", env!("CARGO_PKG_VERSION"))
    );

    // An owner's view is its tenant.
    let dash = d.ssh_json(&bob, &["dashboard"]);
    assert_eq!(dash["scope"], "acme");
    assert_eq!(
        (dash["tenants"].as_i64(), dash["users"].as_i64()),
        (Some(1), Some(2))
    );
    // Creating and deleting answer with the object too.
    let created = d.ssh_json(&bob, &["site", "create", "new.acme.test"]);
    assert_fields(&created, SITE_FIELDS);
    let deleted = d.ssh_json(&bob, &["site", "delete", "new.acme.test", "--yes"]);
    assert_eq!(deleted["domain"], "new.acme.test");
    let created = d.ssh_json(&bob, &["user", "create", "kim", "--role", "viewer"]);
    let mut fields = USER_FIELDS.to_vec();
    fields.extend(["key_fingerprints", "enroll_code", "enroll_code_expires_at"]);
    assert_fields(&created, &fields);
}

#[test]
fn plain_output_is_tab_separated_without_header() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    expect(&d, a, &["site", "create", "one.example.com"], 0);
    expect(
        &d,
        a,
        &["site", "create", "two.example.com", "--type", "static"],
        0,
    );
    let run = expect(&d, a, &["site", "list", "-o", "plain"], 0);
    assert!(!run.stdout.contains('\r'));
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "one line per site, no header: {:?}",
        run.stdout
    );
    for line in &lines {
        let fields: Vec<&str> = line.split('\t').collect();
        // domain, tenant, type, php, status, aliases, server
        assert_eq!(fields.len(), 7, "{line:?}");
        assert!(fields[0].ends_with(".example.com"), "{line:?}");
        assert_eq!(fields[1], "system");
        assert_eq!(fields[6], "local");
    }
    let two: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("two.example.com\t"))
        .expect("two.example.com listed")
        .split('\t')
        .collect();
    assert_eq!((two[2], two[3]), ("static", ""), "no php for a static site");
    // The table form has a header; plain does not.
    let table = expect(&d, a, &["site", "list"], 0);
    assert!(table.stdout.starts_with("DOMAIN"), "{table:?}");
    assert!(!run.stdout.contains("DOMAIN"));
    // A show in plain: `key<TAB>value` lines.
    let show = expect(
        &d,
        a,
        &["site", "show", "two.example.com", "-o", "plain"],
        0,
    );
    let pairs: Vec<(&str, &str)> = show
        .stdout
        .lines()
        .map(|l| {
            l.split_once('\t')
                .unwrap_or_else(|| panic!("no tab in {l:?}"))
        })
        .collect();
    assert_eq!(pairs[0], ("domain", "two.example.com"));
    assert!(pairs.contains(&("type", "static")), "{pairs:?}");
    assert!(pairs.contains(&("php", "")), "{pairs:?}");
    // An empty list in plain prints nothing at all.
    expect(&d, a, &["tenant", "create", "vacant"], 0);
    let empty = expect(
        &d,
        a,
        &["site", "list", "--tenant", "vacant", "-o", "plain"],
        0,
    );
    assert_eq!((empty.stdout.as_str(), empty.stderr.as_str()), ("", ""));
    let tenants = expect(&d, a, &["tenant", "list", "-o", "plain"], 0);
    assert_eq!(
        tenants
            .stdout
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default())
            .collect::<Vec<_>>(),
        vec!["system", "vacant"]
    );
}

#[test]
fn errors_with_json_output_are_a_json_object_on_stderr() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let viewer = d.user("acme", "vic", "viewer");
    expect(&d, a, &["site", "create", "taken.example.com"], 0);
    let not_found = d.panel(a, &["site", "show", "missing.example.com", "-o", "json"]);
    assert_json_error(&not_found, 3, "not_found");
    assert_eq!(
        not_found.stderr,
        "{\"error\":{\"code\":\"not_found\",\"message\":\"site missing.example.com not found\"}}\n"
    );
    assert_json_error(&d.panel(a, &["frobnicate", "-o", "json"]), 2, "usage");
    assert_json_error(
        &d.panel(a, &["site", "create", "taken.example.com", "-o", "json"]),
        4,
        "conflict",
    );
    assert_json_error(
        &d.panel(a, &["site", "create", "a;b", "-o", "json"]),
        5,
        "invalid",
    );
    assert_json_error(
        &d.panel(&viewer, &["site", "create", "v.example.com", "-o", "json"]),
        6,
        "forbidden",
    );
    // Without -o json: one `error: …` line.
    let plain = expect(&d, a, &["site", "show", "missing.example.com"], 3);
    assert!(plain.stderr.starts_with("error: "), "{plain:?}");
}

// ---------------------------------------------------------------------------------------------
// Terminals and confirmations
// ---------------------------------------------------------------------------------------------

#[test]
fn delete_without_yes_and_without_pty_is_refused_with_exit_2() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let _bob = d.user("acme", "bob", "viewer");
    expect(&d, a, &["tenant", "create", "empty"], 0);
    expect(&d, a, &["site", "create", "keep.example.com"], 0);
    for words in [
        &["site", "delete", "keep.example.com"][..],
        &["site", "rm", "keep.example.com"],
        &["user", "delete", "bob"],
        &["tenant", "delete", "empty"],
    ] {
        let run = expect(&d, a, words, 2);
        assert!(
            run.stderr.contains("--yes"),
            "the hint names --yes: {run:?}"
        );
    }
    assert_eq!(stored_sites(&d), vec!["keep.example.com"]);
    assert!(stored_users(&d).contains(&"bob".to_owned()));
    assert!(stored_tenants(&d).contains(&"empty".to_owned()));
}

#[test]
fn delete_with_pty_asks_and_y_confirms_n_keeps() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    expect(&d, a, &["site", "create", "keep.example.com"], 0);
    expect(&d, a, &["site", "create", "drop.example.com"], 0);
    let line = support::remote_line(&["site", "delete", "keep.example.com"]);
    let no = d.ssh_with(a, PANEL, &["-tt"], Some(&line), Some(b"n\n"));
    no.expect(2);
    assert!(
        no.stderr.contains("This cannot be undone. [y/N] "),
        "the question is asked on stderr: {no:?}"
    );
    let line = support::remote_line(&["site", "delete", "drop.example.com"]);
    let yes = d.ssh_with(a, PANEL, &["-tt"], Some(&line), Some(b"y\n"));
    yes.expect(0);
    assert!(yes.stderr.contains("[y/N] "), "{yes:?}");
    assert!(
        yes.stderr.contains("deleted site drop.example.com"),
        "{yes:?}"
    );
    assert_eq!(stored_sites(&d), vec!["keep.example.com"]);
}

#[test]
fn pty_output_uses_crlf_and_plain_exec_uses_lf() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let line = support::remote_line(&["whoami"]);
    let tty = d.ssh_with(a, PANEL, &["-tt"], Some(&line), None);
    tty.expect(0);
    assert!(tty.stdout.contains("\r\n"), "{:?}", tty.stdout);
    assert_eq!(
        tty.stdout.matches('\n').count(),
        tty.stdout.matches("\r\n").count(),
        "every LF follows a CR under a PTY: {:?}",
        tty.stdout
    );
    let plain = d.panel(a, &["whoami"]);
    plain.expect(0);
    assert!(plain.stdout.contains('\n'));
    assert!(!plain.stdout.contains('\r'), "{:?}", plain.stdout);
    assert!(!plain.stdout.contains('\u{1b}'), "no colour without a PTY");
    // Same text once line ends are normalized.
    assert_eq!(
        tty.stdout.replace("\r\n", "\n").lines().next(),
        plain.stdout.lines().next()
    );
}

#[test]
fn login_without_command_prints_notice_and_help_then_exits_0() {
    let Some(d) = Daemon::start() else { return };
    let run = d.ssh_with(&d.admin_key, PANEL, &["-T"], None, None);
    run.expect(0);
    assert!(
        run.stdout
            .contains("the interactive dashboard is not available yet"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains(&format!("ssh -p {} panel@127.0.0.1 site list", d.port())),
        "the notice shows how to run a command: {run:?}"
    );
    for word in ["Usage:", "whoami", "tenant", "site", "Exit codes"] {
        assert!(run.stdout.contains(word), "help mentions {word:?}: {run:?}");
    }
    // `help COMMAND` shows examples with the prefix the client really used.
    let help = expect(&d, &d.admin_key, &["help", "site", "create"], 0);
    assert!(
        help.stdout.contains(&format!(
            "ssh -p {} panel@127.0.0.1 site create example.com",
            d.port()
        )),
        "{help:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Refused SSH features
// ---------------------------------------------------------------------------------------------

#[test]
fn port_and_x11_forwarding_are_refused() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let whoami = support::remote_line(&["whoami"]);
    // Remote forwarding (-R): the global request is refused.
    let remote = d.ssh_with(
        a,
        PANEL,
        &["-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:1"],
        Some(&whoami),
        None,
    );
    remote.expect(255);
    assert!(remote.stderr.contains("forwarding failed"), "{remote:?}");
    // stdio forwarding (-W) opens a direct-tcpip channel: refused.
    let target = format!("127.0.0.1:{}", d.port());
    let stdio = d.ssh_with(a, PANEL, &["-W", &target], None, Some(b""));
    assert_ne!(stdio.code, 0, "{stdio:?}");
    assert!(!stdio.stdout.contains("SSH-2.0"), "{stdio:?}");
    // Local forwarding (-L): the listener exists on the client, but a connection through it is
    // refused by the server. The target is the daemon itself, so a forwarded connection would
    // read its SSH banner.
    let local_port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
        probe.local_addr().expect("probe address").port()
    };
    let spec = format!("127.0.0.1:{local_port}:127.0.0.1:{}", d.port());
    let pending = d.spawn_ssh_with(
        a,
        PANEL,
        &["-o", "ExitOnForwardFailure=yes", "-L", &spec],
        &["key", "add"],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", local_port)) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the ssh client never listened on {local_port}: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let mut got = Vec::new();
    let read = stream.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "the forwarded connection carried data: {:?}",
        String::from_utf8_lossy(&got)
    );
    if let Err(e) = read {
        assert_ne!(
            e.kind(),
            std::io::ErrorKind::WouldBlock,
            "the client kept the refused connection open"
        );
    }
    drop(stream);
    // Ends the session: `key add` gets an empty stdin.
    pending.finish(b"").expect(2);
    // X11 forwarding: the client says the request failed.
    let mut x11 = d.ssh_command(a, PANEL, &["-o", "ForwardX11=yes"], Some(&whoami), true);
    x11.env("DISPLAY", ":99")
        .env("XAUTHORITY", d.data_dir().join("no-xauthority"));
    let run = support::run_bounded(&mut x11, None, "ssh -X whoami");
    assert!(
        run.stderr.contains("X11 forwarding request failed"),
        "{run:?}"
    );
    // The daemon is still fine.
    assert_eq!(d.ssh_json(a, &["whoami"])["user"], "admin");
}

#[test]
fn sftp_subsystem_is_refused() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let run = d.ssh_with(a, PANEL, &["-s"], Some("sftp"), None);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("subsystem request failed"), "{run:?}");
    if support::program_exists("sftp") {
        let out = std::process::Command::new("sftp")
            .args([
                "-b",
                "-",
                "-F",
                "/dev/null",
                "-P",
                &d.port().to_string(),
                "-i",
            ])
            .arg(&a.private)
            .args(support::CLIENT_OPTIONS)
            .arg("panel@127.0.0.1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run sftp");
        assert!(!out.status.success(), "sftp must fail: {out:?}");
    }
    assert_eq!(d.ssh_json(a, &["whoami"])["user"], "admin");
}

// ---------------------------------------------------------------------------------------------
// Audit, lifecycle, local admin
// ---------------------------------------------------------------------------------------------

#[test]
fn state_changes_and_a_refused_create_write_audit_rows() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let fingerprint = d.admin_key.fingerprint();
    expect(&d, a, &["tenant", "create", "acme"], 0);
    expect(
        &d,
        a,
        &["site", "create", "audit.example.com", "--tenant", "acme"],
        0,
    );
    let viewer = d.user("acme", "vic", "viewer");
    expect(&d, &viewer, &["site", "create", "refused.example.com"], 6);
    let extra = d.new_key("admin-extra");
    d.ssh_stdin(a, PANEL, &["key", "add"], &extra.public_bytes())
        .expect(0);
    expect(&d, a, &["user", "lock", "vic"], 0);
    let rows = d.audit_rows();
    let find = |action: &str, target: &str| {
        rows.iter()
            .find(|r| r.action == action && r.target == target)
            .unwrap_or_else(|| panic!("no audit row {action} {target} in {rows:#?}"))
            .clone()
    };
    for (action, target) in [
        ("tenant.create", "acme"),
        ("site.create", "audit.example.com"),
    ] {
        let row = find(action, target);
        assert_eq!(row.actor, "admin", "{row:?}");
        // Recorded under the tenant the change concerns, so acme's owners see it.
        assert_eq!(row.tenant, "acme", "{row:?}");
        assert_eq!(row.role, "admin", "{row:?}");
        assert_eq!(row.result, "ok", "{row:?}");
        assert_eq!(row.key_fingerprint.as_deref(), Some(fingerprint.as_str()));
        let source: SocketAddr = row
            .source
            .parse()
            .unwrap_or_else(|e| panic!("source {:?} is not IP:PORT: {e}", row.source));
        assert_eq!(source.ip().to_string(), "127.0.0.1");
    }
    let refused = find("site.create", "refused.example.com");
    assert_eq!(refused.actor, "vic");
    assert_eq!(refused.tenant, "acme");
    assert_eq!(refused.role, "viewer");
    assert_eq!(refused.result, "forbidden");
    assert!(refused.source.starts_with("127.0.0.1:"), "{refused:?}");
    assert_eq!(
        refused.key_fingerprint.as_deref(),
        Some(viewer.fingerprint().as_str())
    );
    let key = find("key.add", "admin");
    assert_eq!(key.result, "ok", "{key:?}");
    assert!(key.detail.contains(&extra.fingerprint()), "{key:?}");
    let lock = find("user.lock", "vic");
    assert_eq!((lock.actor.as_str(), lock.result.as_str()), ("admin", "ok"));
    // The user made with `vipanel admin` is recorded as the local admin.
    let local = find("user.create", "vic");
    assert_eq!(
        (local.source.as_str(), local.result.as_str()),
        ("local", "ok")
    );
    // The refused site does not exist.
    assert_eq!(stored_sites(&d), vec!["audit.example.com"]);
}

#[test]
fn refused_deletes_write_audit_rows() {
    // A refused delete is audited like a refused create, whether the role forbids it or
    // tenancy hides the object (probing other tenants is exactly what the trail is for), even
    // though it is refused in the check made before asking for confirmation.
    let Some(d) = Daemon::start() else { return };
    let team = acme(&d);
    let gus = d.user("globex", "gus", "owner");
    expect(
        &d,
        &team.viewer,
        &["site", "delete", "existing.acme.test", "--yes"],
        6,
    );
    expect(
        &d,
        &team.operator,
        &["user", "delete", "acme-viewer", "--yes"],
        6,
    );
    expect(
        &d,
        &gus,
        &["site", "delete", "existing.acme.test", "--yes"],
        3,
    );
    expect(&d, &gus, &["user", "delete", "acme-owner", "--yes"], 3);
    let rows = d.audit_rows();
    let missing: Vec<String> = [
        (
            "site.delete",
            "existing.acme.test",
            "acme-viewer",
            "forbidden",
        ),
        ("user.delete", "acme-viewer", "acme-operator", "forbidden"),
        ("site.delete", "existing.acme.test", "gus", "not_found"),
        ("user.delete", "acme-owner", "gus", "not_found"),
    ]
    .into_iter()
    .filter(|(action, target, actor, result)| {
        !rows.iter().any(|r| {
            r.action == *action && r.target == *target && r.actor == *actor && r.result == *result
        })
    })
    .map(|(action, target, actor, result)| format!("{actor} {action} {target} -> {result}"))
    .collect();
    assert!(
        missing.is_empty(),
        "refused deletes without an audit row: {missing:#?}\naudit_log: {rows:#?}"
    );
    assert_eq!(stored_sites(&d), vec!["existing.acme.test"]);
}

#[test]
fn sigterm_lets_a_running_command_finish_then_exits_0() {
    let Some(mut d) = Daemon::builder()
        .env("VIPANEL_LOG", "info,vipanel=debug")
        .env("VIPANEL_LIMITS__SHUTDOWN_GRACE_SECS", "30")
        .start()
    else {
        return;
    };
    let late = d.new_key("late");
    let pending = d.spawn_ssh(&d.admin_key, &["key", "add", "-o", "json"]);
    // The command is running (it waits for its stdin) once the daemon logged the exec.
    d.wait_for_log("command=key add", Duration::from_secs(20));
    d.terminate();
    // Logged once the listener is closed and the daemon waits for the running command.
    d.wait_for_log("waiting for running commands", Duration::from_secs(20));
    // New connections are refused from now on.
    let refused = d.panel(&d.admin_key, &["whoami"]);
    refused.expect(255);
    assert!(refused.stdout.is_empty(), "{refused:?}");
    // The running command still gets its input and completes.
    let run = pending.finish(late.public_bytes().as_slice());
    run.expect(0);
    assert_eq!(
        field_values(&run.json(), "fingerprint"),
        vec![late.fingerprint()]
    );
    let status = d.wait_exit(Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(0),
        "daemon exit: {status:?}\n{}",
        d.log()
    );
    // The key was stored (read with the daemon down).
    let keys = field_values(
        &d.admin_json(&["key", "list", "--user", "admin"]),
        "fingerprint",
    );
    assert!(keys.contains(&late.fingerprint()), "{keys:?}");
}

#[test]
fn sigterm_exits_0_after_the_grace_period_even_if_a_command_still_runs() {
    let Some(mut d) = Daemon::builder()
        .env("VIPANEL_LOG", "info,vipanel=debug")
        .env("VIPANEL_LIMITS__SHUTDOWN_GRACE_SECS", "1")
        .start()
    else {
        return;
    };
    let pending = d.spawn_ssh(&d.admin_key, &["key", "add"]);
    d.wait_for_log("command=key add", Duration::from_secs(20));
    d.terminate();
    let status = d.wait_exit(Duration::from_secs(20));
    assert_eq!(
        status.code(),
        Some(0),
        "daemon exit: {status:?}\n{}",
        d.log()
    );
    assert!(
        d.log()
            .contains("still running after the shutdown grace period"),
        "{}",
        d.log()
    );
    // The abandoned client loses its connection instead of hanging.
    let run = pending.finish(b"");
    assert_ne!(run.code, 0, "{run:?}");
}

#[test]
fn first_start_creates_the_admin_a_private_host_key_and_warns_that_totp_is_off() {
    use std::os::unix::fs::PermissionsExt;
    let Some(d) = Daemon::start() else { return };
    let log = d.log();
    assert!(
        log.contains("created tenant `system` and user `admin`"),
        "{log}"
    );
    assert!(log.contains(&d.admin_key.fingerprint()), "{log}");
    assert!(log.contains("auth.totp = \"off\""), "{log}");
    let host_key = d.data_dir().join("ssh_host_ed25519_key");
    let mode = std::fs::metadata(&host_key)
        .unwrap_or_else(|e| panic!("{}: {e}", host_key.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "host key mode {mode:o}");
    let admin = d.admin_json(&["user", "show", "admin"]);
    assert_eq!(
        (admin["tenant"].as_str(), admin["role"].as_str()),
        (Some("system"), Some("admin"))
    );
    assert_eq!(admin["keys"], 1);
}

#[test]
fn local_admin_works_while_the_daemon_runs_and_changes_show_at_once() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    // Before any SSH login, then interleaved with SSH.
    d.admin(&["tenant", "create", "t2"]).expect(0);
    assert_eq!(d.ssh_json(a, &["tenant", "show", "t2"])["name"], "t2");
    assert!(field_values(&d.ssh_json(a, &["tenant", "list"]), "name").contains(&"t2".to_owned()));
    let carol = d.user("t2", "carol", "operator");
    assert_eq!(d.ssh_json(&carol, &["whoami"])["tenant"], "t2");
    d.admin(&["user", "lock", "carol"]).expect(0);
    d.panel(&carol, &["whoami"]).expect(255);
    d.admin(&["user", "unlock", "carol"]).expect(0);
    expect(&d, &carol, &["site", "create", "carol.example.com"], 0);
    assert_eq!(stored_sites(&d), vec!["carol.example.com"]);
    d.admin(&["site", "delete", "carol.example.com", "--yes"])
        .expect(0);
    assert!(site_domains(&d, &carol).is_empty());
    // Local admin is `@local` in tenant system.
    let me = d.admin_json(&["whoami"]);
    assert_eq!(
        (
            me["tenant"].as_str(),
            me["role"].as_str(),
            me["source"].as_str()
        ),
        (Some("system"), Some("admin"), Some("local"))
    );
}

#[test]
fn one_connection_runs_more_commands_than_its_channel_limit() {
    let Some(d) = Daemon::start() else { return };
    let conn = d.master(&d.admin_key, PANEL);
    // More sequential commands than `limits.max_channels_per_connection` (10): finished
    // commands must free their channel slot whoever closes the channel first.
    for i in 0..25 {
        let out = d.ssh_with(&d.admin_key, PANEL, &conn.options(), Some("version"), None);
        assert_eq!(out.code, 0, "command {i} through the master");
    }
}

#[test]
fn first_start_without_initial_keys_takes_the_starting_users_ssh_keys() {
    // The README's run command: no VIPANEL_INITIAL_ADMIN_KEYS, the admin gets ~/.ssh keys.
    let home = tempfile::tempdir().expect("temp home");
    std::fs::create_dir(home.path().join(".ssh")).expect("mkdir .ssh");
    let mine = support::make_key(&home.path().join(".ssh"), "id_ed25519");
    let Some(d) = Daemon::builder()
        .env("HOME", &home.path().display().to_string())
        .env("VIPANEL_INITIAL_ADMIN_KEYS", "")
        .start()
    else {
        return;
    };
    let out = d.ssh(&mine, PANEL, &["whoami"]);
    out.expect(0);
    assert_eq!(out.stdout, "admin\n");
    let log = d.log();
    assert!(
        log.contains(&mine.fingerprint()) && log.contains("id_ed25519.pub"),
        "the daemon says which key it took:\n{log}"
    );
    // The harness's own key was not among them.
    d.panel(&d.admin_key, &["whoami"]).expect(255);
}

#[test]
fn config_check_masks_secrets_and_bad_values_name_the_key() {
    let bin = env!("CARGO_BIN_EXE_vipanel");
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(args).env_remove("VIPANEL_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        support::run_bounded(&mut cmd, None, "vipanel config")
    };
    let default = run(&[], &["config", "default"]);
    default.expect(0);
    assert!(default.stdout.contains("[auth]") && default.stdout.contains("totp = \"required\""));
    let check = run(
        &[
            (
                "VIPANEL_DATABASE_URL",
                "postgres://panel:s3cret@127.0.0.1/vipanel",
            ),
            ("VIPANEL_SHOE", "1"),
        ],
        &["config", "check"],
    );
    check.expect(0);
    assert!(!check.stdout.contains("s3cret"), "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("postgres://panel:***@127.0.0.1/vipanel"),
        "{}",
        check.stdout
    );
    assert!(
        check.stderr.contains("VIPANEL_SHOE"),
        "unknown keys are warned: {}",
        check.stderr
    );
    let bad = run(&[("VIPANEL_AUTH__TOTP", "sometimes")], &["config", "check"]);
    bad.expect(5);
    assert!(bad.stderr.contains("auth.totp"), "{}", bad.stderr);
    let bad = run(
        &[("VIPANEL_LIMITS__MAX_CONNECTIONS", "0")],
        &["config", "check"],
    );
    bad.expect(5);
    assert!(
        bad.stderr.contains("limits.max_connections"),
        "{}",
        bad.stderr
    );
    // A secret key file others can read refuses to start, naming the fix.
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("secret.key");
    std::fs::write(&key_file, [7u8; 32]).expect("write key");
    let loose = run(
        &[(
            "VIPANEL_AUTH__SECRET_KEY_FILE",
            key_file.to_str().expect("utf-8 path"),
        )],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8 path"),
        ],
    );
    loose.expect(5);
    assert!(loose.stderr.contains("chmod 600"), "{}", loose.stderr);
}

#[test]
fn tampering_with_the_audit_file_is_detected_by_audit_verify() {
    let Some(d) = Daemon::start() else { return };
    for name in ["t1", "t2", "t3"] {
        expect(&d, &d.admin_key, &["tenant", "create", name], 0);
    }
    let intact = d.ssh_json(&d.admin_key, &["audit", "verify"]);
    assert_eq!(intact["intact"], true);
    let checked = intact["checked"].as_i64().expect("checked");
    // The database refuses the edit as long as its guard is there…
    let refused = d.raw_sql(&["UPDATE audit_log SET target = 'evil' WHERE seq = 2"]);
    assert!(refused.is_err_and(|e| e.contains("append-only")));
    // …and someone who removes the guard and edits a row is caught.
    d.raw_sql(&[
        "DROP TRIGGER audit_log_no_update",
        "UPDATE audit_log SET target = 'evil' WHERE seq = 2",
    ])
    .expect("tamper");
    let broken = d.panel(&d.admin_key, &["audit", "verify", "-o", "json"]);
    assert_json_error(&broken, 9, "integrity");
    assert!(broken.stderr.contains("seq 2"), "{}", broken.stderr);
    // A removed row breaks the chain as well.
    let d2 = Daemon::start().expect("second daemon");
    for name in ["t1", "t2", "t3"] {
        expect(&d2, &d2.admin_key, &["tenant", "create", name], 0);
    }
    d2.raw_sql(&[
        "DROP TRIGGER audit_log_no_delete",
        "DELETE FROM audit_log WHERE seq = 3",
    ])
    .expect("tamper");
    let gap = d2.panel(&d2.admin_key, &["audit", "verify"]);
    gap.expect(9);
    assert!(gap.stderr.contains("seq 3"), "{}", gap.stderr);
    assert!(checked >= 4, "{checked}");
}

/// Waits (bounded) until the audit trail holds a row matching `want`; login rows are written in
/// the background so that logins are not delayed by them.
fn wait_for_audit(
    d: &Daemon,
    what: &str,
    want: impl Fn(&support::AuditRow) -> bool,
) -> support::AuditRow {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(row) = d.audit_rows().into_iter().find(|r| want(r)) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "no audit row for {what}: {:?}",
            d.audit_rows()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn logins_and_refused_logins_are_audited_with_their_reason() {
    let Some(d) = Daemon::start() else { return };
    let bob = d.user("acme", "bob", "operator");
    let stranger = d.new_key("stranger");
    d.panel(&d.admin_key, &["whoami"]).expect(0);
    let ok = wait_for_audit(&d, "admin's login", |r| {
        r.action == "login" && r.actor == "admin"
    });
    assert_eq!((ok.result.as_str(), ok.tenant.as_str()), ("ok", "system"));
    assert!(ok.source.starts_with("127.0.0.1:"), "{ok:?}");
    assert_eq!(
        ok.key_fingerprint.as_deref(),
        Some(d.admin_key.fingerprint().as_str())
    );

    d.panel(&stranger, &["whoami"]).expect(255);
    let unknown = wait_for_audit(&d, "the stranger", |r| r.detail == "reason=unknown key");
    assert_eq!(
        (unknown.result.as_str(), unknown.actor.as_str()),
        ("refused", "panel")
    );
    assert_eq!(
        unknown.key_fingerprint.as_deref(),
        Some(stranger.fingerprint().as_str())
    );

    d.ssh(&bob, "admin", &["whoami"]).expect(255);
    let other = wait_for_audit(&d, "bob's key as admin", |r| {
        r.detail == "reason=key of another user"
    });
    assert_eq!(
        (other.actor.as_str(), other.tenant.as_str()),
        ("admin", "acme")
    );

    d.admin(&["user", "lock", "bob"]).expect(0);
    d.panel(&bob, &["whoami"]).expect(255);
    wait_for_audit(&d, "locked bob", |r| {
        r.detail == "reason=user locked" && r.tenant == "acme"
    });
    // The chain stays intact with rows appended from the background.
    assert_eq!(
        d.ssh_json(&d.admin_key, &["audit", "verify"])["intact"],
        true
    );
}

/// A raw TCP connection to the daemon from `source` (a loopback address), reading the server's
/// identification line when it comes. Returns the stream and whether a banner arrived.
fn idle_connection(d: &Daemon, source: &str) -> (TcpStream, bool) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{source}:0").parse().expect("source address");
    socket.bind(&local.into()).expect("bind the source address");
    let server: SocketAddr = format!("127.0.0.1:{}", d.port())
        .parse()
        .expect("daemon address");
    socket.connect(&server.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    let banner = matches!(stream.read(&mut buf), Ok(n) if n > 0 && buf.starts_with(b"SSH-2.0-"));
    (stream, banner)
}

#[test]
fn a_client_that_never_authenticates_is_dropped_at_the_deadline() {
    let Some(d) = Daemon::builder()
        .env("VIPANEL_LIMITS__PRE_AUTH_TIMEOUT_SECS", "1")
        .start()
    else {
        return;
    };
    let started = Instant::now();
    let (mut silent, banner) = idle_connection(&d, "127.0.0.1");
    assert!(banner, "the server speaks first");
    let mut buf = [0u8; 64];
    let closed =
        matches!(silent.read(&mut buf), Ok(0)) || silent.read(&mut buf).is_ok_and(|n| n == 0);
    let waited = started.elapsed();
    assert!(closed, "the silent connection is closed");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // A real login is not affected by the deadline once authenticated.
    d.panel(&d.admin_key, &["whoami"]).expect(0);
}

#[test]
fn one_flooding_source_cannot_lock_out_other_sources() {
    let Some(d) = Daemon::builder()
        .env("VIPANEL_LIMITS__MAX_UNAUTHENTICATED_PER_SOURCE", "3")
        .start()
    else {
        return;
    };
    let held: Vec<TcpStream> = (0..3)
        .map(|i| {
            let (stream, banner) = idle_connection(&d, "127.0.0.2");
            assert!(
                banner,
                "idle connection {i} from the flooding source is admitted"
            );
            stream
        })
        .collect();
    let (_refused, banner) = idle_connection(&d, "127.0.0.2");
    assert!(
        !banner,
        "a fourth pending connection from the same source is closed at once"
    );
    // Logins from another source still work while the flood holds its slots.
    for _ in 0..3 {
        d.panel(&d.admin_key, &["whoami"]).expect(0);
    }
    drop(held);
    // Once the flood lets go, its source is admitted again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_again, banner) = idle_connection(&d, "127.0.0.2");
        if banner {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the flooding source's slots were never freed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in KiB, from `/proc/PID/status`.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status:\n{status}"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Lines of the daemon log that say a source was penalised.
fn penalty_lines(d: &Daemon, source: &str) -> Vec<String> {
    d.log()
        .lines()
        .filter(|line| line.contains("source penalised") && line.contains(source))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_flood_from_one_source_is_penalised_while_logins_from_another_all_succeed() {
    const FLOOD: usize = 200;
    const LOGINS: usize = 20;
    let Some(d) = Daemon::builder()
        .penalties()
        .env("VIPANEL_AUTH__TOTP", "required")
        .start()
    else {
        return;
    };
    // TOTP is required: the logins use an automation key from 127.0.0.1, which skips the code.
    let key = d.new_key("ci");
    d.admin_stdin(
        &[
            "key",
            "add",
            "--user",
            "admin",
            "--automation",
            "--from",
            "127.0.0.1/32",
        ],
        Some(&key.public_bytes()),
    )
    .expect(0);
    d.panel(&key, &["whoami"]).expect(0);
    let (rss_before, _) = memory_kib(d.pid());

    let (admitted, logins, rss_during) = std::thread::scope(|scope| {
        let (opened, all_opened) = std::sync::mpsc::channel::<usize>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let daemon = &d;
        scope.spawn(move || {
            let mut held = Vec::with_capacity(FLOOD);
            let mut admitted = 0;
            for _ in 0..FLOOD {
                let (stream, banner) = idle_connection(daemon, "127.0.0.2");
                admitted += usize::from(banner);
                held.push(stream);
            }
            let _ = opened.send(admitted);
            // Hold every connection until the logins are done and memory is read.
            let _ = released.recv_timeout(Duration::from_secs(60));
        });
        // Four at a time, so that 127.0.0.1 never holds more unauthenticated connections than
        // its share, and the total stays below `startups_begin`.
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    (0..LOGINS / 4)
                        .map(|_| d.panel(&key, &["whoami"]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let logins: Vec<support::Run> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("login thread"))
            .collect();
        let admitted = all_opened
            .recv_timeout(Duration::from_secs(60))
            .expect("the flood opened its connections");
        let (rss_during, _) = memory_kib(d.pid());
        let _ = release.send(());
        (admitted, logins, rss_during)
    });

    assert_eq!(logins.len(), LOGINS);
    for run in &logins {
        run.expect(0);
        assert_eq!(run.stdout.trim(), "admin", "{run:?}");
    }
    assert_eq!(
        admitted, 5,
        "the flooding source got exactly its share (limits.max_unauthenticated_per_source)"
    );
    // Penalised: refused before the banner even now that it holds nothing.
    let penalised = penalty_lines(&d, "127.0.0.2");
    assert!(
        penalised.iter().any(|l| l.contains("overflow")),
        "{penalised:?}"
    );
    let (_refused, banner) = idle_connection(&d, "127.0.0.2");
    assert!(!banner, "the penalised source is closed before the banner");
    let (_other, banner) = idle_connection(&d, "127.0.0.3");
    assert!(banner, "another source is not affected");
    d.panel(&key, &["whoami"]).expect(0);
    // The log is not flooded: no line per refused connection.
    let about_flood = d.log().lines().filter(|l| l.contains("127.0.0.2")).count();
    assert!(about_flood <= 12, "{about_flood} log lines about the flood");

    let (_, peak) = memory_kib(d.pid());
    eprintln!(
        "daemon memory: VmRSS before {rss_before} KiB, during the flood {rss_during} KiB, \
         VmHWM {peak} KiB"
    );
    assert!(
        peak.saturating_sub(rss_before) < 64 * 1024,
        "memory grew from {rss_before} KiB to a peak of {peak} KiB"
    );
    // The penalty is in the audit trail too (written in the background), flagged.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.audit_rows().iter().any(|r| {
        r.action == "login.penalty" && r.target == "127.0.0.2" && r.detail.contains("overflow")
    }) {
        assert!(
            Instant::now() < deadline,
            "no login.penalty row for 127.0.0.2"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_source_that_hits_the_deadline_is_penalised_until_the_penalty_runs_out() {
    let Some(d) = Daemon::builder()
        .penalties()
        .env("VIPANEL_LIMITS__PRE_AUTH_TIMEOUT_SECS", "1")
        .env("VIPANEL_PENALTIES__GRACE_EXCEEDED_SECS", "2")
        .start()
    else {
        return;
    };
    let (mut silent, banner) = idle_connection(&d, "127.0.0.2");
    assert!(banner);
    let mut buf = [0u8; 64];
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert!(
        matches!(silent.read(&mut buf), Ok(0) | Err(_)),
        "closed at the deadline"
    );
    let penalised_at = Instant::now();
    // The penalty is recorded before the socket is closed: refused at once, no banner.
    let (_refused, banner) = idle_connection(&d, "127.0.0.2");
    assert!(!banner, "penalised right after the deadline");
    let lines = penalty_lines(&d, "127.0.0.2");
    assert!(
        lines.iter().any(|l| l.contains("grace-exceeded")),
        "{lines:?}"
    );
    let (_other, banner) = idle_connection(&d, "127.0.0.3");
    assert!(banner, "other sources are admitted");
    d.panel(&d.admin_key, &["whoami"]).expect(0);
    // Refused connections do not extend the penalty: after 2 s the source is admitted again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_again, banner) = idle_connection(&d, "127.0.0.2");
        if banner {
            break;
        }
        assert!(Instant::now() < deadline, "the penalty never ran out");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        penalised_at.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        penalised_at.elapsed()
    );
}

#[test]
fn a_refused_login_penalises_its_source_but_not_others() {
    let Some(d) = Daemon::builder()
        .penalties()
        .env("VIPANEL_PENALTIES__AUTHFAIL_SECS", "60")
        .env("VIPANEL_PENALTIES__NOAUTH_SECS", "60")
        .start()
    else {
        return;
    };
    let stranger = d.new_key("stranger");
    let whoami = support::remote_line(&["whoami"]);
    let run = d.ssh_with(
        &stranger,
        PANEL,
        &["-o", "BindAddress=127.0.0.2"],
        Some(&whoami),
        None,
    );
    run.expect(255);
    d.wait_for_log("source penalised", Duration::from_secs(10));
    let lines = penalty_lines(&d, "127.0.0.2");
    // The refused key was reported (Pending::auth_failed): an `authfail`, not a mere `noauth`.
    assert!(lines.iter().any(|l| l.contains("authfail")), "{lines:?}");
    // Even the right key is refused from the penalised source, before the key exchange.
    let admin_key = d.admin_key.private.display().to_string();
    let run = d.ssh_with(
        &stranger,
        PANEL,
        &["-o", "BindAddress=127.0.0.2", "-i", &admin_key],
        Some(&whoami),
        None,
    );
    run.expect(255);
    assert!(
        run.stderr.contains("kex_exchange_identification")
            || run.stderr.contains("Connection closed")
            || run.stderr.contains("Connection reset"),
        "{run:?}"
    );
    // From 127.0.0.1 the same key logs in.
    d.panel(&d.admin_key, &["whoami"]).expect(0);
}

#[test]
fn only_modern_algorithms_are_negotiated() {
    let Some(d) = Daemon::start() else { return };
    let whoami = support::remote_line(&["whoami"]);
    for weak in [
        "KexAlgorithms=diffie-hellman-group14-sha256",
        "KexAlgorithms=diffie-hellman-group-exchange-sha256",
        "KexAlgorithms=ecdh-sha2-nistp256",
        "KexAlgorithms=curve25519-sha256@libssh.org",
        "Ciphers=aes128-ctr,aes256-ctr",
        "Ciphers=aes256-cbc",
    ] {
        // `-v` overrides the harness's LogLevel=ERROR, which hides the negotiation error.
        let run = d.ssh_with(
            &d.admin_key,
            PANEL,
            &["-v", "-o", weak],
            Some(&whoami),
            None,
        );
        run.expect(255);
        assert!(run.stderr.contains("no matching"), "{weak}: {run:?}");
    }
    for modern in [
        "KexAlgorithms=curve25519-sha256",
        "Ciphers=chacha20-poly1305@openssh.com",
        "Ciphers=aes256-gcm@openssh.com",
        "Ciphers=aes128-gcm@openssh.com",
    ] {
        let run = d.ssh_with(&d.admin_key, PANEL, &["-o", modern], Some(&whoami), None);
        run.expect(0);
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions and the audit trail's command lines and flags
// ---------------------------------------------------------------------------------------------

/// Waits (bounded) until `vipanel admin audit list` (newest first, up to 1000 rows, with
/// `extra` flags) holds an entry matching `want`; session and login rows are written in the
/// background.
fn wait_for_entry(d: &Daemon, extra: &[&str], what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut words = vec!["audit", "list", "--limit", "1000"];
    words.extend(extra);
    loop {
        let entries = d.admin_json(&words);
        if let Some(entry) = entries.as_array().into_iter().flatten().find(|e| want(e)) {
            return entry.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no audit entry for {what}: {entries:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn session_list_shows_the_callers_own_session_with_its_source_and_key_and_both_ends_are_audited() {
    let Some(d) = Daemon::start() else { return };
    let bob = d.user("acme", "bob", "operator");
    let sessions = d.ssh_json(&bob, &["session", "list"]);
    let list = sessions.as_array().expect("an array");
    assert_eq!(
        list.len(),
        1,
        "an operator sees its own sessions only: {sessions}"
    );
    let me = &list[0];
    assert_eq!(me["user"], "bob");
    assert_eq!(me["current"], true);
    assert_eq!(me["key_fingerprint"], Value::from(bob.fingerprint()));
    assert!(
        me["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.1:")),
        "{me}"
    );
    assert_time(me, "started_at");
    let id = me["id"].as_str().expect("id").to_owned();
    let table = expect(&d, &bob, &["session", "list"], 0);
    assert!(table.stdout.starts_with("ID "), "{}", table.stdout);
    // The connection ended with the command: its start and end are in the trail.
    let start = wait_for_entry(&d, &["--action", "session.start"], "bob's start", |e| {
        e["target"] == id.as_str()
    });
    assert_eq!(
        (&start["actor"], &start["source"]),
        (&me["user"], &me["source"])
    );
    let end = wait_for_entry(&d, &["--action", "session.end"], "bob's end", |e| {
        e["target"] == id.as_str()
    });
    let detail = end["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("duration=") && detail.contains("commands=1"),
        "{end}"
    );
}

#[test]
fn an_admins_session_kill_disconnects_another_open_session() {
    let Some(d) = Daemon::start() else { return };
    let bob = d.user("acme", "bob", "operator");
    let mut conn = d.master(&bob, PANEL);
    let via = |words: &[&str]| {
        let line = support::remote_line(words);
        d.ssh_with(&bob, PANEL, &conn.options(), Some(&line), None)
    };
    let source = via(&["whoami", "-o", "json"]).json()["source"].clone();
    let listed = d.ssh_json(&d.admin_key, &["session", "list"]);
    let bobs = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["user"] == "bob")
        .unwrap_or_else(|| panic!("bob's open connection is listed: {listed}"));
    assert_eq!(bobs["source"], source);
    assert_eq!(bobs["current"], false);
    let id = bobs["id"].as_str().expect("id").to_owned();
    // Without a terminal the kill needs --yes; bob himself (an operator) may not kill.
    expect(&d, &d.admin_key, &["session", "kill", &id], 2);
    expect(&d, &bob, &["session", "kill", &id, "--yes"], 6);
    let killed = d.ssh_json(&d.admin_key, &["session", "kill", &id, "--yes"]);
    assert_eq!(killed["user"], "bob");
    let status = conn.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some(),
        "bob's ssh is still connected after the kill"
    );
    let after = d.ssh_json(&d.admin_key, &["session", "list"]);
    assert!(
        !field_values(&after, "user").contains(&"bob".to_owned()),
        "{after}"
    );
    let end = wait_for_entry(
        &d,
        &["--action", "session.end"],
        "the killed session",
        |e| e["target"] == id.as_str(),
    );
    assert!(
        end["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("killed_by=admin"),
        "{end}"
    );
    let kill = wait_for_entry(&d, &["--action", "session.kill"], "the kill", |e| {
        e["result"] == "ok"
    });
    assert_eq!(
        (&kill["actor"], &kill["tenant"]),
        (&Value::from("admin"), &Value::from("acme"))
    );
}

#[test]
fn a_burst_of_refused_logins_is_listed_as_suspicious() {
    let Some(d) = Daemon::builder()
        .env("VIPANEL_AUDIT__BURST_FAILURES", "3")
        .start()
    else {
        return;
    };
    let stranger = d.new_key("stranger");
    for _ in 0..4 {
        d.panel(&stranger, &["whoami"]).expect(255);
    }
    let burst = wait_for_entry(&d, &["--suspicious"], "a burst", |e| {
        e["flag"]
            .as_str()
            .is_some_and(|f| f.starts_with("burst source=127.0.0.1 failures=4"))
    });
    assert_eq!(
        (&burst["action"], &burst["result"]),
        (&Value::from("login"), &Value::from("refused"))
    );
    let flagged = d.admin_json(&["audit", "list", "--suspicious"]);
    let flags = field_values(&flagged, "flag");
    assert!(
        flags
            .iter()
            .all(|f| f.starts_with("burst source=127.0.0.1")),
        "only the burst is suspicious: {flagged:#}"
    );
    assert_eq!(flags.len(), 2, "the third and fourth failures: {flagged:#}");
    let plain = d.admin(&["audit", "list", "--suspicious", "-o", "plain"]);
    plain.expect(0);
    assert_eq!(plain.stdout.lines().count(), 2, "{}", plain.stdout);
    // Rows written with their flag keep the chain intact.
    assert_eq!(
        d.ssh_json(&d.admin_key, &["audit", "verify"])["intact"],
        true
    );
}

#[test]
fn command_rows_over_ssh_carry_the_masked_command_line_and_the_exit_code() {
    let Some(d) = Daemon::start() else { return };
    let bob = d.user("acme", "bob", "operator");
    let key = d.new_key("zed");
    let with_secret = format!("{} password=hunter2", key.public_line());
    d.panel(
        &d.admin_key,
        &[
            "user",
            "create",
            "zed",
            "--role",
            "viewer",
            "--tenant",
            "acme",
            "--key",
            &with_secret,
        ],
    )
    .expect(0);
    expect(&d, &bob, &["user", "create", "eve", "--role", "viewer"], 6);
    let entries = d.admin_json(&["audit", "list", "--action", "user.create"]);
    let created = entries
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["target"] == "zed")
        .unwrap_or_else(|| panic!("no user.create zed: {entries:#}"));
    let line = created["command"].as_str().expect("a command line");
    assert!(!line.contains("hunter2"), "{line}");
    assert!(
        line.starts_with("user create zed --role viewer --tenant acme --key 'ssh-ed25519 ")
            && line.ends_with(" password=***'"),
        "{line}"
    );
    assert_eq!(created["exit_code"], 0);
    let refused = entries
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["target"] == "eve")
        .unwrap_or_else(|| panic!("no refused user.create eve: {entries:#}"));
    assert_eq!(
        (
            &refused["command"],
            &refused["exit_code"],
            &refused["result"]
        ),
        (
            &Value::from("user create eve --role viewer"),
            &Value::from(6),
            &Value::from("forbidden")
        )
    );
    // Logins and sessions are not commands: no line, no exit code.
    let login = wait_for_entry(&d, &["--action", "login"], "a login", |e| {
        e["actor"] == "bob"
    });
    assert_eq!(
        (&login["command"], &login["exit_code"]),
        (&Value::Null, &Value::Null)
    );
}

/// The daemon samples the panel host by itself: with a short interval, `server list` soon shows
/// `local` with live values and `metrics local` returns samples taken during the test.
#[test]
fn metrics_of_the_panel_host_are_live() {
    let Some(d) = Daemon::builder()
        .env("VIPANEL_METRICS__INTERVAL_MS", "200")
        .start()
    else {
        return;
    };
    let k = &d.admin_key;
    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Polling, each round one SSH round trip: the daemon needs two readings (one interval)
    // before its first sample, and two distinct seconds for two points.
    let points = loop {
        let points = d.ssh_json(k, &["metrics", "local", "--since", "5m"]);
        if points.as_array().is_some_and(|p| p.len() >= 2) {
            break points;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no two samples within 30 s: {points}\n{}",
            d.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    for point in points.as_array().unwrap() {
        assert_time(point, "at");
        let at = chrono::DateTime::parse_from_rfc3339(point["at"].as_str().unwrap()).unwrap();
        assert!(at >= started, "{point} is older than the test");
        assert_eq!(point["resolution"], "raw");
        assert!(point["samples"].as_i64().unwrap() >= 1);
        let cpu = point["cpu_pct"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&cpu), "{point}");
        assert!(point["mem_total_bytes"].as_i64().unwrap() > 0, "{point}");
        assert!(point["disk_total_bytes"].as_i64().unwrap() > 0, "{point}");
        assert!(point["load1"].as_f64().unwrap() >= 0.0, "{point}");
    }

    let servers = d.ssh_json(k, &["server", "list"]);
    let local = &servers.as_array().unwrap()[0];
    assert_eq!(local["name"], "local");
    assert_fields(local, SERVER_FIELDS);
    assert_time(local, "sampled_at");
    let used = local["mem_used_bytes"].as_i64().unwrap();
    let total = local["mem_total_bytes"].as_i64().unwrap();
    assert!(0 < used && used <= total, "{local}");
    let used = local["disk_used_bytes"].as_i64().unwrap();
    let total = local["disk_total_bytes"].as_i64().unwrap();
    assert!(0 < used && used <= total, "{local}");
    assert!(local["cpu_pct"].as_f64().is_some() && local["load1"].as_f64().is_some());
    let shown = d.ssh_json(k, &["server", "show", "local"]);
    assert_time(&shown, "sampled_at");

    expect(&d, k, &["metrics", "nowhere"], 3);
    expect(&d, k, &["metrics", "local", "--since", "forever"], 5);
}

/// The dashboard is cached in the daemon: a change over SSH shows in the next call, and a
/// change made by `vipanel admin` (another process) within a bounded wait.
#[test]
fn the_cached_dashboard_follows_changes_over_ssh_and_from_vipanel_admin() {
    let Some(d) = Daemon::start() else { return };
    let a = &d.admin_key;
    let sites = |dash: &Value| dash["sites"].as_i64().unwrap();
    // Fills the cache (twice: the second call is a hit).
    let before = sites(&d.ssh_json(a, &["dashboard"]));
    assert_eq!(sites(&d.ssh_json(a, &["dashboard"])), before);
    d.ssh_json(a, &["site", "create", "one.cache.test"]);
    let dash = d.ssh_json(a, &["dashboard"]);
    assert_eq!(sites(&dash), before + 1, "{dash}");
    assert_eq!(dash["sites_by_status"]["active"], before + 1, "{dash}");
    d.admin(&["site", "create", "two.cache.test"]).expect(0);
    let deadline = Instant::now() + Duration::from_secs(1);
    let dash = loop {
        let dash = d.ssh_json(a, &["dashboard"]);
        if sites(&dash) == before + 2 || Instant::now() > deadline {
            break dash;
        }
    };
    assert_eq!(sites(&dash), before + 2, "{dash}");
    assert_eq!(dash["sites_by_status"]["active"], before + 2, "{dash}");
}
