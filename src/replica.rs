//! The seam between the run loop and a replica: a full pass, a batch of watcher hints, the
//! root's health. [`crate::mirror::Mirror`] keeps a local directory behind it; the interface is
//! batch-oriented so that an engine with a high cost per call (rsync over ssh) fits it too.

use std::path::PathBuf;

use crate::root::Root;
use crate::stats::Stats;

/// What a pass would remove (asked before a first pass into a directory never mirrored into).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Survey {
    /// Entries in REPLICA (a directory with everything in it).
    pub total: u64,
    /// Entries the pass would remove.
    pub removed: u64,
    /// Some of the paths it would remove, for the message.
    pub sample: Vec<PathBuf>,
}

/// How closely to look at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Look {
    /// For a directory: everything below it too (a new or moved-in directory).
    pub tree: bool,
    /// SOURCE's entry was moved away (the first half of a rename whose second half may come
    /// in a later batch): if SOURCE lacks it, REPLICA's entry is held a moment before it is
    /// removed, so that the other half can still take it.
    pub moved: bool,
    /// SOURCE's entry was deleted (the watcher saw it go): if SOURCE lacks it, REPLICA's entry
    /// is removed at once. An entry found missing with neither flag (a look at a path whose
    /// directory was just renamed, before the rename's own event came) waits the short while
    /// in which the event that explains it comes.
    pub removed: bool,
    /// The entry came in whole from elsewhere (a directory moved in from outside SOURCE, or a
    /// REPLICA directory taken for a new one by the names inside): the ctimes of the files below
    /// it say nothing about REPLICA's copies there, so files whose size and mtime match have
    /// their bytes compared.
    pub verify: bool,
}

impl Look {
    /// The entry itself (for a directory: that it exists, and its attributes).
    pub const ENTRY: Look = Look {
        tree: false,
        moved: false,
        removed: false,
        verify: false,
    };
    /// The entry and everything below it.
    pub const TREE: Look = Look {
        tree: true,
        ..Look::ENTRY
    };
    /// An entry moved away from its place in SOURCE.
    pub const MOVED: Look = Look {
        moved: true,
        ..Look::ENTRY
    };
    /// An entry deleted from SOURCE.
    pub const REMOVED: Look = Look {
        removed: true,
        ..Look::ENTRY
    };
    /// An entry moved into SOURCE from elsewhere: everything below it, compared.
    pub const MOVED_IN: Look = Look {
        tree: true,
        verify: true,
        ..Look::ENTRY
    };

    /// The closer of two looks.
    pub fn merge(self, other: Look) -> Look {
        Look {
            tree: self.tree || other.tree,
            moved: self.moved || other.moved,
            removed: self.removed || other.removed,
            verify: self.verify || other.verify,
        }
    }
}

/// A batch of watcher work: renames seen in SOURCE (in order), then paths to reconcile.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub renames: Vec<(PathBuf, PathBuf)>,
    pub paths: Vec<(PathBuf, Look)>,
    /// Paths among `paths` tried again because they failed before: a failure that repeats is
    /// logged at debug level, since it was said already.
    pub retries: std::collections::HashSet<PathBuf>,
}

impl Batch {}

/// What a pass or a batch leaves for later.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Files that changed while they were copied: look at them again shortly.
    pub retry: Vec<PathBuf>,
    /// Paths to look at again at a given time: files a writer has open (copied anyway if still
    /// open then), transfers that failed in part.
    pub later: Vec<(PathBuf, std::time::Instant)>,
    /// Directories were met whose paths are too long for inotify to watch: changes there wait
    /// for the passes.
    pub unwatchable: bool,
    /// The batch could not bring everything over by itself (a file with other names, which a
    /// remote replica's rsync sees only in a full pass): a full pass should follow.
    pub pass: bool,
    /// Paths that failed (each was logged with its error): the run loop tries them again, with
    /// a growing wait, until they succeed. A path tried again and not listed here succeeded.
    /// The root with [`Look::TREE`] stands for the whole replica (a pass that failed).
    pub failed: Vec<(PathBuf, Look)>,
    /// A file system found unmounted inside SOURCE is mounted again: the watch is to be made
    /// anew (it lost the watches below it), with a full pass.
    pub rewatch: bool,
    /// A pass that did not make REPLICA a copy of SOURCE: its removals were refused
    /// (`--max-delete`), or it did not go through to its end. It does not count as having
    /// mirrored into REPLICA (see [`crate::state`]): the first-pass guard still applies.
    pub held_back: bool,
}

