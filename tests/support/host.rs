//! A test bed for `system` host mode: a temporary tree holding every `[host]` path, with its own
//! nginx and PHP-FPM 8.2 masters running there (as root, as in production).
//!
//! ```text
//! DIR/nginx/nginx.conf             the main configuration (written here; includes vipanel/sites/*.conf)
//! DIR/nginx/vipanel/sites/         the daemon's vhosts (<domain>.conf, +default.conf)
//! DIR/nginx/vipanel/custom.d/      the operator's hooks (<domain>/*.conf), written by tests only
//! DIR/nginx/error.log              nginx's log at level notice: one `reconfiguring` per reload
//! DIR/php/8.2/php-fpm.conf         PHP-FPM's main configuration, with one idle placeholder pool
//! DIR/php/8.2/pool.d/              the daemon's pools (vipanel-<domain>.conf)
//! DIR/run/php/                     pool sockets
//! DIR/srv/<domain>/                site homes (public/, tmp/)
//! DIR/log/<domain>/                site logs (access.log, error.log)
//! ```
//!
//! Site system users are named `<prefix><site number>` with a prefix of this bed only
//! (`vt<test pid>-<n>s`). Dropping the bed (also while panicking) stops both masters, removes
//! every account and group with that prefix, then the tree. Declare the bed **before** the
//! [`super::Daemon`] driving it, so the daemon is dropped (killed) first.
//!
//! [`HostBed::start`] says why and returns `None` (a skip) when the tests do not run as root or
//! nginx, php-fpm8.2 or curl are missing, unless `VIPANEL_REQUIRE_SERVICES=1`, where it panics.

use super::{Run, is_root, require, run_bounded};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const NGINX: &str = "/usr/sbin/nginx";
/// The only PHP version the bed runs (Debian 12's).
pub const PHP_VERSION: &str = "8.2";
pub const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";
/// How long a master may take to write its pid file, or to exit after a signal.
const MASTER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one `curl` may take.
const FETCH_TIMEOUT_SECS: u32 = 10;

/// One HTTP response as `curl` received it.
#[derive(Debug, Clone)]
pub struct Page {
    /// The status code; 0 when no response came (curl's error is then in `body`).
    pub status: u16,
    /// Header names in lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One entry of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// Every directory, file (with its bytes) and symbolic link under the trees the daemon writes:
/// the vhosts and hooks, the pools of PHP 8.2, and the site homes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, Entry>);

impl Snapshot {
    /// What differs in `after`, one line per path (empty: nothing).
    pub fn changes(&self, after: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (path, entry) in &self.0 {
            match after.0.get(path) {
                None => out.push(format!("removed {}", path.display())),
                Some(now) if now != entry => out.push(format!("changed {}", path.display())),
                Some(_) => {}
            }
        }
        for path in after.0.keys().filter(|p| !self.0.contains_key(*p)) {
            out.push(format!("added {}", path.display()));
        }
        out
    }
}

/// The running bed; see the module documentation.
pub struct HostBed {
    /// DIR; removed on drop, after the masters and the accounts.
    root: tempfile::TempDir,
    port: u16,
    prefix: String,
    /// Whether each master was started (then the drop stops it).
    nginx_started: bool,
    php_fpm_started: bool,
}

impl HostBed {
    /// Writes the tree and starts nginx and PHP-FPM there, or `None` (after saying why) when
    /// this machine cannot run them.
    pub fn start() -> Option<HostBed> {
        if !is_root() {
            require::cannot_run(
                "system host mode tests run nginx, PHP-FPM and site users: they need root",
            );
            return None;
        }
        if !require::programs_available(
            &[(NGINX, "-v"), (PHP_FPM, "-v"), ("curl", "--version")],
            "system host mode test",
            "apt-get install nginx php8.2-fpm curl",
        ) {
            return None;
        }
        let root = tempfile::Builder::new()
            .prefix("vipanel-host-")
            .tempdir_in(traversable_temp_dir())
            .expect("cannot create the host bed's temp dir");
        let mut bed = HostBed {
            root,
            port: free_port(),
            prefix: next_user_prefix(),
            nginx_started: false,
            php_fpm_started: false,
        };
        bed.write_tree();
        bed.start_masters();
        Some(bed)
    }

    /// DIR.
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// `DIR/<relative>` as a string (the tree's paths are ASCII).
    fn path(&self, relative: &str) -> String {
        format!("{}/{relative}", self.dir().display())
    }

