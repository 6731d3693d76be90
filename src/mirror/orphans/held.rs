//! The entries the watcher holds a moment before removing them (see [`crate::timing::Timing::hold_moved`]), indexed
//! so that an arrival finds its earlier self without looking at every held entry: files by size,
//! directories by the names inside them (read once, when held). N held entries and N arrivals
//! cost N listings and N lookups, not N².

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Orphan;
use crate::dir::{Kind, Stamp};

/// One held entry.
#[derive(Debug, Clone)]
struct Entry {
    orphan: Orphan,
    until: Instant,
    /// A directory's sorted names inside, as they were when it was held.
    names: Option<Vec<OsString>>,
}

/// The held entries.
#[derive(Debug, Default)]
pub struct Held {
    entries: HashMap<PathBuf, Entry>,
    by_size: HashMap<u64, BTreeSet<PathBuf>>,
    by_names: HashMap<Vec<OsString>, BTreeSet<PathBuf>>,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        *self = Held::default();
    }

    /// Holds `orphan` until `until` (again, if it was held already); `names` are a directory's.
    /// Returns whether it was new.
    pub fn hold(&mut self, orphan: Orphan, until: Instant, names: Option<Vec<OsString>>) -> bool {
        let rel = orphan.rel.clone();
        let new = self.take(&rel).is_none();
        match orphan.kind {
            Kind::File => {
                self.by_size
                    .entry(orphan.size)
                    .or_default()
                    .insert(rel.clone());
            }
            Kind::Dir => {
                if let Some(names) = &names {
                    self.by_names
                        .entry(names.clone())
                        .or_default()
                        .insert(rel.clone());
                }
            }
            _ => {}
        }
        self.entries.insert(
            rel,
            Entry {
                orphan,
                until,
                names,
            },
        );
        new
    }

    /// No longer holds `rel`; returns what it held there.
    pub fn take(&mut self, rel: &Path) -> Option<Orphan> {
        let entry = self.entries.remove(rel)?;
        let unindex = |set: Option<&mut BTreeSet<PathBuf>>| {
            if let Some(set) = set {
                set.remove(rel);
            }
        };
        match entry.orphan.kind {
            Kind::File => {
                unindex(self.by_size.get_mut(&entry.orphan.size));
                if self
                    .by_size
                    .get(&entry.orphan.size)
                    .is_some_and(BTreeSet::is_empty)
                {
                    self.by_size.remove(&entry.orphan.size);
                }
            }
            Kind::Dir => {
                if let Some(names) = &entry.names {
                    unindex(self.by_names.get_mut(names));
                    if self.by_names.get(names).is_some_and(BTreeSet::is_empty) {
                        self.by_names.remove(names);
                    }
                }
            }
            _ => {}
        }
        Some(entry.orphan)
    }

    /// The held files of `size` whose mtime is within `window` of `mtime`.
    pub fn files(&self, size: u64, mtime: Stamp, window: Duration) -> Vec<Orphan> {
        self.by_size
            .get(&size)
            .into_iter()
            .flatten()
            .filter_map(|rel| self.entries.get(rel))
            .map(|e| &e.orphan)
            .filter(|o| o.mtime.near(mtime, window))
            .cloned()
            .collect()
    }

    /// A held directory that held exactly `names`, taken.
    pub fn take_dir_with(&mut self, names: &[OsString]) -> Option<Orphan> {
        let rel = self.by_names.get(names)?.iter().next()?.clone();
        self.take(&rel)
    }

    /// The held entries whose time is up, no longer held.
    pub fn due(&mut self, now: Instant) -> Vec<Orphan> {
        let due: Vec<PathBuf> = self
            .entries
            .iter()
            .filter(|(_, e)| e.until <= now)
            .map(|(rel, _)| rel.clone())
            .collect();
        let mut out: Vec<Orphan> = due.iter().filter_map(|rel| self.take(rel)).collect();
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        out
    }

    /// When the next held entry is due.
    pub fn next(&self) -> Option<Instant> {
        self.entries.values().map(|e| e.until).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orphan(rel: &str, kind: Kind, size: u64) -> Orphan {
        Orphan {
            rel: rel.into(),
            kind,
            size,
            mtime: Stamp { sec: 5, nsec: 0 },
            inside: false,
        }
    }

    #[test]
    fn arrivals_find_their_earlier_selves_by_index() {
        let now = Instant::now();
        let mut held = Held::default();
        assert!(held.hold(orphan("a", Kind::File, 9), now, None));
        assert!(
            !held.hold(orphan("a", Kind::File, 9), now, None),
            "held again"
        );
        let names = vec![OsString::from("x"), OsString::from("y")];
        held.hold(
            orphan("d", Kind::Dir, 0),
            now + Duration::from_secs(1),
            Some(names.clone()),
        );
        assert_eq!(
            held.files(9, Stamp { sec: 5, nsec: 0 }, Duration::ZERO)
                .len(),
            1
        );
        assert!(held
            .files(9, Stamp { sec: 6, nsec: 0 }, Duration::ZERO)
            .is_empty());
        assert_eq!(held.take_dir_with(&names).map(|o| o.rel), Some("d".into()));
        assert!(held.take_dir_with(&names).is_none());
        assert_eq!(held.due(now).len(), 1);
        assert!(held.is_empty() && held.by_size.is_empty() && held.by_names.is_empty());
    }
}
