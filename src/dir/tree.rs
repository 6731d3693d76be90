//! Whole-tree operations built from the single-name ones: removing a directory with its
//! contents, copying a tree (backups across file systems), making a chain of directories. None
//! follows a symlink, and none crosses into another mount.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path};

use super::copy::{self, DataError, Progress};
use super::xattr::At;
use super::{is_absent, is_not_a_dir, Dir, Kind};
use crate::own::TempNames;

/// Removes `name` in `dir`; a directory with everything in it. A directory that is the root of
/// a mount (something mounted inside REPLICA) is refused, not emptied.
pub fn remove(dir: &Dir, name: &OsStr, kind: Kind) -> io::Result<()> {
    let result = if kind == Kind::Dir {
        remove_tree(dir, name)
    } else {
        dir.unlink(name)
    };
    match result {
        Err(e) if is_absent(&e) => Ok(()),
        other => other,
    }
}

struct Level {
    dir: Dir,
    entries: std::vec::IntoIter<(OsString, Kind)>,
    name: OsString,
}

fn remove_tree(parent: &Dir, name: &OsStr) -> io::Result<()> {
    let Some(first) = open_for_removal(parent, name)? else {
        return Ok(());
    };
    let entries = first.list()?.into_iter();
    let mut stack = vec![Level {
        dir: first,
        entries,
        name: name.to_os_string(),
    }];
    while let Some(top) = stack.last_mut() {
        match top.entries.next() {
            Some((child, Kind::Dir)) => {
                if let Some(dir) = open_for_removal(&top.dir, &child)? {
                    let entries = dir.list()?.into_iter();
                    stack.push(Level {
                        dir,
                        entries,
                        name: child,
                    });
                }
            }
            Some((child, _)) => match top.dir.unlink(&child) {
                Err(e) if !is_absent(&e) => return Err(e),
                _ => {}
            },
            None => {
                let done = stack.pop().map(|l| l.name).unwrap_or_default();
                let holder = stack.last().map_or(parent, |l| &l.dir);
                match holder.remove_dir(&done) {
                    Err(e) if !is_absent(&e) => return Err(e),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Opens a directory to empty it: `None` if it is gone, and if it is no longer a directory it
/// is unlinked instead. Refuses a mount root; makes the directory writable for its owner.
fn open_for_removal(parent: &Dir, name: &OsStr) -> io::Result<Option<Dir>> {
    let dir = match parent.open_dir(name) {
        Ok(dir) => dir,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) if is_not_a_dir(&e) => {
            parent.unlink(name)?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let meta = dir.stat()?;
    if meta.mount_root {
        return Err(io::Error::other(
            "it is a mount point: foldersync never removes what is mounted there",
        ));
    }
    dir.ensure_writable(&meta)?;
    Ok(Some(dir))
}

/// How many entries removing `name` would delete: one, or a directory with everything in it.
/// What cannot be read counts as one entry.
pub fn count(dir: &Dir, name: &OsStr) -> u64 {
    let listed = |d: &Dir| d.list().map(|l| l.into_iter()).unwrap_or_default();
    let Ok(top) = dir.open_dir(name) else {
        return 1;
    };
    let mut total = 1;
    let entries = listed(&top);
    // Depth first, one open directory per level.
    let mut stack = vec![(top, entries)];
    while let Some((d, entries)) = stack.last_mut() {
        match entries.next() {
            Some((child, kind)) => {
                total += 1;
                if kind == Kind::Dir {
                    if let Ok(sub) = d.open_dir(&child) {
                        let entries = listed(&sub);
                        stack.push((sub, entries));
                    }
                }
            }
            None => {
                stack.pop();
            }
        }
    }
    total
}

/// Creates the directories of `rel` beneath `base` that are missing (mode `perm`) and opens the
/// last one. An existing component that is not a directory (a symlink, say) is an error.
pub fn make_dirs(base: &Dir, rel: &Path, perm: u32) -> io::Result<Dir> {
    let mut dir = base.dup()?;
    for part in rel.components() {
        let Component::Normal(name) = part else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path is not relative and plain",
            ));
        };
        match dir.make_dir(name, perm) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        dir = dir.open_dir(name)?;
    }
    Ok(dir)
}

struct Silent;
impl Progress for Silent {
    fn stopped(&self) -> bool {
        false
    }
    fn wrote(&self, _: u64) {}
}

/// Copies the entry `name` of `from` (of any kind; a directory with its contents) to the new
/// name `to_name` in `to`, keeping permissions, times and (with `owner`) ownership. Used to keep
/// a backup where a rename cannot reach (another file system). The copy is made under a
/// temporary name and renamed into place when whole, never over an existing entry (that fails
/// with `AlreadyExists`); a failed copy leaves nothing.
pub fn copy_tree(
    from: &Dir,
    name: &OsStr,
    to: &Dir,
    to_name: &OsStr,
    temps: &TempNames,
    owner: bool,
) -> io::Result<()> {
    let tmp = temps.fresh();
    let made = copy_entry(from, name, to, &tmp, owner)
        .and_then(|kind| to.rename_noreplace(&tmp, to, to_name).map(|()| kind));
    match made {
        Ok(_) => Ok(()),
        Err(e) => {
            if let Ok(Some(meta)) = to.stat_at(&tmp) {
                let _ = remove(to, &tmp, meta.kind);
            }
            Err(e)
        }
    }
}

fn copy_entry(
    from: &Dir,
    name: &OsStr,
    to: &Dir,
    to_name: &OsStr,
    owner: bool,
) -> io::Result<Kind> {
    let Some(meta) = from.stat_at(name)? else {
        return Err(io::ErrorKind::NotFound.into());
    };
    let kept_perm =
        |now: &super::Meta| safe_perm(meta.perm, (meta.uid, meta.gid), (now.uid, now.gid));
    match meta.kind {
        Kind::File => {
            let input = from.open_file(name)?;
            let output = to.create_file(to_name)?;
            copy::copy_data(&input, &output, &meta, &Silent).map_err(|e| match e {
                DataError::Read(e) | DataError::Write(e) => e,
                DataError::Changed | DataError::Stopped => {
                    io::Error::other("the file changed while it was kept")
                }
            })?;
            if owner {
                rustix::fs::fchown(
                    &output,
                    Some(rustix::fs::Uid::from_raw(meta.uid)),
                    Some(rustix::fs::Gid::from_raw(meta.gid)),
                )?;
            }
            let acl_lost = !keep_xattrs(&At::Name(from, name), &At::Fd(&output));
            let perm = private_if(acl_lost, kept_perm(&super::meta_of(&output)?));
            rustix::fs::fchmod(&output, rustix::fs::Mode::from_raw_mode(perm))?;
            rustix::fs::futimens(&output, &super::timestamps(&meta))?;
        }
        Kind::Symlink => {
            to.symlink(&from.read_link(name)?, to_name)?;
            if owner {
                to.chown_at(to_name, meta.uid, meta.gid)?;
            }
            to.set_times_at(to_name, &meta)?;
        }
        Kind::Dir => {
            to.make_dir(to_name, 0o700)?;
            let (src, dst) = (from.open_dir(name)?, to.open_dir(to_name)?);
            for (child, _) in src.list()? {
                copy_entry(&src, &child, &dst, &child, owner)?;
            }
            let acl_lost = !keep_xattrs(&At::Name(from, name), &At::Dir(&dst));
            let now = dst.stat()?;
            let mut want = meta;
            want.perm = private_if(acl_lost, if owner { meta.perm } else { kept_perm(&now) });
            dst.set_attrs(&want, &now, owner, true)?;
        }
        Kind::Special(_) => {}
    }
    Ok(meta.kind)
}

/// Gives a copy `from`'s extended attributes, ACLs among them; returns false if an ACL could
/// not be kept (the file system takes none), so that the copy is made no more open than the ACL
/// allowed.
fn keep_xattrs(from: &At, to: &At) -> bool {
    match super::xattr::read(from) {
        Ok(want) if !want.is_empty() => {
            super::xattr::write(to, &want, &super::xattr::Xattrs::default()).is_ok()
                || !want.has_acl()
        }
        _ => true,
    }
}

/// `perm` for the owner alone, when a copy lost its ACL: the group and other bits of a mode
/// with an ACL are its mask, which may grant more than the ACL did.
fn private_if(acl_lost: bool, perm: u32) -> u32 {
    if acl_lost {
        perm & 0o7700
    } else {
        perm
    }
}

/// The permission bits a copy of an entry with `perm`, owned by `original`, may carry when it is
/// owned by `copy`: set-user-ID only with the same user, set-group-ID only with the same group.
pub fn safe_perm(perm: u32, original: (u32, u32), copy: (u32, u32)) -> u32 {
    let mut perm = perm;
    if copy.0 != original.0 {
        perm &= !0o4000;
    }
    if copy.1 != original.1 {
        perm &= !0o2000;
    }
    perm
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn removes_a_tree_without_following_links() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"k").unwrap();
        let t = tmp.path().join("t");
        fs::create_dir_all(t.join("a/b/c")).unwrap();
        fs::write(t.join("a/b/c/f"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, t.join("a/link")).unwrap();
        fs::set_permissions(
            t.join("a/b"),
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
        let root = Dir::open(tmp.path()).unwrap();
        remove(&root, OsStr::new("t"), Kind::Dir).unwrap();
        assert!(!t.exists());
        assert!(outside.join("keep").exists());
        remove(&root, OsStr::new("t"), Kind::Dir).unwrap();
    }

    #[test]
    fn makes_and_copies() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open(tmp.path()).unwrap();
        let d = make_dirs(&root, Path::new("x/y"), 0o755).unwrap();
        fs::write(tmp.path().join("x/y/f"), b"data").unwrap();
        std::os::unix::fs::symlink("f", tmp.path().join("x/y/l")).unwrap();
        drop(d);
        copy_tree(
            &root,
            OsStr::new("x"),
            &root,
            OsStr::new("z"),
            &TempNames::new(),
            false,
        )
        .unwrap();
        assert_eq!(fs::read(tmp.path().join("z/y/f")).unwrap(), b"data");
        assert_eq!(
            fs::read_link(tmp.path().join("z/y/l")).unwrap(),
            Path::new("f")
        );
    }
}