/// Why a replica's root cannot be written now: a kind to act on, and the one line that says it
/// (its `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootError {
    /// Gone, and not made again (its parent is not the directory it was, a dry run, ...).
    Gone(String),
    /// Another directory that is not empty took its place.
    Replaced(String),
    /// There, but not usable: unmounted, not a directory, not readable.
    Unusable(String),
    /// A remote replica that cannot be reached now (it is tried again, with a growing wait).
    Unreachable(String),
}

impl std::fmt::Display for RootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (RootError::Gone(why)
        | RootError::Replaced(why)
        | RootError::Unusable(why)
        | RootError::Unreachable(why)) = self;
        f.write_str(why)
    }
}

/// What a replica's root check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootState {
    /// The same directory as before.
    Same,
    /// A new directory (made again, or an empty one put in its place): a full pass is needed.
    Renewed,
}

/// A replica: where the mirror writes.
pub trait Replica {
    /// How the replica is named in messages.
    fn describe(&self) -> String;

    /// Checks that the replica's root is still the directory the mirror started with. An error
    /// says what is wrong; nothing is written until the check passes again.
    /// `Renewed` says the root is a new directory now (made again), which needs a full pass.
    fn check(&mut self) -> Result<RootState, RootError>;

    /// When an unusable replica would like [`Replica::check`] to try again (a remote one
    /// reconnects with a growing wait); `None` when checks before passes and batches suffice.
    fn next_check(&self) -> Option<std::time::Instant> {
        None
    }

    /// Whether the replica holds anything besides foldersync's own files.
    fn has_content(&self) -> bool;

    /// The root's identity (`device:inode`, or the remote side's), for the record of what was
    /// mirrored (see [`crate::state`]).
    fn identity(&self) -> Option<String> {
        None
    }

    /// Whether the root is a mount point (a disk mounted there), for the record: one that was
    /// and is not at the next start is an unmounted disk, whose mount point is not filled.
    fn mount_root(&self) -> bool {
        false
    }

    /// What a first pass would remove, asked before one into a directory foldersync has not
    /// mirrored into before; `None` where that cannot be told beforehand.
    fn survey(&self, _source: &Root) -> Option<Result<Survey, String>> {
        None
    }

    /// Where file systems were mounted inside SOURCE at the last pass (recorded between runs,
    /// so one that went away is noticed), and to be told them at start-up.
    fn source_mounts(&self) -> std::collections::BTreeSet<PathBuf> {
        Default::default()
    }
    fn know_source_mounts(&mut self, _mounts: std::collections::BTreeSet<PathBuf>) {}

    /// What the replica keeps between runs of what it compared by content (a remote one: see
    /// [`crate::state::Proof`]); nothing for a local one.
    fn proof(&self) -> crate::state::Proof {
        Default::default()
    }

    /// Where the record of this mirror is kept, and the record if it speaks for this very
    /// REPLICA: a remote replica takes its proof from it, and writes the proof back there as
    /// soon as it changes between passes.
    fn keep_record(
        &mut self,
        _state: Option<&crate::state::State>,
        _recorded: Option<&crate::state::Record>,
    ) {
    }

    /// Makes the whole replica match `source`.
    fn pass(&mut self, source: &Root, stats: &Stats) -> Outcome;

    /// Applies a batch of watcher hints.
    fn apply(&mut self, source: &Root, batch: Batch, stats: &Stats) -> Outcome;

    /// Does what has come due between batches (removing what the watcher held back), and says
    /// when something is due next.
    fn tick(&mut self, _source: &Root, _stats: &Stats) -> Option<std::time::Instant> {
        None
    }

    /// What the work done by [`Replica::tick`] left for the run loop (paths that failed there,
    /// paths to look at again), handed over once.
    fn leftover(&mut self) -> Outcome {
        Outcome::default()
    }
}
