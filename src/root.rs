//! A root directory held open (SOURCE's, REPLICA's, the backup directory's): its path for
//! messages, a handle that everything beneath it goes through, and its identity, so that a root
//! that vanished, moved to another device (an unmount) or was replaced is noticed rather than
//! followed.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::dir::{self, Dir, Id};
use crate::escape::esc;

/// An open root.
#[derive(Debug)]
pub struct Root {
    pub path: PathBuf,
    pub dir: Dir,
    pub id: Id,
}

/// What the root's path holds now, compared with the open root.
#[derive(Debug)]
pub enum Now {
    /// The same directory.
    Same,
    /// Nothing there, or unreachable.
    Gone(io::Error),
    /// Something else than a directory: a symlink, a file.
    NotDir,
    /// A directory on another device than the root was on: an unmount, most likely.
    OtherDevice,
    /// Another directory on the same device, opened.
    Replaced(Root),
}

impl Root {
    /// Opens the directory at `path`, which must not be a symlink.
    pub fn open(path: &Path) -> io::Result<Root> {
        let dir = Dir::open(path)?;
        let id = dir.stat()?.id;
        Ok(Root {
            path: path.to_path_buf(),
            dir,
            id,
        })
    }

    /// Looks at the root's path again: a `statx`, and an open only if another directory is
    /// there (opening SOURCE's root would raise a watcher event).
    pub fn now(&self) -> Now {
        let meta = match rustix::fs::statx(
            rustix::fs::CWD,
            &self.path,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            rustix::fs::StatxFlags::BASIC_STATS,
        ) {
            Ok(x) => dir::Meta::from_statx(&x),
            Err(e) => return Now::Gone(e.into()),
        };
        if meta.kind != dir::Kind::Dir {
            return Now::NotDir;
        }
        if meta.id == self.id {
            return Now::Same;
        }
        if meta.id.dev != self.id.dev {
            return Now::OtherDevice;
        }
        match Root::open(&self.path) {
            Ok(root) if root.id == self.id => Now::Same,
            Ok(root) if root.id.dev != self.id.dev => Now::OtherDevice,
            Ok(root) => Now::Replaced(root),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                Now::NotDir
            }
            Err(e) => Now::Gone(e),
        }
    }

    /// Whether the root holds nothing that `ignore` does not excuse.
    pub fn is_empty(&self, ignore: impl Fn(&std::ffi::OsStr) -> bool) -> io::Result<bool> {
        Ok(self.dir.list()?.iter().all(|(name, _)| ignore(name)))
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", esc(&self.path))
    }
}

/// Describes why a root is unusable, for one log line.
pub fn problem(what: &str, path: &Path, now: &Now) -> Option<String> {
    match now {
        Now::Same | Now::Replaced(_) => None,
        Now::Gone(e) if dir::is_absent(e) => Some(format!("{what} {} is gone", esc(path))),
        Now::NotDir => Some(format!(
            "{what} {} is no longer a directory (a symlink or a file took its place)",
            esc(path)
        )),
        Now::Gone(e) => Some(format!("{what} {} is unavailable: {e}", esc(path))),
        Now::OtherDevice => Some(format!(
            "{what} {} is now on another device (was its file system unmounted?)",
            esc(path)
        )),
    }
}
