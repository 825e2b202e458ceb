//! Sites in `system` host mode, end to end: the real `vipanel serve` applies sites to a
//! [`HostBed`] (a temporary tree with its own nginx and PHP-FPM masters, see
//! `tests/support/host.rs`), driven over the real OpenSSH client as the bootstrap admin, and
//! the sites are fetched through nginx with curl.
//!
//! Every test starts its own bed and daemon. Tests skip (with a printed reason) when not root or
//! nginx, php-fpm8.2, curl or ssh are missing, unless `VIPANEL_REQUIRE_SERVICES=1`.

mod support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::host::{HostBed, Page, account_exists, group_exists, process_runs, run_as};
use support::{Daemon, Run, run_bounded};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A daemon in `system` host mode and the bed it applies sites to. Fields drop in order: the
/// daemon is stopped before the bed stops its masters and removes the site users.
struct Sites {
    d: Daemon,
    bed: HostBed,
}

impl Sites {
    fn start() -> Option<Sites> {
        Sites::start_with("")
    }

    /// With more configuration after the `[host]` section (other sections).
    fn start_with(extra_toml: &str) -> Option<Sites> {
        let bed = HostBed::start()?;
        let config = format!("{}\n{extra_toml}", bed.config_toml());
        let d = Daemon::builder().config(&config).start()?;
        Some(Sites { d, bed })
    }

    /// `ssh panel@… WORDS…` as the bootstrap admin.
    fn run(&self, words: &[&str]) -> Run {
        self.d.panel(&self.d.admin_key, words)
    }

    /// [`Sites::run`], asserting exit 0.
    #[track_caller]
    fn ok(&self, words: &[&str]) -> Run {
        let run = self.run(words);
        run.expect(0);
        run
    }

    /// [`Sites::run`] with `-o json`, asserting exit 0.
    #[track_caller]
    fn json(&self, words: &[&str]) -> Value {
        self.d.ssh_json(&self.d.admin_key, words)
    }

    /// `site show DOMAIN -o json`.
    #[track_caller]
    fn show(&self, domain: &str) -> Value {
        self.json(&["site", "show", domain])
    }

    /// The site's `system_user`, checked to carry the bed's prefix and to exist.
    #[track_caller]
    fn system_user(&self, domain: &str) -> String {
        let site = self.show(domain);
        let user = site["system_user"]
            .as_str()
            .unwrap_or_else(|| panic!("no system_user in {site}"))
            .to_owned();
        let number = user
            .strip_prefix(self.bed.user_prefix())
            .unwrap_or_else(|| {
                panic!(
                    "system user {user:?} lacks the prefix {:?}",
                    self.bed.user_prefix()
                )
            });
        assert!(
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
            "system user {user:?} is not <prefix><site number>"
        );
        assert!(account_exists(&user), "account {user} does not exist");
        user
    }

    /// GET through nginx, asserting the status.
    #[track_caller]
    fn fetch(&self, domain: &str, path: &str, status: u16) -> Page {
        let page = self.bed.fetch(domain, path);
        // On failure, the daemon and the bed print their logs as they are dropped.
        assert_eq!(page.status, status, "GET http://{domain}{path}: {page:?}");
        page
    }
}

/// Asserts a site's status (and `enabled`, `last_error` when the status implies them).
#[track_caller]
fn assert_status(site: &Value, status: &str) {
    assert_eq!(site["status"], status, "site: {site}");
    match status {
        "active" => {
            assert_eq!(site["enabled"], true, "site: {site}");
            assert_eq!(site["last_error"], Value::Null, "site: {site}");
            assert!(site["applied_at"].is_string(), "site: {site}");
        }
        "disabled" => assert_eq!(site["enabled"], false, "site: {site}"),
        _ => {}
    }
}

/// Asserts the response carries `X-Content-Type-Options: nosniff`.
#[track_caller]
fn assert_nosniff(page: &Page) {
    assert_eq!(
        page.header("x-content-type-options"),
        Some("nosniff"),
        "headers: {:?}",
        page.headers
    );
}

/// The numeric uid of `user`.
fn uid_of(user: &str) -> u32 {
    let run = run_bounded(
        std::process::Command::new("id").args(["-u", user]),
        None,
        "id -u",
    );
    run.expect(0);
    run.stdout.trim().parse().expect("a uid")
}

fn owner(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()))
        .uid()
}

/// Every path under `dir` (itself included) whose owner is not `uid`.
fn not_owned_by(dir: &Path, uid: u32) -> Vec<String> {
    let mut out = Vec::new();
    let meta = std::fs::symlink_metadata(dir).expect("stat");
    if meta.uid() != uid {
        out.push(format!("{} (uid {})", dir.display(), meta.uid()));
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            out.extend(not_owned_by(&entry.path(), uid));
        }
    }
    out
}

/// A PHP script printing the name of the account it runs as.
const WHOAMI_PHP: &str = "<?php echo posix_getpwuid(posix_geteuid())['name'];\n";

