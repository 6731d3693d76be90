//! The executor: every change to REPLICA is carried out here. [`Round::act`] honours a dry run
//! (the change is only said), logs the change or its failure with its path and counts it
//! ([`Round::note`], [`Round::fail`]); [`Round::put_in_place`] and [`Round::move_entry`] keep
//! what a change replaces in the backup directory; [`Round::remove`] holds removals back under
//! `--max-delete`. The walk, the copies, the renames and the link placing decide what a path
//! needs; they change REPLICA only through these.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use log::error;

use super::change::Change;
use super::round::Round;
use crate::dir::{self, tree, Dir, Kind};
use crate::error::PathError;
use crate::replica::Look;
use crate::stats::Count;

/// What became of a change [`Round::act`] carried out.
pub enum Acted<T> {
    Done(T),
    /// A dry run: only said.
    Dry,
    /// It failed (logged), or there was nothing to do it in.
    Failed,
}

impl Round<'_> {
    /// Counts a change, logs it (in path order: see [`super::order`]), and in a dry run
    /// remembers it.
    pub fn note(&self, done: Change) {
        done.tally(self.stats);
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
        self.order.say(done, self.dry_run());
    }

    /// Whether REPLICA is written at all: not in a dry run, where every change is only said.
    /// What follows up a change already said (its entry's attributes set again after a rename
    /// or a link, a directory's attributes at the round's end) asks here, and in a dry run there
    /// is nothing on disk to follow up.
    pub fn writes(&self) -> bool {
        !self.dry_run()
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
        match self.attempt(dir, act, change) {
            Ok(acted) => acted,
            Err(e) => {
                self.fail(self.dst_err(op, rel, e));
                Acted::Failed
            }
        }
    }

    /// [`Round::act`] for a change whose failure the caller sorts out itself (a copy's source
    /// may be busy, changing or gone): the failure is returned, not logged.
    pub fn attempt<T, E>(
        &self,
        dir: Option<&Dir>,
        act: impl FnOnce(&Dir) -> Result<T, E>,
        change: impl FnOnce(Option<&T>) -> Change,
    ) -> Result<Acted<T>, E> {
        if self.dry_run() {
            self.note(change(None));
            return Ok(Acted::Dry);
        }
        let Some(dir) = dir else {
            return Ok(Acted::Failed);
        };
        let done = act(dir)?;
        self.note(change(Some(&done)));
        Ok(Acted::Done(done))
    }

    /// Renames the entry `tmp` that a change prepared in `dir` over its final name `name` (at
    /// `rel`), keeping the version it replaces in the backup directory first (hard-linked there,
    /// so the name is never missing). Returns where the old version was kept; fails with the
    /// step that failed.
    pub fn put_in_place(
        &self,
        dir: &Dir,
        tmp: &OsStr,
        name: &OsStr,
        rel: &Path,
    ) -> Result<Option<PathBuf>, (&'static str, std::io::Error)> {
        let kept = self
            .keep_replaced(dir, name, rel)
            .map_err(|e| ("back up", e))?;
        dir.rename(tmp, dir, name).map_err(|e| ("rename into", e))?;
        Ok(kept)
    }

    /// Renames REPLICA's entry `from_name` in `from` to `to_name` in `to` (at `rel`). With
    /// `replace`, what is there is kept in the backup directory and replaced; without, the
    /// rename fails if anything is there.
    pub fn move_entry(
        &self,
        (from, from_name): (&Dir, &OsStr),
        (to, to_name): (&Dir, &OsStr),
        rel: &Path,
        replace: bool,
    ) -> std::io::Result<()> {
        if !replace {
            return from.rename_noreplace(from_name, to, to_name);
        }
        self.keep_replaced(to, to_name, rel)?;
        from.rename(from_name, to, to_name)
    }

    /// With a backup directory, keeps what REPLICA holds at `name` before a change replaces it:
    /// a file or symlink hard-linked there (it stays in place until replaced), a directory moved
    /// there.
    fn keep_replaced(
        &self,
        dir: &Dir,
        name: &OsStr,
        rel: &Path,
    ) -> std::io::Result<Option<PathBuf>> {
        let Some(backup) = &self.m.backup else {
            return Ok(None);
        };
        match dir.stat_at(name)? {
            None => Ok(None),
            Some(old) if old.kind == Kind::Dir => backup.keep(dir, name, rel, old.kind).map(Some),
            Some(_) => backup.keep_old(dir, name, rel).map(Some),
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
        let mut deferred = std::mem::take(&mut *crate::lock(&self.deferred));
        // Held back by walkers in any order: carried out in path order.
        deferred.removals.sort_by(|a, b| a.0.cmp(&b.0));
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
}
