//! Counters of what a pass (or a batch of watcher work) did, shared by the walker and the copy
//! workers, and the summary line built from them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::HumanBytes;

/// Live counters, updated from several threads.
#[derive(Debug, Default)]
pub struct Stats {
    checked: AtomicU64,
    copied: AtomicU64,
    updated: AtomicU64,
    created: AtomicU64,
    removed: AtomicU64,
    renamed: AtomicU64,
    linked: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    /// Bytes moved so far, finished copies or not (a local copy's, as they are written).
    moving: AtomicU64,
}

/// What [`Stats`] counts.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    /// An entry looked at, on either side.
    Checked,
    /// A file copied that the replica did not have.
    Copied,
    /// A file rewritten, a symlink re-pointed or attributes corrected.
    Updated,
    /// A directory or symlink created.
    Created,
    /// An entry removed from the replica (a directory counts once).
    Removed,
    /// An entry renamed in the replica to follow a rename in the source.
    Renamed,
    /// A name made a hard link to another name's copy.
    Linked,
    /// A path that failed; it was logged.
    Error,
}

impl Stats {
    pub fn new() -> Self {
        Stats::default()
    }

    pub fn add(&self, what: Count) {
        self.add_n(what, 1);
    }

    /// Counts `n` at once (a remote pass's statistics).
    pub fn add_n(&self, what: Count, n: u64) {
        let counter = match what {
            Count::Checked => &self.checked,
            Count::Copied => &self.copied,
            Count::Updated => &self.updated,
            Count::Created => &self.created,
            Count::Removed => &self.removed,
            Count::Renamed => &self.renamed,
            Count::Linked => &self.linked,
            Count::Error => &self.errors,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts bytes as a copy moves them, for the progress line.
    pub fn add_moving(&self, n: u64) {
        self.moving.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes moved so far by copies under way (the watchdog's sign of a pass at work).
    pub fn moving(&self) -> u64 {
        self.moving.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            checked: get(&self.checked),
            copied: get(&self.copied),
            updated: get(&self.updated),
            created: get(&self.created),
            removed: get(&self.removed),
            renamed: get(&self.renamed),
            linked: get(&self.linked),
            bytes: get(&self.bytes) + get(&self.moving),
            errors: get(&self.errors),
        }
    }
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub checked: u64,
    pub copied: u64,
    pub updated: u64,
    pub created: u64,
    pub removed: u64,
    pub renamed: u64,
    #[serde(default)]
    pub linked: u64,
    /// Bytes of file data written into REPLICA, as they are written: those of a copy dropped
    /// because its source changed count too; holes and renames write none. In a dry run, the
    /// bytes that would be written.
    pub bytes: u64,
    pub errors: u64,
}

impl Counts {
    /// Whether anything in the replica was changed.
    pub fn changed(&self) -> bool {
        self.copied + self.updated + self.created + self.removed + self.renamed + self.linked > 0
    }

    /// The summary printed at the end of a pass.
    pub fn summary(&self, elapsed: Duration) -> String {
        format!(
            "{} checked, {} copied, {} updated, {} created, {} removed, {} renamed, {} linked, {} written, {} errors, {:.2} s",
            self.checked,
            self.copied,
            self.updated,
            self.created,
            self.removed,
            self.renamed,
            self.linked,
            HumanBytes(self.bytes),
            self.errors,
            elapsed.as_secs_f64()
        )
    }
}
