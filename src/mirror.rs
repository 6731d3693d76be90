//! The mirror: one idempotent primitive, "make this replica path match the source", and the
//! streaming tree walk (a sorted merge-join of both sides, one directory at a time) built from
//! the same per-entry operations. Copies run on a small pool of worker threads.

use std::cmp::Ordering;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crossbeam_channel::Sender;
use log::{debug, error, info, warn};

use crate::error::PathError;
use crate::filter::Filter;
use crate::fsops::{self, CopyError, Kind, TempNames};
use crate::stats::{Count, Stats};
use crate::stop::Stop;

/// How closely to look at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Look {
    /// For a directory: everything below it too (a new or moved-in directory).
    pub tree: bool,
    /// For a file: its bytes are known to have changed, so copy it even if size and mtime still
    /// match (on kernels with coarse timestamps, two writes within one clock tick leave the
    /// mtime as it was).
    pub content: bool,
}

impl Look {
    /// The entry itself.
    pub const ENTRY: Look = Look {
        tree: false,
        content: false,
    };
    /// The entry and everything below it.
    pub const TREE: Look = Look {
        tree: true,
        content: false,
    };
    /// A file whose bytes changed.
    pub const CONTENT: Look = Look {
        tree: false,
        content: true,
    };
    /// Something new: all below it, and its bytes.
    pub const NEW: Look = Look {
        tree: true,
        content: true,
    };

    /// The closer of two looks.
    pub fn merge(self, other: Look) -> Look {
        Look {
            tree: self.tree || other.tree,
            content: self.content || other.content,
        }
    }
}

/// How far to go below a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// The entry itself (for a directory: that it exists, and its attributes).
    Entry,
    /// The entry and, for a directory, everything below it.
    Tree,
}

/// How many copies may wait for a worker; bounds memory while the walker runs ahead.
const QUEUE: usize = 256;
/// How often a copy is retried when the source keeps changing under it.
const COPY_ATTEMPTS: usize = 3;

/// How the mirror behaves, beyond its two roots.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Exclude patterns and protected paths (the log file, a backup directory inside REPLICA).
    pub filter: Filter,
    /// Compare files of the same size by content, not by mtime.
    pub checksum: bool,
    /// Where removed and overwritten entries are moved instead of being destroyed.
    pub backup: Option<PathBuf>,
    /// Watch mode: a file that changes while it is copied is handed back (see
    /// [`Mirror::take_retries`]) instead of being retried at once, since more events are coming.
    pub requeue: bool,
    /// Log what would be done, marked, and change nothing.
    pub dry_run: bool,
    /// A run of [`Mirror::sync_paths`] that would remove more entries than this removes none.
    pub max_delete: Option<u64>,
}

/// The two roots and the settings every operation needs.
#[derive(Debug)]
pub struct Mirror {
    source: PathBuf,
    replica: PathBuf,
    filter: Filter,
    checksum: bool,
    backup: Option<PathBuf>,
    /// Preserve ownership (only root may).
    owner: bool,
    temps: TempNames,
    stop: Stop,
    workers: usize,
    requeue: bool,
    dry_run: bool,
    max_delete: Option<u64>,
    retries: Mutex<Vec<PathBuf>>,
}

/// Removals held back under `--max-delete` until the whole run's count is known.
#[derive(Debug, Default)]
struct Deferred {
    /// Entries the removals would delete, a directory's contents included.
    entries: u64,
    /// What to remove, its kind, and whether the source has another kind there to create after.
    removals: Vec<(PathBuf, Kind, bool)>,
}

