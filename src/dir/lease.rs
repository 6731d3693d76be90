//! Read leases: the kernel's own answer to "is anybody writing this file?". A read lease
//! (`F_SETLEASE` with `F_RDLCK`) is refused while any process has the file open for writing,
//! and is broken as soon as one opens it so; a copy made under a lease that still holds at its
//! end saw no writer at all, in-place rewrites of the same size included, which size and mtime
//! cannot tell. Neither rustix nor nix wraps these `fcntl` commands, so this module makes the
//! one call itself. The lease is released when the file is closed; the SIGIO a broken lease
//! sends is blocked in every thread (see `stop`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// What asking for a lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Held: nobody has the file open for writing.
    Held,
    /// Refused: someone has the file open for writing right now.
    Busy,
    /// Leases cannot be had here (not the file's owner, a file system without them): the copy
    /// relies on size and mtime alone.
    Unavailable,
}

/// Asks for a read lease on `file` (opened read-only).
pub fn take(file: &File) -> Lease {
    match fcntl(file, libc::F_SETLEASE, libc::F_RDLCK) {
        Ok(_) => Lease::Held,
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Lease::Busy,
        Err(_) => Lease::Unavailable,
    }
}

/// Whether the read lease taken on `file` still holds (no writer has opened the file since).
pub fn holds(file: &File) -> bool {
    fcntl(file, libc::F_GETLEASE, 0).is_ok_and(|kind| kind == libc::F_RDLCK)
}

/// Gives up the lease on `file` before it is closed (a writer waiting for it goes on).
pub fn release(file: &File) {
    // Failing to release leaves the lease to end when the file is closed, moments later.
    let _ = fcntl(file, libc::F_SETLEASE, libc::F_UNLCK);
}

fn fcntl(file: &File, cmd: libc::c_int, arg: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: `file` keeps its descriptor open for the duration of the call, and F_SETLEASE and
    // F_GETLEASE take an integer argument and touch no memory of ours.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, arg) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    #[test]
    fn a_writer_refuses_the_lease() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"data").unwrap();
        let writer = OpenOptions::new().write(true).open(&path).unwrap();
        let reader = File::open(&path).unwrap();
        assert_ne!(take(&reader), Lease::Held, "a writer has it open");
        drop(writer);
        drop(reader);
        // (A writer that opens the file later breaks the lease, and the kernel signals the
        // holder: the integration tests show that with the real binary, which blocks SIGIO.)
        let reader = File::open(&path).unwrap();
        if take(&reader) == Lease::Held {
            assert!(holds(&reader));
        }
    }
}
