//! The file systems mounted inside SOURCE, as both replicas keep track of them: unmounted, one
//! leaves a directory behind (empty, or holding what was there before the mount), which a pass
//! would mirror by emptying REPLICA's copy. So the directories where a file system was mounted
//! are remembered (across runs too, in the state record), and one that is no longer a mount
//! point is kept: nothing below it is changed in REPLICA, and it is an error for its subtree
//! until the file system is back. How each replica finds them and keeps their copies is its
//! own: [`crate::mirror::mounts`] as it walks, [`crate::remote`]'s `mounts` by filter rules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Why a mount point whose file system is gone is kept, for its error.
pub const GONE: &str =
    "the file system mounted there is gone (unmounted?); REPLICA's copy is kept until it is back";
/// Why a mount point whose file system holds no data is kept, for its error (see
/// [`crate::data`]).
pub const FRESH: &str = "the file system mounted there holds no data (freshly formatted? the \
                         wrong disk?) while REPLICA's copy does: the copy is kept; use \
                         --allow-empty-source to mirror it";

/// Where file systems are mounted inside SOURCE (relative paths).
#[derive(Debug, Default)]
pub struct MountPoints {
    /// Mount points known from earlier looks (and the record).
    pub known: BTreeSet<PathBuf>,
    /// Known ones found unmounted, until they are mounted again.
    pub gone: BTreeSet<PathBuf>,
    /// One kept is mirrored again: the watch is to be made anew.
    pub back: bool,
}

impl MountPoints {
    pub fn known(&self) -> BTreeSet<PathBuf> {
        self.known.clone()
    }

    pub fn know(&mut self, mounts: BTreeSet<PathBuf>) {
        self.known.extend(mounts);
    }

    /// A directory moved from `from` to `to` (a rename in SOURCE): the mount points below it
    /// moved with it.
    pub fn renamed(&mut self, from: &Path, to: &Path) {
        for set in [&mut self.known, &mut self.gone] {
            follow_rename(set, from, to);
        }
    }

    /// Whether a mount point came back since this was last asked.
    pub fn take_back(&mut self) -> bool {
        std::mem::take(&mut self.back)
    }
}

/// The paths in `set` at or below `from` moved to `to` (a directory renamed in SOURCE: the
/// mount points below it moved with it).
pub fn follow_rename(set: &mut BTreeSet<PathBuf>, from: &Path, to: &Path) {
    let moved: Vec<PathBuf> = set
        .iter()
        .filter(|p| p.starts_with(from))
        .cloned()
        .collect();
    for path in moved {
        set.remove(&path);
        if let Ok(rest) = path.strip_prefix(from) {
            set.insert(to.join(rest));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_follow_a_rename_of_a_directory_above_them() {
        let mut m = MountPoints::default();
        m.know(["a/m", "b/m", "ab/m"].map(PathBuf::from).into());
        m.gone.insert(PathBuf::from("a/m/n"));
        m.renamed(Path::new("a"), Path::new("c/a"));
        let known: Vec<PathBuf> = m.known().into_iter().collect();
        assert_eq!(known, ["ab/m", "b/m", "c/a/m"].map(PathBuf::from));
        assert!(m.gone.contains(Path::new("c/a/m/n")));
    }
}
