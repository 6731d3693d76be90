//! Proofs of large files run aside: while the watcher's batches go on, a thread of its own
//! compares a large arrival with its candidate, and the arrival waits (looked at again every
//! [`POLL`]) with the candidate held. The result counts only while neither file changed since
//! the comparison began (same inode, size, mtime and ctime on both sides), so a proof can never
//! vouch for bytes it did not read. A pass proves in line: nothing else runs during it anyway.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::dir::compare::{self, Compared};
use crate::dir::{Id, Meta, Stamp};
use crate::stop::Stop;

/// Files at least this large are proven aside in watch mode (about 20 ms of reading).
pub const ASIDE_MIN: u64 = 16 << 20;
pub use crate::timing::PROOF_POLL as POLL;
/// At most this many comparisons aside at once; past it, proofs run in line.
const MAX_ASIDE: usize = 2;

/// What a file was when its comparison began: any change moves one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    id: Id,
    size: u64,
    mtime: Stamp,
    ctime: Stamp,
}

impl Snapshot {
    pub fn of(m: &Meta) -> Snapshot {
        Snapshot {
            id: m.id,
            size: m.size,
            mtime: m.mtime,
            ctime: m.ctime,
        }
    }
}

/// One comparison: of SOURCE's file (as `source` was) with REPLICA's candidate (as `candidate`
/// was).
#[derive(Debug)]
struct Job {
    source: Snapshot,
    candidate: Snapshot,
    /// `None` while it runs; then the result and when it came.
    result: Arc<Mutex<Option<(Compared, Instant)>>>,
    cancel: Arc<AtomicBool>,
    /// When its arrival last asked: one that stops asking (deleted, renamed again) gives it up.
    asked: Instant,
}

/// The comparisons aside, by (arrival, candidate).
#[derive(Debug, Default)]
pub struct Aside {
    jobs: HashMap<(PathBuf, PathBuf), Job>,
}

/// What is known of an arrival and its candidate.
#[derive(Debug, PartialEq, Eq)]
pub enum Known {
    /// The bytes are the same, and neither file changed since they were compared.
    Same,
    /// Not the same, or not known: the candidate is passed over.
    Differ,
    /// The comparison runs: the arrival waits.
    Running,
    /// Nothing is known yet and no comparison may start aside: prove it in line.
    InLine,
}

impl Aside {
    /// What is known of `arrival` (SOURCE's `input`, as `src`) against `candidate` (REPLICA's
    /// `theirs`, as `their`); a comparison is started when nothing is.
    pub fn ask(
        &mut self,
        (arrival, input, src): (&Path, &File, &Meta),
        (candidate, theirs, their): (&Path, File, &Meta),
        stop: &Stop,
    ) -> Known {
        let key = (arrival.to_path_buf(), candidate.to_path_buf());
        let (source, candidate_now) = (Snapshot::of(src), Snapshot::of(their));
        if let Some(job) = self.jobs.get_mut(&key) {
            job.asked = Instant::now();
            if job.source == source && job.candidate == candidate_now {
                let result = *crate::lock(&job.result);
                return match result {
                    None => Known::Running,
                    Some((Compared::Same, _)) => {
                        self.jobs.remove(&key);
                        Known::Same
                    }
                    Some(_) => {
                        self.jobs.remove(&key);
                        Known::Differ
                    }
                };
            }
            // One of them changed since: what was compared says nothing now.
            job.cancel.store(true, Ordering::Relaxed);
            self.jobs.remove(&key);
        }
        for job in self.jobs.values() {
            if job.asked.elapsed() > POLL * 10 {
                job.cancel.store(true, Ordering::Relaxed);
            }
        }
        self.jobs.retain(|_, j| {
            !j.cancel.load(Ordering::Relaxed)
                && crate::lock(&j.result).is_none_or(|(_, at)| at.elapsed() < POLL * 10)
        });
        let running = (self.jobs.values())
            .filter(|j| crate::lock(&j.result).is_none())
            .count();
        if running >= MAX_ASIDE {
            return Known::InLine;
        }
        let Ok(input) = input.try_clone() else {
            return Known::InLine;
        };
        let job = Job {
            source,
            candidate: candidate_now,
            result: Arc::default(),
            cancel: Arc::default(),
            asked: Instant::now(),
        };
        let (result, cancel, stop) = (job.result.clone(), job.cancel.clone(), stop.clone());
        let before = *src;
        let spawned = std::thread::Builder::new()
            .name("foldersync-proof".into())
            .spawn(crate::label::carry(move || {
                let stopped = || stop.is_set() || cancel.load(Ordering::Relaxed);
                let same = compare::same_data_undisturbed(&input, &before, &theirs, &stopped);
                let same = same.unwrap_or(Compared::Differ);
                *crate::lock(&result) = Some((same, Instant::now()));
            }));
        if spawned.is_err() {
            return Known::InLine;
        }
        self.jobs.insert(key, job);
        Known::Running
    }

    /// Whether REPLICA's `candidate` is not to be removed yet: a comparison with it runs, or
    /// ended a moment ago and its arrival has yet to come back for the result.
    pub fn busy_with(&self, candidate: &Path) -> bool {
        self.jobs.iter().any(|((_, c), j)| {
            c == candidate
                && !j.cancel.load(Ordering::Relaxed)
                && crate::lock(&j.result).is_none_or(|(_, at)| at.elapsed() < POLL * 10)
        })
    }
}
