//! Renames: a REPLICA entry whose name SOURCE lacks (an orphan) may be an entry SOURCE has
//! under another name (an arrival), renamed. REPLICA's entry is then renamed too, and nothing is
//! copied, but only on proof: a file's bytes are compared ([`proof`]); a directory is taken by
//! the names inside it (its files are reconciled afterwards as any others are); a symlink by its
//! target. Where the candidates come from:
//! - a rename the kernel reported in this batch: its old name ([`Round::expect`]);
//! - an entry the watcher saw moved away in an earlier batch, held a moment ([`crate::timing::Timing::hold_moved`]);
//! - in a pass, every orphan, kept to the pass's end and indexed ([`index`]), with the large
//!   arrivals kept back until then (a photo folder reorganised while foldersync was stopped).
//!
//! What nothing claims is removed. Memory goes to the changes, not the tree.

pub mod aside;
pub mod found;
mod held;
mod index;
mod proof;

use found::forget_old;
pub use found::{Index, Newcomer, Orphan};
pub use held::Held;
pub use proof::Claim;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::act::Acted;
use super::change::Change;
use super::dir_pair::DirPair;
use super::round::Round;
use crate::dir::{Dir, Kind, Meta};
use crate::escape::rel as show;

pub use crate::rules::RENAME_MIN;

