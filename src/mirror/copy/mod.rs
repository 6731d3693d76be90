//! Copying one file into place: into a temporary file beside the target, with its metadata,
//! checked against the source once more, then renamed over the target. A reader never sees a
//! half-written file under the final name. A file a writer has open waits for its close (a
//! read lease says so); one that only grew is appended to ([`append`]); [`source`] holds what a
//! copy checks as it runs.

mod append;
mod once;
mod source;

pub(super) use source::{CopyProgress, Failure, TempGuard};

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use log::{debug, warn};

use std::fs::File;
use std::time::{Duration, Instant};

use super::act::Acted;
use super::change::Change;
use super::dir_pair::{DirPair, Incoming};
use super::orphans::Claim;
use super::round::Round;
use crate::dir::{self, xattr, Id, Kind, Meta};
use crate::escape::rel as show;
use crate::stats::Count;

/// How often a copy is tried when the source keeps changing under it (passes only).
const COPY_ATTEMPTS: usize = 3;
pub use crate::timing::OPEN_GRACE;

/// What a copy did.
pub(super) struct Copied {
    bytes: u64,
    kept: Option<PathBuf>,
    /// The copy's identity in REPLICA (for a file with more than one link).
    replica: Option<Id>,
    /// The new bytes were appended to REPLICA's copy in place.
    appended: bool,
    /// Copied while a writer had the file open (it stayed open too long to wait for).
    open: bool,
}

/// What became of a file [`Round::copy`] was asked to copy.
enum After {
    /// Copied, or given up on (vanished, failed, kept changing).
    Finished,
    /// Copied while a writer had it open.
    Live,
    /// Waiting for its writer, or for a retry.
    Waiting,
}

/// How a copy is made.
#[derive(Clone, Copy)]
pub(super) struct How {
    /// REPLICA has a file by that name already.
    update: bool,
    /// Copy even if a writer has the file open.
    force: bool,
    /// What REPLICA holds there, as found.
    dst: Option<Meta>,
}