    /// The port nginx serves sites on (127.0.0.1 only).
    pub fn http_port(&self) -> u16 {
        self.port
    }

    /// The prefix of this bed's site users (`vt<pid>-<n>s`).
    pub fn user_prefix(&self) -> &str {
        &self.prefix
    }

    /// The `[host]` section pointing the daemon at this bed (`mode = "system"`, signals).
    pub fn config_toml(&self) -> String {
        let d = self.dir().display();
        format!(
            r#"[host]
mode = "system"
http_port = {port}
http_addresses = ["127.0.0.1"]
web_root = "{d}/srv"
log_dir = "{d}/log"
nginx_conf = "{d}/nginx/nginx.conf"
nginx_prefix = "{d}/nginx"
nginx_dir = "{d}/nginx/vipanel"
nginx_include = ""
nginx_pid_file = "{d}/nginx/nginx.pid"
php_fpm_conf = "{d}/php/{{version}}/php-fpm.conf"
php_pool_dir = "{d}/php/{{version}}/pool.d"
php_fpm_pid_file = "{d}/php/{{version}}/php-fpm.pid"
php_socket_dir = "{d}/run/php"
reload = "signal"
user_prefix = "{prefix}"
"#,
            port = self.port,
            prefix = self.prefix,
        )
    }

    // ----------------------------------------------------------------------------- paths --

    /// `DIR/srv/<domain>`: the site's home.
    pub fn site_home(&self, domain: &str) -> PathBuf {
        self.dir().join("srv").join(domain)
    }

    /// `DIR/srv/<domain>/public`: the document root.
    pub fn document_root(&self, domain: &str) -> PathBuf {
        self.site_home(domain).join("public")
    }

    /// `DIR/log/<domain>`: the site's access.log and error.log.
    pub fn log_dir(&self, domain: &str) -> PathBuf {
        self.dir().join("log").join(domain)
    }

    /// `DIR/nginx/vipanel/sites/<domain>.conf`: the site's generated vhost.
    pub fn vhost_path(&self, domain: &str) -> PathBuf {
        self.dir()
            .join("nginx/vipanel/sites")
            .join(format!("{domain}.conf"))
    }

    /// `DIR/nginx/vipanel/sites/+default.conf`: the catch-all (404 for unknown names).
    pub fn default_vhost_path(&self) -> PathBuf {
        self.dir().join("nginx/vipanel/sites/+default.conf")
    }

    /// `DIR/nginx/vipanel/custom.d/<domain>`: the operator's hooks for the site.
    pub fn hooks_dir(&self, domain: &str) -> PathBuf {
        self.dir().join("nginx/vipanel/custom.d").join(domain)
    }

    /// `DIR/php/8.2/pool.d/vipanel-<domain>.conf`: the site's PHP-FPM pool.
    pub fn pool_path(&self, domain: &str) -> PathBuf {
        self.dir()
            .join("php")
            .join(PHP_VERSION)
            .join("pool.d")
            .join(format!("vipanel-{domain}.conf"))
    }

    /// nginx's own log (startup, reloads, configuration errors).
    pub fn nginx_log(&self) -> String {
        std::fs::read_to_string(self.path("nginx/error.log")).unwrap_or_default()
    }

    /// PHP-FPM's own log.
    pub fn php_fpm_log(&self) -> String {
        std::fs::read_to_string(self.path(&format!("php/{PHP_VERSION}/php-fpm.log")))
            .unwrap_or_default()
    }

    fn nginx_pid_file(&self) -> String {
        self.path("nginx/nginx.pid")
    }

    fn php_fpm_pid_file(&self) -> String {
        self.path(&format!("php/{PHP_VERSION}/php-fpm.pid"))
    }

    /// The nginx master this bed started, from its pid file.
    pub fn nginx_pid(&self) -> libc::pid_t {
        master_pid(&self.nginx_pid_file(), "nginx").expect("nginx runs")
    }

    /// The PHP-FPM master this bed started, from its pid file. A reload (SIGUSR2) changes it:
    /// the master executes itself again and daemonizes anew.
    pub fn php_fpm_pid(&self) -> libc::pid_t {
        master_pid(&self.php_fpm_pid_file(), "php-fpm").expect("php-fpm runs")
    }

    // ---------------------------------------------------------------------- observations --