impl Round<'_> {
    /// Whether renames may be looked for: there is a REPLICA to rename in (a dry run only
    /// reports them).
    pub(super) fn matching(&self) -> bool {
        self.m.root_dir().is_some()
    }

    /// A file renamed in SOURCE from `from` to `to` (the kernel said so): `to` may take
    /// REPLICA's `from`, once its bytes are proven the same.
    pub(super) fn expect(&self, from: &Path, to: &Path) {
        let mut expected = crate::lock(&self.expected);
        if let Some(old) = expected.by_new.insert(to.to_path_buf(), from.to_path_buf()) {
            forget_old(&mut expected.old, &old);
        }
        *expected.old.entry(from.to_path_buf()).or_default() += 1;
    }

    /// The old name a rename reported for `to`, taken (it is offered once).
    pub(super) fn expected_for(&self, to: &Path) -> Option<PathBuf> {
        let mut expected = crate::lock(&self.expected);
        let from = expected.by_new.remove(to)?;
        forget_old(&mut expected.old, &from);
        Some(from)
    }

    /// Takes REPLICA's entry `name` (at `rel`), which SOURCE lacks, instead of removing it now:
    /// a pass keeps it to its end; a batch keeps it to its own end when a reported rename
    /// expects it, holds it a while if SOURCE's entry was moved away (a rename's first half),
    /// and a short while if the watcher did not say it was deleted. Returns whether it was
    /// taken.
    pub(super) fn orphan(
        &self,
        dir: Option<&Dir>,
        name: &OsStr,
        rel: &Path,
        kind: Kind,
        look: crate::replica::Look,
    ) -> bool {
        if !self.matching()
            || !matches!(kind, Kind::File | Kind::Dir)
            || self.m.own().leads_to_own(rel)
            || (self.full && !self.deferring.load(Ordering::Relaxed))
        {
            return false;
        }
        let expected = crate::lock(&self.expected).old.contains_key(rel);
        if !self.full && look.removed && !look.moved && !expected {
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
        } else if expected {
            // Removed at the batch's end if its new name did not take it.
            crate::lock(&self.left).push(orphan);
        } else {
            let timing = self.m.opts.timing;
            let hold = if look.moved {
                timing.hold_moved()
            } else {
                timing.hold_brief()
            };
            let until = Instant::now() + hold;
            let names = (kind == Kind::Dir)
                .then(|| dir.and_then(|d| d.open_dir(name).ok()))
                .flatten()
                .and_then(|d| names_of(&d));
            if crate::lock(&self.m.held).hold(orphan, until, names) {
                log::debug!(
                    "{} is gone from SOURCE: held a moment, in case it was renamed",
                    show(rel)
                );
            }
        }
        true
    }

    /// In a pass, before its end: keeps a large new file or a new directory (in a directory
    /// that existed) for the end, when the orphans are known. Returns whether it was kept.
    pub(super) fn keep_newcomer(
        &self,
        node: &DirPair,
        rel: &Path,
        kind: Kind,
        meta: Option<&Meta>,
    ) -> bool {
        if !self.full || !self.matching() || node.fresh || !self.deferring.load(Ordering::Relaxed) {
            return false;
        }
        if kind == Kind::File && meta.is_none_or(|m| m.size < RENAME_MIN) {
            return false;
        }
        crate::lock(&self.newcomers).push(Newcomer {
            rel: rel.to_path_buf(),
            kind,
        });
        true
    }

    /// A new directory about to be made takes an orphan directory that holds the same names
    /// (held by the watcher, or a pass's). Returns whether it did.
    pub(super) fn claim_dir(&self, node: &DirPair, name: &OsStr, rel: &Path) -> bool {
        if !self.matching() {
            return false;
        }
        if self.full {
            return self.claim_indexed_dir(node, name, rel);
        }
        if crate::lock(&self.m.held).is_empty() {
            return false;
        }
        let Some(names) = node
            .src
            .as_ref()
            .and_then(|d| d.open_dir(name).ok())
            .and_then(|d| names_of(&d))
        else {
            return false;
        };
        let Some(orphan) = crate::lock(&self.m.held).take_dir_with(&names) else {
            return false;
        };
        // Its names were read when it was held: it must still hold them.
        if self.names_at(&orphan.rel).as_deref() == Some(&names[..])
            && self.rename_orphan(&orphan, rel, false)
        {
            return true;
        }
        let until = Instant::now() + self.m.opts.timing.hold_brief();
        let names = self.names_at(&orphan.rel);
        crate::lock(&self.m.held).hold(orphan, until, names);
        false
    }

    /// The sorted names inside REPLICA's directory `rel`.
    pub(super) fn names_at(&self, rel: &Path) -> Option<Vec<OsString>> {
        names_of(&self.m.root_dir()?.open_beneath(rel).ok()?)
    }

    /// Renames the orphan to `rel`, after checking it is still what it was; over what is at
    /// `rel` (kept in the backup directory) if `replace`. In a dry run, says so and records it.
    pub(super) fn rename_orphan(&self, orphan: &Orphan, rel: &Path, replace: bool) -> bool {
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
        let from = root.open_beneath(from_parent).ok();
        let to = root.open_beneath(to_parent).ok();
        // A dry run's view takes the rename (for the later looks of a watching dry run).
        if self.m.dry_view.is_some() && !self.view_rename(orphan, rel, from.as_ref()) {
            return false;
        }
        let moved = self.attempt(
            from.as_ref(),
            |from| {
                let to = to.as_ref().ok_or(())?;
                let still = matches!(from.stat_at(from_name), Ok(Some(m)) if m.kind == orphan.kind
                    && (m.kind == Kind::Dir || (m.size == orphan.size && m.mtime == orphan.mtime)));
                // An orphan whose name came back to SOURCE is not one any more.
                if !still || self.in_source(&orphan.rel) {
                    return Err(());
                }
                let moved = self.move_entry((from, from_name), (to, to_name), rel, replace);
                moved.map_err(|_| ())?;
                self.settle.note_dir(from_parent, from);
                self.settle.note_dir(to_parent, to);
                Ok(())
            },
            |_| Change::Renamed {
                from: orphan.rel.clone(),
                to: rel.to_path_buf(),
            },
        );
        matches!(moved, Ok(Acted::Done(()) | Acted::Dry))
    }

    /// A dry run's rename, recorded in its view; `false` if the view has nothing to rename.
    fn view_rename(&self, orphan: &Orphan, rel: &Path, from: Option<&Dir>) -> bool {
        let name = orphan.rel.file_name().unwrap_or_default();
        let Ok(Some(entry)) =
            super::dry_view::stat(self.m.dry_view.as_ref(), from, name, &orphan.rel)
        else {
            return false;
        };
        if let Some(view) = &self.m.dry_view {
            let mut view = crate::lock(view);
            view.set(rel.to_path_buf(), super::change::Would::Is(entry));
            view.set(orphan.rel.clone(), super::change::Would::Gone);
        }
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

    /// Removes an orphan nobody claimed, if it is still there and SOURCE still lacks it.
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
        if self.in_source(&orphan.rel) {
            log::debug!("{} is back in SOURCE: kept", show(&orphan.rel));
            return;
        }
        if matches!(dir.stat_at(name), Ok(Some(m)) if m.kind == orphan.kind)
            && self.remove(Some(&dir), name, &orphan.rel, orphan.kind, false)
        {
            self.settle.note_dir(parent, &dir);
        }
    }

    /// The end of a batch: the old names of reported renames that no new name took go now.
    pub(super) fn remove_left(&self) {
        let left = std::mem::take(&mut *crate::lock(&self.left));
        for orphan in left {
            if self.m.stop.is_set() {
                return;
            }
            self.remove_orphan(&orphan);
        }
    }
}

impl super::Mirror {
    /// Removes the orphans the watcher held whose time is up (and that nothing claimed), and
    /// says when the next one is due.
    pub(super) fn expire_held(&self, run: &Round, now: Instant) -> Option<Instant> {
        let due = crate::lock(&self.held).due(now);
        for orphan in due {
            // Under comparison with an arrival: it stays until the comparison ends.
            if crate::lock(&self.aside).busy_with(&orphan.rel) {
                crate::lock(&self.held).hold(orphan, now + aside::POLL, None);
                continue;
            }
            run.remove_orphan(&orphan);
        }
        crate::lock(&self.held).next()
    }
}

/// The sorted names inside a directory; `None` if it cannot be read or is empty (an empty
/// directory says nothing about which one it was).
fn names_of(dir: &Dir) -> Option<Vec<OsString>> {
    let names: Vec<OsString> = dir.list().ok()?.into_iter().map(|(n, _)| n).collect();
    (!names.is_empty()).then_some(names)
}
