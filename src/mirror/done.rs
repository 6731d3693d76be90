//! The changes the mirror makes to REPLICA, as values: how each is logged, and what a dry run
//! records of it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::overlay::Sim;
use super::plan::Entry;
use crate::dir::{Kind, Meta};
use crate::escape::{esc, rel as show};

/// A change made (or, in a dry run, that would be made) to REPLICA.
pub enum Done<'p> {
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

impl Done<'_> {
    /// Whether it is said at debug level only: it follows from changes said already, or
    /// changes nothing a person would see.
    pub fn quiet(&self) -> bool {
        matches!(self, Done::DirAttrs { .. } | Done::Verified { .. })
    }
}

impl fmt::Display for Done<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Done::Copied {
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
            Done::Attrs { rel, .. } => write!(f, "updated attributes of {}", show(rel)),
            Done::SymlinkAttrs { rel, .. } => {
                write!(f, "updated attributes of symlink {}", show(rel))
            }
            Done::MadeDir { rel } => write!(f, "created directory {}", show(rel)),
            Done::Symlink {
                rel,
                target,
                update,
                ..
            } => {
                let verb = if *update { "updated" } else { "created" };
                write!(f, "{verb} symlink {} -> {}", show(rel), esc(target))
            }
            Done::Removed {
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
            Done::Renamed { from, to } => write!(f, "renamed {} -> {}", show(from), show(to)),
            Done::Linked { rel, to } => write!(f, "linked {} to {}", show(rel), show(to)),
            Done::DirAttrs { rel, .. } => {
                write!(f, "set attributes of directory {}", show(rel))
            }
            Done::Verified { rel } => write!(f, "checked {}: same bytes", show(rel)),
        }
    }
}
/// What REPLICA would hold after `done`, for the dry run's overlay.
pub fn simulated(done: &Done) -> Vec<(PathBuf, Sim)> {
    let entry = |kind: Kind, meta: Option<Meta>, target: Option<PathBuf>| {
        Sim::Is(Entry { kind, meta, target })
    };
    match done {
        Done::Copied { rel, meta, .. } | Done::Attrs { rel, meta } => {
            vec![(rel.to_path_buf(), entry(Kind::File, Some(*meta), None))]
        }
        Done::MadeDir { rel } => vec![(rel.to_path_buf(), entry(Kind::Dir, None, None))],
        Done::Symlink {
            rel, target, meta, ..
        } => vec![(
            rel.to_path_buf(),
            entry(Kind::Symlink, Some(*meta), Some(target.to_path_buf())),
        )],
        Done::Removed { rel, .. } => vec![(rel.to_path_buf(), Sim::Gone)],
        Done::SymlinkAttrs { .. } => Vec::new(),
        Done::Renamed { .. }
        | Done::Linked { .. }
        | Done::DirAttrs { .. }
        | Done::Verified { .. } => Vec::new(),
    }
}
