//! Renames found by looking. A REPLICA entry whose name SOURCE lacks (an orphan) and a SOURCE
//! entry new to REPLICA (a newcomer) with the same size and mtime (a file) or the same names
//! inside (a directory) are taken for one entry renamed: REPLICA's is renamed, checked first,
//! and nothing is copied. A pass keeps its orphans and its large newcomers to its end and
//! matches them there (a photo folder reorganised, a VM image renamed while foldersync was
//! stopped); the watcher holds orphans a while before removing them, so that a rename whose
//! halves come in different batches is still a rename. Memory goes to the changes, not the tree.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::apply::Run;
use super::done::Done;
use super::node::Node;
use crate::dir::{Dir, Kind, Meta, Stamp};
use crate::replica::Look;

/// Files smaller than this are copied rather than searched for: a copy costs less.
pub const RENAME_MIN: u64 = 4096;
/// How long the watcher holds an orphan before removing it (plus twice the debounce).
pub const HOLD: Duration = Duration::from_secs(1);

/// A REPLICA entry whose name SOURCE lacks.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub rel: PathBuf,
    pub kind: Kind,
    pub size: u64,
    pub mtime: Stamp,
    /// A file inside an orphan directory, indexed so it can be found; it goes with its
    /// directory if nothing claims it.
    pub inside: bool,
}

/// A pass's orphans, indexed for matching.
#[derive(Debug, Default)]
pub struct Index {
    pub orphans: Vec<Orphan>,
    pub taken: Vec<bool>,
    dirs: HashMap<Vec<OsString>, Vec<usize>>,
    files: HashMap<(u64, Stamp), Vec<usize>>,
}

/// A SOURCE entry new to REPLICA, kept to the end of a pass.
#[derive(Debug, Clone)]
pub struct Newcomer {
    pub rel: PathBuf,
    pub kind: Kind,
    pub size: u64,
    pub mtime: Stamp,
}

