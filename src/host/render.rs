//! The files the host layer writes, rendered from validated values with the templates in
//! `templates/host/`: a site's nginx vhost and PHP-FPM pool, the catch-all server, the include
//! that pulls the vhosts into nginx, and the nginx main configuration of sandbox mode.
//!
//! The template structs hold validated values only ([`SiteSpec`] and its parts, [`SafePath`],
//! [`AccountName`], [`ListenAddr`]), so nothing reaches a configuration line unchecked. Output
//! is not escaped: those types cannot hold a character that would end a line, a value or a
//! directive.

use super::spec::{AccountName, ListenAddr, SafePath, SiteBackend, SiteSpec};
use crate::domain::PhpVersion;
use askama::Template;

/// The first line of every generated file starts with this; `host reconcile` and humans recognise managed files by it.
///
/// The line is a comment, so the mark follows the comment character and a space: `# ` in the
/// nginx files, `; ` in PHP-FPM pools.
pub const MANAGED_MARK: &str = "Managed by vipanel";

#[derive(Template)]
#[template(path = "host/vhost.conf", escape = "none")]
struct VhostConf<'a> {
    site: &'a SiteSpec,
}

#[derive(Template)]
#[template(path = "host/pool.conf", escape = "none")]
struct PoolConf<'a> {
    site: &'a SiteSpec,
    version: PhpVersion,
    socket: &'a SafePath,
    nginx_user: &'a AccountName,
}

#[derive(Template)]
#[template(path = "host/catch-all.conf", escape = "none")]
struct CatchAllConf<'a> {
    listen: &'a [ListenAddr],
}

#[derive(Template)]
#[template(path = "host/include.conf", escape = "none")]
struct IncludeConf<'a> {
    sites_dir: &'a SafePath,
}

#[derive(Template)]
#[template(path = "host/sandbox-nginx.conf", escape = "none")]
struct SandboxNginxConf<'a> {
    root: &'a SafePath,
    sites_dir: &'a SafePath,
    pid: SafePath,
    error_log: SafePath,
    access_log: SafePath,
    temp_dir: SafePath,
}

/// Renders a template whose values all display infallibly (strings and validated types).
fn render(template: &impl Template) -> String {
    let mut text = template
        .render()
        .expect("host templates only display infallible values");
    // Askama drops the template file's final newline; a configuration file ends with one.
    text.push('\n');
    text
}

/// The nginx server block(s) for a site (enabled: php/static/proxy; disabled: 503).
pub fn vhost(site: &SiteSpec) -> String {
    render(&VhostConf { site })
}

/// The PHP-FPM pool of an enabled PHP site; None for static, proxy and disabled sites.
///
/// `nginx_user` owns the pool's socket (user and group of that name), so only nginx can use it.
pub fn pool(site: &SiteSpec, nginx_user: &AccountName) -> Option<String> {
    match &site.backend {
        SiteBackend::Php { version, socket } if site.enabled => Some(render(&PoolConf {
            site,
            version: *version,
            socket,
            nginx_user,
        })),
        _ => None,
    }
}

/// The catch-all server written as `<nginx_dir>/sites/+default.conf`: unknown host names on the site listen addresses get 404 (no `default_server` flag, so a distribution's own default server still wins; this file sorts before every `<domain>.conf`).
pub fn catch_all(listen: &[ListenAddr]) -> String {
    render(&CatchAllConf { listen })
}

/// The file (host.nginx_include) that pulls the managed vhosts into nginx's main configuration: `include <sites_dir>/*.conf;` with the managed header.
pub fn nginx_include(sites_dir: &SafePath) -> String {
    render(&IncludeConf { sites_dir })
}

