//! Carrying out what [`super::plan`] decided. Every change to REPLICA goes through here, so this
//! is the one place that honours a dry run, keeps backups, holds removals back under
//! `--max-delete`, writes the log line and bumps the counter.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::{error, info};

use super::done::Done;
use super::node::Node;
use super::Mirror;
use crate::dir::{self, tree, Dir, Kind};
use crate::error::PathError;
use crate::replica::{Look, Outcome};
use crate::root::Root;
use crate::stats::{Count, Stats};

/// One pass or batch at work: the mirror, SOURCE's root, the counters, and what is held back.
pub struct Run<'a> {
    pub m: &'a Mirror,
    pub source: &'a Root,
    pub stats: &'a Stats,
    /// A full pass (every name is met), not a batch of watcher hints.
    pub full: bool,
    /// A pass's first part: orphans and large newcomers are kept for its end.
    pub(super) deferring: std::sync::atomic::AtomicBool,
    pub(super) orphans: Mutex<Vec<super::orphans::Orphan>>,
    pub(super) newcomers: Mutex<Vec<super::orphans::Newcomer>>,
    /// A pass's orphans, indexed, from its end on.
    pub(super) index: Mutex<Option<super::orphans::Index>>,
    /// Files the kernel reported renamed in this batch: the new names may take the old ones.
    pub(super) expected: Mutex<super::orphans::Expected>,
    /// Old names of reported renames, kept to the batch's end for their new names.
    pub(super) left: Mutex<Vec<super::orphans::Orphan>>,
    /// Directories whose entries changed after their walk was done (renames and removals at
    /// the end of a run, links): their attributes are set again.
    pub(super) touched: Mutex<Vec<PathBuf>>,
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
}

/// Removals held back under `--max-delete` until the run's count is known.
#[derive(Debug, Default)]
struct Deferred {
    /// Entries the removals would delete, a directory's contents included.
    entries: u64,
    /// What to remove, its kind, and whether SOURCE has another kind there to make after.
    removals: Vec<(PathBuf, Kind, bool)>,
}

