//! An entry held open where it is, to set its attributes through it rather than by its name.
//! A name in a directory that someone else may write (REPLICA's directories belong to SOURCE's
//! owners when foldersync mirrors ownership as root) can be swapped between a check and a
//! `chownat`/`fchmodat` on that name, for a hard link to a file elsewhere; an entry opened with
//! `O_PATH | O_NOFOLLOW` and checked to be the one that was looked at cannot. `O_PATH` needs no
//! permission on the entry itself, and holds a symlink as the symlink.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{AtFlags, Gid, Mode, OFlags, Uid};

use super::{meta_of, timestamps, Dir, Id, Kind, Meta};

/// An entry held open (`O_PATH`), with what it was when opened.
#[derive(Debug)]
pub struct Handle {
    fd: OwnedFd,
    pub meta: Meta,
}

impl AsFd for Handle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The error of an entry that is not the one that was looked at any more.
pub fn replaced() -> io::Error {
    io::Error::other("it was replaced while foldersync worked on it")
}

impl Dir {
    /// Opens the entry `name` where it is, never following a symlink.
    pub fn handle(&self, name: &OsStr) -> io::Result<Handle> {
        let fd = rustix::fs::openat(
            self,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let meta = meta_of(&fd)?;
        Ok(Handle { fd, meta })
    }

    /// Opens the entry `name`, which must be the one looked at before (`id`, of kind `kind`):
    /// anything else there now is refused.
    pub fn handle_of(&self, name: &OsStr, id: Id, kind: Kind) -> io::Result<Handle> {
        let handle = self.handle(name)?;
        if handle.meta.id != id || handle.meta.kind != kind {
            return Err(replaced());
        }
        Ok(handle)
    }
}

impl Handle {
    /// Sets the entry's owner (a symlink's own).
    pub fn chown(&self, uid: u32, gid: u32) -> io::Result<()> {
        Ok(rustix::fs::chownat(
            &self.fd,
            "",
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::EMPTY_PATH,
        )?)
    }

    /// Sets the permission bits of a file or directory (a symlink's mean nothing on Linux).
    pub fn chmod(&self, perm: u32) -> io::Result<()> {
        if self.meta.kind == Kind::Symlink {
            return Ok(());
        }
        Ok(rustix::fs::chmod(self.path(), Mode::from_raw_mode(perm))?)
    }

    /// Sets the entry's access and modification times to `meta`'s (a symlink's own).
    pub fn set_times(&self, meta: &Meta) -> io::Result<()> {
        Ok(rustix::fs::utimensat(
            &self.fd,
            "",
            &timestamps(meta),
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// The entry as a path that leads to it and to nothing else (`/proc/self/fd/N`), for the
    /// calls that take only a path (extended attributes of a file or directory).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// The entry's metadata now.
    pub fn stat(&self) -> io::Result<Meta> {
        meta_of(&self.fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_go_to_the_entry_that_was_checked() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink("nowhere", tmp.path().join("l")).unwrap();
        let dir = Dir::open(&std::fs::canonicalize(tmp.path()).unwrap()).unwrap();
        let f = dir.handle(OsStr::new("f")).unwrap();
        f.chmod(0o600).unwrap();
        let mut old = f.meta;
        old.mtime.sec = 1_000_000_000;
        f.set_times(&old).unwrap();
        let now = f.stat().unwrap();
        assert_eq!((now.perm, now.mtime.sec), (0o600, 1_000_000_000));
        let l = dir.handle(OsStr::new("l")).unwrap();
        assert_eq!(l.meta.kind, Kind::Symlink);
        l.set_times(&old).unwrap();
        assert_eq!(
            dir.stat_at(OsStr::new("l")).unwrap().unwrap().mtime.sec,
            1_000_000_000
        );
        // Another entry in its place is refused.
        std::fs::remove_file(tmp.path().join("f")).unwrap();
        std::fs::write(tmp.path().join("f"), b"y").unwrap();
        let err = dir
            .handle_of(OsStr::new("f"), f.meta.id, Kind::File)
            .unwrap_err();
        assert_eq!(err.to_string(), replaced().to_string());
    }
}
