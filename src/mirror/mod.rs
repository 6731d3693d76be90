//! The local replica: a directory that is made to match SOURCE. A batch of hints or a pass is a
//! [`round`]; [`drive`] takes it through its steps. For each entry, [`gather`] collects what the
//! decision needs, [`plan`] decides (pure), and the [`round`]'s operations carry it out, each
//! change ending in [`round::Round::note`] as a [`change::Change`] (the log line, the counter, the
//! [`dry_view`]). [`walk`] schedules the work over both trees on every core from a [`stack`] of
//! [`dir_pair::DirTask`]s, [`hinted`] starts it from the watcher's paths, [`rename`] mirrors
//! renames as renames, [`orphans`] finds renames by looking, [`backup`] keeps what is replaced,
//! and [`settle`] sets directories' attributes at a round's end.

mod act;
mod carry;
pub mod change;
pub mod copy;
pub mod dir_pair;
mod drive;
pub mod dry_view;
pub mod gather;
pub mod hinted;
pub mod links;
pub mod mounts;
pub mod ops;
pub mod order;
pub mod orphans;
pub mod plan;
pub mod probe;
pub mod rename;
pub mod round;
mod settle;
pub mod stack;
pub mod survey;
pub mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;

use log::{info, warn};

use crate::dir::{self, Dir};
use crate::escape::esc;
use crate::filter::Filter;
use crate::own::{self, OwnFiles};
use crate::replica::{Batch, Look, Outcome, Replica, RootError, RootState};
use crate::root::{self, AtPath, Root};
use crate::stats::Stats;
use crate::stop::Stop;

use crate::backup::Backup;
use dry_view::DryView;

/// How the mirror behaves, beyond its roots.
#[derive(Debug)]
pub struct Options {
    pub filter: Filter,
    pub own: Arc<OwnFiles>,
    pub rules: plan::Rules,
    /// Watch mode: a file that changes while it is copied is handed back for a later look,
    /// since more events for it are coming, instead of being retried at once.
    pub requeue: bool,
    /// Log what would be done, marked, and change nothing.
    pub dry_run: bool,
    /// A file system mounted inside SOURCE that holds no data may empty REPLICA's copy of it.
    pub allow_empty_source: bool,
    /// A pass or batch that would remove more entries than this removes none.
    pub max_delete: Option<u64>,
    /// Keep hard links as hard links.
    pub hard_links: bool,
    /// Keep extended attributes and ACLs.
    pub xattrs: bool,
    /// Flush each file before its rename, and each directory after its entries change.
    pub fsync: bool,
    /// Set a copied file's times again after its rename (REPLICA's file system stamps renames).
    pub stamp_after_rename: bool,
    /// REPLICA's file system keeps real ctimes (it moves them when foldersync writes), so a
    /// SOURCE ctime at or after a copy's says the copy may be out of date.
    pub ctimes: bool,
    /// The delays that follow the debounce: how long the watcher holds an orphan.
    pub timing: crate::timing::Timing,
}

/// A local replica.
#[derive(Debug)]
pub struct Mirror {
    /// REPLICA's root; `None` only in a dry run whose REPLICA does not exist yet.
    pub(crate) root: Option<Root>,
    pub(crate) path: PathBuf,
    pub(crate) opts: Options,
    pub(crate) backup: Option<Backup>,
    pub(crate) stop: Stop,
    pub(crate) workers: usize,
    /// What a dry run would have changed, so later looks (of the same pass, or of the watcher)
    /// agree with it.
    pub(crate) dry_view: Option<Mutex<DryView>>,
    /// The names of SOURCE's multi-link inodes, from pass to pass.
    pub(crate) known: links::Known,
    /// This process's user and group: the owner of every file it makes.
    pub(crate) me: (u32, u32),
    /// Files found open for writing, and when they may be copied anyway (see
    /// [`copy::OPEN_GRACE`]).
    pub(crate) busy: Mutex<std::collections::HashMap<PathBuf, std::time::Instant>>,
    /// Orphans the watcher holds (see [`orphans`]).
    pub(crate) held: Mutex<orphans::Held>,
    /// Where file systems are mounted inside SOURCE (see [`mounts`]).
    pub(crate) mounts: Mutex<mounts::SourceMounts>,
    /// The fifos, sockets and devices said to be skipped since the last pass began, and what
    /// each was.
    pub(crate) skipped: Mutex<std::collections::HashMap<PathBuf, &'static str>>,
    /// Comparisons of large arrivals with their candidates, running aside.
    pub(crate) aside: Mutex<orphans::aside::Aside>,
}

