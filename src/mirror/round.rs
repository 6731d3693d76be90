//! A round: one pass or one batch of hints being carried out, with the state it keeps until
//! its end, and removals, the one kind of change that `--max-delete` holds back. Every change
//! to REPLICA ends in [`Round::note`], the one place that writes the log line, bumps the
//! counter and records a dry run's change.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::error;

use super::change::Change;
use super::dir_pair::DirPair;
use super::Mirror;
use crate::dir::{self, tree, Dir, Kind};
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
    deferred: Mutex<Deferred>,
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
    removals_refused: std::sync::atomic::AtomicBool,
}

/// What became of a change [`Round::act`] carried out.
pub enum Acted<T> {
    Done(T),
    /// A dry run: only said.
    Dry,
    /// It failed (logged), or there was nothing to do it in.
    Failed,
}

/// Removals held back under `--max-delete` until the run's count is known.
#[derive(Debug, Default)]
struct Deferred {
    /// Entries the removals would delete, a directory's contents included.
    entries: u64,
    /// What to remove, its kind, and whether SOURCE has another kind there to make after.
    removals: Vec<(PathBuf, Kind, bool)>,
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

    /// Logs a change, counts it, and in a dry run remembers it.
    pub fn note(&self, done: Change) {
        done.say(self.dry_run(), self.stats);
        // The bytes a copy wrote were counted as they moved (a dropped copy's too); a dry run
        // counts those it would write.
        if let Change::Copied { bytes, .. } = &done {
            if self.dry_run() {
                self.stats.add_bytes(*bytes);
            }
        }
        if let Some(view) = &self.m.dry_view {
            crate::lock(view).record(&done);
        }
        // The file systems known mounted inside SOURCE move with a directory renamed.
        if let Change::Renamed { from, to } = &done {
            crate::lock(&self.m.mounts).renamed(from, to);
        }
    }

    /// Carries out one change to REPLICA in its directory `dir`: the one place that honours a
    /// dry run (the change is only said), says the change done (from what `act` returned), or
    /// logs `op` failing on `rel`. Without a directory (and not a dry run) nothing is done.
    pub fn act<T>(
        &self,
        dir: Option<&Dir>,
        (op, rel): (&'static str, &Path),
        act: impl FnOnce(&Dir) -> std::io::Result<T>,
        change: impl FnOnce(Option<&T>) -> Change,
    ) -> Acted<T> {
        if self.dry_run() {
            self.note(change(None));
            return Acted::Dry;
        }
        let Some(dir) = dir else {
            return Acted::Failed;
        };
        match act(dir) {
            Ok(done) => {
                self.note(change(Some(&done)));
                Acted::Done(done)
            }
            Err(e) => {
                self.fail(self.dst_err(op, rel, e));
                Acted::Failed
            }
        }
    }

    /// Logs a failure on one path, counts it, and keeps its path to be tried again; the run
    /// goes on. A failure on a path that is being tried again was said before: debug level.
    pub fn fail(&self, e: PathError) {
        let again = e
            .retried()
            .is_some_and(|(rel, _)| rel.ancestors().any(|a| self.retries.contains(a)));
        if again {
            log::debug!("{e} (again)");
        } else {
            error!("{e}");
        }
        self.stats.add(Count::Error);
        if let Some(retry) = e.retried() {
            crate::lock(&self.failed).push(retry.clone());
        }
    }

    /// Removes REPLICA's entry `name` (at `rel`), or keeps it in the backup directory; under
    /// `--max-delete` holds the removal back. Returns whether the entry is gone now, so that what
    /// replaces it may be made.
    pub fn remove(
        &self,
        dir: Option<&Dir>,
        name: &OsStr,
        rel: &Path,
        kind: Kind,
        then: bool,
    ) -> bool {
        if self.m.opts.max_delete.is_some() {
            self.defer(dir, name, rel, kind, then);
            return false;
        }
        self.remove_now(dir, name, rel, kind)
    }

    fn remove_now(&self, dir: Option<&Dir>, name: &OsStr, rel: &Path, kind: Kind) -> bool {
        // A temporary file left by a run that was killed is no data: never kept.
        let leftover = kind == Kind::File && self.m.own().is_leftover(name);
        let backup = self.m.backup.as_ref().filter(|_| !leftover);
        let op = if backup.is_some() {
            "back up"
        } else {
            "remove"
        };
        let removed = self.act(
            dir,
            (op, rel),
            |dir| match backup {
                Some(backup) => backup.keep(dir, name, rel, kind).map(Some),
                None => tree::remove(dir, name, kind).map(|()| None),
            },
            |kept| Change::Removed {
                rel: rel.to_path_buf(),
                kind: Some(kind),
                kept: kept.cloned().flatten(),
                leftover,
            },
        );
        !matches!(removed, Acted::Failed)
    }

    fn defer(&self, dir: Option<&Dir>, name: &OsStr, rel: &Path, kind: Kind, then: bool) {
        let entries = match (kind, dir) {
            (Kind::Dir, Some(dir)) => tree::count(dir, name),
            _ => 1,
        };
        let limit = self.m.opts.max_delete.unwrap_or(u64::MAX);
        let mut deferred = crate::lock(&self.deferred);
        deferred.entries += entries;
        // Past the limit nothing will be removed: only the count is kept.
        if deferred.entries <= limit {
            deferred.removals.push((rel.to_path_buf(), kind, then));
        }
    }

    /// The removals held back under `--max-delete`, carried out if the run's count allows
    /// them (or none). Returns what to look at again: what SOURCE has there now, and the
    /// parents.
    pub(super) fn removals_held_back(&self) -> Vec<(PathBuf, Look)> {
        let deferred = std::mem::take(&mut *crate::lock(&self.deferred));
        let Some(max) = self.m.opts.max_delete else {
            return Vec::new();
        };
        if deferred.entries > max {
            error!(
                "refusing to remove {} entries from REPLICA, more than --max-delete {max}: \
                 nothing was removed",
                deferred.entries
            );
            self.stats.add(Count::Error);
            (self.removals_refused).store(true, std::sync::atomic::Ordering::Relaxed);
            return Vec::new();
        }
        let mut again: Vec<(PathBuf, Look)> = Vec::new();
        for (rel, kind, then) in deferred.removals {
            if self.m.stop.is_set() {
                return Vec::new();
            }
            let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
            let (Some(name), Some(root)) = (rel.file_name(), self.m.root_dir()) else {
                continue;
            };
            let dir = match root.open_beneath(&parent) {
                Ok(dir) => Some(dir),
                Err(e) if dir::is_not_a_dir(&e) && self.dry_run() => None,
                Err(_) => continue,
            };
            // Still the entry that was counted?
            if let Some(d) = &dir {
                if !matches!(d.stat_at(name), Ok(Some(m)) if m.kind == kind) {
                    continue;
                }
            }
            if self.remove_now(dir.as_ref(), name, &rel, kind) && then {
                again.push((rel, Look::TREE));
            }
            // The parent's mtime changed with the removal: its attributes are set again.
            if let Some(d) = &dir {
                self.settle.note_dir(&parent, d);
            }
        }
        if self.dry_run() {
            return Vec::new();
        }
        again.sort_by(|a, b| a.0.cmp(&b.0));
        again
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
