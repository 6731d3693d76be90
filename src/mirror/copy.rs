//! Copying one file into place: into a temporary file beside the target, with its metadata,
//! checked against the source once more, then renamed over the target. A reader never sees a
//! half-written file under the final name.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use log::{debug, warn};

use super::apply::Run;
use super::done::Done;
use super::node::Node;
use crate::dir::copy::{self as data, DataError, Progress};
use std::fs::File;

use crate::dir::{self, xattr, Dir, Id, Kind, Meta};
use crate::error::PathError;
use crate::escape::rel as show;
use crate::stats::Count;

/// How often a copy is tried when the source keeps changing under it (passes only).
const COPY_ATTEMPTS: usize = 3;

impl Run<'_> {
    /// Copies one file into place, retrying in a pass when the source changes while it is read.
    /// `opened` is the source already opened (and looked at) by the caller, for the first try.
    /// A name of a SOURCE inode that another name already carries becomes a hard link instead.
    pub fn copy(
        &self,
        node: &Node,
        name: &OsStr,
        rel: &Path,
        update: bool,
        mut opened: Option<(File, Meta)>,
    ) {
        let attempts = if self.m.opts.requeue {
            1
        } else {
            COPY_ATTEMPTS
        };
        for _ in 0..attempts {
            let found = match opened.take() {
                Some(found) => Ok(found),
                None => self.open_source(node, name, rel),
            };
            let (input, before) = match found {
                Ok(found) => found,
                Err(failure) => return self.failed(failure, rel),
            };
            if self.m.opts.hard_links
                && before.nlink > 1
                && self.link_instead(node, name, rel, &before, update)
            {
                return;
            }
            match self.copy_once(node, name, rel, update, &input, &before) {
                Ok((bytes, kept, replica)) => {
                    if self.m.opts.hard_links && before.nlink > 1 {
                        if let Some(replica) = replica {
                            self.links.settle(before.id, replica, true);
                        }
                    }
                    return self.note(Done::Copied {
                        rel,
                        bytes,
                        update,
                        kept,
                        meta: before,
                    });
                }
                Err(Failure::Changed) => {
                    debug!("{} changed while being copied", show(rel));
                    if self.m.opts.requeue {
                        crate::lock(&self.retries).push(rel.to_path_buf());
                        return;
                    }
                }
                Err(failure) => return self.failed(failure, rel),
            }
        }
        warn!(
            "{} kept changing while being copied; the replica keeps its previous version until a later pass",
            show(rel)
        );
        self.stats.add(Count::Error);
    }

    pub(super) fn failed(&self, failure: Failure, rel: &Path) {
        match failure {
            Failure::Vanished => debug!("{} vanished before it could be copied", show(rel)),
            Failure::Failed(e) => self.fail(e),
            Failure::Changed | Failure::Stopped => {}
        }
    }

    /// Opens the source file and takes its metadata.
    pub(super) fn open_source(
        &self,
        node: &Node,
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
        let before = dir::meta_of(&input).map_err(read("stat"))?;
        if before.kind != Kind::File {
            return Err(Failure::Vanished);
        }
        Ok((input, before))
    }

    /// Copies `input` into a temporary file beside the target and renames it into place.
    /// Returns the bytes written, where the old version was kept, and (for a file with more
    /// than one link) the new copy's identity.
    fn copy_once(
        &self,
        node: &Node,
        name: &OsStr,
        rel: &Path,
        update: bool,
        input: &File,
        before: &Meta,
    ) -> Result<(u64, Option<PathBuf>, Option<Id>), Failure> {
        let read = |op: &'static str| move |e| Failure::Failed(self.src_err(op, rel, e));
        let failed = |op: &'static str| move |e| Failure::Failed(self.dst_err(op, rel, e));
        let Some(dst) = node.dst.as_ref().filter(|_| !self.dry_run()) else {
            return Ok((before.size, None, None));
        };
        let tmp = self.m.own().temps().fresh();
        // Made with its final permissions where the umask and set-ID bits allow, which saves a
        // chmod; otherwise private until they are set.
        let rules = &self.m.opts.rules;
        let perm = rules.perm_of(before.perm);
        let direct = rules.perms && perm & 0o7000 == 0 && perm & !dir::umask() == perm;
        let output = node
            .writable(|| dst.create_file_mode(&tmp, if direct { perm } else { 0o600 }))
            .map_err(failed("create"))?;
        let guard = TempGuard::new(dst, &tmp);
        let progress = CopyProgress(self);
        let bytes = data::copy_data(input, &output, before, &progress).map_err(|e| match e {
            DataError::Stopped => Failure::Stopped,
            DataError::Changed => Failure::Changed,
            DataError::Read(e) => read("read")(e),
            DataError::Write(e) => failed("write")(e),
        })?;
        self.finish_file(input, &output, before, node, !direct)
            .map_err(failed("set metadata of"))?;
        let after = dir::meta_of(input).map_err(read("stat"))?;
        if after.size != before.size || after.mtime != before.mtime {
            return Err(Failure::Changed);
        }
        if self.m.opts.fsync {
            output.sync_all().map_err(failed("flush"))?;
        }
        let replica = if before.nlink > 1 {
            Some(dir::meta_of(&output).map_err(failed("stat"))?.id)
        } else {
            None
        };
        rustix::fs::futimens(&output, &dir::timestamps(before))
            .map_err(std::io::Error::from)
            .map_err(failed("set metadata of"))?;
        drop(output);
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
            dst.set_times_at(name, before)
                .map_err(failed("set metadata of"))?;
        }
        Ok((bytes, kept, replica))
    }

    /// Gives a freshly written file its owner (as root), extended attributes and permissions,
    /// in that order (a chown clears set-id bits and capabilities; an ACL sets mode bits). Its
    /// times come last (and again after the rename where REPLICA's file system stamps renames).
    fn finish_file(
        &self,
        input: &File,
        output: &File,
        meta: &Meta,
        node: &Node,
        chmod: bool,
    ) -> std::io::Result<()> {
        use rustix::fs::{Gid, Mode, Uid};
        // A new file belongs to this process's user, and to its directory's group when that
        // directory is set-group-ID: only a different owner needs a chown.
        let (uid, mut gid) = self.m.me;
        if let Some(parent) = node.have.filter(|h| h.perm & 0o2000 != 0) {
            gid = parent.gid;
        }
        if self.m.opts.rules.owner && (meta.uid, meta.gid) != (uid, gid) {
            rustix::fs::fchown(
                output,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )?;
        }
        if self.m.opts.xattrs {
            let (from, to) = (xattr::At::Fd(input), xattr::At::Fd(output));
            if node.inherits_acl() {
                // The directory's default ACL gave the new file one: it must end as SOURCE's.
                self.xattrs(xattr::read(&from).and_then(|want| {
                    let have = xattr::read(&to)?;
                    xattr::write(&to, &want, &have)
                }));
            } else {
                self.xattrs(xattr::copy(&from, &to));
            }
        }
        if chmod && self.m.opts.rules.perms {
            let perm = self.m.opts.rules.perm_of(meta.perm);
            rustix::fs::fchmod(output, Mode::from_raw_mode(perm))?;
        }
        Ok(())
    }
}

/// Why a copy did not complete.
pub(super) enum Failure {
    /// The source changed while it was copied; the temporary file was dropped.
    Changed,
    /// The source is gone, or is no longer a regular file: nothing to copy.
    Vanished,
    Stopped,
    Failed(PathError),
}

struct CopyProgress<'r, 'a>(&'r Run<'a>);

impl Progress for CopyProgress<'_, '_> {
    fn stopped(&self) -> bool {
        self.0.m.stop.is_set()
    }
    fn wrote(&self, n: u64) {
        self.0.stats.add_moving(n);
    }
}

/// Removes a temporary file when dropped, unless it was renamed into place.
pub struct TempGuard<'d> {
    dir: &'d Dir,
    name: OsString,
    armed: bool,
}

impl<'d> TempGuard<'d> {
    pub fn new(dir: &'d Dir, name: &OsStr) -> TempGuard<'d> {
        TempGuard {
            dir,
            name: name.to_os_string(),
            armed: true,
        }
    }

    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.dir.unlink(&self.name);
        }
    }
}
