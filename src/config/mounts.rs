//! Where a directory really is: its file system and its path inside that file system, from
//! `/proc/self/mountinfo`. A bind mount shows one directory at two unrelated paths (REPLICA
//! bind-mounted from a directory inside SOURCE, say); comparing where both really are catches
//! what comparing their paths cannot.

use std::fs;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, StatxFlags, CWD};

/// A directory's place: its file system (device numbers) and its path from that file
/// system's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub dev: (u32, u32),
    pub path: PathBuf,
}

/// One line of mountinfo: id, device, root within the file system, mount point.
struct Mount {
    id: u64,
    dev: (u32, u32),
    root: PathBuf,
    point: PathBuf,
}

/// Where the existing directory `path` (absolute, resolved) really is; `None` when that cannot
/// be told (no `/proc`, an old kernel).
pub fn place(path: &Path) -> Option<Place> {
    let x = rustix::fs::statx(CWD, path, AtFlags::empty(), StatxFlags::MNT_ID).ok()?;
    if x.stx_mask & StatxFlags::MNT_ID.bits() == 0 {
        return None;
    }
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = text
        .lines()
        .filter_map(parse)
        .find(|m| m.id == x.stx_mnt_id)?;
    let rest = path.strip_prefix(&mount.point).ok()?;
    Some(Place {
        dev: mount.dev,
        path: mount.root.join(rest),
    })
}

/// A file system mounted below a directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Below {
    /// Where, relative to the directory.
    pub rel: PathBuf,
    /// For a bind mount of a directory that is itself below the directory: that directory,
    /// relative to it (the same directory seen at two paths).
    pub alias_of: Option<PathBuf>,
}

/// The file systems mounted below the directory `root` (absolute, resolved), sorted; empty
/// when that cannot be told.
pub fn below(root: &Path) -> Vec<Below> {
    let (Some(home), Ok(text)) = (place(root), fs::read_to_string("/proc/self/mountinfo")) else {
        return Vec::new();
    };
    let mut out: Vec<Below> = text
        .lines()
        .filter_map(parse)
        .filter_map(|m| {
            let rel = m.point.strip_prefix(root).ok()?.to_path_buf();
            if rel.as_os_str().is_empty() {
                return None;
            }
            let alias_of = (m.dev == home.dev)
                .then(|| m.root.strip_prefix(&home.path).ok().map(Path::to_path_buf))
                .flatten();
            Some(Below { rel, alias_of })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `inner` is `outer` or lies inside it in the same file system, through whatever
/// mounts they are seen. `inner` need not exist: its deepest existing ancestor is placed and
/// the rest appended.
pub fn within(inner: &Path, outer: &Path) -> bool {
    relative(inner, outer).is_some()
}

/// `inner`'s path relative to `outer`, when it lies inside it in the same file system
/// (see [`within`]).
pub fn relative(inner: &Path, outer: &Path) -> Option<PathBuf> {
    let outer = place(outer)?;
    let mut base = inner;
    let mut rest = PathBuf::new();
    loop {
        if fs::metadata(base).is_ok_and(|m| m.is_dir()) {
            break;
        }
        let (Some(parent), Some(name)) = (base.parent(), base.file_name()) else {
            return None;
        };
        rest = Path::new(name).join(rest);
        base = parent;
    }
    let inner = place(base)?;
    let full = inner.path.join(rest);
    if inner.dev != outer.dev {
        return None;
    }
    full.strip_prefix(&outer.path).ok().map(Path::to_path_buf)
}

fn parse(line: &str) -> Option<Mount> {
    let mut fields = line.split(' ');
    let id = fields.next()?.parse().ok()?;
    let _parent = fields.next()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let root = unescape(fields.next()?);
    let point = unescape(fields.next()?);
    Some(Mount {
        id,
        dev: (major.parse().ok()?, minor.parse().ok()?),
        root,
        point,
    })
}

/// mountinfo writes space, tab, newline and backslash in paths as octal escapes.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let m =
            parse("36 35 98:0 /mnt\\0401 /mnt2 rw,noatime master:1 - ext3 /dev/root rw").unwrap();
        assert_eq!(m.id, 36);
        assert_eq!(m.dev, (98, 0));
        assert_eq!(m.root, PathBuf::from("/mnt 1"));
        assert_eq!(m.point, PathBuf::from("/mnt2"));
    }

    #[test]
    fn a_directory_is_within_itself_and_its_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        fs::create_dir(base.join("a")).unwrap();
        if place(&base).is_none() {
            return;
        }
        assert!(within(&base.join("a"), &base));
        assert!(within(&base.join("a/not/yet"), &base));
        assert!(!within(&base, &base.join("a")));
    }
}
