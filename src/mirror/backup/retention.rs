//! How long versions stay in the backup directory: at most so many versions of each path (the
//! oldest go when a new one is kept; `--backup-versions`, 10 by default, 0 for all), and none
//! older than an age (`--backup-max-age`, checked after each pass; off by default). A version
//! is a name this module can read back as `<name>.<UTC stamp>[-n]` for the very name it was
//! kept for; nothing else in the backup directory is touched.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use super::backup_name;
use crate::dir::{tree, Dir, Kind};

/// What is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// At most this many versions of one path (`None`: all).
    pub versions: Option<usize>,
    /// No version older than this.
    pub max_age: Option<Duration>,
}

/// The stamp and number of a version's name, if it is one: `...<stamp>` or `...<stamp>-n`.
fn version_of(entry: &OsStr) -> Option<(String, u32)> {
    let bytes = entry.as_bytes();
    let dot = bytes.iter().rposition(|b| *b == b'.')?;
    let tail = std::str::from_utf8(&bytes[dot + 1..]).ok()?;
    let (stamp, n) = match tail.split_once('-') {
        Some((stamp, n)) => (stamp, n.parse().ok()?),
        None => (tail, 0),
    };
    let shape = stamp.len() == 16
        && stamp.as_bytes()[8] == b'T'
        && stamp.ends_with('Z')
        && stamp[..8]
            .bytes()
            .chain(stamp[9..15].bytes())
            .all(|b| b.is_ascii_digit());
    shape.then(|| (stamp.to_string(), n))
}

/// The name a directory on the way to a version gets in the backup directory: its own, with
/// `.dir` added where it has a version's shape, or has one under `.dir` suffixes (so no
/// directory there has a version's shape, and two names never meet).
pub(super) fn path_dir_name(name: &OsStr) -> OsString {
    let mut bare = name.as_bytes();
    while let Some(rest) = bare.strip_suffix(b".dir") {
        bare = rest;
    }
    let mut out = name.to_os_string();
    if version_of(OsStr::from_bytes(bare)).is_some() {
        out.push(".dir");
    }
    out
}

/// Keeps the newest [`Retention::versions`] versions of `name` in `dir`, removing the others.
pub(super) fn prune_versions(dir: &Dir, name: &OsStr, retention: &Retention) {
    let Some(most) = retention.versions else {
        return;
    };
    let Ok(entries) = dir.list() else { return };
    let mut versions: Vec<((String, u32), OsString, Kind)> = entries
        .into_iter()
        .filter_map(|(entry, kind)| {
            let (stamp, n) = version_of(&entry)?;
            (backup_name(name, &stamp, n) == entry).then_some(((stamp, n), entry, kind))
        })
        .collect();
    if versions.len() <= most {
        return;
    }
    versions.sort_by(|a, b| a.0.cmp(&b.0));
    let extra = versions.len() - most;
    for (_, entry, kind) in versions.into_iter().take(extra) {
        if let Err(e) = tree::remove(dir, &entry, kind) {
            log::warn!(
                "cannot prune the old version {} in the backup directory: {e}",
                crate::escape::esc(std::path::Path::new(&entry))
            );
        }
    }
}

/// Removes every version older than [`Retention::max_age`] below `root`; returns how many.
pub(super) fn prune_old(root: &Dir, retention: &Retention, stop: &dyn Fn() -> bool) -> u64 {
    let Some(age) = retention.max_age else {
        return 0;
    };
    let Some(cutoff) = std::time::SystemTime::now().checked_sub(age) else {
        return 0;
    };
    let cutoff = super::stamp_of(cutoff);
    let mut removed = 0;
    let mut todo = vec![root.dup()];
    while let Some(Ok(dir)) = todo.pop() {
        if stop() {
            break;
        }
        let Ok(entries) = dir.list() else { continue };
        for (entry, kind) in entries {
            match version_of(&entry) {
                Some((stamp, _)) if stamp < cutoff && tree::remove(&dir, &entry, kind).is_ok() => {
                    removed += 1;
                }
                Some(_) => {}
                None if kind == Kind::Dir => todo.push(dir.open_dir(&entry)),
                None => {}
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_on_the_way_never_have_a_versions_shape() {
        let name = |n: &str| path_dir_name(OsStr::new(n)).into_string().unwrap();
        assert_eq!(name("db"), "db");
        assert_eq!(name("db.dir"), "db.dir");
        assert_eq!(name("db.20200101T000000Z"), "db.20200101T000000Z.dir");
        assert_eq!(
            name("db.20200101T000000Z.dir"),
            "db.20200101T000000Z.dir.dir"
        );
        assert_eq!(name("db.20200101T000000Z-2"), "db.20200101T000000Z-2.dir");
        for n in ["db.20200101T000000Z", "db.20200101T000000Z.dir", "x"] {
            assert!(version_of(&path_dir_name(OsStr::new(n))).is_none(), "{n}");
        }
    }

    #[test]
    fn versions_are_read_back_and_pruned() {
        assert_eq!(
            version_of(OsStr::new("a.txt.20261125T031500Z")),
            Some(("20261125T031500Z".into(), 0))
        );
        assert_eq!(
            version_of(OsStr::new("a.20261125T031500Z-3")),
            Some(("20261125T031500Z".into(), 3))
        );
        assert_eq!(version_of(OsStr::new("a.txt")), None);
        assert_eq!(version_of(OsStr::new("a.2026112xT031500Z")), None);
        let tmp = tempfile::tempdir().unwrap();
        for v in [
            "f.20260101T000000Z",
            "f.20260101T000000Z-1",
            "f.20260102T000000Z",
            "g.20250101T000000Z",
            "f.txt",
        ] {
            std::fs::write(tmp.path().join(v), b"").unwrap();
        }
        let dir = Dir::open(&std::fs::canonicalize(tmp.path()).unwrap()).unwrap();
        let keep_two = Retention {
            versions: Some(2),
            max_age: None,
        };
        prune_versions(&dir, OsStr::new("f"), &keep_two);
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "f.20260101T000000Z-1",
                "f.20260102T000000Z",
                "f.txt",
                "g.20250101T000000Z"
            ]
        );
        let a_year = Retention {
            versions: None,
            max_age: Some(Duration::from_secs(365 * 86400)),
        };
        // Everything dated 2025 and 2026 is older than a year once the clock reads 2028.
        assert!(prune_old(&dir, &a_year, &|| false) <= 3);
    }
}
