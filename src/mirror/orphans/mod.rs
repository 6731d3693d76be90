//! Renames found by looking. A REPLICA entry whose name SOURCE lacks (an orphan) and a SOURCE
//! entry new to REPLICA (a newcomer) with the same size and mtime (a file) or the same names
//! inside (a directory) are taken for one entry renamed: REPLICA's is renamed, checked first,
//! and nothing is copied. A pass keeps its orphans and its large newcomers to its end and
//! matches them there (a photo folder reorganised, a VM image renamed while foldersync was
//! stopped); the watcher holds orphans a while before removing them, so that a rename whose
//! halves come in different batches is still a rename. Memory goes to the changes, not the tree.
//! [`index`] does the pass's matching.

mod index;

pub use index::Index;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::apply::Run;
use super::done::Done;
use super::node::Node;
use crate::dir::{Dir, Kind, Meta, Stamp};
use crate::escape::rel as show;

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
    /// a pass keeps it to its end; a batch holds it a while if SOURCE's entry was `moved` away
    /// (a rename's first half). Returns whether it was taken.
    pub(super) fn orphan(
        &self,
        dir: Option<&Dir>,
        name: &OsStr,
        rel: &Path,
        kind: Kind,
        moved: bool,
    ) -> bool {
        if !self.matching()
            || (!self.full && !moved)
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
            let mut held = crate::lock(&self.m.held);
            match held.iter_mut().find(|(o, _)| o.rel == orphan.rel) {
                Some(entry) => *entry = (orphan, until),
                None => {
                    log::debug!(
                        "{} is gone from SOURCE: held a moment, in case it was renamed",
                        show(rel)
                    );
                    held.push((orphan, until));
                }
            }
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
    pub(super) fn names_at(&self, rel: &Path) -> Option<Vec<OsString>> {
        names_of(&self.m.root_dir()?.open_beneath(rel).ok()?)
    }

    /// Renames the orphan to `rel`, after checking it is still what it was.
    pub(super) fn rename_orphan(&self, orphan: &Orphan, rel: &Path) -> bool {
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
        // An orphan whose name came back to SOURCE is not one any more.
        if !still
            || self.in_source(&orphan.rel)
            || from.rename_noreplace(from_name, &to, to_name).is_err()
        {
            return false;
        }
        self.note(Done::Renamed {
            from: &orphan.rel,
            to: rel,
        });
        crate::lock(&self.touched).extend([from_parent.to_path_buf(), to_parent.to_path_buf()]);
        true
    }

    /// Whether SOURCE has something at `rel` (again).
    pub(super) fn in_source(&self, rel: &Path) -> bool {
        rel.parent().zip(rel.file_name()).is_some_and(|(p, n)| {
            self.source
                .dir
                .open_beneath(p)
                .is_ok_and(|d| matches!(d.stat_at(n), Ok(Some(_))))
        })
    }

    /// Removes an orphan nobody claimed, if it is still there.
    pub(super) fn remove_orphan(&self, orphan: &Orphan) {
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
            if run.in_source(&orphan.rel) {
                log::debug!("{} is back in SOURCE: kept", show(&orphan.rel));
            } else {
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