impl Mirror {
    pub fn new(
        root: Option<Root>,
        path: PathBuf,
        backup: Option<Backup>,
        stop: Stop,
        opts: Options,
    ) -> Mirror {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8);
        let dry_view = opts.dry_run.then(|| Mutex::new(DryView::default()));
        Mirror {
            root,
            path,
            opts,
            backup,
            stop,
            workers,
            dry_view,
            known: links::Known::default(),
            me: (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
            held: Mutex::default(),
            busy: Mutex::new(std::collections::HashMap::new()),
            mounts: Mutex::default(),
            skipped: Mutex::default(),
            aside: Mutex::default(),
        }
    }

    /// Notes that SOURCE's `rel`, a `what`, is skipped; returns whether to say so (not said
    /// since the last pass began, or it was something else then).
    pub(crate) fn skipped(&self, rel: &Path, what: &'static str) -> bool {
        let mut skipped = crate::lock(&self.skipped);
        if skipped.get(rel) == Some(&what) {
            return false;
        }
        skipped.insert(rel.to_path_buf(), what);
        true
    }

    /// REPLICA's root, made at start-up.
    pub fn set_root(&mut self, root: Root) {
        self.root = Some(root);
    }

    /// Finds out what REPLICA's file system keeps, and stops asking it for the rest.
    pub fn probe(&mut self) {
        if self.opts.dry_run {
            return;
        }
        let Some(root) = &self.root else { return };
        let opts = &mut self.opts;
        let want = probe::Abilities {
            perms: opts.rules.perms,
            owner: opts.rules.owner,
            links: opts.hard_links,
            xattrs: opts.xattrs,
            rename_keeps_mtime: true,
            ctimes: true,
        };
        let found = probe::probe(&root.dir, opts.own.temps(), &self.path, want);
        opts.rules.perms = found.perms;
        opts.rules.owner = found.owner;
        opts.hard_links = found.links;
        opts.xattrs = found.xattrs;
        opts.rules.acls = found.xattrs;
        opts.stamp_after_rename = !found.rename_keeps_mtime;
        opts.ctimes = found.ctimes;
    }

    /// The backup directory, made at start-up.
    pub fn set_backup(&mut self, backup: Backup) {
        self.backup = Some(backup);
    }

    pub(crate) fn root_dir(&self) -> Option<&dir::Dir> {
        self.root.as_ref().map(|r| &r.dir)
    }

    pub(crate) fn own(&self) -> &OwnFiles {
        &self.opts.own
    }

    /// Whether a path in SOURCE (relative) takes part in the mirror: not one of foldersync's own
    /// files, not excluded.
    pub(crate) fn excluded(&self, rel: &Path, is_dir: bool) -> bool {
        self.opts.filter.excludes_path(rel, is_dir)
    }

    fn run_sync(&self, source: &Root, batch: Batch, full: bool, stats: &Stats) -> Outcome {
        let mut run = round::Round::new(self, source, stats, full);
        run.retries = batch.retries;
        if full {
            if let Some(view) = &self.dry_view {
                crate::lock(view).clear();
            }
            // A pass meets every name again, the held orphans among them.
            self.known.clear();
            crate::lock(&self.held).clear();
            crate::lock(&self.skipped).clear();
        }
        let mut unmade = std::collections::HashSet::new();
        for (from, to) in &batch.renames {
            if self.stop.is_set() {
                break;
            }
            if !rename::rename(&run, from, to) {
                unmade.insert(to);
            }
        }
        // A rename not made as one: what REPLICA holds at its new name (if anything) is not the
        // copy of what SOURCE moved there, and the ctimes below it say nothing of it.
        let mut paths = batch.paths;
        for (path, look) in paths.iter_mut() {
            look.verify |= unmade.contains(path);
        }
        let outcome = drive::drive(run, &paths);
        if full && !self.stop.is_set() {
            crate::lock(&self.mounts).pass_ended();
            if let Some(backup) = self.backup.as_ref().filter(|_| !self.opts.dry_run) {
                let pruned = backup.prune_old(&|| self.stop.is_set());
                if pruned > 0 {
                    info!("removed {pruned} versions older than --backup-max-age from the backup directory");
                }
            }
        }
        outcome
    }
}

impl Replica for Mirror {
    fn describe(&self) -> String {
        esc(&self.path).to_string()
    }

