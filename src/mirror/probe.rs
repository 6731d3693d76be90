//! What REPLICA's file system keeps, found out once at start-up on a scratch file in its root:
//! permission bits, ownership, hard links, extended attributes. What it cannot keep (FAT keeps
//! none of them) is said once, and then neither compared nor set, so a pass over an unchanged
//! tree does nothing instead of failing on every file.

use std::ffi::OsStr;
use std::fs::File;

use log::warn;
use rustix::fs::{Gid, Mode, Uid};

use crate::dir::{self, xattr, Dir};
use crate::escape::esc;
use crate::own::TempNames;

/// What REPLICA's file system keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abilities {
    pub perms: bool,
    pub owner: bool,
    pub links: bool,
    pub xattrs: bool,
    /// A rename keeps the file's mtime (FAT through FUSE stamps it anew: then times are set
    /// again after the rename).
    pub rename_keeps_mtime: bool,
    /// The file system moves an entry's ctime when foldersync changes it (some FUSE file
    /// systems give the mtime instead): then a ctime can say a copy may be out of date.
    pub ctimes: bool,
}

/// Tries each ability in `want` on a scratch file in `root` (removed afterwards). What cannot
/// be tried (no scratch file) is taken as kept: the errors then say what is wrong, file by file.
pub fn probe(root: &Dir, temps: &TempNames, shown: &std::path::Path, want: Abilities) -> Abilities {
    let name = temps.fresh();
    let Ok(file) = root.create_file(&name) else {
        return want;
    };
    let tried = try_all(root, &name, &file, temps, want);
    let _ = root.unlink(&name);
    let found = Abilities {
        perms: want.perms && tried.perms,
        owner: want.owner && tried.owner,
        links: want.links && tried.links,
        xattrs: want.xattrs && tried.xattrs,
        rename_keeps_mtime: tried.rename_keeps_mtime,
        ctimes: tried.ctimes,
    };
    let mut lacks = Vec::new();
    if want.perms && !found.perms {
        lacks.push("permission bits");
    }
    if want.owner && !found.owner {
        lacks.push("ownership");
    }
    if want.links && !found.links {
        lacks.push("hard links (each name is copied)");
    }
    if want.xattrs && !found.xattrs {
        lacks.push("extended attributes");
    }
    if !lacks.is_empty() {
        warn!(
            "REPLICA {} does not keep {}: they are not mirrored",
            esc(shown),
            lacks.join(", ")
        );
    }
    found
}

fn try_all(root: &Dir, name: &OsStr, file: &File, temps: &TempNames, want: Abilities) -> Abilities {
    let meta = |f: &File| dir::meta_of(f).ok();
    let perms = want.perms
        && rustix::fs::fchmod(file, Mode::from_raw_mode(0o640)).is_ok()
        && meta(file).is_some_and(|m| m.perm == 0o640);
    let owner = want.owner
        && rustix::fs::fchown(file, Some(Uid::from_raw(1)), Some(Gid::from_raw(1))).is_ok()
        && meta(file).is_some_and(|m| m.uid == 1 && m.gid == 1);
    let second = temps.fresh();
    let links = want.links && root.hard_link(name, root, &second).is_ok();
    if links {
        let _ = root.unlink(&second);
    }
    let probe = xattr::At::Fd(file);
    let mut attr = xattr::Xattrs::default();
    attr.push("user.foldersync-probe", b"1");
    let xattrs = want.xattrs
        && match xattr::write(&probe, &attr, &xattr::Xattrs::default()) {
            Ok(_) => true,
            Err(e) => !xattr::unsupported(&e),
        };
    let started = std::time::SystemTime::now();
    let rename_keeps_mtime = rename_keeps_mtime(root, name, file, temps);
    Abilities {
        perms,
        owner,
        links,
        xattrs,
        rename_keeps_mtime,
        ctimes: ctimes_kept(root, name, started),
    }
}

/// Whether the scratch file's ctime moved to about now when its times were set to the past (by
/// [`rename_keeps_mtime`], after `started`).
fn ctimes_kept(root: &Dir, name: &OsStr, started: std::time::SystemTime) -> bool {
    let since = started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        - 2;
    root.stat_at(name)
        .ok()
        .flatten()
        .is_none_or(|m| m.ctime.sec >= since)
}

/// Sets an old mtime on the scratch file (through the file itself), renames it and back, and
/// looks.
fn rename_keeps_mtime(root: &Dir, name: &OsStr, file: &File, temps: &TempNames) -> bool {
    let Ok(mut meta) = dir::meta_of(file) else {
        return true;
    };
    meta.mtime = dir::Stamp {
        sec: 1_000_000_000,
        nsec: 0,
    };
    meta.atime = meta.mtime;
    let other = temps.fresh();
    let stamped = rustix::fs::futimens(file, &dir::timestamps(&meta)).is_ok();
    if !stamped || root.rename(name, root, &other).is_err() {
        return true;
    }
    let kept = root
        .stat_at(&other)
        .is_ok_and(|m| m.is_some_and(|m| m.mtime.sec == 1_000_000_000));
    let _ = root.rename(&other, root, name);
    kept
}
