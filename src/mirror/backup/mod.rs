//! `--backup-dir`: what the mirror removes or overwrites is kept, as `DIR/<path>.<UTC stamp>`,
//! instead of being destroyed. A directory on the way whose name has a version's shape
//! (`db.20200101T000000Z`) gets `.dir` added, so a version is never taken for one, nor one for
//! a version. Moves are renames within a file system and copies across; an
//! overwritten file's old version is hard-linked before the new one is renamed over it, so the
//! replacement stays atomic. Names stay within the file system's 255-byte limit. Directories
//! made there are private (0700): a version of a file from a private directory must not
//! become readable through them. [`retention`] prunes old versions.

mod retention;

pub use retention::Retention;

use std::collections::hash_map::DefaultHasher;
use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::dir::{tree, Dir, Id, Kind};
use crate::own::TempNames;
use crate::root::Root;

/// The longest name most file systems take.
const NAME_MAX: usize = 255;

/// The backup directory, held open.
#[derive(Debug)]
pub struct Backup {
    root: Root,
    temps: TempNames,
    /// Copies (across file systems) keep their owner: foldersync runs as root.
    owner: bool,
    /// How many versions of a path, and for how long, are kept.
    retention: Retention,
}

impl Backup {
    pub fn new(root: Root, retention: Retention) -> Backup {
        Backup {
            root,
            temps: TempNames::new(),
            owner: rustix::process::geteuid().is_root(),
            retention,
        }
    }

    /// Removes the versions older than the retention allows (see [`Retention::max_age`]),
    /// anywhere in the backup directory; returns how many went.
    pub fn prune_old(&self, stop: &dyn Fn() -> bool) -> u64 {
        retention::prune_old(&self.root.dir, &self.retention, stop)
    }

    pub fn id(&self) -> Id {
        self.root.id
    }

    /// Moves REPLICA's entry `name` (at `rel`) of kind `kind` into the backup directory, and
    /// returns where it went.
    pub fn keep(&self, dir: &Dir, name: &OsStr, rel: &Path, kind: Kind) -> io::Result<PathBuf> {
        self.place(rel, |sub, target| {
            match dir.rename_noreplace(name, sub, target) {
                Err(e) if e.raw_os_error() == Some(Errno::XDEV.raw_os_error()) => {
                    tree::copy_tree(dir, name, sub, target, &self.temps, self.owner)?;
                    tree::remove(dir, name, kind)
                }
                other => other,
            }
        })
    }

    /// Keeps the current version of REPLICA's file or symlink `name` without moving it: a hard
    /// link, or a copy where a link cannot reach.
    pub fn keep_old(&self, dir: &Dir, name: &OsStr, rel: &Path) -> io::Result<PathBuf> {
        self.place(rel, |sub, target| match dir.hard_link(name, sub, target) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                tree::copy_tree(dir, name, sub, target, &self.temps, self.owner)
            }
            other => other,
        })
    }

    /// Finds a free name for `rel` in the backup directory (making its parent directories) and
    /// puts the entry there with `put`, which fails with `AlreadyExists` if the name was taken
    /// meanwhile.
    fn place(
        &self,
        rel: &Path,
        put: impl Fn(&Dir, &OsStr) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        let parent: PathBuf = rel
            .parent()
            .unwrap_or(Path::new(""))
            .iter()
            .map(retention::path_dir_name)
            .collect();
        let name = rel.file_name().unwrap_or(OsStr::new("root"));
        let sub = tree::make_dirs(&self.root.dir, &parent, 0o700)?;
        let stamp = stamp();
        for n in 0..1000 {
            let target = backup_name(name, &stamp, n);
            if sub.stat_at(&target)?.is_some() {
                continue;
            }
            match put(&sub, &target) {
                Ok(()) => {
                    retention::prune_versions(&sub, name, &self.retention);
                    return Ok(self.root.path.join(&parent).join(&target));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("no free name in the backup directory"))
    }
}

/// The time now, as backups are stamped: `20261125T031500Z`.
pub fn stamp() -> String {
    stamp_of(std::time::SystemTime::now())
}

/// A time as backups are stamped.
fn stamp_of(t: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default()
}

/// `name.<stamp>`, or `name.<stamp>-n` for the n-th taken; a name too long for that is cut and
/// given a hash of the whole, so different long names stay different.
fn backup_name(name: &OsStr, stamp: &str, n: u32) -> OsString {
    let suffix = if n == 0 {
        format!(".{stamp}")
    } else {
        format!(".{stamp}-{n}")
    };
    let bytes = name.as_bytes();
    let mut out = if bytes.len() + suffix.len() <= NAME_MAX {
        bytes.to_vec()
    } else {
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        let hash = format!("~{:08x}", hasher.finish() as u32);
        let mut keep = NAME_MAX - suffix.len() - hash.len();
        // Cut at a character boundary where the name is UTF-8.
        while keep > 0 && std::str::from_utf8(&bytes[..keep]).is_err() && bytes[keep] & 0xc0 == 0x80
        {
            keep -= 1;
        }
        let mut cut = bytes[..keep].to_vec();
        cut.extend_from_slice(hash.as_bytes());
        cut
    };
    out.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_within_the_limit_and_distinct() {
        let stamp = "20261125T000000Z";
        assert_eq!(
            backup_name(OsStr::new("a.txt"), stamp, 0),
            OsStr::new("a.txt.20261125T000000Z")
        );
        assert_eq!(
            backup_name(OsStr::new("a"), stamp, 2),
            OsStr::new("a.20261125T000000Z-2")
        );
        let long_a = "é".repeat(127) + "a";
        let long_b = "é".repeat(127) + "b";
        let (a, b) = (
            backup_name(OsStr::new(&long_a), stamp, 0),
            backup_name(OsStr::new(&long_b), stamp, 0),
        );
        assert!(a.len() <= NAME_MAX && b.len() <= NAME_MAX);
        assert_ne!(a, b);
        assert!(a.to_str().is_some(), "cut at a character boundary");
    }
}
