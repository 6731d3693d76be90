//! Carrying out what [`super::plan`] decided. Every change to REPLICA goes through here, so this
//! is the one place that honours a dry run, keeps backups, holds removals back under
//! `--max-delete`, writes the log line and bumps the counter.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::{error, info};

use super::copy::TempGuard;
use super::done::Done;
use super::node::Node;
use super::Mirror;
use crate::dir::{self, tree, Dir, Kind, Meta};
use crate::error::{Logged, PathError};
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
    deferred: Mutex<Deferred>,
    pub(super) retries: Mutex<Vec<PathBuf>>,
    /// This run's hard-link leaders and the names that wait for them.
    pub(super) links: super::links::RunLinks,
    /// REPLICA's file system refused extended attributes (said once per run).
    xattrs_refused: std::sync::atomic::AtomicBool,
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
            deferred: Mutex::new(Deferred::default()),
            retries: Mutex::new(Vec::new()),
            links: Default::default(),
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
        PathError::new(op, self.source.path.join(rel), e)
    }

    /// A failure on REPLICA's side, naming the full path.
    pub fn dst_err(&self, op: &'static str, rel: impl AsRef<Path>, e: std::io::Error) -> PathError {
        PathError::new(op, self.m.path.join(rel), e)
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
            Done::Copied { update: true, .. } | Done::Attrs { .. } => Count::Updated,
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
        if let Done::Copied { bytes, .. } = &done {
            self.stats.add_bytes(*bytes);
        }
        if let Some(overlay) = &self.m.overlay {
            crate::lock(overlay).record(&done);
        }
    }

    /// Takes the result of writing extended attributes: a file system that does not keep them
    /// is said once per run, not once per file.
    pub fn xattrs(&self, result: std::io::Result<bool>) {
        use std::sync::atomic::Ordering;
        match result {
            Ok(_) => {}
            Err(e) if crate::dir::xattr::unsupported(&e) => {
                if !self.xattrs_refused.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "REPLICA {} does not keep extended attributes ({e}): they are not mirrored",
                        crate::escape::esc(&self.m.path)
                    );
                }
            }
            Err(e) => {
                if !self.xattrs_refused.swap(true, Ordering::Relaxed) {
                    log::warn!("cannot copy extended attributes into REPLICA: {e}");
                }
            }
        }
    }

    /// Logs a failure on one path and counts it; the run goes on.
    pub fn fail(&self, e: PathError) {
        error!("{e}");
        self.stats.add(Count::Error);
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
        if self.dry_run() {
            self.note(Done::Removed {
                rel,
                kind,
                kept: None,
            });
            return true;
        }
        let Some(dir) = dir else {
            return false;
        };
        let kept = match &self.m.backup {
            Some(backup) => backup.keep(dir, name, rel, kind).map(Some),
            None => tree::remove(dir, name, kind).map(|()| None),
        };
        match kept {
            Ok(kept) => {
                self.note(Done::Removed { rel, kind, kept });
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
        if self.m.opts.hard_links {
            let touched = self.finish_links();
            if !touched.is_empty() && !self.dry_run() {
                // The links changed these directories: their attributes are set again.
                let paths: Vec<(PathBuf, Look)> =
                    touched.into_iter().map(|p| (p, Look::ENTRY)).collect();
                let run = Run::new(self.m, self.source, self.stats, false);
                super::walk::sync_paths(&run, &paths);
                crate::lock(&self.retries).extend(run.finish().retry);
            }
        }
        let deferred = std::mem::take(&mut *crate::lock(&self.deferred));
        if let Some(max) = self.m.opts.max_delete {
            self.apply_deferred(deferred, max);
        }
        Outcome {
            retry: std::mem::take(&mut *crate::lock(&self.retries)),
        }
    }

    fn apply_deferred(&self, deferred: Deferred, max: u64) {
        if deferred.entries > max {
            error!(
                "refusing to remove {} entries from REPLICA, more than --max-delete {max}: \
                 nothing was removed",
                deferred.entries
            );
            self.stats.add(Count::Error);
            return;
        }
        if deferred.removals.is_empty() {
            return;
        }
        let mut again: Vec<(PathBuf, Look)> = Vec::new();
        for (rel, kind, then) in deferred.removals {
            if self.m.stop.is_set() {
                return;
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
            crate::lock(&self.retries).extend(rest.retry);
        }
    }

    /// Creates the directory `name`; returns its handle (`None` in a dry run), or an error that
    /// was logged.
    pub fn make_dir(&self, node: &Node, name: &OsStr, rel: &Path) -> Result<Option<Dir>, Logged> {
        let Some(dst) = node.dst.as_ref().filter(|_| !self.dry_run()) else {
            self.note(Done::MadeDir { rel });
            return Ok(None);
        };
        let made = node
            .writable(|| dst.make_dir(name, 0o700))
            .and_then(|()| dst.open_dir(name));
        match made {
            Ok(dir) => {
                node.touch();
                self.note(Done::MadeDir { rel });
                Ok(Some(dir))
            }
            Err(e) => {
                self.fail(self.dst_err("create directory", rel, e));
                Err(Logged)
            }
        }
    }

    /// Sets a file's permissions, owner and times, its bytes being the same.
    pub fn attrs(
        &self,
        node: &Node,
        name: &OsStr,
        rel: &Path,
        src: &Meta,
        dst: &Meta,
        newer: bool,
    ) {
        if let Some(dir) = node.dst.as_ref().filter(|_| !self.dry_run()) {
            if newer {
                self.sync_xattrs(node, name);
            }
            if let Err(e) = set_attrs(dir, name, src, dst, &self.m.opts.rules) {
                return self.fail(self.dst_err("set metadata of", rel, e));
            }
        }
        self.note(Done::Attrs { rel, meta: *src });
    }

    /// Makes REPLICA's `name` carry SOURCE's extended attributes (its status changed, so they
    /// may have).
    fn sync_xattrs(&self, node: &Node, name: &OsStr) {
        use crate::dir::xattr::{self, At};
        let (Some(src), Some(dst)) = (&node.src, &node.dst) else {
            return;
        };
        if !self.m.opts.xattrs {
            return;
        }
        let (from, to) = (At::Name(src, name), At::Name(dst, name));
        let result = xattr::read(&from).and_then(|want| {
            let have = xattr::read(&to)?;
            xattr::write(&to, &want, &have)
        });
        self.xattrs(result);
    }

    /// Creates the symlink `name`, or atomically re-points it.
    pub fn symlink(&self, node: &Node, name: &OsStr, rel: &Path, target: &Path, update: bool) {
        let Some(src) = &node.src else { return };
        let meta = match src.stat_at(name) {
            Ok(Some(meta)) if meta.kind == Kind::Symlink => meta,
            Ok(_) => return,
            Err(e) => return self.fail(self.src_err("read symlink", rel, e)),
        };
        if let Some(dst) = node.dst.as_ref().filter(|_| !self.dry_run()) {
            let owner = self.m.opts.rules.owner;
            let tmp = self.m.own().temps().fresh();
            let made = node.writable(|| dst.symlink(target, &tmp)).and_then(|()| {
                let guard = TempGuard::new(dst, &tmp);
                if owner {
                    dst.chown_at(&tmp, meta.uid, meta.gid)?;
                }
                if self.m.opts.xattrs {
                    use crate::dir::xattr::{self, At};
                    self.xattrs(xattr::copy(&At::Name(src, name), &At::Name(dst, &tmp)));
                }
                dst.set_times_at(&tmp, &meta)?;
                if update {
                    if let Some(backup) = &self.m.backup {
                        backup.keep_old(dst, name, rel)?;
                    }
                }
                dst.rename(&tmp, dst, name)?;
                guard.disarm();
                Ok(())
            });
            if let Err(e) = made {
                return self.fail(self.dst_err("create symlink", rel, e));
            }
            node.touch();
        }
        self.note(Done::Symlink {
            rel,
            target,
            update,
            meta,
        });
    }

    /// Marks REPLICA's copy of a file as checked: its status changed in SOURCE, but its bytes
    /// and attributes are the same. Setting its times again moves the copy's ctime, so the next
    /// pass does not compare the bytes again.
    pub fn verified(&self, node: &Node, name: &OsStr, rel: &Path, src: &Meta) {
        if self.dry_run() {
            return;
        }
        let Some(dst) = &node.dst else { return };
        self.sync_xattrs(node, name);
        match dst.set_times_at(name, src) {
            Ok(()) => log::debug!("checked {}: same bytes", crate::escape::rel(rel)),
            Err(e) => self.fail(self.dst_err("set metadata of", rel, e)),
        }
    }

    /// Sets a symlink's owner and times (its permissions mean nothing on Linux).
    pub fn symlink_attrs(&self, node: &Node, name: &OsStr, rel: &Path, src: &Meta, newer: bool) {
        if self.dry_run() {
            return;
        }
        if newer {
            self.sync_xattrs(node, name);
        }
        let Some(dst) = &node.dst else { return };
        let result = (|| {
            if self.m.opts.rules.owner {
                dst.chown_at(name, src.uid, src.gid)?;
            }
            dst.set_times_at(name, src)
        })();
        if let Err(e) = result {
            self.fail(self.dst_err("set metadata of", rel, e));
        }
    }
}

/// Applies permissions, ownership and times to the existing file `name`, changing only what
/// differs, never through a symlink.
fn set_attrs(
    dir: &Dir,
    name: &OsStr,
    src: &Meta,
    dst: &Meta,
    rules: &super::plan::Rules,
) -> std::io::Result<()> {
    let chown = rules.owner && (src.uid != dst.uid || src.gid != dst.gid);
    if chown {
        dir.chown_at(name, src.uid, src.gid)?;
    }
    // chown may clear set-id bits, so permissions come after it.
    if rules.perms && (chown || src.perm != dst.perm) {
        dir.chmod_at(name, src.perm)?;
    }
    if !src.mtime.near(dst.mtime, rules.window) {
        dir.set_times_at(name, src)?;
    }
    Ok(())
}
