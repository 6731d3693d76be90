//! What a batch works on, as values: its paths sorted into entries and trees, what of the root
//! it sends, and what runs that went through sent (so a path unchanged since is not sent again).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::Remote;
use crate::dir::xattr::Xattrs;
use crate::dir::{Kind, Stamp};

/// At most this many entries are remembered as sent (see [`Sent`]).
pub const MAX_SENT: usize = 100_000;

/// What SOURCE's file or symlink was (all but its atime) when a run that went through sent it.
/// The watcher names a new file twice (when it is closed, and again when its creation is
/// reported); a run for a path SOURCE has not changed since would send nothing, and would hold
/// up the next change for the length of a run. A change since (even of the same size and
/// mtime) moves the ctime. A full pass forgets them all.
pub type Sent = (Kind, u32, u32, u32, u64, Stamp, Stamp, crate::dir::Id, u64);

pub fn sent_key(m: &crate::dir::Meta) -> Sent {
    (
        m.kind, m.perm, m.uid, m.gid, m.size, m.mtime, m.ctime, m.id, m.nlink,
    )
}

/// What a batch sends: the paths to look at alone and those to look at whole.
#[derive(Debug, Default)]
pub struct Work {
    pub entries: Vec<PathBuf>,
    pub trees: Vec<PathBuf>,
    /// Paths SOURCE lacks.
    pub gone: HashSet<PathBuf>,
    /// Paths SOURCE moved away (a rename's first half, the other half maybe still to come).
    pub moved: HashSet<PathBuf>,
    /// Paths that came in whole from elsewhere (see [`crate::replica::Look::verify`]).
    pub verify: HashSet<PathBuf>,
    /// The root's mtime, for the guard to set after the last run (see [`super::send`]).
    pub touch: Option<Stamp>,
    /// What of the root the batch sends by listing it.
    pub root_look: Option<RootLook>,
    /// The root's mtime the batch gives REPLICA's root, by listing it or by `touch`.
    pub root_mtime: Option<Stamp>,
}

/// What of SOURCE's root a run that lists it sends, besides its times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootLook {
    pub perm: u32,
    pub owner: Option<(u32, u32)>,
    pub xattrs: Option<Xattrs>,
}

/// Whether a batch's path is mirrored at all: not one of foldersync's own, not excluded.
pub fn wanted(r: &Remote, rel: &Path, is_dir: bool) -> bool {
    let own = &r.settings.own;
    !own.in_source(rel)
        && !own.in_replica(rel)
        && !r.backup_in.as_ref().is_some_and(|b| rel.starts_with(b))
        && !r.settings.filter.excludes_path(rel, is_dir)
}
