//! A root directory held open (SOURCE's, REPLICA's, the backup directory's): its path for
//! messages, a handle that everything beneath it goes through, and its identity, so that a root
//! that vanished, was unmounted or was replaced is noticed rather than followed. Its path is
//! only ever looked at again without following a symlink anywhere on it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::dir::{self, Dir, Id, Meta};
use crate::escape::esc;

/// An open root.
#[derive(Debug)]
pub struct Root {
    pub path: PathBuf,
    pub dir: Dir,
    pub id: Id,
    /// The root was the root of a mount (a mount point, a bind mount).
    pub mount_root: bool,
    /// The identity of the directory that held it.
    pub parent: Option<Id>,
}

/// What the root's path holds now, compared with the open root.
#[derive(Debug)]
pub enum AtPath {
    /// The same directory.
    Same,
    /// Nothing there, or unreachable (a symlink on the way counts as unreachable).
    Gone(io::Error),
    /// Something else than a directory: a symlink, a file.
    NotDir,
    /// Another file system, or the mount that was there is gone: an unmount, most likely.
    OtherDevice,
    /// Another plain directory on the same device, opened.
    Replaced(Root),
}

impl Root {
    /// Opens the directory at `path` (absolute and resolved), following no symlink on the way.
    pub fn open(path: &Path) -> io::Result<Root> {
        let (parent, name) = Dir::open_parent(path)?;
        let dir = match &name {
            Some(name) => parent.open_dir(name)?,
            None => Dir::open(path)?,
        };
        let meta = dir.stat()?;
        Ok(Root {
            path: path.to_path_buf(),
            dir,
            id: meta.id,
            mount_root: meta.mount_root,
            parent: name.and_then(|_| parent.stat().ok()).map(|m| m.id),
        })
    }

    /// What names this very directory, for the state record: `device:inode:birth:file system`.
    /// The device and inode alone name a place: the root of any file system mounted at a mount
    /// point has the same inode, and often the same device number. Its birth time and the file
    /// system's id tell another file system, or a directory made anew, from this one.
    pub fn fingerprint(&self) -> String {
        use rustix::fs::{AtFlags, StatxFlags};
        let birth = rustix::fs::statx(&self.dir, c"", AtFlags::EMPTY_PATH, StatxFlags::BTIME)
            .ok()
            .filter(|x| x.stx_mask & StatxFlags::BTIME.bits() != 0)
            .map(|x| format!("{}.{:09}", x.stx_btime.tv_sec, x.stx_btime.tv_nsec))
            .unwrap_or_default();
        let fs = rustix::fs::fstatvfs(&self.dir)
            .map(|v| format!("{:016x}", v.f_fsid))
            .unwrap_or_default();
        format!("{}:{}:{birth}:{fs}", self.id.dev, self.id.ino)
    }

    /// What is at the root's path now, without following a symlink on the way.
    fn meta_now(&self) -> io::Result<Option<Meta>> {
        let (parent, name) = Dir::open_parent(&self.path)?;
        match name {
            Some(name) => parent.stat_at(&name),
            None => Ok(Some(self.dir.stat()?)),
        }
    }

    /// Looks at the root's path again: a `statx`, and an open only if another directory is
    /// there (opening SOURCE's root would raise a watcher event).
    pub fn now(&self) -> AtPath {
        let meta = match self.meta_now() {
            Ok(Some(meta)) => meta,
            Ok(None) => return AtPath::Gone(io::ErrorKind::NotFound.into()),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return AtPath::NotDir
            }
            Err(e) => return AtPath::Gone(e),
        };
        if meta.kind != dir::Kind::Dir {
            return AtPath::NotDir;
        }
        if meta.id == self.id {
            return AtPath::Same;
        }
        // A mount gone (or one put in its place) shows another directory at the path, even on
        // the same device (a bind mount): never taken for a directory made anew.
        if meta.id.dev != self.id.dev || self.mount_root || meta.mount_root {
            return AtPath::OtherDevice;
        }
        match Root::open(&self.path) {
            Ok(root) if root.id == self.id => AtPath::Same,
            Ok(root) if root.id.dev != self.id.dev || root.mount_root => AtPath::OtherDevice,
            Ok(root) => AtPath::Replaced(root),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                AtPath::NotDir
            }
            Err(e) => AtPath::Gone(e),
        }
    }

    /// Whether the root holds nothing that `ignore` does not excuse (read no further than the
    /// first entry that counts).
    pub fn is_empty(
        &self,
        ignore: impl Fn(&std::ffi::OsStr, dir::Kind) -> bool,
    ) -> io::Result<bool> {
        Ok(!self.dir.any(|name, kind| !ignore(name, kind))?)
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", esc(&self.path))
    }
}

/// Describes why a root is unusable, for one log line.
pub fn problem(what: &str, path: &Path, now: &AtPath) -> Option<String> {
    match now {
        AtPath::Same | AtPath::Replaced(_) => None,
        AtPath::Gone(e) if dir::is_absent(e) => Some(format!("{what} {} is gone", esc(path))),
        AtPath::NotDir => Some(format!(
            "{what} {} is no longer a directory (a symlink or a file took its place)",
            esc(path)
        )),
        AtPath::Gone(e) => Some(format!("{what} {} is unavailable: {e}", esc(path))),
        AtPath::OtherDevice => Some(format!(
            "{what} {} is now on another device, or its mount is gone (was it unmounted?)",
            esc(path)
        )),
    }
}