impl<'a> Run<'a> {
    pub fn new(m: &'a Mirror, source: &'a Root, stats: &'a Stats, full: bool) -> Run<'a> {
        Run {
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
            touched: Mutex::new(Vec::new()),
            deferred: Mutex::new(Deferred::default()),
            retries_later: Mutex::new(Vec::new()),
            failed: Mutex::new(Vec::new()),
            retries: std::collections::HashSet::new(),
            busy_retries: Mutex::new(Vec::new()),
            links: Default::default(),
            links_searched: false,
            unwatchable: Default::default(),
            xattrs_refused: Default::default(),
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

    /// Why a directory must be left alone, if it must: it would lead outside the roots.
    pub fn foreign(&self, node: &Node) -> Option<&'static str> {
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
    pub fn note(&self, done: Done) {
        if self.dry_run() {
            info!("[dry run] {done}");
        } else {
            info!("{done}");
        }
        let count = match &done {
            Done::Copied { update: false, .. } => Count::Copied,
            Done::Copied { update: true, .. } | Done::Attrs { .. } | Done::SymlinkAttrs { .. } => {
                Count::Updated
            }
            Done::MadeDir { .. } => Count::Created,
            Done::Symlink { update, .. } => {
                if *update {
                    Count::Updated
                } else {
                    Count::Created
                }
            }
            Done::Removed { .. } => Count::Removed,
            Done::Renamed { .. } => Count::Renamed,
            Done::Linked { .. } => Count::Linked,
        };
        self.stats.add(count);
        // The bytes a copy wrote were counted as they moved (a dropped copy's too); a dry run
        // counts those it would write.
        if let Done::Copied { bytes, .. } = &done {
            if self.dry_run() {
                self.stats.add_bytes(*bytes);
            }
        }
        if let Some(overlay) = &self.m.overlay {
            crate::lock(overlay).record(&done);
        }
        // The file systems known mounted inside SOURCE move with a directory renamed.
        if let Done::Renamed { from, to } = &done {
            crate::lock(&self.m.mounts).renamed(from, to);
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
        if self.dry_run() {
            self.note(Done::Removed {
                rel,
                kind,
                kept: None,
                leftover,
            });
            return true;
        }
        let Some(dir) = dir else {
            return false;
        };
        let kept = match &self.m.backup {
            Some(backup) if !leftover => backup.keep(dir, name, rel, kind).map(Some),
            _ => tree::remove(dir, name, kind).map(|()| None),
        };
        match kept {
            Ok(kept) => {
                self.note(Done::Removed {
                    rel,
                    kind,
                    kept,
                    leftover,
                });
                true
            }
            Err(e) => {
                let op = if self.m.backup.is_some() {
                    "back up"
                } else {
                    "remove"
                };
                self.fail(self.dst_err(op, rel, e));
                false
            }
        }
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

    /// Ends the run: carries out the removals held back under `--max-delete` (or none of them),
    /// and returns what is left for later.
    pub fn finish(self) -> Outcome {
        self.reconcile();
        self.remove_left();
        if self.m.opts.hard_links {
            self.place_unplaced();
            let touched = self.finish_links();
            crate::lock(&self.touched).extend(touched);
        }
        let mut touched = std::mem::take(&mut *crate::lock(&self.touched));
        if !touched.is_empty() && !self.dry_run() && !self.m.stop.is_set() {
            // These directories changed after they were done: their attributes are set again.
            touched.sort();
            touched.dedup();
            let paths: Vec<(PathBuf, Look)> =
                touched.into_iter().map(|p| (p, Look::ENTRY)).collect();
            let run = Run::new(self.m, self.source, self.stats, false);
            super::walk::sync_paths(&run, &paths);
            let rest = run.finish();
            crate::lock(&self.retries_later).extend(rest.retry);
            crate::lock(&self.failed).extend(rest.failed);
        }
        let deferred = std::mem::take(&mut *crate::lock(&self.deferred));
        let refused = match self.m.opts.max_delete {
            Some(max) => !self.apply_deferred(deferred, max),
            None => false,
        };
        Outcome {
            retry: std::mem::take(&mut *crate::lock(&self.retries_later)),
            later: std::mem::take(&mut *crate::lock(&self.busy_retries)),
            unwatchable: self.unwatchable.load(std::sync::atomic::Ordering::Relaxed),
            pass: false,
            failed: std::mem::take(&mut *crate::lock(&self.failed)),
            rewatch: crate::lock(&self.m.mounts).take_back(),
            held_back: refused,
        }
    }

    /// Returns whether the removals went ahead (not refused).
    fn apply_deferred(&self, deferred: Deferred, max: u64) -> bool {
        if deferred.entries > max {
            error!(
                "refusing to remove {} entries from REPLICA, more than --max-delete {max}: \
                 nothing was removed",
                deferred.entries
            );
            self.stats.add(Count::Error);
            return false;
        }
        if deferred.removals.is_empty() {
            return true;
        }
        let mut again: Vec<(PathBuf, Look)> = Vec::new();
        for (rel, kind, then) in deferred.removals {
            if self.m.stop.is_set() {
                return true;
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
            // The parent's mtime changed with the removal; it is set again.
            if !again.iter().any(|(r, _)| *r == parent) {
                again.push((parent, Look::ENTRY));
            }
        }
        if !again.is_empty() && !self.dry_run() {
            again.sort_by(|a, b| a.0.cmp(&b.0));
            let run = Run::new(self.m, self.source, self.stats, false);
            super::walk::sync_paths(&run, &again);
            let rest = run.finish();
            crate::lock(&self.retries_later).extend(rest.retry);
            crate::lock(&self.failed).extend(rest.failed);
        }
        true
    }
}
