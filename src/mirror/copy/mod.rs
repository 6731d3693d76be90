//! Copying one file into place: into a temporary file beside the target, with its metadata,
//! checked against the source once more, then renamed over the target. A reader never sees a
//! half-written file under the final name. A file a writer has open waits for its close (a
//! read lease says so); one that only grew is appended to ([`append`]); [`source`] holds what a
//! copy checks as it runs.

mod append;
mod source;

pub(super) use source::{CopyProgress, Failure, TempGuard};

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use log::{debug, warn};

use std::fs::File;
use std::time::{Duration, Instant};

use super::change::Change;
use super::dir_pair::DirPair;
use super::orphans::Claim;
use super::round::Round;
use crate::dir::copy::{self as data, DataError};
use crate::dir::lease::{self, Lease};
use crate::dir::{self, xattr, Id, Kind, Meta};
use crate::escape::rel as show;
use crate::stats::Count;

/// How often a copy is tried when the source keeps changing under it (passes only).
const COPY_ATTEMPTS: usize = 3;
/// How long a file may stay open for writing before it is copied anyway (and then at most this
/// often): a log, a database that is never closed.
pub const OPEN_GRACE: Duration = Duration::from_secs(1);

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
            if self.m.opts.hard_links
                && before.nlink > 1
                && self.link_instead(node, name, rel, (&input, &before), update)
            {
                return After::Finished;
            }
            // Its earlier self, renamed in REPLICA, if its bytes prove it.
            if tries == 1 {
                match self.claim_file(node, name, rel, (&input, &before), update) {
                    Claim::Claimed => return After::Finished,
                    Claim::Waiting => {
                        let due = Instant::now() + super::orphans::aside::POLL;
                        crate::lock(&self.busy_retries).push((rel.to_path_buf(), due));
                        return After::Waiting;
                    }
                    Claim::No => {}
                }
            }
            let how = How { update, force, dst };
            match self.copy_once(node, name, rel, how, &input, &before) {
                Ok(done) => {
                    if self.m.opts.hard_links && before.nlink > 1 {
                        if let Some(replica) = done.replica {
                            self.links.settle(before.id, replica, true);
                        }
                    }
                    self.note(Change::Copied {
                        rel,
                        bytes: done.bytes,
                        update,
                        kept: done.kept,
                        meta: before,
                        open: done.open,
                        appended: done.appended,
                    });
                    return if done.open {
                        After::Live
                    } else {
                        After::Finished
                    };
                }
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

    /// Copies `input` into a temporary file beside the target and renames it into place (or
    /// appends to the copy in place, for a file that only grew). A read lease on `input`,
    /// taken right before the bytes move, tells whether a writer has it open (then the copy
    /// waits, unless `force`), or opens it meanwhile (then the copy is dropped).
    fn copy_once(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
        How {
            update,
            force,
            dst: dst_meta,
        }: How,
        input: &File,
        before: &Meta,
    ) -> Result<Copied, Failure> {
        let read = |op: &'static str| move |e| Failure::Failed(self.src_err(op, rel, e));
        let failed = |op: &'static str| move |e| Failure::Failed(self.dst_err(op, rel, e));
        let Some(dst) = node.dst.as_ref().filter(|_| !self.dry_run()) else {
            return Ok(Copied {
                bytes: before.size,
                kept: None,
                replica: None,
                appended: false,
                open: false,
            });
        };
        let lease = lease::take(input);
        if lease == Lease::Busy && !force {
            if self.m.opts.requeue {
                let due = *crate::lock(&self.m.busy)
                    .entry(rel.to_path_buf())
                    .or_insert_with(|| Instant::now() + OPEN_GRACE);
                crate::lock(&self.busy_retries).push((rel.to_path_buf(), due));
            }
            return Err(Failure::Busy);
        }
        let progress = CopyProgress {
            run: self,
            leased: (lease == Lease::Held).then_some(input),
            live: lease == Lease::Busy,
        };
        if let Some(dst_meta) = dst_meta.filter(|_| update) {
            let appended = self.append(node, name, rel, (input, before), &dst_meta, &progress);
            if let Some(appended) = appended {
                let bytes = appended?;
                node.touch();
                return Ok(Copied {
                    bytes,
                    kept: None,
                    replica: None,
                    appended: true,
                    open: progress.live,
                });
            }
        }
        let tmp = self.m.own().temps().fresh();
        // SOURCE's extended attributes, read first: a file with an ACL, or one whose directory
        // gives new files a default ACL, is made private and opened up only once its ACL is set,
        // so it is never readable beyond its ACL, not even for a moment.
        let want = self.source_xattrs(input, rel);
        let private = node.inherits_acl() || want.as_ref().is_some_and(xattr::Xattrs::has_acl);
        // As root, it is private until it has SOURCE's owner: the group a new file gets (its
        // directory's, if someone made that set-group-ID) could read it meanwhile. Otherwise it
        // is made with its final permissions where the umask and set-ID bits allow, which saves a
        // chmod.
        let rules = &self.m.opts.rules;
        let perm = rules.perm_for(before, self.m.me);
        let direct = rules.perms
            && !rules.owner
            && !private
            && perm & 0o7000 == 0
            && perm & !dir::umask() == perm;
        let made = if direct { perm } else { 0o600 };
        let output = node
            .writable(|| dst.create_file_mode(&tmp, made))
            .map_err(failed("create"))?;
        let guard = TempGuard::new(dst, &tmp);
        // Its owner before its bytes: the group it got (its directory's, if set-group-ID, as
        // that is now) is read back, and made SOURCE's at once where ownership is kept.
        let owned = self
            .own(&output, before)
            .map_err(failed("set metadata of"))?;
        let bytes = data::copy_data(input, &output, before, &progress).map_err(|e| match e {
            DataError::Stopped => Failure::Stopped,
            DataError::Changed => Failure::Changed,
            DataError::Read(e) => read("read")(e),
            DataError::Write(e) => failed("write")(e),
        })?;
        let replica = owned.id;
        self.finish_file(&output, before, node, want, (made, owned, rel))
            .map_err(failed("set metadata of"))?;
        if !progress.settled(input, before).map_err(read("stat"))? {
            return Err(Failure::Changed);
        }
        // Its status moved while it was copied: under a lease that still holds, only its
        // attributes can have (a chmod, an extended attribute): they are set again once it is in
        // place. Without a lease the bytes may have changed too.
        let after = dir::meta_of(input).map_err(read("stat"))?;
        let restamp = after.ctime != before.ctime && !progress.live;
        if restamp && (progress.leased.is_none() || after.mtime != before.mtime) {
            return Err(Failure::Changed);
        }
        if self.m.opts.fsync {
            progress.release();
            output.sync_all().map_err(failed("flush"))?;
        }
        let stamp = || {
            rustix::fs::futimens(&output, &dir::timestamps(before)).map_err(std::io::Error::from)
        };
        stamp().map_err(failed("set metadata of"))?;
        let kept = match (&self.m.backup, update) {
            (Some(backup), true) => {
                Some(backup.keep_old(dst, name, rel).map_err(failed("back up"))?)
            }
            _ => None,
        };
        dst.rename(&tmp, dst, name).map_err(failed("rename into"))?;
        guard.disarm();
        node.touch();
        if self.m.opts.stamp_after_rename {
            // Through the file itself, wherever its name is now.
            stamp().map_err(failed("set metadata of"))?;
        }
        if restamp {
            self.restamp(node, name, rel, input, replica);
        }
        let replica = Some(replica);
        Ok(Copied {
            bytes,
            kept,
            replica,
            appended: false,
            open: progress.live,
        })
    }

    /// Sets the attributes of the copy just renamed into place at `rel` (REPLICA's inode
    /// `replica`) again, from SOURCE's file as it is now (they changed while it was copied).
    fn restamp(&self, node: &DirPair, name: &OsStr, rel: &Path, input: &File, replica: Id) {
        let (Some(dst), Ok(mut src)) = (node.dst.as_ref(), dir::meta_of(input)) else {
            return;
        };
        self.mark_acl(&xattr::At::Fd(input), &mut src);
        match dst.stat_at(name) {
            Ok(Some(now)) if now.id == replica => {
                self.sync_xattrs(node, name, Some(replica));
                let rules = &self.m.opts.rules;
                if rules.attrs_differ(&src, &now) || !src.mtime.near(now.mtime, rules.window) {
                    self.attrs(node, name, rel, &src, &now, false);
                }
            }
            Ok(_) => {}
            Err(e) => self.fail(self.dst_err("stat", rel, e)),
        }
    }

    /// SOURCE's extended attributes, when they are kept (`None` if not, or unreadable: the
    /// file system's refusal is said once).
    fn source_xattrs(&self, input: &File, rel: &Path) -> Option<xattr::Xattrs> {
        if !self.m.opts.xattrs {
            return None;
        }
        match xattr::read(&xattr::At::Fd(input)) {
            Ok(x) => Some(x),
            Err(e) => {
                self.xattrs(Err(e), rel);
                None
            }
        }
    }

    /// Reads a new file's owner and group back, and gives it SOURCE's where ownership is kept.
    fn own(&self, output: &File, meta: &Meta) -> std::io::Result<Owned> {
        use rustix::fs::{Gid, Uid};
        let now = dir::meta_of(output)?;
        let made = (now.uid, now.gid);
        if self.m.opts.rules.owner && (meta.uid, meta.gid) != made {
            rustix::fs::fchown(
                output,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )?;
            return Ok(Owned {
                id: now.id,
                owner: (meta.uid, meta.gid),
                chowned: true,
            });
        }
        Ok(Owned {
            id: now.id,
            owner: made,
            chowned: false,
        })
    }

    /// Gives a freshly written file (made with the permission bits `made`, and owned as
    /// `owned` says) SOURCE's extended attributes `want` and its permissions, in that order (a
    /// chown cleared set-ID bits and capabilities; an ACL sets mode bits). Its times come last,
    /// from the caller.
    fn finish_file(
        &self,
        output: &File,
        meta: &Meta,
        node: &DirPair,
        want: Option<xattr::Xattrs>,
        (made, owned, rel): (u32, Owned, &Path),
    ) -> std::io::Result<()> {
        if let Some(want) = want {
            let to = xattr::At::Fd(output);
            if node.inherits_acl() {
                // The directory's default ACL gave the new file one: it must end as SOURCE's.
                self.xattrs(
                    xattr::read(&to).and_then(|have| xattr::write(&to, &want, &have)),
                    rel,
                );
            } else if !want.is_empty() {
                self.xattrs(xattr::write(&to, &want, &xattr::Xattrs::default()), rel);
            }
        }
        let rules = &self.m.opts.rules;
        let perm = rules.perm_for(meta, owned.owner);
        if rules.perms && (perm != made || owned.chowned) {
            rustix::fs::fchmod(output, rustix::fs::Mode::from_raw_mode(perm))?;
        }
        Ok(())
    }
}

/// A new file's owner, read back (and set to SOURCE's where ownership is kept).
#[derive(Debug, Clone, Copy)]
struct Owned {
    id: Id,
    owner: (u32, u32),
    chowned: bool,
}