impl Mirror {
    pub fn new(source: PathBuf, replica: PathBuf, stop: Stop, options: Options) -> Self {
        let workers = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8);
        Mirror {
            source,
            replica,
            filter: options.filter,
            checksum: options.checksum,
            backup: options.backup,
            owner: fsops::can_chown(),
            temps: TempNames::new(),
            stop,
            workers,
            requeue: options.requeue,
            dry_run: options.dry_run,
            max_delete: options.max_delete,
            retries: Mutex::new(Vec::new()),
        }
    }

    /// Logs an operation on the replica, marked when it is only what a dry run would do.
    fn did(&self, what: std::fmt::Arguments) {
        if self.dry_run {
            info!("[dry run] {what}");
        } else {
            info!("{what}");
        }
    }

    /// The files that changed while being copied since the last call (watch mode only).
    pub fn take_retries(&self) -> Vec<PathBuf> {
        self.retries
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn replica(&self) -> &Path {
        &self.replica
    }

    /// A full reconciliation of the whole tree.
    pub fn full_pass(&self, stats: &Stats) {
        self.sync_paths(&[(PathBuf::new(), Look::TREE)], stats);
    }

    /// Makes each replica path (relative to the roots) match the source. The same primitive serves
    /// the full pass (the root, [`Look::TREE`]) and the watcher (single paths).
    pub fn sync_paths(&self, paths: &[(PathBuf, Look)], stats: &Stats) {
        let deferred = Mutex::new(Deferred::default());
        let work = Work::default();
        thread::scope(|scope| {
            let (tx, rx) = crossbeam_channel::bounded::<CopyJob>(QUEUE);
            for _ in 0..self.workers {
                let rx = rx.clone();
                scope.spawn(move || {
                    for job in rx {
                        self.copy(&job.rel, job.update, stats);
                    }
                });
            }
            let ctx = Ctx {
                m: self,
                stats,
                copies: tx,
                deferred: &deferred,
                work: &work,
            };
            // Directories are walked on every core: each one found goes on a shared stack.
            for _ in 1..self.workers {
                let walker = ctx.clone();
                scope.spawn(move || {
                    walker
                        .work
                        .run(|(rel, meta)| walker.dir(&rel, meta, Depth::Tree))
                });
            }
            for (rel, look) in paths {
                if self.stop.is_set() {
                    break;
                }
                ctx.sync_path(rel, *look);
            }
            ctx.work.close();
            ctx.work.run(|(rel, meta)| ctx.dir(&rel, meta, Depth::Tree));
        });
        if let Some(max) = self.max_delete {
            let deferred = deferred.into_inner().unwrap_or_default();
            self.apply_deferred(deferred, max, stats);
        }
    }

    /// Carries out the removals held back under `--max-delete`, or none of them.
    fn apply_deferred(&self, deferred: Deferred, max: u64, stats: &Stats) {
        if deferred.entries > max {
            error!(
                "refusing to remove {} entries from REPLICA, more than --max-delete {max}: \
                 nothing was removed",
                deferred.entries
            );
            stats.add(Count::Error);
            return;
        }
        let mut recreate = Vec::new();
        for (rel, kind, then_create) in deferred.removals {
            if self.stop.is_set() {
                return;
            }
            // The parent's mtime changes with the removal and is restored afterwards.
            let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
            if self.remove_now(&rel, &self.replica.join(&rel), kind, stats) && then_create {
                recreate.push((rel, Look::TREE));
            }
            if !recreate.iter().any(|(r, _)| *r == parent) {
                recreate.push((parent, Look::ENTRY));
            }
        }
        if !recreate.is_empty() && !self.dry_run {
            self.sync_paths(&recreate, stats);
        }
    }

    /// Whether a watcher hint for `rel` can be dropped at once: the path is protected or lies
    /// in an excluded directory (its own kind is not known yet; `sync_path` looks again).
    pub fn ignores_hint(&self, rel: &Path) -> bool {
        self.filter.protects(rel)
            || (!self.filter.delete_excluded
                && rel
                    .parent()
                    .is_some_and(|p| self.filter.excludes_path(p, true)))
    }

    /// Removes a replica entry, or with `--backup-dir` moves it there. Returns where it was kept.
    fn discard(&self, rel: &Path, path: &Path, kind: Kind) -> Result<Option<PathBuf>, PathError> {
        if self.dry_run {
            return Ok(None);
        }
        match &self.backup {
            None => fsops::remove(path, kind).map(|()| None),
            Some(_) => {
                let target = self.backup_target(rel);
                match fsops::move_to(path, kind, &target) {
                    Ok(()) => Ok(Some(target)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(PathError::new("back up", path, e)),
                }
            }
        }
    }

    /// Removes (or backs up) a replica entry now, logging and counting it. Returns whether it is
    /// gone.
    fn remove_now(&self, rel: &Path, path: &Path, kind: Kind, stats: &Stats) -> bool {
        match self.discard(rel, path, kind) {
            Ok(kept) => {
                let kept = kept
                    .map(|k| format!(" (kept as {})", k.display()))
                    .unwrap_or_default();
                self.did(format_args!(
                    "removed {} {}{kept}",
                    kind.noun(),
                    rel.display()
                ));
                stats.add(Count::Removed);
                true
            }
            Err(e) => {
                error!("{e}");
                stats.add(Count::Error);
                false
            }
        }
    }

    /// A fresh name in the backup directory for `rel`: its relative path with a UTC timestamp
    /// suffix, and a counter if that is taken.
    fn backup_target(&self, rel: &Path) -> PathBuf {
        let root = self.backup.clone().unwrap_or_default();
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default();
        let mut name = root.join(rel).into_os_string();
        name.push(format!(".{stamp}"));
        let mut target = PathBuf::from(&name);
        let mut n = 1;
        while fs::symlink_metadata(&target).is_ok() {
            let mut numbered = name.clone();
            numbered.push(format!("-{n}"));
            target = PathBuf::from(numbered);
            n += 1;
        }
        target
    }

    /// The first ancestor-or-self of the replica directory `rel_dir` that is missing or is not a
    /// real directory (a symlink, say): nothing may be written below it.
    fn first_non_dir(&self, rel_dir: &Path) -> Option<PathBuf> {
        let mut ancestor = PathBuf::new();
        for part in rel_dir.components() {
            ancestor.push(part);
            match fsops::lstat(&self.replica.join(&ancestor)) {
                Ok(Some(meta)) if meta.is_dir() => {}
                _ => return Some(ancestor),
            }
        }
        None
    }

    /// Mirrors a rename in SOURCE by renaming in REPLICA, so the replica keeps the same inode and
    /// nothing is copied: only when SOURCE no longer has `from`, REPLICA still has it, and what
    /// REPLICA has there matches what SOURCE now has at `to` (same kind; same size and mtime for
    /// a file, same target for a symlink). Returns whether it renamed; the caller reconciles both
    /// paths afterwards in any case.
    pub fn rename(&self, from: &Path, to: &Path, stats: &Stats) -> bool {
        let plain = |p: &Path| {
            !p.as_os_str().is_empty()
                && !self.filter.leaves_out(p, false)
                && !self.filter.leaves_out(p, true)
                && !p.file_name().is_some_and(fsops::is_temp_name)
        };
        if !plain(from) || !plain(to) || to.starts_with(from) {
            return false;
        }
        let (src_from, src_to) = (self.source.join(from), self.source.join(to));
        let (dst_from, dst_to) = (self.replica.join(from), self.replica.join(to));
        let (Ok(None), Ok(Some(s)), Ok(Some(d))) = (
            fsops::lstat(&src_from),
            fsops::lstat(&src_to),
            fsops::lstat(&dst_from),
        ) else {
            return false;
        };
        let kind = Kind::of(s.file_type());
        let matches = kind == Kind::of(d.file_type())
            && match kind {
                Kind::File => fsops::same_stamp(&s, &d),
                Kind::Symlink => matches!(
                    (fs::read_link(&src_to), fs::read_link(&dst_from)),
                    (Ok(a), Ok(b)) if a == b
                ),
                Kind::Dir => true,
                Kind::Special(_) => false,
            };
        let to_parent = to.parent().unwrap_or(Path::new(""));
        if !matches || self.first_non_dir(to_parent).is_some() {
            return false;
        }
        if let Some(from_parent) = from.parent() {
            if self.first_non_dir(from_parent).is_some() {
                return false;
            }
        }
        if self.backup.is_some() && !self.dry_run {
            // What the rename would overwrite is kept.
            if let Ok(Some(old)) = fsops::lstat(&dst_to) {
                if let Err(e) = self.discard(to, &dst_to, Kind::of(old.file_type())) {
                    debug!("{e}; copying instead");
                    return false;
                }
            }
        }
        let renamed = self.dry_run
            || fs::rename(&dst_from, &dst_to)
                .map_err(|e| {
                    debug!(
                        "cannot rename {} to {} ({e}); copying instead",
                        dst_from.display(),
                        dst_to.display()
                    )
                })
                .is_ok();
        if renamed {
            self.did(format_args!(
                "renamed {} -> {}",
                from.display(),
                to.display()
            ));
            stats.add(Count::Renamed);
        }
        renamed
    }

    /// Copies one file into place, retrying when the source changes while it is read.
    fn copy(&self, rel: &Path, update: bool, stats: &Stats) {
        let src = self.source.join(rel);
        let dst = self.replica.join(rel);
        let attempts = if self.requeue { 1 } else { COPY_ATTEMPTS };
        for _ in 0..attempts {
            let copied = if self.dry_run {
                Ok((
                    fs::symlink_metadata(&src).map(|m| m.len()).unwrap_or(0),
                    None,
                ))
            } else {
                let keep = match &self.backup {
                    Some(_) if update => Some(self.backup_target(rel)),
                    _ => None,
                };
                fsops::copy_file(
                    &src,
                    &dst,
                    &self.temps,
                    self.owner,
                    &self.stop,
                    keep.as_deref(),
                    &|n| stats.add_moving(n),
                )
                .map(|bytes| (bytes, keep))
            };
            match copied {
                Ok((bytes, kept)) => {
                    let verb = if update { "updated" } else { "copied" };
                    let kept = kept
                        .map(|k| format!(", previous version kept as {}", k.display()))
                        .unwrap_or_default();
                    self.did(format_args!(
                        "{verb} {} ({bytes} bytes{kept})",
                        rel.display()
                    ));
                    stats.add(if update {
                        Count::Updated
                    } else {
                        Count::Copied
                    });
                    stats.add_bytes(bytes);
                    return;
                }
                Err(CopyError::Changed) => {
                    debug!("{} changed while being copied", rel.display());
                    if self.requeue {
                        if let Ok(mut retries) = self.retries.lock() {
                            retries.push(rel.to_path_buf());
                        }
                        return;
                    }
                }
                Err(CopyError::Vanished) => {
                    debug!("{} vanished before it could be copied", rel.display());
                    return;
                }
                Err(CopyError::Stopped) => return,
                Err(CopyError::Failed(e)) => {
                    error!("{e}");
                    stats.add(Count::Error);
                    return;
                }
            }
        }
        warn!(
            "{} kept changing while being copied; the replica keeps its previous version until a later pass",
            src.display()
        );
        stats.add(Count::Error);
    }
}

/// Directories waiting to be walked, shared by the walker threads. A stack, so the walk stays
/// depth-first and what waits is bounded by the tree's width times its depth, not its size.
#[derive(Default)]
struct Work {
    state: Mutex<WorkState>,
    changed: Condvar,
}

#[derive(Default)]
struct WorkState {
    stack: Vec<(PathBuf, Metadata)>,
    /// Directories pushed and not yet finished (being walked or waiting).
    unfinished: usize,
    /// No more directories will come from outside the walkers.
    closed: bool,
}

impl Work {
    fn push(&self, rel: PathBuf, meta: Metadata) {
        if let Ok(mut state) = self.state.lock() {
            state.stack.push((rel, meta));
            state.unfinished += 1;
            self.changed.notify_one();
        }
    }

    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
            self.changed.notify_all();
        }
    }

    /// Walks directories until there are none left and none can come.
    fn run(&self, mut walk: impl FnMut((PathBuf, Metadata))) {
        loop {
            let task = {
                let Ok(mut state) = self.state.lock() else {
                    return;
                };
                loop {
                    if let Some(task) = state.stack.pop() {
                        break task;
                    }
                    if state.closed && state.unfinished == 0 {
                        return;
                    }
                    state = match self.changed.wait(state) {
                        Ok(state) => state,
                        Err(_) => return,
                    };
                }
            };
            walk(task);
            if let Ok(mut state) = self.state.lock() {
                state.unfinished -= 1;
                if state.unfinished == 0 {
                    self.changed.notify_all();
                }
            }
        }
    }
}