/// A complete minimal nginx main configuration for sandbox mode, so `nginx -t -p <root> -c <this file>` can check the managed vhosts without root and without touching /var: pid, error_log, every *_temp_path under `root`, `include <sites_dir>/*.conf;` inside http.
///
/// The paths mirror Debian's under `root`: `run/nginx.pid`, `var/log/nginx/error.log` and
/// `access.log`, temp directories in `var/lib/nginx/`. The caller creates `<root>/run`,
/// `<root>/var/log/nginx` and `<root>/var/lib/nginx`; nginx creates the rest.
pub fn sandbox_nginx_main(root: &SafePath, sites_dir: &SafePath) -> String {
    // `join`, not `rerooted`: the latter would write `//run` for a root of `/`.
    let under_root = |path: &str| {
        path.split('/')
            .try_fold(root.clone(), |dir, name| dir.join(name))
            .expect("a fixed, valid relative path")
    };
    render(&SandboxNginxConf {
        root,
        sites_dir,
        pid: under_root("run/nginx.pid"),
        error_log: under_root("var/log/nginx/error.log"),
        access_log: under_root("var/log/nginx/access.log"),
        temp_dir: under_root("var/lib/nginx"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DomainName, Upstream};
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::process::Command;

    const NGINX: &str = "/usr/sbin/nginx";
    const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";

    fn path(p: &str) -> SafePath {
        SafePath::parse(p).unwrap()
    }

    fn php(root: &SafePath, domain: &str) -> SiteBackend {
        SiteBackend::Php {
            version: PhpVersion::parse("8.2").unwrap(),
            socket: root
                .join("run")
                .unwrap()
                .join(&format!("{domain}.sock"))
                .unwrap(),
        }
    }

    fn proxy(upstream: &str) -> SiteBackend {
        SiteBackend::Proxy {
            upstream: Upstream::parse(upstream).unwrap(),
        }
    }

    /// A site laid out like the host layer lays it out, every path under `root`.
    fn site(
        root: &SafePath,
        domain: &str,
        aliases: &[&str],
        backend: SiteBackend,
        enabled: bool,
        listen: Vec<ListenAddr>,
    ) -> SiteSpec {
        let home = root.join("srv").unwrap().join(domain).unwrap();
        let logs = root.join("var").unwrap().join("log").unwrap();
        let logs = logs.join("nginx").unwrap();
        SiteSpec {
            domain: DomainName::parse(domain).unwrap(),
            aliases: aliases
                .iter()
                .map(|a| DomainName::parse(a).unwrap())
                .collect(),
            backend,
            enabled,
            user: AccountName::parse("vpsite7").unwrap(),
            document_root: home.join("public").unwrap(),
            tmp_dir: home.join("tmp").unwrap(),
            home,
            access_log: logs.join(&format!("{domain}.access.log")).unwrap(),
            error_log: logs.join(&format!("{domain}.error.log")).unwrap(),
            hooks_dir: root
                .join("etc")
                .unwrap()
                .join("nginx")
                .unwrap()
                .join("custom.d")
                .unwrap()
                .join(domain)
                .unwrap(),
            listen,
        }
    }

    fn port_80() -> Vec<ListenAddr> {
        ListenAddr::for_http(&[], 80)
    }

    /// The managed header, and no template debris: no trailing blanks, no runs of blank lines,
    /// one final newline.
    fn assert_managed_and_tidy(text: &str, comment: char) {
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!(
                "{comment} {MANAGED_MARK}: rebuilt from the panel's"
            )),
            "first line: {first:?}"
        );
        for (n, line) in text.lines().enumerate() {
            assert_eq!(line, line.trim_end(), "trailing blanks on line {}", n + 1);
        }
        assert!(!text.contains("\n\n\n"), "a run of blank lines:\n{text}");
        assert!(text.ends_with('\n') && !text.ends_with("\n\n"));
    }

    fn assert_common_server(conf: &str, server_name: &str) {
        for line in [
            "    listen 80;\n",
            "    listen [::]:80;\n",
            &format!("    server_name {server_name};\n"),
            "    access_log /var/log/nginx/",
            "    add_header X-Content-Type-Options \"nosniff\" always;\n",
            "    add_header X-Frame-Options \"SAMEORIGIN\" always;\n",
            "    add_header Referrer-Policy \"strict-origin-when-cross-origin\" always;\n",
            "    server_tokens off;\n",
        ] {
            assert!(conf.contains(line), "{line:?} missing in\n{conf}");
        }
        assert!(!conf.contains("add_header Strict-Transport-Security"));
        assert!(!conf.contains("default_server"));
    }

    #[test]
    fn enabled_php_vhost() {
        let root = path("/");
        let spec = site(
            &root,
            "example.com",
            &["www.example.com", "example.net"],
            php(&root, "example.com"),
            true,
            port_80(),
        );
        let conf = vhost(&spec);
        assert_managed_and_tidy(&conf, '#');
        assert!(conf.contains(
            "# Put your own directives in /etc/nginx/custom.d/example.com/*.conf (included below"
        ));
        assert!(conf.contains("# example.com: PHP 8.2 "));
        assert_common_server(&conf, "example.com www.example.com example.net");
        for line in [
            "    access_log /var/log/nginx/example.com.access.log;\n",
            "    error_log /var/log/nginx/example.com.error.log;\n",
            "    include /etc/nginx/custom.d/example.com/*.conf;\n",
            "    location ~ /\\.(?!well-known/) {\n        deny all;\n    }\n",
            "    root /srv/example.com/public;\n",
            "    index index.php index.html;\n",
            "        try_files $uri $uri/ /index.php?$args;\n",
            "    location ~ \\.php$ {\n        # Only scripts",
            "        try_files $uri =404;\n",
            "        fastcgi_pass unix:/run/example.com.sock;\n",
            "        fastcgi_param SCRIPT_FILENAME   $document_root$fastcgi_script_name;\n",
            "        fastcgi_param HTTP_PROXY        \"\";\n",
            "        fastcgi_param QUERY_STRING      $query_string;\n",
            "        fastcgi_param REDIRECT_STATUS   200;\n",
        ] {
            assert!(conf.contains(line), "{line:?} missing in\n{conf}");
        }
        assert!(!conf.contains("include fastcgi"));
        assert!(!conf.contains("proxy_pass"));
        assert!(!conf.contains("return 503"));
        // The dotfile rule is the first regex location; the hooks come after it.
        let dotfiles = conf.find("location ~ /\\.").unwrap();
        assert!(dotfiles < conf.find("    include ").unwrap());
        assert!(dotfiles < conf.find("location ~ \\.php$").unwrap());
    }

    #[test]
    fn enabled_static_vhost() {
        let root = path("/");
        let spec = site(
            &root,
            "static.example",
            &[],
            SiteBackend::Static,
            true,
            port_80(),
        );
        let conf = vhost(&spec);
        assert_managed_and_tidy(&conf, '#');
        assert_common_server(&conf, "static.example");
        for line in [
            "    include /etc/nginx/custom.d/static.example/*.conf;\n",
            "    root /srv/static.example/public;\n",
            "    index index.html index.htm;\n",
            "    location / {\n        try_files $uri $uri/ =404;\n    }\n",
        ] {
            assert!(conf.contains(line), "{line:?} missing in\n{conf}");
        }
        for absent in ["fastcgi", "proxy_", "index.php", "return 503"] {
            assert!(!conf.contains(absent), "{absent:?} in\n{conf}");
        }
    }

    #[test]
    fn enabled_proxy_vhost() {
        let root = path("/");
        let spec = site(
            &root,
            "app.example",
            &["api.app.example"],
            proxy("http://127.0.0.1:3000/"),
            true,
            port_80(),
        );
        let conf = vhost(&spec);
        assert_managed_and_tidy(&conf, '#');
        assert_common_server(&conf, "app.example api.app.example");
        for line in [
            "# app.example: reverse proxy to http://127.0.0.1:3000.\n",
            "    include /etc/nginx/custom.d/app.example/*.conf;\n",
            "        proxy_pass http://127.0.0.1:3000;\n",
            "        proxy_http_version 1.1;\n",
            "        proxy_set_header Host              $host;\n",
            "        proxy_set_header X-Real-IP         $remote_addr;\n",
            "        proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;\n",
            "        proxy_set_header X-Forwarded-Proto $scheme;\n",
            "        proxy_set_header Upgrade           $http_upgrade;\n",
            "        proxy_set_header Connection        $vipanel_connection;\n",
            "    set $vipanel_connection close;\n",
            "    if ($http_upgrade) {\n        set $vipanel_connection upgrade;\n    }\n",
        ] {
            assert!(conf.contains(line), "{line:?} missing in\n{conf}");
        }
        for absent in [
            "fastcgi",
            "root ",
            "return 503",
            "\n    map ",
            "proxy_ssl_server_name",
        ] {
            assert!(!conf.contains(absent), "{absent:?} in\n{conf}");
        }

        let tls = site(
            &root,
            "app.example",
            &[],
            proxy("https://[::1]:8443"),
            true,
            port_80(),
        );
        let conf = vhost(&tls);
        assert!(conf.contains("        proxy_pass https://[::1]:8443;\n"));
        assert!(conf.contains("        proxy_ssl_server_name on;\n"));
    }

    #[test]
    fn disabled_vhosts_answer_503_whatever_the_backend() {
        let root = path("/");
        for backend in [
            php(&root, "off.example"),
            SiteBackend::Static,
            proxy("http://127.0.0.1:3000"),
        ] {
            let spec = site(
                &root,
                "off.example",
                &["www.off.example"],
                backend,
                false,
                port_80(),
            );
            let conf = vhost(&spec);
            assert_managed_and_tidy(&conf, '#');
            assert!(conf.contains("not included while the site is disabled"));
            assert!(conf.contains("# off.example: disabled.\n"));
            assert_common_server(&conf, "off.example www.off.example");
            assert!(conf.contains("    access_log /var/log/nginx/off.example.access.log;\n"));
            assert!(conf.contains("`site disable`"));
            assert!(conf.contains("    return 503;\n}\n"));
            for absent in ["include ", "    location", "root ", "fastcgi", "proxy_"] {
                assert!(!conf.contains(absent), "{absent:?} in\n{conf}");
            }
        }
    }

    #[test]
    fn pools_exist_for_enabled_php_sites_only() {
        let root = path("/");
        let nginx_user = AccountName::parse("www-data").unwrap();
        let spec = site(
            &root,
            "example.com",
            &["www.example.com"],
            php(&root, "example.com"),
            true,
            port_80(),
        );
        let conf = pool(&spec, &nginx_user).unwrap();
        assert_managed_and_tidy(&conf, ';');
        assert!(conf.contains("; example.com: the PHP-FPM pool (PHP 8.2)"));
        for line in [
            "\n[example.com]\n",
            "\nuser = vpsite7\n",
            "\ngroup = vpsite7\n",
            "\nlisten = /run/example.com.sock\n",
            "\nlisten.owner = www-data\n",
            "\nlisten.group = www-data\n",
            "\nlisten.mode = 0660\n",
            "\npm = ondemand\n",
            "\npm.max_children = 5\n",
            "\npm.process_idle_timeout = 10s\n",
            "\npm.max_requests = 500\n",
            "\nchdir = /\n",
            "\nphp_admin_value[open_basedir] = /srv/example.com/\n",
            "\nphp_admin_value[upload_tmp_dir] = /srv/example.com/tmp\n",
            "\nphp_admin_value[sys_temp_dir] = /srv/example.com/tmp\n",
            "\nphp_value[session.save_path] = /srv/example.com/tmp\n",
            "\nphp_admin_flag[log_errors] = on\n",
            "\nsecurity.limit_extensions = .php\n",
            "\ncatch_workers_output = yes\n",
            "\nclear_env = yes\n",
        ] {
            assert!(conf.contains(line), "{line:?} missing in\n{conf}");
        }
        // PHP-FPM comments start with `;`; a `#` line would be an error in a future PHP.
        assert!(conf.lines().all(|l| !l.starts_with('#')));

        let disabled = SiteSpec {
            enabled: false,
            ..spec
        };
        assert_eq!(pool(&disabled, &nginx_user), None);
        for backend in [SiteBackend::Static, proxy("http://127.0.0.1:3000")] {
            let other = site(&root, "example.com", &[], backend, true, port_80());
            assert_eq!(pool(&other, &nginx_user), None);
        }
    }

    #[test]
    fn catch_all_include_and_sandbox_main() {
        let listen = ListenAddr::for_http(&["192.0.2.1".parse().unwrap()], 8080);
        let conf = catch_all(&listen);
        assert_managed_and_tidy(&conf, '#');
        assert!(conf.contains("\nserver {\n    listen 192.0.2.1:8080;\n"));
        assert!(conf.contains("    return 404;\n"));
        assert!(!conf.contains("default_server;"));
        assert!(!conf.contains("default_server "));

        let conf = nginx_include(&path("/etc/nginx/vipanel/sites"));
        assert_managed_and_tidy(&conf, '#');
        assert!(conf.ends_with("\ninclude /etc/nginx/vipanel/sites/*.conf;\n"));

        let root = path("/var/lib/vipanel/host");
        let conf = sandbox_nginx_main(&root, &path("/var/lib/vipanel/host/etc/nginx/sites"));
        assert_managed_and_tidy(&conf, '#');
        for line in [
            "\npid /var/lib/vipanel/host/run/nginx.pid;\n",
            "\nerror_log /var/lib/vipanel/host/var/log/nginx/error.log;\n",
            "\n    client_body_temp_path /var/lib/vipanel/host/var/lib/nginx/body;\n",
            "\n    include /var/lib/vipanel/host/etc/nginx/sites/*.conf;\n}\n",
        ] {
            assert!(conf.contains(line), "{line:?} missing in\n{conf}");
        }
        // Every path a directive names is inside the sandbox; no `user` directive.
        let directives = conf.lines().filter(|l| !l.trim_start().starts_with('#'));
        for line in directives {
            assert!(!line.trim_start().starts_with("user "), "{line}");
            for word in line.split_whitespace().filter(|w| w.starts_with('/')) {
                assert!(word.starts_with("/var/lib/vipanel/host/"), "{line}");
            }
        }
        for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            assert!(conf.contains(&format!("    {kind}_temp_path /var/lib/vipanel/host/")));
        }
        // The sandbox root may be `/` itself without producing `//`.
        assert!(
            sandbox_nginx_main(&path("/"), &path("/sites")).contains("\npid /run/nginx.pid;\n")
        );
    }

    /// Whether the test runs as root: the owner of a directory it just created.
    fn running_as_root(dir: &Path) -> bool {
        fs::metadata(dir).unwrap().uid() == 0
    }

    /// Skips a test whose program is missing, unless `VIPANEL_REQUIRE_SERVICES=1` (as in the
    /// integration tests' harness) forbids skipping.
    fn program_available(program: &str, what: &str) -> bool {
        if Path::new(program).exists() {
            return true;
        }
        let reason = format!("{what} needs {program}");
        if std::env::var("VIPANEL_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{reason}; VIPANEL_REQUIRE_SERVICES=1 forbids skipping");
        }
        eprintln!("skipping: {reason}");
        false
    }

    fn temp_root() -> (tempfile::TempDir, SafePath) {
        let dir = tempfile::tempdir().unwrap();
        let root = SafePath::parse(dir.path().to_str().unwrap()).unwrap();
        (dir, root)
    }

    fn write(path: &SafePath, text: &str) {
        fs::create_dir_all(path.as_path().parent().unwrap()).unwrap();
        fs::write(path.as_path(), text).unwrap();
    }

    fn run(command: &mut Command) -> (bool, String) {
        let out = command.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    #[test]
    fn nginx_accepts_the_sandbox_tree() {
        if !program_available(NGINX, "checking the rendered vhosts with nginx -t") {
            return;
        }
        let (_dir, root) = temp_root();
        let nginx_dir = root.join("etc").unwrap().join("nginx").unwrap();
        let sites_dir = nginx_dir.join("sites").unwrap();
        for dir in ["run", "var/log/nginx", "var/lib/nginx"] {
            fs::create_dir_all(root.as_path().join(dir)).unwrap();
        }
        let main = nginx_dir.join("nginx.conf").unwrap();
        write(&main, &sandbox_nginx_main(&root, &sites_dir));

        // Loopback only and a port above 1024: nothing here needs root.
        let listen = ListenAddr::for_http(&["127.0.0.1".parse().unwrap()], 8080);
        write(
            &sites_dir.join("+default.conf").unwrap(),
            &catch_all(&listen),
        );
        let sites = [
            site(
                &root,
                "php.example",
                &["www.php.example"],
                php(&root, "php.example"),
                true,
                listen.clone(),
            ),
            site(
                &root,
                "static.example",
                &[],
                SiteBackend::Static,
                true,
                listen.clone(),
            ),
            site(
                &root,
                "app.example",
                &[],
                proxy("http://127.0.0.1:3000"),
                true,
                listen.clone(),
            ),
            site(
                &root,
                "tls.example",
                &[],
                proxy("https://[::1]:8443"),
                true,
                listen.clone(),
            ),
            site(
                &root,
                "off.example",
                &[],
                php(&root, "off.example"),
                false,
                listen.clone(),
            ),
        ];
        for spec in &sites {
            let file = sites_dir.join(&format!("{}.conf", spec.domain)).unwrap();
            write(&file, &vhost(spec));
        }
        // A hook is included at server level; other sites have no hooks directory at all.
        write(
            &sites[0].hooks_dir.join("extra.conf").unwrap(),
            "location = /hooked { return 204; }\n",
        );

        // -T: test, then print every file read, so the include chain itself is checked too.
        let (ok, output) = run(Command::new(NGINX)
            .arg("-T")
            .args(["-e", "stderr"])
            .arg("-p")
            .arg(root.as_path())
            .arg("-c")
            .arg(main.as_path()));
        assert!(ok, "nginx -t refused the sandbox tree:\n{output}");
        assert!(output.contains("test is successful"), "{output}");
        for spec in &sites {
            let file = format!("# configuration file {sites_dir}/{}.conf:", spec.domain);
            assert!(output.contains(&file), "{file:?} not read:\n{output}");
        }
        assert!(output.contains("/php.example/extra.conf:\nlocation = /hooked"));
        assert!(output.contains(&format!("# configuration file {sites_dir}/+default.conf:")));
    }

    #[test]
    fn php_fpm_accepts_a_pool() {
        if !program_available(PHP_FPM, "checking a rendered pool with php-fpm -t") {
            return;
        }
        let (_dir, root) = temp_root();
        if !running_as_root(root.as_path()) {
            eprintln!("skipping: php-fpm -t checks a pool's user only when run as root");
            return;
        }
        // The pool's user and group share a name, as a site's account does; Debian has no
        // `nobody` group (it is `nogroup`), so take the first system account that has both.
        let Some(account) = ["nobody", "daemon", "www-data"].into_iter().find(|name| {
            ["passwd", "group"].iter().all(|db| {
                Command::new("getent")
                    .args([db, name])
                    .output()
                    .is_ok_and(|out| out.status.success())
            })
        }) else {
            eprintln!(
                "skipping: no account with a group of the same name (nobody, daemon, www-data)"
            );
            return;
        };
        let account = AccountName::parse(account).unwrap();
        let spec = SiteSpec {
            user: account.clone(),
            ..site(
                &root,
                "php.example",
                &[],
                php(&root, "php.example"),
                true,
                port_80(),
            )
        };
        let pools = root.join("pool.d").unwrap();
        write(
            &pools.join("php.example.conf").unwrap(),
            &pool(&spec, &account).unwrap(),
        );
        let main = root.join("php-fpm.conf").unwrap();
        let global = format!(
            "[global]\npid = {root}/php-fpm.pid\nerror_log = {root}/php-fpm.log\ninclude={pools}/*.conf\n"
        );
        write(&main, &global);
        let (ok, output) = run(Command::new(PHP_FPM)
            .arg("-t")
            .arg("-y")
            .arg(main.as_path()));
        assert!(ok, "php-fpm -t refused the pool:\n{output}");
        assert!(output.contains("test is successful"), "{output}");
    }
}
