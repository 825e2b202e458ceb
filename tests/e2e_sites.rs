//! Sites in `system` host mode, end to end, on a [`HostBed`] (a temporary tree with its own
//! nginx and PHP-FPM masters, see `tests/support/host.rs`).
//!
//! Tests skip (with a printed reason) when not root or nginx, php-fpm8.2 or curl are missing,
//! unless `VIPANEL_REQUIRE_SERVICES=1`.

mod support;

use std::time::{Duration, Instant};
use support::host::{HostBed, account_exists, group_exists, process_runs};
use support::run_bounded;

/// A PHP script printing the name of the account it runs as.
const WHOAMI_PHP: &str = "<?php echo posix_getpwuid(posix_geteuid())['name'];\n";

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
