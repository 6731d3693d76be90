//! The end of a pass: its orphans indexed by the names inside (directories) and by size and
//! mtime (files, those inside orphan directories too), its arrivals made then (a second walk),
//! each taking a proven earlier self where there is one; what nothing claims is removed.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::super::dir_pair::DirPair;
use super::super::round::Round;
use super::{names_of, Index, Newcomer, Orphan, RENAME_MIN};
use crate::dir::{Kind, Meta};
use crate::replica::Look;

impl Round<'_> {
    /// The end of a pass's first part: arrival directories take the orphan directories that
    /// hold the same names. Returns the arrivals, for the driver to walk (files take their proven
    /// earlier selves on the way); then [`Round::reconciled`] removes what nothing took.
    pub(in crate::mirror) fn reconcile(&self) -> Vec<(PathBuf, Look)> {
        if !self.full || !self.deferring.swap(false, Ordering::Relaxed) {
            return Vec::new();
        }
        // Found by walkers in any order: sorted, so that the same trees give the same matches
        // and the same lines, in path order.
        let mut newcomers = std::mem::take(&mut *crate::lock(&self.newcomers));
        newcomers.sort_by(|a, b| a.rel.cmp(&b.rel));
        let mut orphans = std::mem::take(&mut *crate::lock(&self.orphans));
        orphans.sort_by(|a, b| a.rel.cmp(&b.rel));
        let index = if newcomers.is_empty() || orphans.is_empty() {
            self.index_plain(orphans)
        } else {
            self.index(orphans)
        };
        *crate::lock(&self.index) = Some(index);
        let taken = self.match_dirs(&newcomers);
        // A directory taken by its names may be another directory's copy: its files compared.
        let look = |rel: &PathBuf| {
            if taken.contains(rel) {
                Look::MOVED_IN
            } else {
                Look::TREE
            }
        };
        let mut paths: Vec<(PathBuf, Look)> = newcomers
            .into_iter()
            .map(|n| {
                let look = look(&n.rel);
                (n.rel, look)
            })
            .collect();
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        paths
    }

    /// A pass's end, after its newcomers were walked: what nothing claimed is removed.
    pub(in crate::mirror) fn reconciled(&self) {
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
        let mut all = orphans;
        all.extend(self.files_inside(dirs));
        let mut index = self.index_plain(all);
        for (i, o) in index.orphans.iter().enumerate() {
            match o.kind {
                Kind::File if o.size >= RENAME_MIN => {
                    index.files.entry((o.size, o.mtime)).or_default().push(i)
                }
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
            by_path: orphans
                .iter()
                .enumerate()
                .map(|(i, o)| (o.rel.clone(), i))
                .collect(),
            orphans,
            dirs: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// Renames orphan directories to the arrivals that hold the same names.
    /// Returns the arrivals that took one.
    fn match_dirs(&self, newcomers: &[Newcomer]) -> std::collections::HashSet<PathBuf> {
        let mut taken = std::collections::HashSet::new();
        for n in newcomers.iter().filter(|n| n.kind == Kind::Dir) {
            if let Some(names) = self
                .source
                .dir
                .open_beneath(&n.rel)
                .ok()
                .and_then(|d| names_of(&d))
            {
                if self.take_dir(&names, &n.rel) {
                    taken.insert(n.rel.clone());
                }
            }
        }
        taken
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
            if self.rename_orphan(&orphan, rel, false) {
                self.taken(&orphan);
                return true;
            }
        }
        false
    }

    /// The untaken orphan files with `src`'s size and mtime.
    pub(super) fn indexed_files(&self, src: &Meta) -> Vec<Orphan> {
        let index = crate::lock(&self.index);
        let Some(index) = index.as_ref() else {
            return Vec::new();
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
    }

    /// `orphan` was claimed: no longer held, offered or removed.
    pub(super) fn taken(&self, orphan: &Orphan) {
        if let Some(index) = crate::lock(&self.index).as_mut() {
            if let Some(&i) = index.by_path.get(&orphan.rel) {
                index.taken[i] = true;
            }
        }
        crate::lock(&self.m.held).take(&orphan.rel);
        crate::lock(&self.left).retain(|o| o.rel != orphan.rel);
    }

    /// In a pass's second part: a new directory takes an orphan left from the first.
    pub(super) fn claim_indexed_dir(&self, node: &DirPair, name: &OsStr, rel: &Path) -> bool {
        if self.deferring.load(Ordering::Relaxed) || crate::lock(&self.index).is_none() {
            return false;
        }
        let names = node
            .src
            .as_ref()
            .and_then(|d| d.open_dir(name).ok())
            .and_then(|d| names_of(&d));
        names.is_some_and(|names| self.take_dir(&names, rel))
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
}
