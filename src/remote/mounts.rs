//! File systems mounted inside SOURCE, for a remote REPLICA, as [`crate::mirror::mounts`] keeps
//! them for a local one. Unmounted, one leaves the directory beneath it in SOURCE (empty, or
//! holding what was there before the mount), which rsync would mirror by emptying REPLICA's
//! copy. So the mount points below SOURCE (from `/proc/self/mountinfo`, see
//! [`crate::config::mounts::below`]) are remembered, in the state record across runs too. One
//! known and no longer mounted, while SOURCE still has its directory, is *gone*; one mounted
//! whose file system holds no data (see [`crate::data`]) while REPLICA's copy does is *fresh*
//! (a freshly formatted disk, the wrong disk), unless `--allow-empty-source`. Either is kept:
//! filter rules that come before all others leave it out of every run (`P` and `-`: neither
//! `--delete` nor `--delete-excluded` removes the copy, and nothing is sent into it), a batch
//! drops the paths at or below it (a path a `--files-from` list names passes the rules by), and
//! it is an error for its subtree at every pass, tried again until it is back. Mount points
//! excluded from the mirror, or foldersync's own, are not looked at.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use log::info;

use super::filters::literal;
use super::Remote;
use crate::error::PathError;
use crate::mount_points::{follow_rename, MountPoints, FRESH, GONE};
use crate::replica::{Batch, Look, Outcome};
use crate::root::Root;
use crate::stats::{Count, Stats};

/// Whether REPLICA's copy of `$2` (relative to the root `$1`) holds a file or a symlink:
/// prints `data` if it does. Reads only.
const HOLDS_DATA: &str = r#"cd -P -- "$1" 2>/dev/null || exit 0
[ -d "./$2" ] || exit 0
[ -n "$(find "./$2" \( -type f -o -type l \) -print 2>/dev/null | head -n 1)" ] && echo data
exit 0
"#;

/// Where file systems are mounted inside SOURCE, as a remote replica's looks find them.
#[derive(Debug, Default)]
pub struct SourceMounts {
    /// The mount points known, those no longer mounted, and whether one kept came back.
    pub(super) points: MountPoints,
    /// Mounted ones holding no data while REPLICA's copy holds some.
    fresh: BTreeSet<PathBuf>,
    /// Mounted ones holding no data whose copy holds none either, and those whose copy holds
    /// some (asked once a full pass).
    empty: BTreeSet<PathBuf>,
    full: BTreeSet<PathBuf>,
}

impl SourceMounts {
    /// The kept mount point at or above `rel`, if any.
    fn keeping(&self, rel: &Path) -> Option<&PathBuf> {
        (self.points.gone.iter())
            .chain(&self.fresh)
            .find(|m| rel.starts_with(m))
    }

    /// Whether `rel` is at or below a kept mount point.
    pub fn keeps(&self, rel: &Path) -> bool {
        self.keeping(rel).is_some()
    }

    /// Filter rules that keep the kept mount points' copies: first of every run's rules.
    pub fn rules(&self) -> Vec<OsString> {
        let mut out = Vec::new();
        for rel in self.points.gone.iter().chain(&self.fresh) {
            for prefix in ["--filter=P /", "--filter=- /"] {
                let mut rule = OsString::from(prefix);
                rule.push(OsStr::from_bytes(&literal(rel)));
                rule.push("/");
                out.push(rule);
            }
        }
        out
    }

    /// SOURCE's `from` was renamed to `to`: the mount points below it moved with it.
    fn renamed(&mut self, from: &Path, to: &Path) {
        self.points.renamed(from, to);
        follow_rename(&mut self.fresh, from, to);
    }
}

impl Remote {
    /// Looks at the mount points inside SOURCE again: before a full pass (`full`: then those
    /// known and no longer there at all are forgotten) or a batch.
    pub(super) fn look_at_mounts(&mut self, source: &Root, full: bool) {
        let (filter, own) = (&self.settings.filter, &self.settings.own);
        let ignored = |rel: &Path| filter.excludes_path(rel, true) || own.in_source(rel);
        let now: BTreeSet<PathBuf> = crate::config::mounts::below(&source.path)
            .into_iter()
            .map(|b| b.rel)
            .filter(|rel| !ignored(rel))
            .collect();
        self.mounts.points.know(now.clone());
        let mut gone = BTreeSet::new();
        // Sorted: a directory comes before what is below it.
        let looked_at = |r: &&PathBuf| !now.contains(*r) && !ignored(r);
        for rel in self.mounts.points.known.iter().filter(looked_at) {
            let below_gone = rel.ancestors().skip(1).any(|a| gone.contains(a));
            // Its directory, if SOURCE still has one there: still a mount point (a mount table
            // that cannot be read says nothing), or the directory beneath it.
            let mounted = match source.dir.open_beneath(rel) {
                Ok(dir) => dir.stat().is_ok_and(|m| m.mount_root),
                Err(_) if below_gone => false,
                Err(_) => continue,
            };
            if !mounted {
                gone.insert(rel.clone());
            }
        }
        let mut fresh = BTreeSet::new();
        if !self.settings.allow_empty_source {
            let live = now
                .iter()
                .filter(|r| !gone.iter().any(|g| r.starts_with(g)));
            for rel in live {
                let m = &self.mounts;
                if m.empty.contains(rel) || !self.holds_none(source, rel) {
                    continue;
                }
                let copy = if m.full.contains(rel) {
                    Some(true)
                } else {
                    self.copy_holds_data(rel)
                };
                match copy {
                    Some(true) => _ = self.mounts.full.insert(rel.clone()),
                    Some(false) => _ = self.mounts.empty.insert(rel.clone()),
                    // Not known now: kept this time, and asked again.
                    None => {}
                }
                if copy != Some(false) {
                    fresh.insert(rel.clone());
                }
            }
        }
        let kept_before: Vec<PathBuf> = self
            .mounts
            .points
            .gone
            .iter()
            .chain(&self.mounts.fresh)
            .cloned()
            .collect();
        for rel in kept_before {
            if !gone.contains(&rel) && !fresh.contains(&rel) && now.contains(&rel) {
                info!(
                    "the file system mounted at {} inside SOURCE is back: it is mirrored again",
                    crate::escape::rel(&rel)
                );
                self.mounts.points.back = true;
            }
        }
        if full {
            self.mounts.points.known = now.union(&gone).cloned().collect();
            self.mounts.empty.clear();
            self.mounts.full.clear();
        }
        self.mounts.points.gone = gone;
        self.mounts.fresh = fresh;
    }

