//! The operations on one REPLICA entry besides copies and removals: making a directory,
//! setting a file's or a symlink's attributes, making a symlink, marking a copy as checked, and
//! keeping extended attributes in step. Each logs and counts through [`Run::note`].

use std::ffi::OsStr;
use std::path::Path;

use super::apply::Run;
use super::copy::TempGuard;
use super::done::Done;
use super::node::Node;
use crate::dir::{Dir, Kind, Meta};
use crate::error::Logged;

impl Run<'_> {
    /// Takes the result of writing extended attributes: a file system that does not keep them
    /// is said once per run, not once per file.
    pub fn xattrs(&self, result: std::io::Result<bool>) {
        use std::sync::atomic::Ordering;
        match result {
            Ok(_) => {}
            Err(e) if crate::dir::xattr::unsupported(&e) => {
                if !self.xattrs_refused.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "REPLICA {} does not keep extended attributes ({e}): they are not mirrored",
                        crate::escape::esc(&self.m.path)
                    );
                }
            }
            Err(e) => {
                if !self.xattrs_refused.swap(true, Ordering::Relaxed) {
                    log::warn!("cannot copy extended attributes into REPLICA: {e}");
                }
            }
        }
    }

    /// Creates the directory `name`; returns its handle (`None` in a dry run), or an error that
    /// was logged.
    pub fn make_dir(&self, node: &Node, name: &OsStr, rel: &Path) -> Result<Option<Dir>, Logged> {
        let Some(dst) = node.dst.as_ref().filter(|_| !self.dry_run()) else {
            self.note(Done::MadeDir { rel });
            return Ok(None);
        };
        let made = node
            .writable(|| dst.make_dir(name, 0o700))
            .and_then(|()| dst.open_dir(name));
        match made {
            Ok(dir) => {
                node.touch();
                self.note(Done::MadeDir { rel });
                Ok(Some(dir))
            }
            Err(e) => {
                self.fail(self.dst_err("create directory", rel, e));
                Err(Logged)
            }
        }
    }

    /// Sets a file's permissions, owner and times, its bytes being the same.
    pub fn attrs(
        &self,
        node: &Node,
        name: &OsStr,
        rel: &Path,
        src: &Meta,
        dst: &Meta,
        newer: bool,
    ) {
        if let Some(dir) = node.dst.as_ref().filter(|_| !self.dry_run()) {
            if newer {
                self.sync_xattrs(node, name);
            }
            if let Err(e) = set_attrs(dir, name, src, dst, &self.m.opts.rules) {
                return self.fail(self.dst_err("set metadata of", rel, e));
            }
        }
        self.note(Done::Attrs { rel, meta: *src });
    }

    /// Makes REPLICA's `name` carry SOURCE's extended attributes (its status changed, so they
    /// may have; or foldersync just moved the copy's ctime, by linking it, which would hide such
    /// a change from later looks).
    pub(super) fn sync_xattrs(&self, node: &Node, name: &OsStr) {
        use crate::dir::xattr::{self, At};
        let (Some(src), Some(dst)) = (&node.src, &node.dst) else {
            return;
        };
        if !self.m.opts.xattrs {
            return;
        }
        let (from, to) = (At::Name(src, name), At::Name(dst, name));
        let result = xattr::read(&from).and_then(|want| {
            let have = xattr::read(&to)?;
            xattr::write(&to, &want, &have)
        });
        self.xattrs(result);
    }

    /// Creates the symlink `name`, or atomically re-points it.
    pub fn symlink(&self, node: &Node, name: &OsStr, rel: &Path, target: &Path, update: bool) {
        let Some(src) = &node.src else { return };
        let meta = match src.stat_at(name) {
            Ok(Some(meta)) if meta.kind == Kind::Symlink => meta,
            Ok(_) => return,
            Err(e) => return self.fail(self.src_err("read symlink", rel, e)),
        };
        if let Some(dst) = node.dst.as_ref().filter(|_| !self.dry_run()) {
            let owner = self.m.opts.rules.owner;
            let tmp = self.m.own().temps().fresh();
            let made = node.writable(|| dst.symlink(target, &tmp)).and_then(|()| {
                let guard = TempGuard::new(dst, &tmp);
                if owner {
                    dst.chown_at(&tmp, meta.uid, meta.gid)?;
                }
                if self.m.opts.xattrs {
                    use crate::dir::xattr::{self, At};
                    self.xattrs(xattr::copy(&At::Name(src, name), &At::Name(dst, &tmp)));
                }
                dst.set_times_at(&tmp, &meta)?;
                if update {
                    if let Some(backup) = &self.m.backup {
                        backup.keep_old(dst, name, rel)?;
                    }
                }
                dst.rename(&tmp, dst, name)?;
                guard.disarm();
                Ok(())
            });
            if let Err(e) = made {
                return self.fail(self.dst_err("create symlink", rel, e));
            }
            node.touch();
        }
        self.note(Done::Symlink {
            rel,
            target,
            update,
            meta,
        });
    }

    /// Marks REPLICA's copy of a file as checked: its status changed in SOURCE, but its bytes
    /// and attributes are the same. Setting its times again moves the copy's ctime, so the next
    /// pass does not compare the bytes again.
    pub fn verified(&self, node: &Node, name: &OsStr, rel: &Path, src: &Meta) {
        if self.dry_run() {
            return;
        }
        let Some(dst) = &node.dst else { return };
        self.sync_xattrs(node, name);
        match dst.set_times_at(name, src) {
            Ok(()) => log::debug!("checked {}: same bytes", crate::escape::rel(rel)),
            Err(e) => self.fail(self.dst_err("set metadata of", rel, e)),
        }
    }

    /// Sets a symlink's owner and times (its permissions mean nothing on Linux).
    pub fn symlink_attrs(&self, node: &Node, name: &OsStr, rel: &Path, src: &Meta, newer: bool) {
        if self.dry_run() {
            return;
        }
        if newer {
            self.sync_xattrs(node, name);
        }
        let Some(dst) = &node.dst else { return };
        let result = (|| {
            if self.m.opts.rules.owner {
                dst.chown_at(name, src.uid, src.gid)?;
            }
            dst.set_times_at(name, src)
        })();
        if let Err(e) = result {
            self.fail(self.dst_err("set metadata of", rel, e));
        }
    }
}

/// Applies permissions, ownership and times to the existing file `name`, changing only what
/// differs, never through a symlink.
fn set_attrs(
    dir: &Dir,
    name: &OsStr,
    src: &Meta,
    dst: &Meta,
    rules: &super::plan::Rules,
) -> std::io::Result<()> {
    let chown = rules.owner && (src.uid != dst.uid || src.gid != dst.gid);
    if chown {
        dir.chown_at(name, src.uid, src.gid)?;
    }
    // chown may clear set-id bits, so permissions come after it.
    if rules.perms && (chown || rules.perm_of(src.perm) != dst.perm) {
        dir.chmod_at(name, rules.perm_of(src.perm))?;
    }
    if !src.mtime.near(dst.mtime, rules.window) {
        dir.set_times_at(name, src)?;
    }
    Ok(())
}