/// A copy handed to the worker pool. It holds its directory's [`DirDone`], so the directory's
/// attributes are applied only after the copy has renamed into it.
struct CopyJob<'a> {
    rel: PathBuf,
    update: bool,
    _dir: Arc<DirDone<'a>>,
}

/// Applies a directory's attributes (mode, ownership, mtime) to its replica when the last
/// reference is dropped: after the walk has left it and every copy into it has finished, since
/// each of those changes the directory's mtime.
struct DirDone<'a> {
    m: &'a Mirror,
    stats: &'a Stats,
    rel: PathBuf,
    src: Metadata,
}

impl Drop for DirDone<'_> {
    fn drop(&mut self) {
        if self.m.stop.is_set() || self.m.dry_run {
            return;
        }
        let dst = self.m.replica.join(&self.rel);
        let meta = match fsops::lstat(&dst) {
            Ok(Some(meta)) if meta.is_dir() => meta,
            _ => return,
        };
        if fsops::attrs_differ(&self.src, &meta, self.m.owner)
            || !fsops::same_mtime(&self.src, &meta)
        {
            if let Err(e) = fsops::apply_attrs(&dst, &self.src, &meta, self.m.owner) {
                error!("{}", PathError::new("set metadata of", dst, e));
                self.stats.add(Count::Error);
            } else {
                debug!("set attributes of directory {}", show(&self.rel));
            }
        }
    }
}

