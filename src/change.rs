//! A change to REPLICA, as a value: one type and one wording for both replicas (a local
//! directory, or one over rsync), counted in one place.

use std::fmt;
use std::path::PathBuf;

use log::{debug, info};

use crate::dir::{Kind, Meta};
use crate::escape::{esc, rel as show};
use crate::stats::{Count, Stats};

/// A change made (or, in a dry run, that would be made) to REPLICA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Copied {
        rel: PathBuf,
        bytes: u64,
        update: bool,
        kept: Option<PathBuf>,
        /// What the entry was given (a local replica's dry run keeps it in its view).
        meta: Option<Meta>,
        /// Copied while a writer still had it open.
        open: bool,
        /// Only the new bytes were appended.
        appended: bool,
    },
    Attrs {
        rel: PathBuf,
        /// What the entry was given (a local replica's dry run keeps it in its view).
        meta: Option<Meta>,
    },
    MadeDir {
        rel: PathBuf,
    },
    Symlink {
        rel: PathBuf,
        target: PathBuf,
        update: bool,
        /// What the entry was given (a local replica's dry run keeps it in its view).
        meta: Option<Meta>,
    },
    /// A symlink's owner, times or extended attributes set (by replacing it).
    SymlinkAttrs {
        rel: PathBuf,
        /// What the entry was given (a local replica's dry run keeps it in its view).
        meta: Option<Meta>,
    },
    Removed {
        rel: PathBuf,
        /// `None` where it is not known (rsync says only whether it was a directory).
        kind: Option<Kind>,
        kept: Option<PathBuf>,
        /// A temporary file of this run or an earlier one (see `OwnFiles::is_leftover`).
        leftover: bool,
    },
    Renamed {
        from: PathBuf,
        to: PathBuf,
    },
    /// A hard link to another name's copy.
    Linked {
        rel: PathBuf,
        to: PathBuf,
    },
    /// A directory's permissions, owner or times set, once nothing more is written into it.
    DirAttrs {
        rel: PathBuf,
        /// What the entry was given (a local replica's dry run keeps it in its view).
        meta: Option<Meta>,
    },
    /// A file whose status changed in SOURCE found to hold the same bytes and attributes: its
    /// times are set again, so its ctime says it was checked.
    Verified {
        rel: PathBuf,
    },
}

impl Change {
    /// Whether it is said at debug level only: it follows from changes said already, or
    /// changes nothing a person would see.
    pub fn quiet(&self) -> bool {
        matches!(self, Change::DirAttrs { .. } | Change::Verified { .. })
    }

    /// The counter it bumps; none for what follows from changes counted already.
    pub fn count(&self) -> Option<Count> {
        match self {
            Change::DirAttrs { .. } | Change::Verified { .. } => None,
            Change::Copied { update: false, .. } => Some(Count::Copied),
            Change::Copied { update: true, .. }
            | Change::Attrs { .. }
            | Change::SymlinkAttrs { .. }
            | Change::Symlink { update: true, .. } => Some(Count::Updated),
            Change::MadeDir { .. } | Change::Symlink { .. } => Some(Count::Created),
            Change::Removed { .. } => Some(Count::Removed),
            Change::Renamed { .. } => Some(Count::Renamed),
            Change::Linked { .. } => Some(Count::Linked),
        }
    }

    /// Says the change (INFO, or DEBUG for a quiet one; marked in a dry run) and counts it:
    /// the one wording and the one count, whichever replica made it.
    pub fn say(&self, dry_run: bool, stats: &Stats) {
        self.log(dry_run);
        self.tally(stats);
    }

    /// Counts the change (a local round counts it at once and may say it later, in path order).
    pub fn tally(&self, stats: &Stats) {
        if let Some(count) = self.count() {
            stats.add(count);
        }
    }

    /// The path its line is about: where it sits in a round's path order.
    pub fn at(&self) -> &std::path::Path {
        match self {
            Change::Renamed { to: rel, .. }
            | Change::Copied { rel, .. }
            | Change::Attrs { rel, .. }
            | Change::MadeDir { rel }
            | Change::Symlink { rel, .. }
            | Change::SymlinkAttrs { rel, .. }
            | Change::Removed { rel, .. }
            | Change::Linked { rel, .. }
            | Change::DirAttrs { rel, .. }
            | Change::Verified { rel } => rel,
        }
    }

    /// Logs the change's line (INFO, or DEBUG for a quiet one; marked in a dry run).
    pub fn log(&self, dry_run: bool) {
        let dry = if dry_run { "[dry run] " } else { "" };
        let say = || {
            if self.quiet() {
                debug!("{dry}{self}");
            } else {
                info!("{dry}{self}");
            }
        };
        if crate::log_json::on() {
            crate::log_json::with_fields(self.fields(dry_run), say);
        } else {
            say();
        }
    }
}

impl Change {
    /// Its fields in a JSON log line: `op` and `path` (escaped as in text lines, so every
    /// name is a valid string and two names never look the same), and as they apply `to`,
    /// `size`, `bytes_written`, `appended`, `open`, `kept`, `dry_run`.
    pub fn fields(&self, dry_run: bool) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        let (op, rel) = match self {
            Change::Copied {
                update: false, rel, ..
            } => ("copied", rel),
            Change::Copied { rel, .. } => ("updated", rel),
            Change::Attrs { rel, .. } => ("attrs", rel),
            Change::SymlinkAttrs { rel, .. } => ("symlink-attrs", rel),
            Change::MadeDir { rel } => ("mkdir", rel),
            Change::Symlink {
                update: false, rel, ..
            } => ("symlink", rel),
            Change::Symlink { rel, .. } => ("symlink-updated", rel),
            Change::Removed { rel, .. } => ("removed", rel),
            Change::Renamed { from, .. } => ("renamed", from),
            Change::Linked { rel, .. } => ("linked", rel),
            Change::DirAttrs { rel, .. } => ("dir-attrs", rel),
            Change::Verified { rel } => ("verified", rel),
        };
        m.insert("op".into(), op.into());
        m.insert("path".into(), show(rel).to_string().into());
        match self {
            Change::Copied {
                bytes,
                kept,
                meta,
                open,
                appended,
                ..
            } => {
                let size = meta.as_ref().map(|m| m.size);
                let size = size.or((!appended).then_some(*bytes));
                if let Some(size) = size {
                    m.insert("size".into(), size.into());
                }
                m.insert("bytes_written".into(), (*bytes).into());
                m.insert("appended".into(), (*appended).into());
                m.insert("open".into(), (*open).into());
                if let Some(kept) = kept {
                    m.insert("kept".into(), esc(kept).to_string().into());
                }
            }
            Change::Symlink { target, .. } => {
                m.insert("to".into(), esc(target).to_string().into());
            }
            Change::Renamed { to, .. } | Change::Linked { to, .. } => {
                m.insert("to".into(), show(to).to_string().into());
            }
            Change::Removed {
                kind: Some(kind), ..
            } => {
                m.insert("kind".into(), kind.noun().into());
            }
            _ => {}
        }
        if let Change::Removed {
            kept: Some(kept), ..
        } = self
        {
            m.insert("kept".into(), esc(kept).to_string().into());
        }
        if dry_run {
            m.insert("dry_run".into(), true.into());
        }
        m
    }
}

impl fmt::Display for Change {
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
                match kind {
                    _ if *leftover => write!(f, "removed leftover temporary file {}", show(rel))?,
                    Some(kind) => write!(f, "removed {} {}", kind.noun(), show(rel))?,
                    None => write!(f, "removed {}", show(rel))?,
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