    /// Whether SOURCE's mount point `rel` holds no data (it cannot be read: it may).
    fn holds_none(&self, source: &Root, rel: &Path) -> bool {
        let (filter, own) = (&self.settings.filter, &self.settings.own);
        source
            .dir
            .open_beneath(rel)
            .and_then(|dir| crate::data::holds_none(&dir, rel, own, filter))
            .unwrap_or(false)
    }

    /// Whether REPLICA's copy of `rel` holds data, as the remote side says; `None` when it
    /// cannot say.
    fn copy_holds_data(&self, rel: &Path) -> Option<bool> {
        let args = [self.root_path.as_os_str(), rel.as_os_str()];
        match self.ssh.script(HOLDS_DATA, &args) {
            Ok(out) if out.status.success() => Some(out.stdout.starts_with(b"data")),
            _ => None,
        }
    }

    /// Each kept mount point (of those `which` names, or all) as an error for its subtree
    /// (said at debug level where `said` says it was said before), to be tried again.
    fn kept_mounts(
        &self,
        source: &Root,
        stats: &Stats,
        which: Option<&BTreeSet<PathBuf>>,
        said: impl Fn(&Path) -> bool,
    ) -> Vec<(PathBuf, Look)> {
        let kept = self.mounts.points.gone.iter().map(|r| (r, GONE));
        let kept = kept.chain(self.mounts.fresh.iter().map(|r| (r, FRESH)));
        let mut out = Vec::new();
        for (rel, why) in kept.filter(|(r, _)| which.is_none_or(|w| w.contains(*r))) {
            let e = PathError::new("mirror", source.path.join(rel), std::io::Error::other(why));
            let level = if said(rel) {
                log::Level::Debug
            } else {
                log::Level::Error
            };
            log::log!(level, "{e}");
            stats.add(Count::Error);
            out.push((rel.clone(), Look::TREE));
        }
        out
    }

    /// A batch without what lies at or below a kept mount point (the renames into or out of
    /// one too), and the mount points it left out.
    pub(super) fn batch_without_kept(
        &mut self,
        source: &Root,
        mut batch: Batch,
    ) -> (Batch, BTreeSet<PathBuf>) {
        // A rename from inside a kept one (or of the mount point itself: the directory beneath
        // it moved away) is not made; the known mount points follow the other renames.
        let mut left: BTreeSet<PathBuf> = BTreeSet::new();
        let m = &self.mounts;
        let (inside, renames): (Vec<_>, Vec<_>) = std::mem::take(&mut batch.renames)
            .into_iter()
            .partition(|(from, _)| m.keeps(from));
        left.extend(
            inside
                .iter()
                .filter_map(|(from, _)| m.keeping(from).cloned()),
        );
        batch.renames = renames;
        for (from, to) in &batch.renames {
            self.mounts.renamed(from, to);
        }
        self.look_at_mounts(source, false);
        let m = &self.mounts;
        batch.renames.retain(|(from, to)| {
            let kept = m.keeping(from).or_else(|| m.keeping(to));
            kept.inspect(|k| {
                left.insert((*k).clone());
            })
            .is_none()
        });
        batch.paths.retain(|(rel, _)| {
            m.keeping(rel)
                .inspect(|k| {
                    left.insert((*k).clone());
                })
                .is_none()
        });
        // A tree looked at whole holds them too (the whole replica, a directory renamed).
        for (rel, _) in batch.paths.iter().filter(|(_, look)| look.tree) {
            let below = (m.points.gone.iter().chain(&m.fresh)).filter(|k| k.starts_with(rel));
            left.extend(below.cloned());
        }
        (batch, left)
    }

    /// A full pass beside the kept mount points (see above).
    pub(super) fn pass_beside_mounts(&mut self, source: &Root, stats: &Stats) -> Outcome {
        self.look_at_mounts(source, true);
        let mut outcome = self.whole(source, stats, false);
        outcome
            .failed
            .extend(self.kept_mounts(source, stats, None, |_| false));
        outcome.rewatch |= self.mounts.points.take_back();
        outcome
    }

    /// A batch of hints (see [`super::batch::apply`]) beside the kept mount points: what it
    /// names at or below one is left out, and an error for that mount point's subtree.
    pub(super) fn apply_beside_mounts(
        &mut self,
        source: &Root,
        batch: Batch,
        stats: &Stats,
        hold: bool,
    ) -> Outcome {
        let retries = batch.retries.clone();
        let (batch, left) = self.batch_without_kept(source, batch);
        let mut outcome = super::batch::apply(self, source, batch, stats, hold);
        // Said before when it, or a tree that holds it, is tried again.
        let said = |rel: &Path| retries.iter().any(|r| rel.starts_with(r));
        outcome
            .failed
            .extend(self.kept_mounts(source, stats, Some(&left), said));
        outcome.rewatch |= self.mounts.points.take_back();
        outcome
    }
}
