//! File systems mounted inside SOURCE. Unmounted, one leaves an empty directory behind, which a
//! pass would mirror by emptying REPLICA's copy. So the directories where a file system was
//! mounted are remembered (across runs, in the state record), and one that is no longer a mount
//! point is an error for its subtree: nothing below it is changed in REPLICA, the path is tried
//! again until the file system is back (then it is watched anew), and the status is unhealthy
//! meanwhile.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::dir_pair::DirPair;
use super::round::Round;
use crate::error::PathError;
use crate::mount_points::{follow_rename, MountPoints, FRESH, GONE};

/// Where file systems are mounted inside SOURCE, as a local replica's passes meet them.
#[derive(Debug, Default)]
pub struct SourceMounts {
    /// The mount points known, those found unmounted, and whether one came back.
    pub(crate) points: MountPoints,
    /// Mount points met in the pass running now.
    seen: BTreeSet<PathBuf>,
}

impl SourceMounts {
    /// A pass ends: the mount points are those it met, and those it found unmounted.
    pub fn pass_ended(&mut self) {
        let seen = std::mem::take(&mut self.seen);
        let gone = self.points.gone.iter().cloned();
        self.points.known = seen.into_iter().chain(gone).collect();
    }

    /// A directory moved from `from` to `to` (a rename mirrored): the mount points below it
    /// moved with it.
    pub fn renamed(&mut self, from: &std::path::Path, to: &std::path::Path) {
        self.points.renamed(from, to);
        follow_rename(&mut self.seen, from, to);
    }
}

impl Round<'_> {
    /// Whether SOURCE's directory of `node` is a known mount point whose file system is gone.
    /// That is said (an error for its subtree, to be tried again) and nothing below it is to be
    /// touched. A mount point met is remembered.
    pub(super) fn unmounted(&self, node: &DirPair) -> bool {
        let (Some(want), false) = (&node.want, node.rel.as_os_str().is_empty()) else {
            return false;
        };
        if node.src.is_none() {
            return false;
        }
        let mut mounts = crate::lock(&self.m.mounts);
        let why = if want.mount_root {
            let points = &mut mounts.points;
            if points.gone.remove(&node.rel) {
                points.back = true;
            }
            points.known.insert(node.rel.clone());
            if self.full {
                mounts.seen.insert(node.rel.clone());
            }
            drop(mounts);
            if self.m.opts.allow_empty_source || !self.fresh_file_system(node) {
                return false;
            }
            FRESH
        } else {
            if !mounts.points.known.contains(&node.rel) {
                return false;
            }
            mounts.points.gone.insert(node.rel.clone());
            GONE
        };
        self.fail(
            PathError::new(
                "mirror",
                self.source_path().join(&node.rel),
                std::io::Error::other(why),
            )
            .retry(node.rel.clone())
            .tree(),
        );
        true
    }

    /// Whether SOURCE's mount point of `node` holds no data while REPLICA's copy of it does:
    /// a freshly formatted disk where the one mirrored was (see [`crate::data`]).
    fn fresh_file_system(&self, node: &DirPair) -> bool {
        let (Some(src), Some(dst)) = (&node.src, &node.dst) else {
            return false;
        };
        let (own, filter) = (self.m.own(), &self.m.opts.filter);
        crate::data::holds_none(src, &node.rel, own, filter).unwrap_or(false)
            && !crate::data::holds_none(dst, &node.rel, own, filter).unwrap_or(true)
    }
}
