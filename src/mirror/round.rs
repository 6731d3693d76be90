//! A round: one pass or one batch of hints being carried out, and the state it keeps until its
//! end (orphans and newcomers, renames expected, directories to settle, removals held back
//! under `--max-delete`, paths to retry, hard-link roles). It changes nothing itself: every
//! change to REPLICA goes through the executor ([`super::act`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::dir_pair::DirPair;
use super::Mirror;
use crate::dir::{Dir, Kind};
use crate::error::PathError;
use crate::replica::{Look, Outcome};
use crate::root::Root;
use crate::stats::{Count, Stats};

/// One pass or batch at work: the mirror, SOURCE's root, the counters, and what is held back.
pub struct Round<'a> {
    pub m: &'a Mirror,
    pub source: &'a Root,
    pub stats: &'a Stats,
    /// A full pass (every name is met), not a batch of watcher hints.
    pub full: bool,
    /// A pass's first part: orphans and large newcomers are kept for its end.
    pub(super) deferring: std::sync::atomic::AtomicBool,
    pub(super) orphans: Mutex<Vec<super::orphans::found::Orphan>>,
    pub(super) newcomers: Mutex<Vec<super::orphans::found::Newcomer>>,
    /// A pass's orphans, indexed, from its end on.
    pub(super) index: Mutex<Option<super::orphans::found::Index>>,
    /// Files the kernel reported renamed in this batch: the new names may take the old ones.
    pub(super) expected: Mutex<super::orphans::found::Expected>,
    /// Old names of reported renames, kept to the batch's end for their new names.
    pub(super) left: Mutex<Vec<super::orphans::found::Orphan>>,
    /// The directories whose attributes are set at the run's end.
    pub(super) settle: super::dir_pair::Settle,
    pub(super) deferred: Mutex<Deferred>,
    pub(super) retries_later: Mutex<Vec<PathBuf>>,
    /// The paths of this run that failed, to be tried again.
    pub(super) failed: Mutex<Vec<(PathBuf, Look)>>,
    /// Paths this run tries again after they failed (their failures were said before).
    pub(super) retries: std::collections::HashSet<PathBuf>,
    /// Files a writer had open: looked at again after [`super::copy::OPEN_GRACE`].
    pub(super) busy_retries: Mutex<Vec<(PathBuf, std::time::Instant)>>,
    /// This run's hard-link leaders and the names that wait for them.
    pub(super) links: super::links::RunLinks,
    /// This run places names after a search for their other names: it searches no more.
    pub(super) links_searched: bool,
    /// A directory too deep to be watched was met.
    pub(super) unwatchable: std::sync::atomic::AtomicBool,
    /// REPLICA's file system refused extended attributes (said once per run).
    pub(super) xattrs_refused: std::sync::atomic::AtomicBool,
    /// `--max-delete` refused the run's removals: it did not make REPLICA a copy of SOURCE.
    pub(super) removals_refused: std::sync::atomic::AtomicBool,
    /// The change lines waiting for their turn while walkers and copy workers run.
    pub(super) order: super::order::Order,
}

/// Removals held back under `--max-delete` until the run's count is known.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    /// Entries the removals would delete, a directory's contents included.
    pub(super) entries: u64,
    /// What to remove, its kind, and whether SOURCE has another kind there to make after.
    pub(super) removals: Vec<(PathBuf, Kind, bool)>,
}