/// What an entry needs after its own operation.
enum Next {
    Done,
    /// A directory that exists in both trees now; its contents may need work. `created` when the
    /// replica's was just made: then its whole subtree has to be mirrored.
    Descend {
        meta: Metadata,
        created: bool,
    },
}

/// One run of work: the mirror, the counters, the copy queue and the walk's shared stack.
#[derive(Clone)]
struct Ctx<'s, 'a> {
    m: &'a Mirror,
    stats: &'a Stats,
    copies: Sender<CopyJob<'a>>,
    deferred: &'s Mutex<Deferred>,
    work: &'s Work,
}

impl<'a> Ctx<'_, 'a> {
    fn sync_path(&self, rel: &Path, look: Look) {
        let depth = if look.tree { Depth::Tree } else { Depth::Entry };
        let m = self.m;
        if rel.as_os_str().is_empty() {
            match fs::metadata(&m.source) {
                Ok(meta) if meta.is_dir() => self.dir(rel, meta, depth),
                Ok(_) => error!("SOURCE {} is no longer a directory", m.source.display()),
                Err(e) => error!("{}", PathError::new("read", &m.source, e)),
            }
            return;
        }
        if m.filter.protects(rel) || rel.file_name().is_some_and(fsops::is_temp_name) {
            return;
        }
        let is_dir = fs::symlink_metadata(m.source.join(rel))
            .or_else(|_| fs::symlink_metadata(m.replica.join(rel)))
            .is_ok_and(|meta| meta.is_dir());
        if m.filter.excludes_path(rel, is_dir) {
            let parent = rel.parent().unwrap_or(Path::new(""));
            if m.filter.delete_excluded && m.first_non_dir(parent).is_none() {
                if let Ok(Some(kind)) = self.kind_at(&m.replica.join(rel)) {
                    self.remove(rel, &m.replica.join(rel), kind);
                }
            }
            return;
        }
        // Never write through something in the replica that is not a real directory: if an
        // ancestor is missing or of another kind, mirror that ancestor (and all below it) instead.
        let parent = rel.parent().unwrap_or(Path::new(""));
        if let Some(ancestor) = m.first_non_dir(parent) {
            return self.sync_path(&ancestor, Look::TREE);
        }
        let parent_src = match fs::symlink_metadata(m.source.join(parent)) {
            Ok(meta) if meta.is_dir() => meta,
            // The source's parent changed too: it gets mirrored as a whole, unless it is the root.
            _ if parent.as_os_str().is_empty() => {
                error!(
                    "SOURCE {} is not readable as a directory",
                    m.source.display()
                );
                return;
            }
            _ => return self.sync_path(parent, Look::TREE),
        };
        let src_kind = match self.kind_at(&m.source.join(rel)) {
            Ok(kind) => kind,
            Err(()) => return,
        };
        let dst_kind = match self.kind_at(&m.replica.join(rel)) {
            Ok(kind) => kind,
            Err(()) => return,
        };
        let done = Arc::new(DirDone {
            m,
            stats: self.stats,
            rel: parent.to_path_buf(),
            src: parent_src,
        });
        if let Next::Descend { meta, created } =
            self.entry(rel, src_kind, dst_kind, &done, look.content)
        {
            self.dir(rel, meta, if created { Depth::Tree } else { depth });
        }
    }

    /// The kind of entry at `path`, `None` if there is none; errors are logged.
    fn kind_at(&self, path: &Path) -> Result<Option<Kind>, ()> {
        match fsops::lstat(path) {
            Ok(meta) => Ok(meta.map(|m| Kind::of(m.file_type()))),
            Err(e) => {
                self.fail(PathError::new("stat", path, e));
                Err(())
            }
        }
    }

    fn fail(&self, e: PathError) {
        error!("{e}");
        self.stats.add(Count::Error);
    }

    /// Reconciles a directory that exists on both sides: a merge-join of the two sorted listings.
    /// With [`Depth::Entry`] only its own attributes are reconciled.
    fn dir(&self, rel: &Path, src_meta: Metadata, depth: Depth) {
        let m = self.m;
        if m.stop.is_set() {
            return;
        }
        let done = Arc::new(DirDone {
            m,
            stats: self.stats,
            rel: rel.to_path_buf(),
            src: src_meta,
        });
        if depth == Depth::Entry {
            return;
        }
        let src_dir = m.source.join(rel);
        // A source directory that cannot be listed removes nothing: its replica is left as it is.
        let src_list = match list(&src_dir) {
            Ok(list) => list,
            Err(e) if fsops::is_absent(&e) => {
                debug!("{} vanished during the pass", src_dir.display());
                return;
            }
            Err(e) => return self.fail(PathError::new("read directory", src_dir, e)),
        };
        let dst_dir = m.replica.join(rel);
        let dst_list = match list(&dst_dir) {
            Ok(list) => list,
            // A dry run did not create the directory, nor replace what is there.
            Err(e)
                if m.dry_run
                    && (fsops::is_absent(&e) || e.raw_os_error() == Some(libc::ENOTDIR)) =>
            {
                Vec::new()
            }
            Err(e) => return self.fail(PathError::new("read directory", dst_dir, e)),
        };

        let mut src_iter = src_list.into_iter().peekable();
        let mut dst_iter = dst_list.into_iter().peekable();
        loop {
            if m.stop.is_set() {
                return;
            }
            let order = match (src_iter.peek(), dst_iter.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(s), Some(d)) => s.0.cmp(&d.0),
            };
            let (name, src_kind, dst_kind) = match order {
                Ordering::Less => src_iter.next().map(|(n, k)| (n, Some(k), None)),
                Ordering::Greater => dst_iter.next().map(|(n, k)| (n, None, Some(k))),
                Ordering::Equal => match (src_iter.next(), dst_iter.next()) {
                    (Some((n, s)), Some((_, d))) => Some((n, Some(s), Some(d))),
                    _ => None,
                },
            }
            .unwrap_or_else(|| unreachable!("peeked entries are present"));

            let child = rel.join(&name);
            if m.filter.protects(&child) {
                continue;
            }
            // An excluded entry is not descended into on either side, and is left alone in
            // REPLICA unless --delete-excluded.
            if m.filter
                .excludes(&child, matches!(src_kind.or(dst_kind), Some(Kind::Dir)))
            {
                if let Some(kind) = dst_kind.filter(|_| m.filter.delete_excluded) {
                    self.remove(&child, &m.replica.join(&child), kind);
                }
                continue;
            }
            if fsops::is_temp_name(&name) {
                // Our own temporary files are never mirrored; other processes' are leftovers
                // of an interrupted run.
                if let Some(kind) = dst_kind.filter(|_| !m.temps.is_ours(&name) && !m.dry_run) {
                    match fsops::remove(&m.replica.join(&child), kind) {
                        Ok(()) => debug!("removed leftover temporary file {}", child.display()),
                        Err(e) => self.fail(e),
                    }
                }
                continue;
            }
            if let Next::Descend { meta, .. } = self.entry(&child, src_kind, dst_kind, &done, false)
            {
                self.work.push(child, meta);
            }
        }
    }

    /// Makes one replica entry match its source entry, given what the listings (or lstat) said
    /// each side holds. File copies go to the worker pool. With `recopy`, a file is copied even
    /// when its size and mtime match.
    fn entry(
        &self,
        rel: &Path,
        src: Option<Kind>,
        dst: Option<Kind>,
        dir: &Arc<DirDone<'a>>,
        recopy: bool,
    ) -> Next {
        let m = self.m;
        self.stats.add(Count::Checked);
        let src_path = m.source.join(rel);
        let dst_path = m.replica.join(rel);
        let src_kind = match src {
            Some(Kind::Special(what)) => {
                warn!(
                    "skipped {what} {}: only files, directories and symlinks are mirrored",
                    src_path.display()
                );
                None
            }
            other => other,
        };
        // Whatever the replica holds that is not of the source's kind goes first.
        let dst = match dst {
            Some(kind) if Some(kind) != src_kind => {
                if m.max_delete.is_some() {
                    // Held back until the run's removals are counted; the source's kind is
                    // created after the removal, if it is allowed.
                    self.defer_removal(rel, &dst_path, kind, src_kind.is_some());
                    return Next::Done;
                }
                self.remove(rel, &dst_path, kind);
                None
            }
            other => other,
        };
        let Some(src_kind) = src_kind else {
            return Next::Done;
        };
        match src_kind {
            Kind::File => {
                if dst.is_some() {
                    let (s, d) = match (fsops::lstat(&src_path), fsops::lstat(&dst_path)) {
                        (Ok(Some(s)), Ok(Some(d))) => (s, d),
                        (Err(e), _) => {
                            self.fail(PathError::new("stat", src_path, e));
                            return Next::Done;
                        }
                        (_, Err(e)) => {
                            self.fail(PathError::new("stat", dst_path, e));
                            return Next::Done;
                        }
                        _ => return Next::Done,
                    };
                    if !s.is_file() || !d.is_file() {
                        // Changed kind since it was listed; the next look at this path sorts it out.
                        return Next::Done;
                    }
                    let same = if m.checksum {
                        // Same size: the bytes decide, not the mtime.
                        s.len() == d.len()
                            && match fsops::same_bytes(&src_path, &dst_path) {
                                Ok(same) => same,
                                Err(e) => {
                                    self.fail(PathError::new("compare", &src_path, e));
                                    return Next::Done;
                                }
                            }
                    } else {
                        fsops::same_stamp(&s, &d) && !recopy
                    };
                    if same {
                        if fsops::attrs_differ(&s, &d, m.owner) || !fsops::same_mtime(&s, &d) {
                            let applied = if m.dry_run {
                                Ok(())
                            } else {
                                fsops::apply_attrs(&dst_path, &s, &d, m.owner)
                            };
                            match applied {
                                Ok(()) => {
                                    m.did(format_args!("updated attributes of {}", rel.display()));
                                    self.stats.add(Count::Updated);
                                }
                                Err(e) => self.fail(PathError::new("set metadata of", dst_path, e)),
                            }
                        }
                        return Next::Done;
                    }
                }
                let job = CopyJob {
                    rel: rel.to_path_buf(),
                    update: dst.is_some(),
                    _dir: Arc::clone(dir),
                };
                if let Err(unsent) = self.copies.send(job) {
                    let job = unsent.into_inner();
                    m.copy(&job.rel, job.update, self.stats);
                }
                Next::Done
            }
            Kind::Dir => {
                let meta = match fs::symlink_metadata(&src_path) {
                    Ok(meta) if meta.is_dir() => meta,
                    Ok(_) => return Next::Done,
                    Err(e) if fsops::is_absent(&e) => return Next::Done,
                    Err(e) => {
                        self.fail(PathError::new("stat", src_path, e));
                        return Next::Done;
                    }
                };
                let created = dst.is_none();
                if created {
                    if !m.dry_run {
                        if let Err(e) = fsops::make_dir(&dst_path) {
                            self.fail(e);
                            return Next::Done;
                        }
                    }
                    m.did(format_args!("created directory {}", rel.display()));
                    self.stats.add(Count::Created);
                }
                Next::Descend { meta, created }
            }
            Kind::Symlink => {
                self.symlink(rel, &src_path, &dst_path, dst.is_some());
                Next::Done
            }
            Kind::Special(_) => Next::Done,
        }
    }

    fn symlink(&self, rel: &Path, src_path: &Path, dst_path: &Path, exists: bool) {
        let m = self.m;
        let (meta, target) = match fs::symlink_metadata(src_path).and_then(|meta| {
            let target = fs::read_link(src_path)?;
            Ok((meta, target))
        }) {
            Ok(found) => found,
            Err(e) if fsops::is_absent(&e) || e.kind() == io::ErrorKind::InvalidInput => return,
            Err(e) => return self.fail(PathError::new("read symlink", src_path, e)),
        };
        if exists {
            if let (Ok(current), Ok(dst_meta)) =
                (fs::read_link(dst_path), fs::symlink_metadata(dst_path))
            {
                if current == target {
                    let owner_differs =
                        m.owner && (meta.uid() != dst_meta.uid() || meta.gid() != dst_meta.gid());
                    if owner_differs || !fsops::same_mtime(&meta, &dst_meta) {
                        if m.dry_run {
                            return;
                        }
                        if let Err(e) = fsops::set_link_attrs(dst_path, &meta, m.owner) {
                            self.fail(PathError::new("set metadata of", dst_path, e));
                        }
                    }
                    return;
                }
            }
        }
        if exists && m.backup.is_some() && !m.dry_run {
            if let Err(e) = m.discard(rel, dst_path, Kind::Symlink) {
                return self.fail(e);
            }
        }
        let made = if m.dry_run {
            Ok(())
        } else {
            fsops::make_symlink(&target, dst_path, &meta, &m.temps, m.owner)
        };
        match made {
            Ok(()) => {
                let verb = if exists { "updated" } else { "created" };
                m.did(format_args!(
                    "{verb} symlink {} -> {}",
                    rel.display(),
                    target.display()
                ));
                self.stats.add(if exists {
                    Count::Updated
                } else {
                    Count::Created
                });
            }
            Err(e) => self.fail(e),
        }
    }

    /// Removes a replica entry the source lacks, or holds the removal back under `--max-delete`.
    fn remove(&self, rel: &Path, path: &Path, kind: Kind) {
        let m = self.m;
        if m.max_delete.is_some() {
            return self.defer_removal(rel, path, kind, false);
        }
        m.remove_now(rel, path, kind, self.stats);
    }

    /// Records a removal for [`Mirror::apply_deferred`], counting the entries it would delete.
    /// Past the limit only the count is kept, since nothing will be removed.
    fn defer_removal(&self, rel: &Path, path: &Path, kind: Kind, then_create: bool) {
        let entries = if kind == Kind::Dir {
            walkdir::WalkDir::new(path).into_iter().count() as u64
        } else {
            1
        };
        let limit = self.m.max_delete.unwrap_or(u64::MAX);
        if let Ok(mut deferred) = self.deferred.lock() {
            deferred.entries += entries;
            if deferred.entries <= limit {
                deferred
                    .removals
                    .push((rel.to_path_buf(), kind, then_create));
            }
        }
    }
}

/// A directory's entries with their kinds (from the directory entry, no stat), sorted by name.
fn list(dir: &Path) -> io::Result<Vec<(OsString, Kind)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        match entry.file_type() {
            Ok(ft) => entries.push((entry.file_name(), Kind::of(ft))),
            // Gone between readdir and lstat: it is not there.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// A relative path for log lines; the root shows as `.`.
fn show(rel: &Path) -> std::path::Display<'_> {
    if rel.as_os_str().is_empty() {
        Path::new(".").display()
    } else {
        rel.display()
    }
}
