//! The PTY and process syscalls of interactive sessions: opening a pseudo-terminal, resizing it,
//! reading and writing its master side without blocking, spawning the session process on it as
//! its controlling terminal with the link on fd 3, signalling it, and looking up an account.
//!
//! This is the one module allowed `unsafe` code (see `lib.rs`): every block is one libc call on
//! file descriptors this module owns, or the `pre_exec` hook, which runs between `fork` and
//! `exec` and so makes only async-signal-safe system calls (no allocation, no locks).
//!
//! Every descriptor is opened close-on-exec. What the session process inherits is exactly: the
//! PTY slave as fd 0, 1 and 2, and the link as fd 3; the hook also marks every other descriptor
//! above 3 close-on-exec (`close_range`), in case a library opened one without the flag.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Stdio;
use tokio::io::unix::AsyncFd;

/// A terminal size in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    pub cols: u16,
    pub rows: u16,
}

impl WinSize {
    /// From a `pty-req` or `window-change` request; 0 or absurd values become 80×24 bounds.
    pub fn from_request(cols: u32, rows: u32) -> WinSize {
        let clamp = |v: u32, default: u16| match u16::try_from(v) {
            Ok(0) | Err(_) => default,
            Ok(v) => v.min(4096),
        };
        WinSize {
            cols: clamp(cols, 80),
            rows: clamp(rows, 24),
        }
    }
}

/// The daemon's side of a PTY (non-blocking, registered with tokio).
pub struct PtyMaster {
    fd: AsyncFd<OwnedFd>,
}

/// Opens a PTY of `size`: the master (ours) and the slave (for the session process).
pub fn open(size: WinSize) -> io::Result<(PtyMaster, OwnedFd)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: posix_openpt returns a new descriptor or -1; we own it from here.
    let master = unsafe { owned(libc::posix_openpt(flags))? };
    // SAFETY: plain calls on the master we own.
    check(unsafe { libc::grantpt(master.as_raw_fd()) })?;
    check(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
    // TIOCGPTPEER opens the slave from the master itself: no path lookup, no race with another
    // process opening /dev/pts/N. O_NOCTTY: it must never become the daemon's terminal.
    // SAFETY: the ioctl returns a new descriptor or -1.
    let slave = unsafe {
        owned(libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))?
    };
    set_nonblocking(&master)?;
    // SAFETY: the OwnedFd is moved into the AsyncFd, so it stays open (and the same) for as
    // long as the registration.
    let fd = unsafe { AsyncFd::register(master) }.map_err(|e| e.into_parts().1)?;
    let master = PtyMaster { fd };
    master.resize(size)?;
    Ok((master, slave))
}

impl PtyMaster {
    /// Sets the terminal size; the session process gets SIGWINCH.
    pub fn resize(&self, size: WinSize) -> io::Result<()> {
        let ws = libc::winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
        check(unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) })
    }

    /// Reads what the session process wrote; `Ok(0)` once no process holds the slave any more
    /// (Linux reports that as EIO).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            let result = guard.try_io(|fd| {
                // SAFETY: reads at most buf.len() bytes into buf.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                usize::try_from(n).map_err(|_| io::Error::last_os_error())
            });
            match result {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `bytes` (the user's keystrokes) to the session's terminal.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.fd.writable().await?;
            let result = guard.try_io(|fd| {
                // SAFETY: writes at most bytes.len() bytes from bytes.
                let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
                usize::try_from(n).map_err(|_| io::Error::last_os_error())
            });
            match result {
                Ok(Ok(n)) => bytes = bytes.get(n..).unwrap_or_default(),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }
}

/// Who the session process runs as (when the daemon runs as root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// Whether this process runs as root (and so must drop privileges for session processes).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Looks an account up by name in the system's user database; `None` when there is none.
pub fn lookup_account(name: &str) -> io::Result<Option<Account>> {
    let name = CString::new(name).map_err(|_| io::Error::other("account name contains NUL"))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid out-parameter for getpwnam_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; strings land in buf, which outlives it.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok((!found.is_null()).then_some(Account {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    }))
}

/// What to start: the program, its arguments and environment (nothing else is inherited).
pub struct SessionCommand<'a> {
    pub program: &'a str,
    pub args: &'a [&'a str],
    pub env: &'a [(String, String)],
    /// `None`: run as the daemon's own user.
    pub account: Option<Account>,
}

