//! The nginx and PHP-FPM masters: checking a configuration (`nginx -t`, `php-fpmX.Y -t`) and
//! reloading, then waiting until the reload took effect.
//!
//! Reload goes through systemd when it runs (`host.reload = "auto"`), else through signals
//! to the master named in its pid file: SIGHUP for nginx, SIGUSR2 for PHP-FPM. Either way the
//! apply waits until nginx runs new workers (its old ones are shutting down) and PHP-FPM
//! listens on the new pools' sockets, so a command that returns means the site serves.

use super::layout::HostLayout;
use super::process::{run, run_ok};
use super::spec::SafePath;
use crate::config::ReloadMethod;
use crate::domain::PhpVersion;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// `nginx -t` on the main configuration; nginx's own complaint otherwise.
pub fn test_nginx(layout: &HostLayout) -> Result<(), String> {
    let mut args: Vec<String> = vec!["-t".into(), "-q".into(), "-e".into(), "stderr".into()];
    if let Some(prefix) = &layout.nginx_prefix {
        args.extend(["-p".into(), format!("{prefix}/")]);
    }
    args.extend(["-c".into(), layout.nginx_conf.to_string()]);
    let ran = run(&layout.nginx_binary, &args, layout.timeout)?;
    if ran.status.success() {
        return Ok(());
    }
    Err(complaint(&ran.message(), "nginx -t"))
}

/// `php-fpmX.Y -t` on that version's main configuration.
pub fn test_php_fpm(layout: &HostLayout, version: PhpVersion) -> Result<(), String> {
    let binary = layout
        .php_fpm_binary
        .at(version)
        .map_err(|e| e.to_string())?;
    let conf = layout.php_fpm_conf.at(version).map_err(|e| e.to_string())?;
    let ran = run(
        binary.as_str(),
        &["-t", "-y", conf.as_str()],
        layout.timeout,
    )?;
    if ran.status.success() {
        return Ok(());
    }
    Err(complaint(&ran.message(), &format!("php-fpm{version} -t")))
}

/// The lines of a tool's output that explain a failure, without the closing "test failed".
fn complaint(output: &str, what: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.contains("test failed") && !l.contains("test is successful"))
        .collect();
    if lines.is_empty() {
        format!("{what} failed without saying why")
    } else {
        lines.join("\n")
    }
}

fn use_systemd(layout: &HostLayout) -> bool {
    match layout.reload {
        ReloadMethod::Systemd => true,
        ReloadMethod::Signal => false,
        ReloadMethod::Auto => Path::new("/run/systemd/system").is_dir(),
    }
}

fn master_pid(pid_file: &SafePath, what: &str) -> Result<u32, String> {
    let text = std::fs::read_to_string(pid_file.as_path()).map_err(|e| {
        format!("{what} does not seem to run: cannot read its pid file {pid_file}: {e}")
    })?;
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{what}'s pid file {pid_file} does not hold a pid"))?;
    if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
        return Err(format!(
            "{what} does not run: its pid file {pid_file} names pid {pid}, which is gone"
        ));
    }
    Ok(pid)
}

/// The children of a process and their command lines.
fn children(pid: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            // The command name is in parentheses and may hold spaces: fields follow the last ')'.
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = after.split(' ').nth(1)?.parse().ok()?;
            (ppid == pid).then(|| {
                let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
                (child, String::from_utf8_lossy(&cmdline).replace('\0', " "))
            })
        })
        .collect()
}

/// Reloads nginx and waits until a new worker runs and no old one still accepts.
pub fn reload_nginx(layout: &HostLayout) -> Result<(), String> {
    let pid = master_pid(&layout.nginx_pid_file, "nginx")?;
    let before: HashSet<u32> = children(pid).into_iter().map(|(p, _)| p).collect();
    if use_systemd(layout) {
        run_ok(
            "systemctl",
            &["reload", "--", layout.nginx_service.as_str()],
            layout.timeout,
        )?;
    } else {
        run_ok("kill", &["-HUP", &pid.to_string()], layout.timeout)?;
    }
    let deadline = Instant::now() + layout.timeout;
    loop {
        let now = children(pid);
        let fresh = now.iter().any(|(p, _)| !before.contains(p));
        let old_accepting = now.iter().any(|(p, cmd)| {
            before.contains(p) && cmd.contains("worker process") && !cmd.contains("shutting down")
        });
        if fresh && !old_accepting {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "nginx (pid {pid}) did not start workers with the new configuration within \
                 {:?}; its error log says why",
                layout.timeout
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reloads PHP-FPM `version` and waits until every socket in `sockets` accepts connections.
pub fn reload_php_fpm(
    layout: &HostLayout,
    version: PhpVersion,
    sockets: &[SafePath],
) -> Result<(), String> {
    let pid_file = layout
        .php_fpm_pid_file
        .at(version)
        .map_err(|e| e.to_string())?;
    let what = format!("php-fpm{version}");
    let pid = master_pid(&pid_file, &what)?;
    if use_systemd(layout) {
        let service = layout
            .php_fpm_service
            .replace("{version}", &version.to_string());
        run_ok(
            "systemctl",
            &["reload", "--", service.as_str()],
            layout.timeout,
        )?;
    } else {
        run_ok("kill", &["-USR2", &pid.to_string()], layout.timeout)?;
    }
    let deadline = Instant::now() + layout.timeout;
    // SIGUSR2 makes the master re-execute itself; sockets of pools that stay are handed over,
    // new ones appear once it has read the new pools.
    std::thread::sleep(Duration::from_millis(20));
    for socket in sockets {
        loop {
            if std::os::unix::net::UnixStream::connect(socket.as_path()).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{what} did not listen on {socket} within {:?} after the reload; its \
                     error log says why",
                    layout.timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // A master that could not re-execute (a socket path in use, say) is gone: the sockets of
    // pools that stayed can still accept for a moment, so look at the master itself.
    loop {
        match master_pid(&pid_file, &what) {
            Ok(pid) if !is_zombie(pid) => return Ok(()),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(pid) => return Err(format!("{what} (pid {pid}) exited during its reload")),
            Err(e) => return Err(format!("{what} did not come back from its reload: {e}")),
        }
    }
}

/// Whether a process has exited but not been reaped (the state in `/proc/PID/stat` is `Z`).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|at| stat[at + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z")
    })
}
