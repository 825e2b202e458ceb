//! Claiming the link socket the daemon passed as an inherited file descriptor.
//!
//! The only unsafe code of the session process: turning a raw descriptor number into an owned
//! socket. Nothing else lives here.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;

/// Makes this process non-dumpable: no core dumps, and other processes of the same account
/// (other users' sessions) can neither ptrace it nor open its `/proc/PID/fd` (the link).
pub fn forbid_inspection() {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) only changes this process's own flag.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Takes ownership of descriptor `fd` as the link socket, after checking that it is open and is a
/// socket (so a mistyped descriptor number fails cleanly instead of wrapping someone's file).
/// The descriptor is marked close-on-exec: the session process never hands it on.
pub fn claim(fd: RawFd) -> io::Result<UnixStream> {
    if fd <= libc::STDERR_FILENO {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is a standard stream, not a link"),
        ));
    }
    // SAFETY: fstat only writes into the zeroed struct we own; a bad descriptor is an error.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is not a socket"),
        ));
    }
    // SAFETY: F_SETFD on a descriptor just checked to be open.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open, is a socket, and nothing else in this process owns it: the
    // daemon passed it for the session process alone, and this is called once at start.
    Ok(unsafe { UnixStream::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, IntoRawFd};

    #[test]
    fn refuses_standard_streams_closed_descriptors_and_files() {
        assert!(claim(0).is_err());
        assert!(claim(2).is_err());
        assert!(claim(-1).is_err());
        // Far above anything a test process opens, so it is closed.
        assert!(claim(1_000_000).is_err());
        // A file stays open (and owned by the test) after the refusal.
        let file = tempfile::tempfile().unwrap();
        assert!(claim(file.as_raw_fd()).is_err());
        assert!(file.metadata().is_ok());
    }

    #[test]
    fn claims_a_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let fd = a.into_raw_fd();
        let claimed = claim(fd).unwrap();
        use std::io::{Read, Write};
        (&claimed).write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        (&b).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
    }
}