/// Spawns the session process: a new session whose controlling terminal is `slave` (as fd 0,
/// 1 and 2), with `link` as fd 3, `/` as working directory, only `env` in its environment, and
/// (when `account` is set) that uid, gid and no supplementary groups. The daemon's copies of
/// `slave` and `link` are closed when this returns.
pub fn spawn(
    what: &SessionCommand<'_>,
    slave: OwnedFd,
    link: OwnedFd,
) -> io::Result<tokio::process::Child> {
    // `try_clone` duplicates with F_DUPFD_CLOEXEC from 3 up, so the link never sits on 0..2,
    // which the slave takes in the child before the hook runs.
    let link = link.try_clone()?;
    let link_fd: RawFd = link.as_raw_fd();
    let mut command = tokio::process::Command::new(what.program);
    command
        .args(what.args)
        .env_clear()
        .envs(what.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave))
        .kill_on_drop(true);
    if let Some(account) = what.account {
        // std clears the supplementary groups when root sets a uid (setgroups(0) before setuid).
        command.uid(account.uid).gid(account.gid);
    }
    // SAFETY: the hook only makes async-signal-safe system calls on descriptors that stay open
    // until exec (link_fd is owned by `link`, alive until after spawn returns).
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            if link_fd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(link_fd, 3) < 0 {
                // dup2 leaves the new fd 3 without close-on-exec.
                return Err(io::Error::last_os_error());
            }
            // Belt and braces: whatever else is open is closed at exec. Best effort (needs
            // Linux 5.11; without it, every descriptor of the daemon is close-on-exec anyway).
            libc::close_range(
                4,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
            );
            Ok(())
        });
    }
    let child = command.spawn();
    drop(link);
    child
}

/// Sends `signal` to the process group led by `pid` (the session process and anything it
/// started). The caller must still hold the unreaped child, so `pid` cannot have been reused.
pub fn signal_group(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid)
        && pid > 1
    {
        // SAFETY: kill(2) has no memory effects; a failure (already gone) is fine.
        unsafe { libc::kill(-pid, signal) };
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain fcntl calls on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    check(flags)?;
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Takes ownership of a descriptor returned by a system call, or its error.
///
/// # Safety
/// `fd` must be a new descriptor nobody else owns, or negative.
unsafe fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: per the contract, fd is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bounded() {
        assert_eq!(WinSize::from_request(0, 0), WinSize { cols: 80, rows: 24 });
        assert_eq!(
            WinSize::from_request(u32::MAX, 50),
            WinSize { cols: 80, rows: 50 }
        );
        assert_eq!(
            WinSize::from_request(60_000, 9),
            WinSize {
                cols: 4096,
                rows: 9
            }
        );
    }

    #[tokio::test]
    async fn a_pty_echoes_and_resizes() {
        let (master, slave) = open(WinSize {
            cols: 100,
            rows: 30,
        })
        .unwrap();
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        assert_eq!(
            unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) },
            0
        );
        assert_eq!((ws.ws_col, ws.ws_row), (100, 30));
        master
            .resize(WinSize {
                cols: 120,
                rows: 40,
            })
            .unwrap();
        assert_eq!(
            unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) },
            0
        );
        assert_eq!((ws.ws_col, ws.ws_row), (120, 40));
        // The line discipline echoes what is typed.
        master.write_all(b"hi\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = master.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"hi"), "{:?}", &buf[..n]);
        // Closing the slave ends the master's input.
        drop(slave);
        loop {
            if master.read(&mut buf).await.unwrap() == 0 {
                break;
            }
        }
    }
}
