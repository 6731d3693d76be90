//! One copy of a file into place: into a temporary file in the target's directory (or, for a
//! file that only grew, appended in place), its owner, permissions, times and extended
//! attributes set, then renamed over REPLICA's name.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;
use std::time::Instant;

use super::source::{CopyProgress, Failure, TempGuard};
use super::{Copied, How, OPEN_GRACE};
use crate::dir::copy::{self as data, DataError};
use crate::dir::lease::{self, Lease};
use crate::dir::{self, xattr, Dir, Id, Meta};
use crate::mirror::dir_pair::DirPair;
use crate::mirror::round::Round;

impl Round<'_> {
    /// Copies `input` into a temporary file beside the target and renames it into place (or
    /// appends to the copy in place, for a file that only grew). A read lease on `input`,
    /// taken right before the bytes move, tells whether a writer has it open (then the copy
    /// waits, unless `force`), or opens it meanwhile (then the copy is dropped).
    pub(super) fn copy_once(
        &self,
        dst: &Dir,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
        How {
            update,
            force,
            dst: dst_meta,
        }: How,
        (input, before): (&File, &Meta),
    ) -> Result<Copied, Failure> {
        let read = |op: &'static str| move |e| Failure::Failed(self.src_err(op, rel, e));
        let failed = |op: &'static str| move |e| Failure::Failed(self.dst_err(op, rel, e));
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
        let kept =
            (self.put_in_place(dst, tmp.as_ref(), name, rel)).map_err(|(op, e)| failed(op)(e))?;
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