    fn check(&mut self) -> Result<RootState, RootError> {
        let Some(root) = &self.root else {
            return Ok(RootState::Same);
        };
        match root.now() {
            AtPath::Same => Ok(RootState::Same),
            AtPath::Replaced(new) => {
                let empty = new.is_empty(|n, _| own::is_temp_name(n)).unwrap_or(false);
                if empty {
                    warn!(
                        "REPLICA {} was replaced by a new, empty directory: mirroring into it",
                        esc(&self.path)
                    );
                    self.root = Some(new);
                    Ok(RootState::Renewed)
                } else {
                    Err(RootError::Replaced(format!(
                        "REPLICA {} was replaced by another directory that is not empty; \
                         nothing is written there until foldersync is restarted",
                        esc(&self.path)
                    )))
                }
            }
            AtPath::Gone(e) if e.kind() == std::io::ErrorKind::NotFound => self.recreate(),
            now => Err(RootError::Unusable(
                root::problem("REPLICA", &self.path, &now).unwrap_or_default(),
            )),
        }
    }

    fn identity(&self) -> Option<String> {
        Some(self.root.as_ref()?.fingerprint())
    }

    fn mount_root(&self) -> bool {
        self.root.as_ref().is_some_and(|r| r.mount_root)
    }

    fn survey(&self, source: &Root) -> Option<Result<survey::Survey, String>> {
        let root = self.root.as_ref()?;
        Some(
            survey::survey(&source.dir, &root.dir, &self.opts.own, &self.opts.filter)
                .map_err(|e| format!("cannot look at what REPLICA {} holds: {e}", esc(&self.path))),
        )
    }

    fn source_mounts(&self) -> std::collections::BTreeSet<PathBuf> {
        crate::lock(&self.mounts).points.known()
    }

    fn know_source_mounts(&mut self, mounts: std::collections::BTreeSet<PathBuf>) {
        crate::lock(&self.mounts).points.know(mounts);
    }

    fn has_content(&self) -> bool {
        let own = &self.opts.own;
        self.root.as_ref().is_some_and(|root| {
            !root
                .is_empty(|name, _| own::is_temp_name(name) || own.in_replica(Path::new(name)))
                .unwrap_or(false)
        })
    }

    fn pass(&mut self, source: &Root, stats: &Stats) -> Outcome {
        let batch = Batch {
            paths: vec![(PathBuf::new(), Look::TREE)],
            ..Batch::default()
        };
        self.run_sync(source, batch, true, stats)
    }

    fn apply(&mut self, source: &Root, batch: Batch, stats: &Stats) -> Outcome {
        self.run_sync(source, batch, false, stats)
    }

    fn tick(&mut self, source: &Root, stats: &Stats) -> Option<std::time::Instant> {
        if crate::lock(&self.held).is_empty() {
            return None;
        }
        let run = round::Round::new(self, source, stats, false);
        let next = self.expire_held(&run, std::time::Instant::now());
        drive::drive(run, &[]);
        next
    }
}

impl Mirror {
    /// REPLICA's root vanished. It is made again only where that cannot write into the wrong
    /// place: its parent still on the device REPLICA was on (an unmounted disk leaves its mount
    /// point on another device, and below a vanished mount point the parent is missing).
    fn recreate(&mut self) -> Result<RootState, RootError> {
        self.make_again().map_err(RootError::Gone)
    }

    fn make_again(&mut self) -> Result<RootState, String> {
        let gone = || format!("REPLICA {} is gone", esc(&self.path));
        let Some(old) = &self.root else {
            return Err(gone());
        };
        if self.opts.dry_run || old.mount_root {
            return Err(gone());
        }
        // The parent as it was: reached without a symlink, and the very same directory.
        let (parent, Some(name)) = Dir::open_parent(&self.path).map_err(|_| gone())? else {
            return Err(gone());
        };
        if parent.stat().ok().map(|m| m.id) != old.parent {
            return Err(format!(
                "{}, and its parent is not the directory it was (was a disk unmounted?)",
                gone()
            ));
        }
        // Private until a pass gives it SOURCE's root's mode.
        match parent.make_dir(&name, 0o700) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("{}, and cannot be made again: {e}", gone())),
        }
        let root = Root::open(&self.path)
            .map_err(|e| format!("{}, and cannot be made again: {e}", gone()))?;
        info!("REPLICA {} was gone: made it again", esc(&self.path));
        self.root = Some(root);
        Ok(RootState::Renewed)
    }
}