    /// How many times nginx reloaded so far: its `signal 1 (SIGHUP) received from …,
    /// reconfiguring` lines (a plain `reconfiguring` line follows each; it is not counted).
    pub fn reloads(&self) -> usize {
        self.nginx_log()
            .lines()
            .filter(|line| line.contains("(SIGHUP) received") && line.contains("reconfiguring"))
            .count()
    }

    /// [`HostBed::reloads`] once it stopped changing for a second (a signal is handled
    /// asynchronously, so a reload just asked for may not be logged yet).
    pub fn settled_reloads(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last = self.reloads();
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.reloads();
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= Duration::from_secs(1) || Instant::now() >= deadline {
                return now;
            }
        }
    }

    /// `GET http://DOMAIN:PORT/PATH` through this bed's nginx, resolving DOMAIN to 127.0.0.1.
    pub fn fetch(&self, domain: &str, path: &str) -> Page {
        let path = path.strip_prefix('/').unwrap_or(path);
        let url = format!("http://{domain}:{}/{path}", self.port);
        let run = run_bounded(
            Command::new("curl")
                .args(["-s", "-S", "--path-as-is", "--max-time"])
                .arg(FETCH_TIMEOUT_SECS.to_string())
                .arg("--resolve")
                .arg(format!("{domain}:{}:127.0.0.1", self.port))
                .args(["-D", "-"])
                .arg(&url),
            None,
            &format!("curl {url}"),
        );
        if run.code != 0 {
            return Page {
                status: 0,
                headers: Vec::new(),
                body: format!("curl exited {}: {}", run.code, run.stderr),
            };
        }
        parse_response(&run.stdout)
            .unwrap_or_else(|| panic!("curl {url}: not an HTTP response: {:?}", run.stdout))
    }