impl<'a> Round<'a> {
    pub fn new(m: &'a Mirror, source: &'a Root, stats: &'a Stats, full: bool) -> Round<'a> {
        Round {
            m,
            source,
            stats,
            full,
            deferring: std::sync::atomic::AtomicBool::new(full),
            orphans: Mutex::new(Vec::new()),
            newcomers: Mutex::new(Vec::new()),
            index: Mutex::new(None),
            expected: Mutex::default(),
            left: Mutex::new(Vec::new()),
            settle: Default::default(),
            deferred: Mutex::new(Deferred::default()),
            retries_later: Mutex::new(Vec::new()),
            failed: Mutex::new(Vec::new()),
            retries: std::collections::HashSet::new(),
            busy_retries: Mutex::new(Vec::new()),
            links: Default::default(),
            links_searched: false,
            unwatchable: Default::default(),
            xattrs_refused: Default::default(),
            removals_refused: Default::default(),
            order: Default::default(),
        }
    }

    pub fn dry_run(&self) -> bool {
        self.m.opts.dry_run
    }

    pub fn source_path(&self) -> &Path {
        &self.source.path
    }

    /// A failure on SOURCE's side, naming the full path.
    pub fn src_err(&self, op: &'static str, rel: impl AsRef<Path>, e: std::io::Error) -> PathError {
        let rel = rel.as_ref();
        PathError::new(op, self.source.path.join(rel), e).retry(rel)
    }

    /// A failure on REPLICA's side, naming the full path.
    pub fn dst_err(&self, op: &'static str, rel: impl AsRef<Path>, e: std::io::Error) -> PathError {
        let rel = rel.as_ref();
        PathError::new(op, self.m.path.join(rel), e).retry(rel)
    }

    /// Both sides of the directory `rel` opened as a pair; `None` if a failure was logged.
    pub fn pair(&self, rel: PathBuf, src: Option<Dir>, dst: Option<Dir>) -> Option<DirPair<'_>> {
        let failed = |replica: bool, rel: &Path, e| {
            self.fail(if replica {
                self.dst_err("stat", rel, e)
            } else {
                self.src_err("stat", rel, e)
            })
        };
        let at = rel.clone();
        match DirPair::new(&self.settle, rel, src, dst) {
            Ok(mut pair) => {
                if let (Some(d), Some(want)) = (&pair.src, pair.want.as_mut()) {
                    self.mark_acl(&crate::dir::xattr::At::Dir(d), want);
                }
                Some(pair)
            }
            Err((replica, e)) => {
                failed(replica, &at, e);
                None
            }
        }
    }

    /// The pair, unless it must be left alone: it would lead outside the roots (said, and
    /// counted as an error), or it is a mount point whose file system is gone or fresh (see
    /// [`super::mounts`]).
    pub fn usable<'p>(&self, mut node: DirPair<'p>) -> Option<DirPair<'p>> {
        if let Some(why) = self.foreign(&node) {
            log::warn!("{} is left alone: {why}", crate::escape::rel(&node.rel));
            self.stats.add(Count::Error);
            node.leave_alone();
            return None;
        }
        if self.unmounted(&node) {
            node.leave_alone();
            return None;
        }
        Some(node)
    }

    /// Why a directory must be left alone, if it must: it would lead outside the roots.
    pub fn foreign(&self, node: &DirPair) -> Option<&'static str> {
        let src = node.want.map(|m| m.id);
        let replica = self.m.root.as_ref().map(|r| r.id);
        let backup = self.m.backup.as_ref().map(|b| b.id());
        if src.is_some() && (src == replica || src == backup) {
            return Some("in SOURCE it is REPLICA or the backup directory itself (a bind mount?)");
        }
        if let Some(have) = &node.have {
            if have.id == self.source.id {
                return Some("in REPLICA it is SOURCE itself (a bind mount?)");
            }
            if have.mount_root && !node.rel.as_os_str().is_empty() {
                return Some("in REPLICA it is a mount point; foldersync never writes across one");
            }
        }
        None
    }

    /// Takes in what a run that followed this one left for later.
    pub(super) fn absorb(&self, rest: Outcome) {
        crate::lock(&self.retries_later).extend(rest.retry);
        crate::lock(&self.failed).extend(rest.failed);
        crate::lock(&self.busy_retries).extend(rest.later);
    }

    /// What the run leaves for later.
    pub(super) fn outcome(self) -> Outcome {
        Outcome {
            retry: std::mem::take(&mut *crate::lock(&self.retries_later)),
            later: std::mem::take(&mut *crate::lock(&self.busy_retries)),
            unwatchable: self.unwatchable.load(std::sync::atomic::Ordering::Relaxed),
            pass: false,
            failed: std::mem::take(&mut *crate::lock(&self.failed)),
            rewatch: crate::lock(&self.m.mounts).points.take_back(),
            held_back: (self.removals_refused).load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}