/// A tiny HTTP server on 127.0.0.1 answering every request with `body` (an app behind a proxy
/// site). Stopped on drop.
struct Upstream {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    fn start(body: &'static str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        let port = listener.local_addr().expect("upstream address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Upstream {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop up so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The bed itself
// ---------------------------------------------------------------------------------------------

/// Proves the harness without the daemon: both masters run from the temp tree, a SIGHUP is
/// counted as a reload, a hand-made site user's PHP runs as that user behind nginx, and
/// dropping the bed stops the masters and removes the user, its group and the tree.
#[test]
fn host_bed_runs_nginx_and_php_fpm_counts_reloads_and_leaves_nothing_behind() {
    let Some(bed) = HostBed::start() else { return };
    let dir = bed.dir().to_owned();
    let (nginx, fpm) = (bed.nginx_pid(), bed.php_fpm_pid());
    assert!(process_runs(nginx), "nginx master {nginx} does not run");
    assert!(process_runs(fpm), "php-fpm master {fpm} does not run");
    assert_eq!(bed.reloads(), 0, "{}", bed.nginx_log());

    // A site user as the daemon would make one: its own group, which www-data joins.
    let user = format!("{}1", bed.user_prefix());
    let domain = "proof.example";
    let home = bed.site_home(domain);
    let public = bed.document_root(domain);
    let home_arg = home.display().to_string();
    let run = |program: &str, args: &[&str]| {
        run_bounded(
            std::process::Command::new(program).args(args),
            None,
            program,
        )
        .expect(0);
    };
    run(
        "useradd",
        &[
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            &home_arg,
            "--shell",
            "/usr/sbin/nologin",
            &user,
        ],
    );
    run("gpasswd", &["-a", "www-data", &user]);
    std::fs::create_dir_all(&public).expect("create the document root");
    for path in [&home, &public] {
        let path = path.display().to_string();
        run("chown", &[&format!("{user}:{user}"), &path]);
        run("chmod", &["0750", &path]);
    }
    bed.write_as(&public.join("whoami.php"), WHOAMI_PHP.as_bytes(), &user);

    let d = dir.display();
    let socket = format!("{d}/run/php/proof.sock");
    std::fs::write(
        bed.pool_path(domain),
        format!(
            "[{domain}]\nuser = {user}\ngroup = {user}\nlisten = {socket}\nlisten.owner = www-data\n\
             listen.group = www-data\nlisten.mode = 0660\npm = ondemand\npm.max_children = 2\n"
        ),
    )
    .expect("write the pool");
    std::fs::write(
        bed.vhost_path(domain),
        format!(
            "server {{\n    listen 127.0.0.1:{port};\n    server_name {domain};\n    root {public};\n\
             \x20   location ~ \\.php$ {{\n        include fastcgi_params;\n\
             \x20       fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n\
             \x20       fastcgi_pass unix:{socket};\n    }}\n}}\n",
            port = bed.http_port(),
            public = public.display(),
        ),
    )
    .expect("write the vhost");
    let snapshot = bed.snapshot();
    for path in [bed.vhost_path(domain), bed.pool_path(domain)] {
        assert!(
            snapshot.0.contains_key(&path),
            "{} not in the snapshot",
            path.display()
        );
    }

    // SAFETY: kill(2) on the masters this bed started.
    unsafe {
        libc::kill(nginx, libc::SIGHUP);
        libc::kill(fpm, libc::SIGUSR2);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while bed.reloads() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(bed.settled_reloads(), 1, "{}", bed.nginx_log());
    let page = bed.fetch_until(domain, "/whoami.php", 200, Duration::from_secs(10));
    assert_eq!(page.status, 200, "{page:?}\n{}", bed.php_fpm_log());
    assert_eq!(page.body, user);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=UTF-8")
    );
    assert_eq!(bed.nginx_pid(), nginx, "nginx reloads in place");
    // PHP-FPM's master executes itself again and daemonizes anew: a new pid.
    let fpm_now = bed.php_fpm_pid();

    drop(bed);
    assert!(!process_runs(nginx), "nginx master {nginx} still runs");
    for pid in [fpm, fpm_now] {
        assert!(!process_runs(pid), "php-fpm master {pid} still runs");
    }
    assert!(!account_exists(&user), "account {user} left behind");
    assert!(!group_exists(&user), "group {user} left behind");
    let groups = run_bounded(
        std::process::Command::new("id").args(["-Gn", "www-data"]),
        None,
        "id -Gn www-data",
    );
    assert!(
        !groups.stdout.contains(&user),
        "www-data: {}",
        groups.stdout
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}

// ---------------------------------------------------------------------------------------------
// Sites
// ---------------------------------------------------------------------------------------------

#[test]
fn php_static_and_proxy_sites_serve_through_nginx() {
    let Some(t) = Sites::start() else { return };

    // PHP: the site's own pool runs as its own user.
    t.ok(&["site", "create", "alpha.example"]);
    let alpha = t.show("alpha.example");
    assert_eq!(alpha["domain"], "alpha.example");
    assert_eq!(alpha["type"], "php");
    assert_eq!(alpha["php"], "8.2");
    assert_status(&alpha, "active");
    let user = t.system_user("alpha.example");
    assert!(t.bed.vhost_path("alpha.example").is_file());
    assert!(t.bed.pool_path("alpha.example").is_file());
    // The placeholder page, the site's own.
    let placeholder = t.bed.document_root("alpha.example").join("index.html");
    let text = std::fs::read_to_string(&placeholder).expect("a placeholder index.html");
    assert!(text.contains("alpha.example"), "placeholder: {text}");
    assert_eq!(owner(&placeholder), uid_of(&user));
    let page = t.fetch("alpha.example", "/", 200);
    assert!(page.body.contains("alpha.example"), "{page:?}");
    assert_nosniff(&page);
    t.bed.write_as(
        &t.bed.document_root("alpha.example").join("whoami.php"),
        WHOAMI_PHP.as_bytes(),
        &user,
    );
    let page = t.fetch("alpha.example", "/whoami.php", 200);
    assert_eq!(page.body, user, "{page:?}");
    assert_nosniff(&page);

    // Static: files only, PHP is not run.
    t.ok(&["site", "create", "docs.example", "--type", "static"]);
    let docs = t.show("docs.example");
    assert_eq!(docs["type"], "static");
    assert_status(&docs, "active");
    let docs_user = t.system_user("docs.example");
    assert_ne!(docs_user, user, "each site has its own user");
    assert!(
        !t.bed.pool_path("docs.example").exists(),
        "a static site has no pool"
    );
    let root = t.bed.document_root("docs.example");
    t.bed.write_as(
        &root.join("index.html"),
        b"<h1>docs index page</h1>\n",
        &docs_user,
    );
    t.bed.write_as(
        &root.join("code.php"),
        b"<?php echo 'exec' . 'uted';\n",
        &docs_user,
    );
    let page = t.fetch("docs.example", "/", 200);
    assert_eq!(page.body, "<h1>docs index page</h1>\n");
    assert_nosniff(&page);
    let page = t.bed.fetch("docs.example", "/code.php");
    assert!(
        !page.body.contains("executed"),
        "a static site ran PHP: {page:?}"
    );

    // Proxy: nginx passes requests on to the app.
    let app = Upstream::start("hello from the upstream app");
    let upstream = format!("http://127.0.0.1:{}", app.port);
    t.ok(&[
        "site",
        "create",
        "app.example",
        "--type",
        "proxy",
        "--upstream",
        &upstream,
    ]);
    let site = t.show("app.example");
    assert_eq!(site["type"], "proxy");
    assert_eq!(site["upstream"], upstream.as_str());
    assert_status(&site, "active");
    let page = t.fetch("app.example", "/some/path", 200);
    assert_eq!(page.body, "hello from the upstream app");
    assert_nosniff(&page);

    // Names no site has: the catch-all.
    t.fetch("nobody.example", "/", 404);
}

#[test]
fn sites_cannot_read_each_others_files() {
    let Some(t) = Sites::start() else { return };
    t.ok(&["site", "create", "alpha.example"]);
    t.ok(&["site", "create", "beta.example"]);
    let alpha = t.system_user("alpha.example");
    let beta = t.system_user("beta.example");
    assert_ne!(alpha, beta);

    let secret = t.bed.document_root("beta.example").join("secret.txt");
    t.bed.write_as(&secret, b"beta's secret\n", &beta);
    // nginx still serves the file on beta's own name.
    let page = t.fetch("beta.example", "/secret.txt", 200);
    assert_eq!(page.body, "beta's secret\n");

    // alpha's PHP cannot read it...
    let steal = format!(
        "<?php $s = @file_get_contents('{}'); echo $s === false ? 'denied' : $s;\n",
        secret.display()
    );
    t.bed.write_as(
        &t.bed.document_root("alpha.example").join("steal.php"),
        steal.as_bytes(),
        &alpha,
    );
    let page = t.fetch("alpha.example", "/steal.php", 200);
    assert_eq!(page.body, "denied", "{page:?}");

    // ...nor can alpha's account at all; beta's can.
    let path = secret.display().to_string();
    let run = run_as(&alpha, &["cat", &path]);
    assert_ne!(run.code, 0, "{alpha} read beta's file: {run:?}");
    assert!(!run.stdout.contains("secret"), "{run:?}");
    let run = run_as(&beta, &["cat", &path]);
    run.expect(0);
    assert_eq!(run.stdout, "beta's secret\n");

    // ...nor through nginx, which is in both sites' groups: a link in alpha's files to beta's
    // secret is refused, while a link within alpha's own files works.
    let public = t.bed.document_root("alpha.example");
    std::os::unix::fs::symlink(&secret, public.join("loot.txt")).expect("link");
    lchown_to(&public.join("loot.txt"), &alpha);
    let page = t.bed.fetch("alpha.example", "/loot.txt");
    assert_ne!(
        page.status, 200,
        "beta's secret served through alpha: {page:?}"
    );
    assert!(!page.body.contains("secret"), "{page:?}");
    t.bed
        .write_as(&public.join("own.txt"), b"alpha's own\n", &alpha);
    std::os::unix::fs::symlink(public.join("own.txt"), public.join("own-link.txt")).expect("link");
    lchown_to(&public.join("own-link.txt"), &alpha);
    let page = t.fetch("alpha.example", "/own-link.txt", 200);
    assert_eq!(page.body, "alpha's own\n");
}

/// Gives a symbolic link (not its target) to a site's account, as if the site had made it.
fn lchown_to(path: &Path, user: &str) {
    let uid = uid_of(user);
    std::os::unix::fs::lchown(path, Some(uid), None).expect("lchown");
}

/// The one copy of a deleted site's directory kept in `<parent>/.deleted/<name>.<time>`.
fn kept_aside(dir: &Path) -> std::path::PathBuf {
    let attic = dir.parent().expect("parent").join(".deleted");
    let name = dir
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let kept: Vec<_> = std::fs::read_dir(&attic)
        .unwrap_or_else(|e| panic!("{}: {e}", attic.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{name}.")))
        })
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    kept[0].clone()
}

#[test]
fn sites_are_disabled_enabled_aliased_and_deleted() {
    let Some(t) = Sites::start() else { return };
    let domain = "life.example";
    t.ok(&["site", "create", domain]);
    let user = t.system_user(domain);
    let page = t.fetch(domain, "/", 200);
    assert!(page.body.contains(domain), "{page:?}");

    // Without --yes and without a terminal to ask on: a usage error, and nothing happens.
    t.run(&["site", "delete", domain]).expect(2);
    t.fetch(domain, "/", 200);
    assert!(account_exists(&user));

    t.ok(&["site", "disable", domain]);
    assert_status(&t.show(domain), "disabled");
    t.fetch(domain, "/", 503);
    assert!(
        !t.bed.pool_path(domain).exists(),
        "a disabled site has no pool"
    );
    t.ok(&["site", "enable", domain]);
    assert_status(&t.show(domain), "active");
    let page = t.fetch(domain, "/", 200);
    assert!(page.body.contains(domain), "the content is back: {page:?}");
    assert!(t.bed.pool_path(domain).is_file());

    let alias = "www.life.example";
    t.ok(&["site", "alias", "add", domain, alias]);
    assert_eq!(t.show(domain)["aliases"], serde_json::json!([alias]));
    let page = t.fetch(alias, "/", 200);
    assert!(page.body.contains(domain), "{page:?}");
    t.ok(&["site", "alias", "remove", domain, alias]);
    assert_eq!(t.show(domain)["aliases"], serde_json::json!([]));
    t.fetch(alias, "/", 404);

    // Delete: the site stops, its user goes, its files and logs are kept aside (root's now),
    // where a new site with the same name (perhaps another tenant's) does not get them.
    t.ok(&["site", "delete", domain, "--yes"]);
    t.fetch(domain, "/", 404);
    t.run(&["site", "show", domain]).expect(3);
    assert!(!account_exists(&user), "account {user} outlived its site");
    assert!(!t.bed.vhost_path(domain).exists());
    assert!(!t.bed.pool_path(domain).exists());
    assert!(!t.bed.site_home(domain).exists(), "the home moved aside");
    let home = kept_aside(&t.bed.site_home(domain));
    assert!(home.join("public/index.html").is_file(), "the files stay");
    assert_eq!(
        not_owned_by(&home, 0),
        Vec::<String>::new(),
        "the files are root's"
    );
    let logs = kept_aside(&t.bed.log_dir(domain));
    assert_eq!(
        not_owned_by(&logs, 0),
        Vec::<String>::new(),
        "the logs are root's"
    );
    // A new site with that name starts empty, with its own placeholder.
    t.ok(&["site", "create", domain, "--type", "static"]);
    let page = t.fetch(domain, "/", 200);
    assert!(page.body.contains(domain), "{page:?}");
    t.ok(&["site", "delete", domain, "--purge", "--yes"]);

    // Delete --purge: the files and logs go too.
    let gone = "gone.example";
    t.ok(&["site", "create", gone]);
    let gone_user = t.system_user(gone);
    t.fetch(gone, "/", 200);
    assert!(t.bed.site_home(gone).is_dir());
    t.ok(&["site", "delete", gone, "--purge", "--yes"]);
    t.fetch(gone, "/", 404);
    assert!(!account_exists(&gone_user));
    assert!(!t.bed.site_home(gone).exists(), "--purge removes the home");
    assert!(!t.bed.log_dir(gone).exists(), "--purge removes the logs");
}

#[test]
fn a_failed_apply_rolls_back_the_site_and_keeps_every_site_serving() {
    let Some(t) = Sites::start() else { return };
    t.ok(&["site", "create", "alpha.example"]);
    t.ok(&["site", "create", "beta.example"]);
    t.fetch("alpha.example", "/", 200);
    t.fetch("beta.example", "/", 200);
    let vhost = t.bed.vhost_path("beta.example");
    let pool = t.bed.pool_path("beta.example");
    let vhost_bytes = std::fs::read(&vhost).expect("beta's vhost");
    let pool_bytes = std::fs::read(&pool).expect("beta's pool");

    // The operator's hook breaks nginx's configuration.
    let hooks = t.bed.hooks_dir("beta.example");
    std::fs::create_dir_all(&hooks).expect("create the hooks dir");
    let hook = hooks.join("broken.conf");
    std::fs::write(&hook, "this_is_not_a_directive on;\n").expect("write the hook");
    let before = t.bed.snapshot();
    let reloads = t.bed.settled_reloads();

    let run = t.run(&["site", "apply", "beta.example"]);
    run.expect(8);
    assert!(run.stderr.contains("unknown directive"), "{run:?}");
    assert_eq!(t.bed.settled_reloads(), reloads, "nginx was reloaded");
    t.fetch("alpha.example", "/", 200);
    t.fetch("beta.example", "/", 200);
    assert!(
        std::fs::read(&vhost).expect("beta's vhost") == vhost_bytes,
        "vhost not restored"
    );
    assert!(
        std::fs::read(&pool).expect("beta's pool") == pool_bytes,
        "pool not restored"
    );
    assert_eq!(
        before.changes(&t.bed.snapshot()),
        Vec::<String>::new(),
        "files changed by a failed apply"
    );
    let site = t.show("beta.example");
    assert_status(&site, "error");
    let error = site["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("this_is_not_a_directive"), "site: {site}");
    assert_status(&t.show("alpha.example"), "active");

    // A valid hook: applied, and kept by a reconcile (vipanel never writes hooks).
    std::fs::remove_file(&hook).expect("remove the broken hook");
    let hook = hooks.join("header.conf");
    let hook_text = "add_header X-Hook on always;\n";
    std::fs::write(&hook, hook_text).expect("write the hook");
    t.ok(&["site", "apply", "beta.example"]);
    let page = t.fetch("beta.example", "/", 200);
    assert_eq!(page.header("X-Hook"), Some("on"), "{page:?}");
    assert_status(&t.show("beta.example"), "active");
    t.ok(&["host", "reconcile"]);
    assert_eq!(
        std::fs::read_to_string(&hook).ok().as_deref(),
        Some(hook_text)
    );
    let page = t.fetch("beta.example", "/", 200);
    assert_eq!(page.header("X-Hook"), Some("on"), "{page:?}");
    t.fetch("alpha.example", "/", 200);
}

#[test]
fn a_burst_of_fifty_creates_costs_at_most_three_reloads() {
    // Fifty clients connect at once from 127.0.0.1: let them all in.
    let limits =
        "[limits]\nmax_unauthenticated_per_source = 64\nstartups_begin = 64\nstartups_full = 128\n";
    let Some(t) = Sites::start_with(limits) else {
        return;
    };
    let before = t.bed.settled_reloads();
    let domains: Vec<String> = (0..50).map(|n| format!("burst{n}.example")).collect();
    let started = Instant::now();
    let pending: Vec<_> = domains
        .iter()
        .map(|domain| {
            t.d.spawn_ssh(
                &t.d.admin_key,
                &["site", "create", domain, "--type", "static"],
            )
        })
        .collect();
    for run in pending.into_iter().map(|p| p.finish(b"")) {
        run.expect(0);
    }
    let took = started.elapsed();
    let reloads = t.bed.settled_reloads() - before;
    println!("50 concurrent creates: {took:?}, {reloads} nginx reload(s)");
    for domain in &domains {
        let page = t.fetch(domain, "/", 200);
        assert!(page.body.contains(domain.as_str()), "{domain}: {page:?}");
    }
    let list = t.json(&["site", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(50), "{list}");
    for site in list.as_array().into_iter().flatten() {
        assert_eq!(site["status"], "active", "{site}");
    }
    assert_eq!(t.bed.site_accounts().len(), 50, "one system user per site");
    assert!(reloads <= 3, "50 creates cost {reloads} reloads");
}

#[test]
fn evil_names_and_upstreams_are_refused_and_nothing_is_written() {
    let Some(t) = Sites::start() else { return };
    // Whatever the daemon writes on its own (the catch-all) is there before the snapshot.
    t.ok(&["host", "reconcile"]);
    let before = t.bed.snapshot();
    let evil_names = [
        "a;b.example",
        "a{b.example",
        "a\nb.example",
        "a b.example",
        "a$b.example",
        "a'b.example",
        "a\"b.example",
        "../etc.example",
    ];
    for name in evil_names {
        // Each word arrives as one argument: remote_line quotes it for the server's split.
        t.run(&["site", "create", name]).expect(5);
        t.run(&["site", "create", "ok.example", "--alias", name])
            .expect(5);
    }
    for upstream in [
        "http://127.0.0.1:3000\nroot /",
        "ftp://127.0.0.1:21",
        "file:///etc/passwd",
        "gopher://x.example:70",
        "http://127.0.0.1:3000;",
    ] {
        t.run(&[
            "site",
            "create",
            "ok.example",
            "--type",
            "proxy",
            "--upstream",
            upstream,
        ])
        .expect(5);
    }
    assert_eq!(
        before.changes(&t.bed.snapshot()),
        Vec::<String>::new(),
        "refused input wrote files"
    );
    assert_eq!(t.json(&["site", "list"]), serde_json::json!([]));
    assert_eq!(t.bed.site_accounts(), Vec::<String>::new());
}

#[test]
fn php_versions_logs_and_reconcile() {
    let Some(t) = Sites::start() else { return };
    let versions = t.json(&["php", "list"]);
    let listed: Vec<&str> = versions
        .as_array()
        .unwrap_or_else(|| panic!("php list: {versions}"))
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert!(listed.contains(&"8.2"), "php list: {versions}");
    let run = t.run(&["site", "create", "old.example", "--php", "7.4"]);
    run.expect(5);
    assert!(run.stderr.contains("8.2"), "the message lists 8.2: {run:?}");
    t.run(&["site", "show", "old.example"]).expect(3);

    t.ok(&["site", "create", "alpha.example"]);
    t.run(&["site", "php", "alpha.example", "7.4"]).expect(5);
    assert_eq!(t.show("alpha.example")["php"], "8.2");

    // The access log, through `site logs`.
    t.bed.fetch("alpha.example", "/logged-path-4711");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = t.ok(&["site", "logs", "alpha.example", "--lines", "5"]);
        if run.stdout.contains("/logged-path-4711") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fetch is not in the log: {run:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Reconcile is idempotent, and restores what was lost.
    let first = t.json(&["host", "reconcile"]);
    assert_eq!(first["sites"], 1, "{first}");
    assert_eq!(first["failed"], serde_json::json!([]), "{first}");
    let second = t.json(&["host", "reconcile"]);
    assert_eq!(second["changed"], 0, "{second}");
    assert_eq!(second["failed"], serde_json::json!([]), "{second}");
    let vhost = t.bed.vhost_path("alpha.example");
    let bytes = std::fs::read(&vhost).expect("alpha's vhost");
    std::fs::remove_file(&vhost).expect("remove alpha's vhost");
    let third = t.json(&["host", "reconcile"]);
    assert!(third["changed"].as_u64().is_some_and(|n| n >= 1), "{third}");
    assert!(
        std::fs::read(&vhost).ok() == Some(bytes),
        "vhost not restored as it was"
    );
    let page = t.fetch("alpha.example", "/", 200);
    assert!(page.body.contains("alpha.example"), "{page:?}");
}

/// What a crash leaves behind, repaired by `host reconcile`: a change recorded but never applied
/// (the process died before its apply), and a deletion that died after marking the site.
#[test]
fn reconcile_finishes_what_a_crash_interrupted() {
    let Some(t) = Sites::start() else { return };
    t.ok(&["site", "create", "alpha.example", "--type", "static"]);
    t.ok(&["site", "create", "beta.example"]);
    let beta_user = t.show("beta.example")["system_user"]
        .as_str()
        .expect("beta's account")
        .to_owned();
    // As if `site disable alpha.example` had committed and the daemon died before applying it,
    // and `site delete beta.example` had died right after marking the site.
    t.d.raw_sql(&[
        "UPDATE sites SET enabled = FALSE, revision = revision + 1 WHERE domain = 'alpha.example'",
        "UPDATE sites SET status = 'deleting' WHERE domain = 'beta.example'",
    ])
    .expect("simulate the crash");
    t.fetch("alpha.example", "/", 200);
    t.fetch("beta.example", "/", 200);

    let report = t.json(&["host", "reconcile"]);
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["deletions_finished"],
        serde_json::json!(["beta.example"]),
        "{report}"
    );
    t.fetch("alpha.example", "/", 503);
    assert_status(&t.show("alpha.example"), "disabled");
    t.fetch("beta.example", "/", 404);
    t.run(&["site", "show", "beta.example"]).expect(3);
    assert!(!t.bed.vhost_path("beta.example").exists());
    assert!(!t.bed.pool_path("beta.example").exists());
    assert!(!account_exists(&beta_user), "beta's account is gone");
    let again = t.json(&["host", "reconcile"]);
    assert_eq!(again["changed"], 0, "{again}");
}

/// A master that does not take the new configuration: the apply puts the old files back, the
/// site fails with exit 8 and the reason, and the account made for it goes again.
#[test]
fn a_failed_reload_puts_the_previous_files_back() {
    let Some(t) = Sites::start() else { return };
    t.ok(&["site", "create", "alpha.example", "--type", "static"]);
    let before = t.bed.snapshot();
    // nginx stops (the bed's own master, by its pid): its pid file stays, naming a dead process.
    let nginx = t.bed.nginx_pid();
    let stopped = run_bounded(
        std::process::Command::new("kill").args(["-QUIT", &nginx.to_string()]),
        None,
        "kill nginx",
    );
    stopped.expect(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_runs(nginx) {
        assert!(Instant::now() < deadline, "nginx did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = t.run(&["site", "create", "beta.example", "--type", "static"]);
    run.expect(8);
    assert!(
        run.stderr.contains("nginx"),
        "the reason names nginx: {run:?}"
    );
    let beta = t.show("beta.example");
    assert_status(&beta, "error");
    assert!(
        !t.bed.vhost_path("beta.example").exists(),
        "beta's vhost went back"
    );
    let account = beta["system_user"].as_str().expect("an account name");
    assert!(
        !account_exists(account),
        "the account made for beta went again"
    );
    let after = t.bed.snapshot();
    let changed: Vec<String> = before
        .changes(&after)
        .into_iter()
        // The site stays recorded (status error) with its directories: its home, its logs and
        // the empty directory for its hooks. No configuration file changed.
        .filter(|p| !p.contains("/srv/") && !p.contains("/log/"))
        .filter(|p| !p.ends_with("/custom.d/beta.example"))
        .collect();
    assert!(
        changed.is_empty(),
        "configuration files changed: {changed:?}"
    );
}

/// A wrapper around the real nginx that holds `nginx -t` while a hold file exists, so a test
/// can stop the daemon in the middle of an apply (files written, nothing validated or reloaded).
struct HeldNginx {
    _dir: tempfile::TempDir,
    hold: std::path::PathBuf,
    entered: std::path::PathBuf,
    wrapper: std::path::PathBuf,
}

impl HeldNginx {
    fn new() -> HeldNginx {
        let dir = tempfile::tempdir().expect("a temp dir");
        let hold = dir.path().join("hold");
        let entered = dir.path().join("entered");
        let wrapper = dir.path().join("nginx");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n\
                 if [ \"$1\" = \"-t\" ] && [ -e {hold} ]; then\n\
                 \x20 touch {entered}\n\
                 \x20 while [ -e {hold} ]; do sleep 0.05; done\n\
                 fi\n\
                 exec /usr/sbin/nginx \"$@\"\n",
                hold = hold.display(),
                entered = entered.display()
            ),
        )
        .expect("write the nginx wrapper");
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod the wrapper");
        HeldNginx {
            _dir: dir,
            hold,
            entered,
            wrapper,
        }
    }

    /// The next `nginx -t` waits until [`HeldNginx::release`].
    fn hold(&self) {
        std::fs::write(&self.hold, b"").expect("create the hold file");
    }

    /// Waits (bounded) until an apply is held in `nginx -t`.
    fn wait_entered(&self, d: &Daemon) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.entered.exists() {
            assert!(
                Instant::now() < deadline,
                "the apply never reached nginx -t\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn release(&self) {
        std::fs::remove_file(&self.hold).expect("release the held nginx -t");
    }
}

/// A daemon in system mode on `bed` whose nginx is `nginx` (held), configured with `extra`
/// TOML after the `[host]` section, and a `site create WORDS…` of it held inside `nginx -t`.
/// Returns the daemon, its configuration and the waiting client.
fn daemon_held_mid_apply(
    bed: &HostBed,
    nginx: &HeldNginx,
    extra: &str,
    words: &[&str],
) -> Option<(Daemon, String, support::PendingSsh)> {
    let host = format!(
        "{}nginx_binary = \"{}\"\n{extra}",
        bed.config_toml(),
        nginx.wrapper.display()
    );
    let first = Daemon::builder().config(&host).start()?;
    nginx.hold();
    let mut argv = vec!["site", "create"];
    argv.extend_from_slice(words);
    let pending = first.spawn_ssh(&first.admin_key, &argv);
    nginx.wait_entered(&first);
    Some((first, host, pending))
}

/// The node's next daemon, on `first`'s database with the same configuration, once its newest
/// `site.apply` job succeeded (bounded); returns the daemon and that job.
fn next_daemon_finishes_the_apply(first: &Daemon, host: &str) -> Option<(Daemon, Value)> {
    let config = format!(
        "database_url = \"sqlite://{}\"\n{host}",
        first.db_path().display()
    );
    let second = Daemon::builder().config(&config).start()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = second.ssh_json(&first.admin_key, &["job", "list", "--kind", "site.apply"]);
        if jobs[0]["state"] == "succeeded" {
            let job = jobs[0].clone();
            return Some((second, job));
        }
        assert!(
            Instant::now() < deadline,
            "the apply job did not complete after the restart: {jobs}\n{}",
            second.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `kill -9` of the daemon in the middle of a site's apply job: the vhost and pool are written,
/// `nginx -t` is running, nothing is reloaded. The next daemon of the node (same database and
/// `jobs.node`) queues the job again once its lease expired and runs it: the site serves, with
/// one account, one vhost, one pool, no staged leftovers, one audit row, and the job succeeded
/// on its second attempt. The pause is a wrapper around the real nginx that holds `nginx -t`
/// while a file exists, so the kill lands mid-apply every time.
#[test]
fn a_daemon_killed_mid_apply_finishes_the_site_once_on_restart() {
    let Some(bed) = HostBed::start() else { return };
    let nginx = HeldNginx::new();
    let extra = "[jobs]\nlease_secs = 3\nnode = \"fault-node\"\n";
    let Some((mut first, host, pending)) =
        daemon_held_mid_apply(&bed, &nginx, extra, &["crash.example"])
    else {
        return;
    };
    let key = first.admin_key.clone();
    let pid = libc::pid_t::try_from(first.pid()).expect("pid fits pid_t");
    // SAFETY: kill(2) with the pid of the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(!first.wait_exit(Duration::from_secs(10)).success());
    // The orphaned `nginx -t` goes on and ends by itself.
    nginx.release();
    let cut = pending.finish(b"");
    assert_ne!(cut.code, 0, "the client lost its daemon: {cut:?}");

    // Mid-apply: the files are in place, the job is running on a dead worker, nothing serves.
    assert!(bed.vhost_path("crash.example").is_file());
    assert!(bed.pool_path("crash.example").is_file());
    assert_eq!(bed.site_accounts().len(), 1, "{:?}", bed.site_accounts());
    assert_ne!(bed.fetch("crash.example", "/").status, 200);

    let Some((second, job)) = next_daemon_finishes_the_apply(&first, &host) else {
        return;
    };
    assert_eq!(job["attempts"], 2, "the killed attempt counted: {job}");
    assert_eq!(job["node"], "fault-node", "{job}");
    assert_eq!(
        job["result"]["applied"],
        serde_json::json!(["crash.example"])
    );
    assert!(second.log().contains("lease expired"), "{}", second.log());

    let site = second.ssh_json(&key, &["site", "show", "crash.example"]);
    assert_status(&site, "active");
    let user = site["system_user"].as_str().expect("an account").to_owned();
    let page = bed.fetch_until("crash.example", "/", 200, Duration::from_secs(10));
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("crash.example"), "{page:?}");
    bed.write_as(
        &bed.document_root("crash.example").join("whoami.php"),
        WHOAMI_PHP.as_bytes(),
        &user,
    );
    let page = bed.fetch_until("crash.example", "/whoami.php", 200, Duration::from_secs(10));
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.body, user, "the pool runs after the retry: {page:?}");

    // Once: one account, no staged files, one audit row, and nothing left to change.
    assert_eq!(bed.site_accounts(), vec![user.clone()]);
    let staged: Vec<String> = bed
        .snapshot()
        .0
        .keys()
        .map(|p| p.display().to_string())
        .filter(|p| p.contains("vipanel-new"))
        .collect();
    assert!(staged.is_empty(), "staged leftovers: {staged:?}");
    // The database is the first daemon's file.
    let creates = first
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "site.create" && r.target == "crash.example")
        .count();
    assert_eq!(creates, 1);
    let again = second.ssh_json(&key, &["host", "reconcile"]);
    assert_eq!(again["changed"], 0, "{again}");
}

/// Health checks through the real nginx: a static site that serves is `ok`, a proxy site whose
/// upstream is down (nginx answers 502) is `failing`, a disabled site is not probed; the
/// dashboard counts the failing one, and the panel host is `ok`. The checks run as
/// `health.check` jobs every second here.
#[test]
fn health_checks_probe_each_active_site_through_nginx() {
    let Some(bed) = HostBed::start() else { return };
    let Some(d) = Daemon::builder()
        .config(&bed.config_toml())
        .env("VIPANEL_HEALTH__INTERVAL_SECS", "1")
        .env("VIPANEL_HEALTH__TIMEOUT_MS", "2000")
        .start()
    else {
        return;
    };
    let t = Sites { d, bed };
    t.ok(&["site", "create", "up.example", "--type", "static"]);
    // Nothing listens on the upstream: nginx answers 502.
    let dead = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let upstream = format!("http://{}", dead.local_addr().expect("address"));
    drop(dead);
    t.ok(&[
        "site",
        "create",
        "down.example",
        "--type",
        "proxy",
        "--upstream",
        &upstream,
    ]);
    t.ok(&["site", "create", "off.example", "--type", "static"]);
    t.ok(&["site", "disable", "off.example"]);
    t.fetch("down.example", "/", 502);

    let deadline = Instant::now() + Duration::from_secs(30);
    let (up, down) = loop {
        let (up, down) = (t.show("up.example"), t.show("down.example"));
        if up["health"].is_string() && down["health"].is_string() {
            break (up, down);
        }
        assert!(Instant::now() < deadline, "never checked: {up}\n{down}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(up["health"], "ok", "{up}");
    assert!(
        up["health_detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("HTTP 200 in")),
        "{up}"
    );
    assert!(up["health_at"].is_string(), "{up}");
    assert_eq!(down["health"], "failing", "{down}");
    assert!(
        down["health_detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("HTTP 502")),
        "{down}"
    );
    assert!(
        t.show("off.example")["health"].is_null(),
        "a disabled site is not probed"
    );
    let dashboard = t.json(&["dashboard"]);
    assert_eq!(dashboard["sites_failing_health"], 1, "{dashboard}");
    let local = t.json(&["server", "show", "local"]);
    assert_eq!(local["health"], "ok", "{local}");
    let checks = t.json(&[
        "job",
        "list",
        "--kind",
        "health.check",
        "--state",
        "succeeded",
    ]);
    // Newest first: the last check saw every site.
    let newest = &checks[0];
    assert_eq!(
        newest["result"]["sites_failing"],
        serde_json::json!(["down.example"]),
        "{checks}"
    );
    assert_eq!(newest["created_by"], "@daemon", "{newest}");
}

/// A graceful restart (SIGTERM) in the middle of a site's apply job, run by the `site create`
/// that asked for it: the command gets its grace (1 s here), then the daemon puts the job back
/// in the queue (due at once, its attempt counted) and exits 0. The node's next daemon runs it at once,
/// not after the lease (60 s): the site serves, applied once.
#[test]
fn sigterm_mid_apply_puts_the_job_back_and_the_next_daemon_finishes_it() {
    let Some(bed) = HostBed::start() else { return };
    let nginx = HeldNginx::new();
    let extra = "[limits]\nshutdown_grace_secs = 1\n[jobs]\nnode = \"restart-node\"\n";
    let words = ["calm.example", "--type", "static"];
    let Some((mut first, host, pending)) = daemon_held_mid_apply(&bed, &nginx, extra, &words)
    else {
        return;
    };
    let key = first.admin_key.clone();
    first.terminate();
    let status = first.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", first.log());
    assert!(
        first.log().contains("put back in the queue"),
        "{}",
        first.log()
    );
    nginx.release();
    let cut = pending.finish(b"");
    assert_ne!(
        cut.code, 0,
        "the command did not finish within the grace: {cut:?}"
    );

    // Within 30 s, so before the 60 s lease could have expired.
    let Some((second, job)) = next_daemon_finishes_the_apply(&first, &host) else {
        return;
    };
    assert_eq!(job["attempts"], 2, "the interrupted attempt counted: {job}");
    assert!(
        !second.log().contains("lease expired"),
        "released, not reaped:\n{}",
        second.log()
    );
    let site = second.ssh_json(&key, &["site", "show", "calm.example"]);
    assert_status(&site, "active");
    let page = bed.fetch_until("calm.example", "/", 200, Duration::from_secs(10));
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("calm.example"), "{page:?}");
    assert_eq!(bed.site_accounts().len(), 1, "{:?}", bed.site_accounts());
}
