//! The changes the mirror makes to REPLICA, as values: how each is logged, and what a dry run
//! records of it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::plan::Entry;
use crate::dir::{Kind, Meta};
use crate::escape::{esc, rel as show};

/// What a dry run would have left at a path.
#[derive(Debug, Clone)]
pub enum Would {
    Gone,
    Is(Entry),
}

/// A change made (or, in a dry run, that would be made) to REPLICA.
pub enum Change<'p> {
    Copied {
        rel: &'p Path,
        bytes: u64,
        update: bool,
        kept: Option<PathBuf>,
        meta: Meta,
        /// Copied while a writer still had it open.
        open: bool,
        /// Only the new bytes were appended.
        appended: bool,
    },
    Attrs {
        rel: &'p Path,
        meta: Meta,
    },
    MadeDir {
        rel: &'p Path,
    },
    Symlink {
        rel: &'p Path,
        target: &'p Path,
        update: bool,
        meta: Meta,
    },
    /// A symlink's owner, times or extended attributes set (by replacing it).
    SymlinkAttrs {
        rel: &'p Path,
        meta: Meta,
    },
    Removed {
        rel: &'p Path,
        kind: Kind,
        kept: Option<PathBuf>,
        /// A temporary file of this run or an earlier one (see `OwnFiles::is_leftover`).
        leftover: bool,
    },
    Renamed {
        from: &'p Path,
        to: &'p Path,
    },
    /// A hard link to another name's copy.
    Linked {
        rel: &'p Path,
        to: &'p Path,
    },
    /// A directory's permissions, owner or times set, once nothing more is written into it.
    DirAttrs {
        rel: &'p Path,
        meta: Meta,
    },
    /// A file whose status changed in SOURCE found to hold the same bytes and attributes: its
    /// times are set again, so its ctime says it was checked.
    Verified {
        rel: &'p Path,
    },
}

impl Change<'_> {
    /// Whether it is said at debug level only: it follows from changes said already, or
    /// changes nothing a person would see.
    pub fn quiet(&self) -> bool {
        matches!(self, Change::DirAttrs { .. } | Change::Verified { .. })
    }
}

impl fmt::Display for Change<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Copied {
                rel,
                bytes,
                update,
                kept,
                open,
                appended,
                ..
            } => {
                let verb = if *update { "updated" } else { "copied" };
                write!(f, "{verb} {} ({bytes} bytes", show(rel))?;
                if *appended {
                    f.write_str(" appended")?;
                }
                if *open {
                    f.write_str(", while it is open for writing")?;
                }
                if let Some(kept) = kept {
                    write!(f, ", previous version kept as {}", esc(kept))?;
                }
                f.write_str(")")
            }
            Change::Attrs { rel, .. } => write!(f, "updated attributes of {}", show(rel)),
            Change::SymlinkAttrs { rel, .. } => {
                write!(f, "updated attributes of symlink {}", show(rel))
            }
            Change::MadeDir { rel } => write!(f, "created directory {}", show(rel)),
            Change::Symlink {
                rel,
                target,
                update,
                ..
            } => {
                let verb = if *update { "updated" } else { "created" };
                write!(f, "{verb} symlink {} -> {}", show(rel), esc(target))
            }
            Change::Removed {
                rel,
                kind,
                kept,
                leftover,
            } => {
                if *leftover {
                    write!(f, "removed leftover temporary file {}", show(rel))?;
                } else {
                    write!(f, "removed {} {}", kind.noun(), show(rel))?;
                }
                match kept {
                    Some(kept) => write!(f, " (kept as {})", esc(kept)),
                    None => Ok(()),
                }
            }
            Change::Renamed { from, to } => write!(f, "renamed {} -> {}", show(from), show(to)),
            Change::Linked { rel, to } => write!(f, "linked {} to {}", show(rel), show(to)),
            Change::DirAttrs { rel, .. } => {
                write!(f, "set attributes of directory {}", show(rel))
            }
            Change::Verified { rel } => write!(f, "checked {}: same bytes", show(rel)),
        }
    }
}
/// What REPLICA would hold after `done`, for the dry run's view.
pub fn simulated(done: &Change) -> Vec<(PathBuf, Would)> {
    let entry = |kind: Kind, meta: Option<Meta>, target: Option<PathBuf>| {
        Would::Is(Entry { kind, meta, target })
    };
    match done {
        Change::Copied { rel, meta, .. } | Change::Attrs { rel, meta } => {
            vec![(rel.to_path_buf(), entry(Kind::File, Some(*meta), None))]
        }
        Change::MadeDir { rel } => vec![(rel.to_path_buf(), entry(Kind::Dir, None, None))],
        Change::Symlink {
            rel, target, meta, ..
        } => vec![(
            rel.to_path_buf(),
            entry(Kind::Symlink, Some(*meta), Some(target.to_path_buf())),
        )],
        Change::Removed { rel, .. } => vec![(rel.to_path_buf(), Would::Gone)],
        Change::SymlinkAttrs { .. } => Vec::new(),
        Change::Renamed { .. }
        | Change::Linked { .. }
        | Change::DirAttrs { .. }
        | Change::Verified { .. } => Vec::new(),
    }
}
