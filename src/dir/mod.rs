//! Open directories, and every operation foldersync makes on the file system, as `*at` calls on
//! one name inside an open directory. A name is a single path component, and no call follows a
//! symlink, so nothing that a symlink or `..` can redirect ever reaches the kernel as a path:
//! what happens beneath a root stays beneath it, and depth is not limited by `PATH_MAX`.

pub mod compare;
pub mod copy;
pub mod handle;
pub mod lease;
pub mod meta;
pub mod tree;
pub mod xattr;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Gid, Mode, OFlags, RawDir, StatxFlags, Uid};
use rustix::io::Errno;

pub use meta::{meta_of, timestamps, Id, Kind, Meta, Stamp};

/// Flags for opening a directory: never through a symlink, never as a controlling terminal.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

/// An open directory.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl std::os::fd::AsRawFd for Dir {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }
}

impl From<Dir> for OwnedFd {
    fn from(dir: Dir) -> OwnedFd {
        dir.fd
    }
}

/// Whether an error means "nothing there" (anymore): missing, or a parent that is no longer a
/// directory.
pub fn is_absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error())
}

/// Whether an error from opening a directory means "not a directory here": missing, a symlink
/// (refused by `O_NOFOLLOW`), or another kind of entry.
pub fn is_not_a_dir(e: &io::Error) -> bool {
    is_absent(e) || e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
}

