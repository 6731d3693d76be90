//! Directory attributes, an explicit step at a run's end. Making or removing an entry moves a
//! directory's mtime, and a read-only directory may have been opened up to write into it, so a
//! directory's permissions, owner and times are set only once nothing more is written into it:
//! the walk notes the directories that need it (their attributes differ, or an entry in them
//! changed), and [`Round::settle_dirs`] sets them, deepest first, after every walker and copy
//! worker is done. An unchanged pass notes none.

use std::path::Path;

use super::change::Change;
use super::dir_pair::DirPair;
use super::round::Round;
use crate::dir::xattr::{self, At};
use crate::dir::{self, Dir, Id, Meta};

impl Round<'_> {
    /// The walk is done with a directory (its entries, not the copies into it): its extended
    /// attributes are made SOURCE's, and if its other attributes differ it is noted for the end.
    pub(super) fn dir_done(&self, node: &DirPair) {
        if self.m.stop.is_set() || !self.writes() {
            return;
        }
        let (Some(dst), Some(want), Some(have)) = (&node.dst, &node.want, &node.have) else {
            return;
        };
        // Compared on every look (listed first: two system calls where neither side has any).
        if self.m.opts.xattrs {
            if let Some(src) = &node.src {
                let (from, to) = (At::Dir(src), At::Dir(dst));
                let result = xattr::read(&from).and_then(|w| {
                    let h = xattr::read(&to)?;
                    xattr::write(&to, &w, &h)
                });
                self.xattrs(result, &node.rel);
            }
        }
        let rules = &self.m.opts.rules;
        if rules.attrs_differ(want, have) || !want.mtime.near(have.mtime, rules.window) {
            self.settle.note(&node.rel, have.id);
        }
    }

    /// Sets the attributes of every directory noted, deepest first (a parent's come after its
    /// children's, whose making may have needed it writable). After a stop, only those opened
    /// up to write into them are set back: a read-only directory stays read-only.
    pub(super) fn settle_dirs(&self) {
        let dirs = self.settle.take(self.m.stop.is_set());
        if !self.writes() {
            return;
        }
        for (rel, id) in dirs.iter().rev() {
            self.settle_dir(rel, *id);
        }
    }

    /// Sets the attributes of REPLICA's directory `rel`, if it is still the directory `id` the
    /// round noted: one renamed into its place meanwhile (by someone who can write its parent)
    /// is left alone, and the next look sorts it out.
    fn settle_dir(&self, rel: &Path, id: Id) {
        let Some(root) = self.m.root_dir() else {
            return;
        };
        // Gone or changed kind on either side since: the look that follows sorts it out.
        let (Ok(src), Ok(dst)) = (open(&self.source.dir, rel), open(root, rel)) else {
            return;
        };
        let result = src.stat().and_then(|mut want| {
            let now = dst.stat()?;
            // Never across a mount point in REPLICA, nor onto SOURCE itself.
            if (now.mount_root && !rel.as_os_str().is_empty()) || now.id == self.source.id {
                return Ok(None);
            }
            if now.id != id {
                log::debug!(
                    "{} is another directory now: left alone",
                    crate::escape::rel(rel)
                );
                return Ok(None);
            }
            self.mark_acl(&At::Dir(&src), &mut want);
            if self.m.opts.fsync {
                dst.sync()?;
            }
            set_dir_attrs(&dst, &want, &now, &self.m.opts.rules).map(|set| set.then_some(want))
        });
        match result {
            Ok(Some(meta)) => self.note(Change::DirAttrs {
                rel: rel.to_path_buf(),
                meta: Some(meta),
            }),
            Ok(None) => {}
            Err(e) if dir::is_absent(&e) => {}
            Err(e) => self.fail(self.dst_err("set metadata of", rel, e)),
        }
    }
}

/// The directory `rel` beneath `root` (the root itself for an empty path).
fn open(root: &Dir, rel: &Path) -> std::io::Result<Dir> {
    if rel.as_os_str().is_empty() {
        root.dup()
    } else {
        root.open_beneath(rel)
    }
}

/// Gives REPLICA's directory `dst` (as `now`) SOURCE's attributes `want` where they differ.
/// Returns whether any did.
fn set_dir_attrs(
    dst: &Dir,
    want: &Meta,
    now: &Meta,
    rules: &super::plan::Rules,
) -> std::io::Result<bool> {
    let differs = rules.attrs_differ(want, now) || !want.mtime.near(now.mtime, rules.window);
    if !differs {
        return Ok(false);
    }
    let mut want = *want;
    want.perm = rules.perm_for(&want, (now.uid, now.gid));
    if want.mtime.near(now.mtime, rules.window) {
        want.mtime = now.mtime;
    }
    dst.set_attrs(&want, now, rules.owner, rules.perms)?;
    Ok(true)
}
