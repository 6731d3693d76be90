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

/// Where file systems are mounted inside SOURCE (relative paths).
#[derive(Debug, Default)]
pub struct SourceMounts {
    /// Mount points known from earlier passes (and the record).
    known: BTreeSet<PathBuf>,
    /// Mount points met in the pass running now.
    seen: BTreeSet<PathBuf>,
    /// Known mount points found unmounted, until they are mounted again.
    gone: BTreeSet<PathBuf>,
    /// A mount point found unmounted is mounted again: the watch is to be made anew.
    back: bool,
}

impl SourceMounts {
    pub fn known(&self) -> BTreeSet<PathBuf> {
        self.known.clone()
    }

    pub fn know(&mut self, mounts: BTreeSet<PathBuf>) {
        self.known.extend(mounts);
    }

    /// A pass ends: the mount points are those it met, and those it found unmounted.
    pub fn pass_ended(&mut self) {
        let seen = std::mem::take(&mut self.seen);
        self.known = seen.into_iter().chain(self.gone.iter().cloned()).collect();
    }

    /// A directory moved from `from` to `to` (a rename mirrored): the mount points below it
    /// moved with it.
    pub fn renamed(&mut self, from: &std::path::Path, to: &std::path::Path) {
        for set in [&mut self.known, &mut self.seen, &mut self.gone] {
            crate::config::mounts::follow_rename(set, from, to);
        }
    }

    /// Whether a mount point came back since this was last asked.
    pub fn take_back(&mut self) -> bool {
        std::mem::take(&mut self.back)
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
            if mounts.gone.remove(&node.rel) {
                mounts.back = true;
            }
            mounts.known.insert(node.rel.clone());
            if self.full {
                mounts.seen.insert(node.rel.clone());
            }
            drop(mounts);
            if self.m.opts.allow_empty_source || !self.fresh_file_system(node) {
                return false;
            }
            "the file system mounted there holds no data (freshly formatted? the wrong disk?) \
             while REPLICA's copy does: the copy is kept; use --allow-empty-source to mirror it"
        } else {
            if !mounts.known.contains(&node.rel) {
                return false;
            }
            mounts.gone.insert(node.rel.clone());
            "the file system mounted there is gone (unmounted?); REPLICA's copy is kept until it \
             is back"
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
