//! What a local dry run records of a change (see [`crate::change::Change`]): what REPLICA
//! would hold after it.

use std::path::PathBuf;

use super::plan::Entry;
pub use crate::change::Change;
use crate::dir::{Kind, Meta};

/// What a dry run would have left at a path.
#[derive(Debug, Clone)]
pub enum Would {
    Gone,
    Is(Entry),
}

/// What REPLICA would hold after `done`, for the dry run's view.
pub fn simulated(done: &Change) -> Vec<(PathBuf, Would)> {
    let entry = |kind: Kind, meta: Option<Meta>, target: Option<PathBuf>| {
        Would::Is(Entry { kind, meta, target })
    };
    match done {
        Change::Copied { rel, meta, .. } | Change::Attrs { rel, meta } => {
            vec![(rel.clone(), entry(Kind::File, *meta, None))]
        }
        Change::MadeDir { rel } => vec![(rel.clone(), entry(Kind::Dir, None, None))],
        Change::Symlink {
            rel, target, meta, ..
        } => vec![(
            rel.clone(),
            entry(Kind::Symlink, *meta, Some(target.clone())),
        )],
        Change::Removed { rel, .. } => vec![(rel.clone(), Would::Gone)],
        Change::SymlinkAttrs { .. } => Vec::new(),
        Change::Renamed { .. }
        | Change::Linked { .. }
        | Change::DirAttrs { .. }
        | Change::Verified { .. } => Vec::new(),
    }
}
