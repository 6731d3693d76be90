//! Resolving the command line's paths, and comparing them. A path is resolved the way the
//! kernel would reach it: its longest existing prefix with every symlink and `..` followed,
//! then the missing rest appended. What the kernel could not resolve either (a `..` after a
//! part that does not exist) is refused rather than guessed.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::dir::{self, Id};

/// Resolves `path`, which may not exist yet. Fails if an existing part is not a directory or
/// if a `..` follows a part that does not exist.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut out = PathBuf::from("/");
    let mut exists = true;
    for part in abs.components() {
        match part {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir if !exists => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "'..' follows {}, which does not exist",
                        crate::escape::esc(&out)
                    ),
                ));
            }
            _ if !exists => out.push(part),
            _ => {
                let next = out.join(part);
                match fs::canonicalize(&next) {
                    Ok(real) => out = real,
                    Err(e) if dir::is_absent(&e) => {
                        if !fs::metadata(&out)?.is_dir() {
                            return Err(io::Error::new(
                                io::ErrorKind::NotADirectory,
                                format!("{} is not a directory", crate::escape::esc(&out)),
                            ));
                        }
                        if fs::symlink_metadata(&next).is_ok() {
                            return Err(io::Error::new(
                                io::ErrorKind::NotFound,
                                format!("{} is a dangling symlink", crate::escape::esc(&next)),
                            ));
                        }
                        exists = false;
                        out.push(part);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(out)
}

/// The identity of `path`'s deepest existing ancestor-or-self, and of each ancestor above it:
/// what a path check can miss (a bind mount shows one directory at two paths) an identity
/// check catches.
pub fn ancestry(path: &Path) -> Vec<Id> {
    path.ancestors()
        .filter_map(|p| fs::metadata(p).ok().filter(|m| m.is_dir()))
        .map(|m| Id {
            dev: m.dev(),
            ino: m.ino(),
        })
        .collect()
}

/// The identity of an existing directory.
pub fn id(path: &Path) -> Option<Id> {
    fs::metadata(path).ok().filter(|m| m.is_dir()).map(|m| Id {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// `inner` relative to `outer` when it lies inside it, by path or by where both really are (a
/// bind mount of SOURCE or REPLICA shows their insides at other paths).
pub fn relative(inner: &Path, outer: &Path) -> Option<PathBuf> {
    match inner.strip_prefix(outer) {
        Ok(rel) => Some(rel.to_path_buf()),
        Err(_) => super::mounts::relative(inner, outer),
    }
}

/// Whether `inner` is `outer` or lies inside it: by path, by the identity of a directory on the
/// way up, or by where both really are in their file system (a bind mount).
pub fn within(inner: &Path, outer: &Path) -> bool {
    if inner.starts_with(outer) {
        return true;
    }
    match id(outer) {
        Some(outer_id) => {
            ancestry(inner).contains(&outer_id) || super::mounts::within(inner, outer)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_missing_rest_after_the_existing_part() {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        std::os::unix::fs::symlink(&base, base.join("link")).unwrap();
        assert_eq!(resolve(&base.join("link/x/y")).unwrap(), base.join("x/y"));
        assert_eq!(resolve(&base.join("a/./b")).unwrap(), base.join("a/b"));
    }

    #[test]
    fn refuses_dotdot_after_a_missing_part() {
        let tmp = tempfile::tempdir().unwrap();
        let err = resolve(&tmp.path().join("nonexist/../x")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn refuses_a_file_as_a_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"x").unwrap();
        assert!(resolve(&file.join("sub")).is_err());
    }

    #[test]
    fn within_by_path_or_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        fs::create_dir_all(base.join("s/sub")).unwrap();
        assert!(within(&base.join("s/sub/new"), &base.join("s")));
        assert!(!within(&base.join("t"), &base.join("s")));
    }
}