impl Round<'_> {
    /// Copies one file into place. `opened` is the source already opened (and looked at) by
    /// the caller, for the first try; `dst` what REPLICA holds there. A file that is open for
    /// writing waits for its writer (the watcher sees the close); one that stays open is copied
    /// anyway, at most every [`OPEN_GRACE`], and the log says so. A pass retries a file that
    /// changes while it is read. A name of a SOURCE inode that another name already carries
    /// becomes a hard link instead.
    pub fn copy(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
        update: bool,
        opened: Option<(File, Meta)>,
        dst: Option<Meta>,
    ) {
        let started = Instant::now();
        let after = self.copy_tries(node, name, rel, update, opened, dst);
        if !self.m.opts.requeue {
            return;
        }
        let mut busy = crate::lock(&self.m.busy);
        match after {
            After::Waiting => {}
            // Copied while its writer had it open: the next such copy waits the grace, or
            // nine times as long as this one took, so a large file kept open (a database)
            // costs at most a tenth of the time in copies.
            After::Live => {
                let gap = OPEN_GRACE.max(started.elapsed() * 9);
                busy.insert(rel.to_path_buf(), Instant::now() + gap);
            }
            After::Finished => {
                busy.remove(rel);
            }
        }
    }

    /// [`Round::copy`]'s tries: what became of the file.
    fn copy_tries(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
        update: bool,
        mut opened: Option<(File, Meta)>,
        dst: Option<Meta>,
    ) -> After {
        let attempts = if self.m.opts.requeue {
            1
        } else {
            COPY_ATTEMPTS
        };
        let mut force = self.open_too_long(rel);
        let mut tries = 0;
        loop {
            tries += 1;
            let found = match opened.take() {
                Some(found) => Ok(found),
                None => self.open_source(node, name, rel),
            };
            let (input, before) = match found {
                Ok(found) => found,
                Err(failure) => {
                    self.failed(failure, rel);
                    return After::Finished;
                }
            };
            let first = tries == 1;
            if let Some(after) =
                self.no_copy_needed(node, name, rel, (&input, &before), (update, first))
            {
                return after;
            }
            let how = How { update, force, dst };
            match self.copy_in(node, name, rel, how, (&input, &before)) {
                Ok(after) => return after,
                Err(Failure::Busy) if self.m.opts.requeue => {
                    // The writer's close brings the file back at once; if it stays open, it
                    // is looked at again after OPEN_GRACE and copied anyway.
                    debug!("{} is open for writing: waiting for its writer", show(rel));
                    return After::Waiting;
                }
                Err(Failure::Busy) => {
                    // A pass without a watcher waits a little, then copies it anyway.
                    std::thread::sleep(Duration::from_millis(100));
                    force = tries + 1 >= COPY_ATTEMPTS;
                    continue;
                }
                Err(Failure::Changed) => {
                    debug!("{} changed while being copied", show(rel));
                    if self.m.opts.requeue {
                        crate::lock(&self.retries_later).push(rel.to_path_buf());
                        return After::Waiting;
                    }
                }
                Err(failure) => {
                    self.failed(failure, rel);
                    return After::Finished;
                }
            }
            if tries >= attempts {
                break;
            }
        }
        warn!(
            "{} kept changing while being copied; the replica keeps its previous version until a later pass",
            show(rel)
        );
        self.stats.add(Count::Error);
        crate::lock(&self.failed).push((rel.to_path_buf(), crate::replica::Look::ENTRY));
        After::Finished
    }

    /// What makes a copy unneeded: another name's copy to link to, or (on the `first` try) the
    /// file's earlier self in REPLICA, renamed, if its bytes prove it (or a proof under way:
    /// wait for it). `update`: REPLICA has a file by that name.
    fn no_copy_needed(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
        (input, before): (&File, &Meta),
        (update, first): (bool, bool),
    ) -> Option<After> {
        let file = Incoming {
            node,
            name,
            rel,
            input,
            src: before,
            update,
        };
        if self.m.opts.hard_links && before.nlink > 1 && self.link_instead(&file) {
            return Some(After::Finished);
        }
        if !first {
            return None;
        }
        match self.claim_file(&file) {
            Claim::Claimed => Some(After::Finished),
            Claim::Waiting => {
                let due = Instant::now() + super::orphans::aside::POLL;
                crate::lock(&self.busy_retries).push((rel.to_path_buf(), due));
                Some(After::Waiting)
            }
            Claim::No => None,
        }
    }

    /// The copy itself, through the executor: said and counted (a dry run's only said), and
    /// for a file with other names, the copy made the one they link to.
    fn copy_in(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
        how: How,
        (input, before): (&File, &Meta),
    ) -> Result<After, Failure> {
        let copy = |dst: &dir::Dir| {
            let done = self.copy_once(dst, node, name, rel, how, (input, before))?;
            if let Some(replica) = done.replica.filter(|_| self.m.opts.hard_links) {
                if before.nlink > 1 {
                    self.links.settle(before.id, replica, true);
                }
            }
            Ok(done)
        };
        let change = |done: Option<&Copied>| Change::Copied {
            rel: rel.to_path_buf(),
            bytes: done.map_or(before.size, |d| d.bytes),
            update: how.update,
            kept: done.and_then(|d| d.kept.clone()),
            meta: Some(*before),
            open: done.is_some_and(|d| d.open),
            appended: done.is_some_and(|d| d.appended),
        };
        Ok(match self.attempt(node.dst.as_ref(), copy, change)? {
            Acted::Done(Copied { open: true, .. }) => After::Live,
            Acted::Done(_) | Acted::Dry | Acted::Failed => After::Finished,
        })
    }

    /// Whether `rel`, found open for writing earlier, may now be copied anyway (it has been
    /// open for [`OPEN_GRACE`], or the gap after its last such copy has passed).
    fn open_too_long(&self, rel: &Path) -> bool {
        if !self.m.opts.requeue {
            return false;
        }
        let busy = crate::lock(&self.m.busy);
        busy.get(rel).is_some_and(|due| Instant::now() >= *due)
    }

    pub(super) fn failed(&self, failure: Failure, rel: &Path) {
        match failure {
            Failure::Vanished => debug!("{} vanished before it could be copied", show(rel)),
            Failure::Failed(e) => self.fail(e),
            Failure::Changed | Failure::Stopped | Failure::Busy => {}
        }
    }

    /// Opens the source file and takes its metadata.
    pub(super) fn open_source(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
    ) -> Result<(File, Meta), Failure> {
        let Some(src) = &node.src else {
            return Err(Failure::Vanished);
        };
        let read = |op: &'static str| move |e| Failure::Failed(self.src_err(op, rel, e));
        let input = match src.open_file(name) {
            Ok(f) => f,
            Err(e) if dir::is_not_a_dir(&e) => return Err(Failure::Vanished),
            Err(e) => return Err(read("open")(e)),
        };
        let mut before = dir::meta_of(&input).map_err(read("stat"))?;
        if before.kind != Kind::File {
            return Err(Failure::Vanished);
        }
        self.mark_acl(&xattr::At::Fd(&input), &mut before);
        Ok((input, before))
    }
}
