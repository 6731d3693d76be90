//! The operations on one REPLICA entry besides copies and removals: making a directory,
//! setting a file's or a symlink's attributes, making a symlink, marking a copy as checked, and
//! keeping extended attributes in step. Each logs and counts through [`Round::note`].

use std::ffi::OsStr;
use std::path::Path;

use super::act::Acted;
use super::change::Change;
use super::copy::TempGuard;
use super::dir_pair::DirPair;
use super::round::Round;
use crate::dir::handle::Handle;
use crate::dir::{Dir, Id, Kind, Meta};
use crate::error::Logged;

impl Round<'_> {
    /// Takes the result of writing extended attributes: a file system that does not keep them
    /// is said once per run, not once per file.
    pub fn xattrs(&self, result: std::io::Result<bool>, rel: &Path) {
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
            // The entry went away meanwhile: the look that follows its event sorts it out.
            Err(e) if crate::dir::is_absent(&e) => {
                log::debug!(
                    "{} vanished while its extended attributes were copied",
                    crate::escape::rel(rel)
                );
            }
            // Anything else (an attribute too large for REPLICA's file system, a full disk) is
            // an error on this path, tried again like any other.
            Err(e) => self.fail(self.dst_err("set the extended attributes of", rel, e)),
        }
    }

    /// Marks SOURCE's metadata `meta` of the entry `name` in `dir` if it has an ACL that
    /// REPLICA will not carry (see `Rules::perm_for`): one listing, only where that matters.
    pub fn mark_acl_at(&self, dir: &Dir, name: &OsStr, meta: &mut Meta) {
        if self.m.opts.rules.asks_acl() && matches!(meta.kind, Kind::File | Kind::Dir) {
            meta.acl = crate::dir::xattr::has_acl_at(dir, name);
        }
    }

    /// As [`Round::mark_acl_at`], for an open SOURCE file or directory.
    pub fn mark_acl(&self, at: &crate::dir::xattr::At, meta: &mut Meta) {
        if self.m.opts.rules.asks_acl() && matches!(meta.kind, Kind::File | Kind::Dir) {
            meta.acl = crate::dir::xattr::has_acl(at);
        }
    }

    /// Creates the directory `name`; returns its handle (`None` in a dry run), or an error that
    /// was logged.
    pub fn make_dir(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
    ) -> Result<Option<Dir>, Logged> {
        let made = self.act(
            node.dst.as_ref(),
            ("create directory", rel),
            |dst| {
                node.writable(|| dst.make_dir(name, 0o700))?;
                node.touch();
                dst.open_dir(name)
            },
            |_| Change::MadeDir {
                rel: rel.to_path_buf(),
            },
        );
        match made {
            Acted::Done(dir) => Ok(Some(dir)),
            Acted::Dry => Ok(None),
            Acted::Failed => Err(Logged),
        }
    }

    /// Sets a file's permissions, owner and times (and extended attributes, with `xattrs`), its
    /// bytes being the same, through the very file that was looked at (`dst`).
    pub fn attrs(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
        src: &Meta,
        dst: &Meta,
        xattrs: bool,
    ) {
        self.act(
            node.dst.as_ref(),
            ("set metadata of", rel),
            |dir| {
                let held = dir.handle_of(name, dst.id, Kind::File)?;
                if xattrs {
                    self.sync_xattrs_held(node, name, &held);
                }
                set_attrs(&held, src, dst, &self.m.opts.rules)
            },
            |_| Change::Attrs {
                rel: rel.to_path_buf(),
                meta: Some(*src),
            },
        );
    }

    /// Makes REPLICA's file `name` carry SOURCE's extended attributes, if it is still the one
    /// `expect` names (foldersync just linked or renamed it there, which moved its ctime and
    /// would hide a change to them from later looks).
    pub(super) fn sync_xattrs(&self, node: &DirPair, name: &OsStr, expect: Option<Id>) {
        let Some(dst) = node
            .dst
            .as_ref()
            .filter(|_| self.m.opts.xattrs && self.writes())
        else {
            return;
        };
        let held = match dst.handle(name) {
            Ok(held)
                if held.meta.kind == Kind::File && expect.is_none_or(|id| held.meta.id == id) =>
            {
                held
            }
            _ => return,
        };
        self.sync_xattrs_held(node, name, &held);
    }

    /// Makes the held REPLICA file carry the extended attributes of SOURCE's `name`.
    fn sync_xattrs_held(&self, node: &DirPair, name: &OsStr, held: &Handle) {
        use crate::dir::xattr::{self, At};
        let Some(src) = &node.src else { return };
        if !self.m.opts.xattrs {
            return;
        }
        let to = At::Held(held);
        let result = xattr::read(&At::Name(src, name)).and_then(|want| {
            let have = xattr::read(&to)?;
            xattr::write(&to, &want, &have)
        });
        self.xattrs(result, &node.rel.join(name));
    }

    /// Creates the symlink `name`, or atomically re-points it (or gives it SOURCE's owner, times
    /// and attributes: `attrs`, which are set on a new symlink under a temporary name before it
    /// is renamed over the old one, never on a name someone else may have swapped).
    pub fn symlink(&self, node: &DirPair, name: &OsStr, rel: &Path, target: &Path, how: Relink) {
        let Some(src) = &node.src else { return };
        let meta = match src.stat_at(name) {
            Ok(Some(meta)) if meta.kind == Kind::Symlink => meta,
            Ok(_) => return,
            Err(e) => return self.fail(self.src_err("read symlink", rel, e)),
        };
        let owner = self.m.opts.rules.owner;
        let make = |dst: &Dir| {
            let tmp = self.m.own().temps().fresh();
            node.writable(|| dst.symlink(target, &tmp))?;
            let guard = TempGuard::new(dst, &tmp);
            let held = dst.handle(&tmp)?;
            if held.meta.kind != Kind::Symlink {
                return Err(crate::dir::handle::replaced());
            }
            if owner {
                held.chown(meta.uid, meta.gid)?;
            }
            if self.m.opts.xattrs {
                use crate::dir::xattr::{self, At};
                self.xattrs(xattr::copy(&At::Name(src, name), &At::Name(dst, &tmp)), rel);
            }
            held.set_times(&meta)?;
            self.put_in_place(dst, tmp.as_ref(), name, rel)
                .map_err(|(_, e)| e)?;
            guard.disarm();
            node.touch();
            Ok(())
        };
        let change = |_: Option<&()>| match how {
            Relink::Attrs => Change::SymlinkAttrs {
                rel: rel.to_path_buf(),
                meta: Some(meta),
            },
            how => Change::Symlink {
                rel: rel.to_path_buf(),
                target: target.to_path_buf(),
                update: how == Relink::Update,
                meta: Some(meta),
            },
        };
        self.act(node.dst.as_ref(), ("create symlink", rel), make, change);
    }

    /// Marks REPLICA's copy of a file as checked: its status changed in SOURCE, but its bytes
    /// and attributes are the same. Setting its times again moves the copy's ctime, so the next
    /// look does not compare the bytes again.
    pub fn verified(&self, node: &DirPair, name: &OsStr, rel: &Path, src: &Meta, dst: &Meta) {
        self.act(
            node.dst.as_ref(),
            ("set metadata of", rel),
            |dir| {
                let held = dir.handle_of(name, dst.id, Kind::File)?;
                self.sync_xattrs_held(node, name, &held);
                held.set_times(src)
            },
            |_| Change::Verified {
                rel: rel.to_path_buf(),
            },
        );
    }
}

/// How [`Round::symlink`] makes its symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relink {
    /// There is none yet.
    New,
    /// It replaces one pointing elsewhere.
    Update,
    /// It replaces one pointing the same way, whose owner, times or attributes differ.
    Attrs,
}

/// Applies permissions, ownership and times to the held file, changing only what differs from
/// `dst` (what it was when looked at).
fn set_attrs(
    held: &Handle,
    src: &Meta,
    dst: &Meta,
    rules: &super::plan::Rules,
) -> std::io::Result<()> {
    let chown = rules.owner && (src.uid != dst.uid || src.gid != dst.gid);
    if chown {
        held.chown(src.uid, src.gid)?;
    }
    // chown may clear set-id bits, so permissions come after it.
    let perm = rules.perm_for(src, (dst.uid, dst.gid));
    if rules.perms && (chown || perm != dst.perm) {
        held.chmod(perm)?;
    }
    if !src.mtime.near(dst.mtime, rules.window) {
        held.set_times(src)?;
    }
    Ok(())
}