impl Run<'_> {
    fn matching(&self) -> bool {
        !self.dry_run() && self.m.root_dir().is_some()
    }

    /// Takes REPLICA's entry `name` (at `rel`), which SOURCE lacks, instead of removing it now:
    /// a pass keeps it to its end, a batch holds it a while. Returns whether it was taken.
    pub(super) fn orphan(&self, dir: Option<&Dir>, name: &OsStr, rel: &Path, kind: Kind) -> bool {
        if !self.matching()
            || !matches!(kind, Kind::File | Kind::Dir)
            || self.m.own().leads_to_own(rel)
            || (self.full && !self.deferring.load(Ordering::Relaxed))
        {
            return false;
        }
        let Some(Ok(Some(meta))) = dir.map(|d| d.stat_at(name)) else {
            return false;
        };
        let orphan = Orphan {
            rel: rel.to_path_buf(),
            kind,
            size: meta.size,
            mtime: meta.mtime,
            inside: false,
        };
        if self.full {
            crate::lock(&self.orphans).push(orphan);
        } else {
            let until = Instant::now() + HOLD + self.m.hold_extra;
            crate::lock(&self.m.held).push((orphan, until));
        }
        true
    }

    /// In a pass, before its end: keeps a large new file or a new directory (in a directory
    /// that existed) for the end, when the orphans are known. Returns whether it was kept.
    pub(super) fn keep_newcomer(
        &self,
        node: &Node,
        rel: &Path,
        kind: Kind,
        meta: Option<&Meta>,
    ) -> bool {
        if !self.full || !self.matching() || node.fresh || !self.deferring.load(Ordering::Relaxed) {
            return false;
        }
        let (size, mtime) = meta.map_or((0, Stamp::default()), |m| (m.size, m.mtime));
        if kind == Kind::File && size < RENAME_MIN {
            return false;
        }
        crate::lock(&self.newcomers).push(Newcomer {
            rel: rel.to_path_buf(),
            kind,
            size,
            mtime,
        });
        true
    }

    /// In a batch: a new file or directory about to be made takes an orphan the watcher holds
    /// that is its earlier self, renamed, instead. Returns whether it did.
    pub(super) fn claim(
        &self,
        node: &Node,
        name: &OsStr,
        rel: &Path,
        kind: Kind,
        src: Option<&Meta>,
    ) -> bool {
        if !self.matching() {
            return false;
        }
        if self.full {
            return self.claim_indexed(node, name, rel, kind, src);
        }
        if crate::lock(&self.m.held).is_empty() {
            return false;
        }
        let window = self.m.opts.rules.window;
        let fits: Box<dyn Fn(&Orphan) -> bool> = match (kind, src) {
            (Kind::File, Some(s)) if s.size >= RENAME_MIN => {
                let s = *s;
                Box::new(move |o: &Orphan| {
                    o.kind == Kind::File && o.size == s.size && o.mtime.near(s.mtime, window)
                })
            }
            (Kind::Dir, _) => {
                let Some(names) = node
                    .src
                    .as_ref()
                    .and_then(|d| d.open_dir(name).ok())
                    .and_then(|d| names_of(&d))
                else {
                    return false;
                };
                Box::new(move |o: &Orphan| {
                    o.kind == Kind::Dir && self.names_at(&o.rel).as_deref() == Some(&names[..])
                })
            }
            _ => return false,
        };
        let found = {
            let mut held = crate::lock(&self.m.held);
            let at = held.iter().position(|(o, _)| fits(o));
            at.map(|at| held.swap_remove(at).0)
        };
        found.is_some_and(|orphan| self.rename_orphan(&orphan, rel))
    }

    /// The sorted names inside REPLICA's directory `rel`.
    fn names_at(&self, rel: &Path) -> Option<Vec<OsString>> {
        names_of(&self.m.root_dir()?.open_beneath(rel).ok()?)
    }

    /// Renames the orphan to `rel`, after checking it is still what it was.
    fn rename_orphan(&self, orphan: &Orphan, rel: &Path) -> bool {
        let Some(root) = self.m.root_dir() else {
            return false;
        };
        let (Some(from_parent), Some(from_name), Some(to_parent), Some(to_name)) = (
            orphan.rel.parent(),
            orphan.rel.file_name(),
            rel.parent(),
            rel.file_name(),
        ) else {
            return false;
        };
        let (Ok(from), Ok(to)) = (root.open_beneath(from_parent), root.open_beneath(to_parent))
        else {
            return false;
        };
        let still = matches!(from.stat_at(from_name), Ok(Some(m)) if m.kind == orphan.kind
            && (m.kind == Kind::Dir || (m.size == orphan.size && m.mtime == orphan.mtime)));
        if !still || from.rename_noreplace(from_name, &to, to_name).is_err() {
            return false;
        }
        self.note(Done::Renamed {
            from: &orphan.rel,
            to: rel,
        });
        crate::lock(&self.touched).extend([from_parent.to_path_buf(), to_parent.to_path_buf()]);
        true
    }

    /// The end of a pass's first part: newcomers take the orphans that are their earlier
    /// selves, the other orphans are removed, and the other newcomers are made (a second walk).
    pub(super) fn reconcile(&self) {
        if !self.full || !self.deferring.swap(false, Ordering::Relaxed) {
            return;
        }
        let newcomers = std::mem::take(&mut *crate::lock(&self.newcomers));
        let orphans = std::mem::take(&mut *crate::lock(&self.orphans));
        if !newcomers.is_empty() && !orphans.is_empty() {
            let index = self.index(orphans);
            *crate::lock(&self.index) = Some(index);
            self.match_dirs(&newcomers);
            for n in newcomers.iter().filter(|n| n.kind == Kind::File) {
                let src = Meta::sized(n.kind, n.size, n.mtime);
                self.take_file(&src, &n.rel);
            }
        } else {
            *crate::lock(&self.index) = Some(self.index_plain(orphans));
        }
        // The newcomers not renamed are made; inside new directories, files may still find
        // their earlier selves among the orphans.
        let mut paths: Vec<(PathBuf, Look)> =
            newcomers.into_iter().map(|n| (n.rel, Look::TREE)).collect();
        if !paths.is_empty() {
            paths.sort_by(|a, b| a.0.cmp(&b.0));
            super::walk::sync_paths(self, &paths);
        }
        // What nothing claimed is gone from SOURCE.
        let Some(index) = crate::lock(&self.index).take() else {
            return;
        };
        for (orphan, taken) in index.orphans.iter().zip(&index.taken) {
            if self.m.stop.is_set() {
                return;
            }
            if !taken && !orphan.inside {
                self.remove_orphan(orphan);
            }
        }
    }

    /// The orphans, with the large files inside orphan directories, indexed by the names
    /// inside (directories) and by size and mtime (files).
    fn index(&self, orphans: Vec<Orphan>) -> Index {
        let dirs: Vec<PathBuf> = orphans
            .iter()
            .filter(|o| o.kind == Kind::Dir)
            .map(|o| o.rel.clone())
            .collect();
        let mut index = self.index_plain(orphans);
        let inside = self.files_inside(dirs);
        index.taken.extend(std::iter::repeat_n(false, inside.len()));
        index.orphans.extend(inside);
        for (i, o) in index.orphans.iter().enumerate() {
            match o.kind {
                Kind::File => index.files.entry((o.size, o.mtime)).or_default().push(i),
                Kind::Dir if !o.inside => {
                    if let Some(names) = self.names_at(&o.rel) {
                        index.dirs.entry(names).or_default().push(i);
                    }
                }
                _ => {}
            }
        }
        index
    }

    fn index_plain(&self, orphans: Vec<Orphan>) -> Index {
        Index {
            taken: vec![false; orphans.len()],
            orphans,
            dirs: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// Renames orphan directories to the newcomers that hold the same names.
    fn match_dirs(&self, newcomers: &[Newcomer]) {
        for n in newcomers.iter().filter(|n| n.kind == Kind::Dir) {
            if let Some(names) = self
                .source
                .dir
                .open_beneath(&n.rel)
                .ok()
                .and_then(|d| names_of(&d))
            {
                self.take_dir(&names, &n.rel);
            }
        }
    }

    /// Renames the first untaken orphan directory holding `names` to `rel`.
    fn take_dir(&self, names: &[OsString], rel: &Path) -> bool {
        let candidates: Vec<Orphan> = {
            let index = crate::lock(&self.index);
            let Some(index) = index.as_ref() else {
                return false;
            };
            index
                .dirs
                .get(names)
                .map(|c| {
                    c.iter()
                        .filter(|i| !index.taken[**i])
                        .map(|i| index.orphans[*i].clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        for orphan in candidates {
            if self.rename_orphan(&orphan, rel) {
                self.mark_taken(&orphan.rel);
                return true;
            }
        }
        false
    }

    /// Renames the first untaken orphan file with `src`'s size and mtime (one of the same name
    /// first) to `rel`.
    fn take_file(&self, src: &Meta, rel: &Path) -> bool {
        let mut candidates: Vec<Orphan> = {
            let index = crate::lock(&self.index);
            let Some(index) = index.as_ref() else {
                return false;
            };
            index
                .files
                .get(&(src.size, src.mtime))
                .map(|c| {
                    c.iter()
                        .filter(|i| !index.taken[**i])
                        .map(|i| index.orphans[*i].clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        candidates.sort_by_key(|o| o.rel.file_name() != rel.file_name());
        for orphan in candidates {
            if self.rename_orphan(&orphan, rel) {
                self.mark_taken(&orphan.rel);
                return true;
            }
        }
        false
    }

    fn mark_taken(&self, rel: &Path) {
        if let Some(index) = crate::lock(&self.index).as_mut() {
            if let Some(i) = index.orphans.iter().position(|o| o.rel == rel) {
                index.taken[i] = true;
            }
        }
    }

    /// In a pass's second part: a new file or directory takes an orphan left from the first.
    fn claim_indexed(
        &self,
        node: &Node,
        name: &OsStr,
        rel: &Path,
        kind: Kind,
        src: Option<&Meta>,
    ) -> bool {
        if self.deferring.load(Ordering::Relaxed) || crate::lock(&self.index).is_none() {
            return false;
        }
        match (kind, src) {
            (Kind::File, Some(s)) if s.size >= RENAME_MIN => self.take_file(s, rel),
            (Kind::Dir, _) => {
                let names = node
                    .src
                    .as_ref()
                    .and_then(|d| d.open_dir(name).ok())
                    .and_then(|d| names_of(&d));
                names.is_some_and(|names| self.take_dir(&names, rel))
            }
            _ => false,
        }
    }

    /// The large files inside the REPLICA directories `dirs`.
    fn files_inside(&self, mut dirs: Vec<PathBuf>) -> Vec<Orphan> {
        let Some(root) = self.m.root_dir() else {
            return Vec::new();
        };
        let mut found = Vec::new();
        while let Some(rel) = dirs.pop() {
            let Ok(dir) = root.open_beneath(&rel) else {
                continue;
            };
            let Ok(list) = dir.list() else { continue };
            for (name, kind) in list {
                match kind {
                    Kind::Dir => dirs.push(rel.join(&name)),
                    Kind::File => {
                        if let Ok(Some(m)) = dir.stat_at(&name) {
                            if m.size >= RENAME_MIN {
                                found.push(Orphan {
                                    rel: rel.join(&name),
                                    kind,
                                    size: m.size,
                                    mtime: m.mtime,
                                    inside: true,
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        found
    }

    /// Removes an orphan nobody claimed, if it is still there.
    fn remove_orphan(&self, orphan: &Orphan) {
        let Some(root) = self.m.root_dir() else {
            return;
        };
        let (Some(parent), Some(name)) = (orphan.rel.parent(), orphan.rel.file_name()) else {
            return;
        };
        let Ok(dir) = root.open_beneath(parent) else {
            return;
        };
        if matches!(dir.stat_at(name), Ok(Some(m)) if m.kind == orphan.kind)
            && self.remove(Some(&dir), name, &orphan.rel, orphan.kind, false)
        {
            crate::lock(&self.touched).push(parent.to_path_buf());
        }
    }
}

impl super::Mirror {
    /// Removes the orphans the watcher held whose time is up (and that nothing claimed), and
    /// says when the next one is due.
    pub(super) fn expire_held(&self, run: &Run, now: Instant) -> Option<Instant> {
        let due: Vec<Orphan> = {
            let mut held = crate::lock(&self.held);
            let (due, keep): (Vec<_>, Vec<_>) =
                held.drain(..).partition(|(_, until)| *until <= now);
            *held = keep;
            due.into_iter().map(|(o, _)| o).collect()
        };
        for orphan in due {
            // Still lacking in SOURCE?
            let back = orphan
                .rel
                .parent()
                .zip(orphan.rel.file_name())
                .is_some_and(|(p, n)| {
                    run.source
                        .dir
                        .open_beneath(p)
                        .is_ok_and(|d| matches!(d.stat_at(n), Ok(Some(_))))
                });
            if !back {
                run.remove_orphan(&orphan);
            }
        }
        crate::lock(&self.held)
            .iter()
            .map(|(_, until)| *until)
            .min()
    }
}

/// The sorted names inside a directory; `None` if it cannot be read or is empty (an empty
/// directory says nothing about which one it was).
fn names_of(dir: &Dir) -> Option<Vec<OsString>> {
    let names: Vec<OsString> = dir.list().ok()?.into_iter().map(|(n, _)| n).collect();
    (!names.is_empty()).then_some(names)
}