    /// [`HostBed::fetch`] until the status is `status` (at most `timeout`); the last page.
    pub fn fetch_until(&self, domain: &str, path: &str, status: u16, timeout: Duration) -> Page {
        let deadline = Instant::now() + timeout;
        loop {
            let page = self.fetch(domain, path);
            if page.status == status || Instant::now() >= deadline {
                return page;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every entry under `DIR/nginx/vipanel`, `DIR/php/8.2/pool.d` and `DIR/srv`.
    pub fn snapshot(&self) -> Snapshot {
        let mut entries = BTreeMap::new();
        for top in [
            "nginx/vipanel".to_owned(),
            format!("php/{PHP_VERSION}/pool.d"),
            "srv".to_owned(),
        ] {
            collect(&self.dir().join(top), &mut entries);
        }
        Snapshot(entries)
    }

    /// The accounts (from /etc/passwd) carrying this bed's prefix.
    pub fn site_accounts(&self) -> Vec<String> {
        names_with_prefix("/etc/passwd", &self.prefix)
    }

    /// Writes `bytes` to `path` (mode 0644, parent directories as root 0755 when missing) and
    /// gives it to `user` and that account's group, as an upload by the site would be.
    pub fn write_as(&self, path: &Path, bytes: &[u8], user: &str) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        std::fs::write(path, bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
        run_bounded(
            Command::new("chown").arg(format!("{user}:")).arg(path),
            None,
            "chown",
        )
        .expect(0);
    }

    // --------------------------------------------------------------------------- setup --

    fn write_tree(&self) {
        let dir = self.dir();
        // nginx's workers (www-data), PHP's pools (site users) and the placeholder pool (nobody)
        // all need to pass through DIR.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .expect("cannot chmod the host bed");
        let php = format!("php/{PHP_VERSION}");
        for sub in [
            "nginx/vipanel/sites",
            "nginx/tmp",
            &format!("{php}/pool.d"),
            "run/php",
            "srv",
            "log",
        ] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        }
        // So that a vhost's relative `include fastcgi_params;` resolves as it does against
        // the distribution's configuration directory.
        for name in [
            "mime.types",
            "fastcgi_params",
            "fastcgi.conf",
            "proxy_params",
        ] {
            let from = Path::new("/etc/nginx").join(name);
            if from.is_file() {
                std::fs::copy(&from, dir.join("nginx").join(name))
                    .unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
            }
        }
        let mime = if dir.join("nginx/mime.types").is_file() {
            "    include mime.types;\n"
        } else {
            ""
        };
        let d = dir.display();
        let nginx_conf = format!(
            "user www-data;
worker_processes 1;
pid {d}/nginx/nginx.pid;
error_log {d}/nginx/error.log notice;

events {{
    worker_connections 512;
}}

http {{
{mime}    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {d}/nginx/tmp/client_body;
    proxy_temp_path {d}/nginx/tmp/proxy;
    fastcgi_temp_path {d}/nginx/tmp/fastcgi;
    uwsgi_temp_path {d}/nginx/tmp/uwsgi;
    scgi_temp_path {d}/nginx/tmp/scgi;
    include {d}/nginx/vipanel/sites/*.conf;
}}
"
        );
        std::fs::write(dir.join("nginx/nginx.conf"), nginx_conf).expect("write nginx.conf");
        let fpm_conf = format!(
            "[global]
pid = {d}/{php}/php-fpm.pid
error_log = {d}/{php}/php-fpm.log
include = {d}/{php}/pool.d/*.conf

; PHP-FPM refuses to start without a pool: an idle placeholder.
[vipanel-test-idle]
user = nobody
group = nogroup
listen = {d}/run/php/idle.sock
pm = ondemand
pm.max_children = 1
"
        );
        std::fs::write(dir.join(&php).join("php-fpm.conf"), fpm_conf).expect("write php-fpm.conf");
        // Everything but the site homes' contents is root's and readable.
        for sub in ["nginx", "php", "run", "srv", "log"] {
            chmod_tree(&dir.join(sub));
        }
    }

    fn start_masters(&mut self) {
        let d = self.dir().display().to_string();
        let nginx = run_bounded(
            Command::new(NGINX)
                .args(["-p", &format!("{d}/nginx")])
                .args(["-c", &format!("{d}/nginx/nginx.conf")])
                .args(["-e", &format!("{d}/nginx/error.log")])
                .current_dir("/"),
            None,
            "nginx",
        );
        assert_eq!(
            nginx.code,
            0,
            "nginx did not start: {}{}\n--- log ---\n{}",
            nginx.stdout,
            nginx.stderr,
            self.nginx_log()
        );
        self.nginx_started = true;
        self.wait_pid_file(&self.nginx_pid_file(), "nginx");
        let fpm = run_bounded(
            Command::new(PHP_FPM)
                .args(["-y", &format!("{d}/php/{PHP_VERSION}/php-fpm.conf")])
                .current_dir("/"),
            None,
            "php-fpm",
        );
        assert_eq!(
            fpm.code,
            0,
            "php-fpm did not start: {}{}\n--- log ---\n{}",
            fpm.stdout,
            fpm.stderr,
            self.php_fpm_log()
        );
        self.php_fpm_started = true;
        self.wait_pid_file(&self.php_fpm_pid_file(), "php-fpm");
    }

    /// Waits until a daemonized master wrote its pid file and runs.
    fn wait_pid_file(&self, path: &str, what: &str) {
        let deadline = Instant::now() + MASTER_TIMEOUT;
        while master_pid(path, what).is_none() {
            assert!(
                Instant::now() < deadline,
                "{what} wrote no pid file {path} within {MASTER_TIMEOUT:?}\n--- nginx ---\n{}\n--- php-fpm ---\n{}",
                self.nginx_log(),
                self.php_fpm_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for HostBed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- host bed {} (port {}) ---\n--- nginx log ---\n{}--- php-fpm log ---\n{}--- end ---",
                self.dir().display(),
                self.port,
                self.nginx_log(),
                self.php_fpm_log()
            );
        }
        // nginx: fast shutdown; PHP-FPM: graceful (its workers finish their request).
        if std::mem::take(&mut self.nginx_started) {
            stop_master(&self.nginx_pid_file(), libc::SIGTERM, "nginx");
        }
        if std::mem::take(&mut self.php_fpm_started) {
            stop_master(&self.php_fpm_pid_file(), libc::SIGQUIT, "php-fpm");
        }
        remove_accounts(&self.prefix);
        // The tree goes with `root`.
    }
}

// ---------------------------------------------------------------------------- helpers --

/// A user prefix unique to this bed: `vt<pid>-<n>s` (the site number follows).
fn next_user_prefix() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("vt{}-{n}s", std::process::id())
}

/// A port nobody listens on right now (nginx binds it once the daemon writes a vhost).
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    probe.local_addr().expect("probe address").port()
}

/// The temp dir, when other accounts can pass through every directory above it; else /tmp.
fn traversable_temp_dir() -> PathBuf {
    let temp = std::env::temp_dir();
    let open = temp.ancestors().all(|dir| {
        std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 != 0)
    });
    let chosen = if open { temp } else { PathBuf::from("/tmp") };
    let ok = chosen.to_str().is_some_and(|s| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/+-".contains(c))
    });
    assert!(
        ok,
        "the temp dir {} has characters [host] paths may not contain",
        chosen.display()
    );
    chosen
}

/// Directories 0755, files 0644, recursively.
fn chmod_tree(path: &Path) {
    let meta = std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
    let mode = if meta.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            chmod_tree(&entry.expect("dir entry").path());
        }
    }
}

fn collect(path: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).unwrap_or_default();
        out.insert(path.to_owned(), Entry::Link(target));
    } else if meta.is_dir() {
        out.insert(path.to_owned(), Entry::Dir);
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            collect(&entry.path(), out);
        }
    } else {
        let bytes = std::fs::read(path).unwrap_or_default();
        out.insert(path.to_owned(), Entry::File(bytes));
    }
}

/// Splits `curl -D -` output: the (last) header block, then the body.
fn parse_response(raw: &str) -> Option<Page> {
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Page {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Whether `pid` is a live process (a zombie counts as gone).
pub fn process_runs(pid: libc::pid_t) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S …`: the state follows the last `)`.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// The live children of `pid` (its workers).
fn children_of(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(1)?.parse::<libc::pid_t>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// The pid in a master's pid file, when that process runs and is `program` (a pid file of this
/// bed's tree is only ever written by the masters it started, or their re-executions).
fn master_pid(pid_file: &str, program: &str) -> Option<libc::pid_t> {
    let pid = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse::<libc::pid_t>()
        .ok()
        .filter(|pid| *pid > 1)?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (process_runs(pid) && comm.trim().starts_with(program)).then_some(pid)
}

/// Signals the master this bed started (found through its pid file) and waits for it to go;
/// kills it and its workers when it overstays.
fn stop_master(pid_file: &str, signal: libc::c_int, what: &str) {
    let Some(pid) = master_pid(pid_file, what) else {
        return;
    };
    // SAFETY: kill(2) on the master this bed started, with a valid signal.
    unsafe { libc::kill(pid, signal) };
    let deadline = Instant::now() + MASTER_TIMEOUT;
    while process_runs(pid) {
        if Instant::now() >= deadline {
            eprintln!("{what} (pid {pid}) did not stop within {MASTER_TIMEOUT:?}; killing it");
            for child in children_of(pid) {
                // SAFETY: kill(2) on a worker of the master this bed started.
                unsafe { libc::kill(child, libc::SIGKILL) };
            }
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while process_runs(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The names in a passwd or group file that start with `prefix`.
fn names_with_prefix(file: &str, prefix: &str) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(':').next())
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Removes every account, then every group left (a group with other members, like `www-data`,
/// outlives `userdel`), whose name starts with `prefix`; and mail spools of those accounts.
pub fn remove_accounts(prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let users = names_with_prefix("/etc/passwd", prefix);
        if users.is_empty() {
            break;
        }
        let late = Instant::now() >= deadline;
        for user in &users {
            // userdel refuses while the account still has processes (PHP workers finishing);
            // in the end it is forced.
            let args: &[&str] = if late { &["-f", user] } else { &[user] };
            quiet("userdel", args);
            let spool = Path::new("/var/mail").join(user);
            if spool.exists() {
                let _ = std::fs::remove_file(spool);
            }
        }
        if late {
            let left = names_with_prefix("/etc/passwd", prefix);
            if !left.is_empty() {
                eprintln!("could not remove the test accounts {left:?}");
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for group in names_with_prefix("/etc/group", prefix) {
        if !quiet("groupdel", &[&group]) {
            eprintln!("could not remove the test group {group}");
        }
    }
}

/// Whether `getent passwd NAME` finds the account.
pub fn account_exists(name: &str) -> bool {
    quiet("getent", &["passwd", name])
}

/// Whether `getent group NAME` finds the group.
pub fn group_exists(name: &str) -> bool {
    quiet("getent", &["group", name])
}

/// `runuser -u USER -- ARGS…`, from `/`.
pub fn run_as(user: &str, args: &[&str]) -> Run {
    run_bounded(
        Command::new("runuser")
            .args(["-u", user, "--"])
            .args(args)
            .current_dir("/"),
        None,
        &format!("runuser -u {user} -- {}", args.join(" ")),
    )
}