/// Flags for a directory that is only passed through on the way to another (no read access
/// needed, as for a path lookup).
const PASS_FLAGS: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl Dir {
    /// Opens a root directory by its absolute path, one component at a time from `/`, following
    /// no symlink anywhere on the way: the configuration resolved the roots' paths, so a
    /// symlink found there now means someone swapped one in, and it is not followed.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let (parent, name) = Dir::open_parent(path)?;
        match name {
            Some(name) => parent.open_dir(&name),
            None => {
                let fd = rustix::fs::open("/", DIR_FLAGS, Mode::empty())?;
                Ok(Dir { fd })
            }
        }
    }

    /// The parent directory of the absolute `path`, reached without following any symlink (a
    /// handle good for lookups and `*at` calls only), and the last component.
    pub fn open_parent(path: &Path) -> io::Result<(Dir, Option<OsString>)> {
        if !path.is_absolute() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path is not absolute",
            ));
        }
        let mut dir = Dir {
            fd: rustix::fs::open("/", PASS_FLAGS, Mode::empty())?,
        };
        let mut parts: Vec<&OsStr> = Vec::new();
        for part in path.components() {
            match part {
                Component::Normal(name) => parts.push(name),
                Component::RootDir | Component::CurDir => {}
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "path is not resolved",
                    ))
                }
            }
        }
        let last = parts.pop().map(OsStr::to_os_string);
        for name in parts {
            dir = Dir {
                fd: rustix::fs::openat(&dir.fd, name, PASS_FLAGS, Mode::empty())?,
            };
        }
        Ok((dir, last))
    }

    /// Opens the directory `name` inside this one.
    pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        let fd = rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())?;
        Ok(Dir { fd })
    }

    /// Opens the directory at `rel` beneath this one, one component at a time, refusing symlinks
    /// and `..`. The empty path opens this directory again.
    pub fn open_beneath(&self, rel: &Path) -> io::Result<Dir> {
        let mut dir = self.dup()?;
        for part in rel.components() {
            match part {
                Component::Normal(name) => dir = dir.open_dir(name)?,
                Component::CurDir => {}
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "path is not relative and plain",
                    ))
                }
            }
        }
        Ok(dir)
    }

    /// Another handle on the same directory.
    pub fn dup(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
        })
    }

    /// This directory's own metadata.
    pub fn stat(&self) -> io::Result<Meta> {
        meta_of(&self.fd)
    }

    /// The metadata of `name` (a symlink itself, not its target); `None` if there is none.
    pub fn stat_at(&self, name: &OsStr) -> io::Result<Option<Meta>> {
        match rustix::fs::statx(
            &self.fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT,
            StatxFlags::BASIC_STATS,
        ) {
            Ok(x) => Ok(Some(Meta::from_statx(&x))),
            Err(e) => {
                let e = io::Error::from(e);
                if is_absent(&e) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The entries of this directory with their kinds, sorted by name. Kinds come from the
    /// directory entries; where the file system does not give them, from a `statx`.
    pub fn list(&self) -> io::Result<Vec<(OsString, Kind)>> {
        let mut out = Vec::new();
        self.scan(32 << 10, |name, kind, _| {
            out.push((name.to_os_string(), kind));
            false
        })?;
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Whether some entry (besides `.` and `..`) satisfies `pred`; reads no further than the
    /// first that does.
    pub fn any(&self, mut pred: impl FnMut(&OsStr, Kind) -> bool) -> io::Result<bool> {
        self.scan(8 << 10, |name, kind, _| pred(name, kind))
    }

    /// Every entry with its kind and inode number, as the directory listing gives them (no
    /// `statx`), in the order the file system gives them.
    pub fn list_inodes(&self) -> io::Result<Vec<(OsString, Kind, u64)>> {
        let mut out = Vec::new();
        self.scan(32 << 10, |name, kind, ino| {
            out.push((name.to_os_string(), kind, ino));
            false
        })?;
        Ok(out)
    }

    /// Shows each entry but `.` and `..` (its name, kind and inode number), in the order the
    /// file system gives them, to `stop` until it returns true; returns whether it did. A fresh
    /// descriptor reads from the start, whoever else read this one before.
    fn scan(
        &self,
        buffer: usize,
        mut stop: impl FnMut(&OsStr, Kind, u64) -> bool,
    ) -> io::Result<bool> {
        let fd = rustix::fs::openat(&self.fd, c".", DIR_FLAGS, Mode::empty())?;
        let mut buf: Vec<u8> = Vec::with_capacity(buffer);
        let mut raw = RawDir::new(&fd, buf.spare_capacity_mut());
        while let Some(entry) = raw.next() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsStr::from_bytes(name);
            let kind = match Kind::of(entry.file_type()) {
                Some(kind) => kind,
                None => match self.stat_at(name)? {
                    Some(meta) => meta.kind,
                    None => continue,
                },
            };
            if stop(name, kind, entry.ino()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The target of the symlink `name`.
    pub fn read_link(&self, name: &OsStr) -> io::Result<PathBuf> {
        let target = rustix::fs::readlinkat(&self.fd, name, Vec::new())?;
        Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
    }

    /// Opens the regular file `name` for reading: never through a symlink, never blocking on a
    /// fifo that took its place.
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(File::from(fd))
    }

    /// Creates the new file `name` for writing, private (mode 0600) until its metadata is set.
    pub fn create_file(&self, name: &OsStr) -> io::Result<File> {
        self.create_file_mode(name, 0o600)
    }

    /// Creates the new file `name` for writing with the permission bits `perm` (less the
    /// process's umask).
    pub fn create_file_mode(&self, name: &OsStr, perm: u32) -> io::Result<File> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(perm),
        )?;
        Ok(File::from(fd))
    }

    /// Renames `from` in this directory to `to` in `to_dir`, replacing what is there.
    pub fn rename(&self, from: &OsStr, to_dir: &Dir, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &to_dir.fd, to)?)
    }

    /// Renames, failing with `AlreadyExists` rather than replacing anything.
    pub fn rename_noreplace(&self, from: &OsStr, to_dir: &Dir, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat_with(
            &self.fd,
            from,
            &to_dir.fd,
            to,
            rustix::fs::RenameFlags::NOREPLACE,
        )?)
    }

    /// Creates the directory `name`.
    pub fn make_dir(&self, name: &OsStr, perm: u32) -> io::Result<()> {
        Ok(rustix::fs::mkdirat(
            &self.fd,
            name,
            Mode::from_raw_mode(perm),
        )?)
    }

    /// Creates the symlink `name` pointing at `target`.
    pub fn symlink(&self, target: &Path, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::symlinkat(target, &self.fd, name)?)
    }

    /// Makes `to` in `to_dir` another name of the file `name` (never of a symlink's target).
    pub fn hard_link(&self, name: &OsStr, to_dir: &Dir, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::linkat(
            &self.fd,
            name,
            &to_dir.fd,
            to,
            AtFlags::empty(),
        )?)
    }

    /// Removes the non-directory `name`.
    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Removes the empty directory `name`.
    pub fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }

    /// Sets the times of `name` itself (a symlink is not followed). By name: only for an entry
    /// foldersync just made under a fresh temporary name; anything else goes through a
    /// [`handle::Handle`].
    pub fn set_times_at(&self, name: &OsStr, meta: &Meta) -> io::Result<()> {
        Ok(rustix::fs::utimensat(
            &self.fd,
            name,
            &timestamps(meta),
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Sets the owner of `name` itself (a symlink is not followed). By name: only for an entry
    /// foldersync just made under a fresh temporary name.
    pub fn chown_at(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        Ok(rustix::fs::chownat(
            &self.fd,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Applies permissions (when `perms`), ownership (when `owner`) and times to this directory
    /// itself, changing only what differs from `current`.
    pub fn set_attrs(
        &self,
        want: &Meta,
        current: &Meta,
        owner: bool,
        perms: bool,
    ) -> io::Result<()> {
        let chown = owner && (want.uid != current.uid || want.gid != current.gid);
        if chown {
            rustix::fs::fchown(
                &self.fd,
                Some(Uid::from_raw(want.uid)),
                Some(Gid::from_raw(want.gid)),
            )?;
        }
        // chown may clear set-id bits, so permissions come after it.
        if perms && (chown || want.perm != current.perm) {
            rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(want.perm))?;
        }
        if want.mtime != current.mtime {
            rustix::fs::futimens(&self.fd, &timestamps(want))?;
        }
        Ok(())
    }

    /// Adds the owner's write and search bits to this directory if it lacks them, so entries can
    /// be made in it by a process that is not root; returns whether it did. The directory's own
    /// permissions are set again once its contents are done.
    pub fn ensure_writable(&self, current: &Meta) -> io::Result<bool> {
        if current.perm & 0o300 == 0o300 {
            return Ok(false);
        }
        rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(current.perm | 0o700))?;
        Ok(true)
    }

    /// Flushes this directory's entries to stable storage.
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }
}

/// The process's umask, read once (call [`read_umask`] before any thread starts).
static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Reads the umask: setting it is the only way to read it, so it is set back at once. Call it
/// while the process has one thread.
pub fn read_umask() {
    let old = rustix::process::umask(Mode::empty());
    rustix::process::umask(old);
    let _ = UMASK.set(old.bits());
}

/// The umask, or the most restrictive guess if it was not read.
pub fn umask() -> u32 {
    UMASK.get().copied().unwrap_or(0o777)
}

#[cfg(test)]
mod tests;
