//! A directory being worked on, and a directory waiting to be walked.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::dir::{Dir, Id, Meta};

/// A SOURCE file about to be copied into the directory `node`: its `name` there and its path,
/// SOURCE's file open (`input`) and what it was when opened (`src`); `update`: REPLICA has a
/// file by that name. What may make the copy unneeded (another name's copy to link to, the
/// file's earlier self in REPLICA) looks at it.
pub struct Incoming<'a> {
    pub node: &'a DirPair<'a>,
    pub name: &'a std::ffi::OsStr,
    pub rel: &'a Path,
    pub input: &'a std::fs::File,
    pub src: &'a Meta,
    pub update: bool,
}

/// A directory being worked on: SOURCE's and REPLICA's handles, and the attributes REPLICA's
/// must end up with (set at the run's end, see [`super::settle`]).
pub struct DirPair<'r> {
    pub rel: PathBuf,
    /// `None` when SOURCE has nothing here (a REPLICA directory that is emptied, not removed).
    pub src: Option<Dir>,
    /// `None` in a dry run, where REPLICA's directory was never made.
    pub dst: Option<Dir>,
    /// SOURCE's directory's metadata: what REPLICA's must match once its contents are done.
    pub want: Option<Meta>,
    /// REPLICA's directory's metadata when it was opened.
    pub have: Option<Meta>,
    /// REPLICA's directory was made in this run.
    pub fresh: bool,
    /// Its files whose size and mtime match are compared byte for byte (it came in whole from
    /// elsewhere: their ctimes say nothing about REPLICA's copies).
    pub verify: bool,
    /// REPLICA's directory has a default ACL, which new files inherit (asked once).
    acl_default: std::sync::OnceLock<bool>,
    /// Entries were made or removed in REPLICA's directory (so its mtime moved), or its
    /// permissions were opened up to make them.
    touched: AtomicBool,
    /// Where a touched directory is noted, for its attributes to be set at the run's end.
    settle: &'r Settle,
}

impl<'r> DirPair<'r> {
    /// Both sides of the directory `rel` (either may be missing), with their metadata; a
    /// touch notes it in `settle`. An error says on which side (`true`: REPLICA's) it came.
    pub fn new(
        settle: &'r Settle,
        rel: PathBuf,
        src: Option<Dir>,
        dst: Option<Dir>,
    ) -> Result<DirPair<'r>, (bool, io::Error)> {
        let want = src
            .as_ref()
            .map(Dir::stat)
            .transpose()
            .map_err(|e| (false, e))?;
        let have = dst
            .as_ref()
            .map(Dir::stat)
            .transpose()
            .map_err(|e| (true, e))?;
        Ok(DirPair {
            rel,
            src,
            dst,
            want,
            have,
            fresh: false,
            verify: false,
            acl_default: std::sync::OnceLock::new(),
            touched: AtomicBool::new(false),
            settle,
        })
    }

    /// Whether files made in REPLICA's directory inherit a default ACL.
    pub fn inherits_acl(&self) -> bool {
        *self.acl_default.get_or_init(|| {
            let Some(dst) = &self.dst else { return false };
            let Ok(dir) = dst.dup() else { return false };
            let file = std::fs::File::from(std::os::fd::OwnedFd::from(dir));
            xattr::FileExt::get_xattr(&file, "system.posix_acl_default").is_ok_and(|v| v.is_some())
        })
    }

    /// Nothing is to be done to REPLICA's directory, its attributes included.
    pub fn leave_alone(&mut self) {
        self.want = None;
    }

    /// Notes that REPLICA's directory changed (its mtime is set again at the run's end).
    pub fn touch(&self) {
        if !self.touched.swap(true, Ordering::Relaxed) {
            if let Some(have) = &self.have {
                self.settle.note(&self.rel, have.id);
            }
        }
    }

    /// Runs `op`, which makes an entry in REPLICA's directory. Refused for lack of permission
    /// (a read-only directory, and foldersync is not root), the directory is opened up for its
    /// owner and `op` runs again; the directory's own permissions are set back at the end.
    pub fn writable<T>(&self, op: impl Fn() -> io::Result<T>) -> io::Result<T> {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                let (Some(dst), Some(have)) = (&self.dst, &self.have) else {
                    return Err(e);
                };
                // Not ours to open up: the original refusal stands.
                match dst.ensure_writable(have) {
                    Ok(true) => {
                        self.settle.opened(&self.rel, have.id);
                        self.touch();
                        op()
                    }
                    _ => Err(e),
                }
            }
            other => other,
        }
    }
}

/// A directory waiting to be walked.
pub struct DirTask<'r> {
    pub parent: Arc<DirPair<'r>>,
    pub name: OsString,
    pub rel: PathBuf,
    /// REPLICA's directory was just made (here is its handle, unless this is a dry run).
    pub made: Option<Option<Dir>>,
    /// SOURCE has nothing here: REPLICA's directory is emptied but kept.
    pub empty: bool,
    /// Walk its contents too (otherwise only its attributes are reconciled).
    pub tree: bool,
    /// Compare the bytes of its files whose size and mtime match (see `Look::verify`).
    pub verify: bool,
}

/// The REPLICA directories whose attributes are set at the round's end (see
/// [`super::settle`]), each with the identity it had when noted: a directory put in its place
/// meanwhile is never given them.
#[derive(Debug, Default)]
pub struct Settle {
    dirs: Mutex<BTreeMap<PathBuf, Id>>,
    /// Those opened up for their owner to write into them: set back even when a stop cuts the
    /// round short.
    opened: Mutex<BTreeMap<PathBuf, Id>>,
}

impl Settle {
    pub fn note(&self, rel: &Path, id: Id) {
        let mut dirs = crate::lock(&self.dirs);
        if !dirs.contains_key(rel) {
            dirs.insert(rel.to_path_buf(), id);
        }
    }

    /// Notes the directory `dir` (at `rel`) by its identity now.
    pub fn note_dir(&self, rel: &Path, dir: &Dir) {
        if let Ok(meta) = dir.stat() {
            self.note(rel, meta.id);
        }
    }

    fn opened(&self, rel: &Path, id: Id) {
        crate::lock(&self.opened).insert(rel.to_path_buf(), id);
        self.note(rel, id);
    }

    /// What to set: every directory noted, or after a stop only those opened up.
    pub fn take(&self, stopped: bool) -> BTreeMap<PathBuf, Id> {
        let opened = std::mem::take(&mut *crate::lock(&self.opened));
        let dirs = std::mem::take(&mut *crate::lock(&self.dirs));
        if stopped {
            opened
        } else {
            dirs
        }
    }
}
