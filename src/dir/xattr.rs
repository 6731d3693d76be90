//! Extended attributes (and so POSIX ACLs, which are `system.posix_acl_*` attributes), through
//! the `xattr` crate. An entry is reached by its open descriptor, or by name through
//! `/proc/self/fd/<dir>/<name>` with the calls that do not follow a symlink: never by a path
//! that a symlink or `..` could redirect.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use rustix::io::Errno;

use super::Dir;

/// An entry's extended attributes, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Xattrs(Vec<(OsString, Vec<u8>)>);

impl Xattrs {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an access ACL is among them.
    pub fn has_acl(&self) -> bool {
        self.0.iter().any(|(n, _)| n == "system.posix_acl_access")
    }

    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.0.push((name.into(), value.to_vec()));
        self.0.sort();
    }
}

/// Where an entry's attributes are read and written.
pub enum At<'a> {
    /// An open file or directory.
    Fd(&'a File),
    /// An open directory itself.
    Dir(&'a Dir),
    /// A file or directory held open where it is (see [`super::handle`]).
    Held(&'a super::handle::Handle),
    /// A name in an open directory: only for an entry foldersync made under a fresh temporary
    /// name and has not renamed into place yet (a symlink).
    Name(&'a Dir, &'a OsStr),
}

fn proc_path(dir: &Dir, name: &OsStr) -> PathBuf {
    let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    path.push(name);
    path
}

/// The attribute calls on an open file or directory (`f*xattr` on its descriptor), as one
/// object-safe trait over xattr's `FileExt`.
trait OnFd {
    fn list(&self) -> io::Result<Vec<OsString>>;
    fn get(&self, name: &OsStr) -> io::Result<Option<Vec<u8>>>;
    fn set(&self, name: &OsStr, value: &[u8]) -> io::Result<()>;
    fn remove(&self, name: &OsStr) -> io::Result<()>;
}

impl<T: xattr::FileExt> OnFd for T {
    fn list(&self) -> io::Result<Vec<OsString>> {
        Ok(self.list_xattr()?.collect())
    }
    fn get(&self, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
        self.get_xattr(name)
    }
    fn set(&self, name: &OsStr, value: &[u8]) -> io::Result<()> {
        self.set_xattr(name, value)
    }
    fn remove(&self, name: &OsStr) -> io::Result<()> {
        self.remove_xattr(name)
    }
}

/// An open directory's own attributes, through its descriptor (no duplicate needed).
impl xattr::FileExt for Dir {}

fn with_file<T>(at: &At, f: impl FnOnce(&dyn OnFd) -> io::Result<T>) -> Option<io::Result<T>> {
    match at {
        At::Fd(file) => Some(f(*file)),
        At::Dir(dir) => Some(f(*dir)),
        At::Held(..) | At::Name(..) => None,
    }
}

/// The calls by path for an entry that is not an open file: a held entry through its
/// `/proc/self/fd` link (followed: it leads to the entry itself, and a held entry is never a
/// symlink here), a temporary name without following it.
enum ByPath {
    Follow(PathBuf),
    NoFollow(PathBuf),
}

fn by_path(at: &At) -> io::Result<Option<ByPath>> {
    Ok(match at {
        At::Held(h) if h.meta.kind == super::Kind::Symlink => {
            return Err(io::Error::from(io::ErrorKind::Unsupported))
        }
        At::Held(h) => Some(ByPath::Follow(h.path())),
        At::Name(dir, name) => Some(ByPath::NoFollow(proc_path(dir, name))),
        _ => None,
    })
}

/// Whether an error says the file system (or this process) does not do extended attributes.
pub fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::NOTSUP.raw_os_error())
}

/// Reads every attribute this process may read.
pub fn read(at: &At) -> io::Result<Xattrs> {
    let path = by_path(at)?;
    let names: Vec<OsString> = match with_file(at, |f| f.list()) {
        Some(result) => result?,
        None => match &path {
            Some(ByPath::Follow(p)) => xattr::list_deref(p)?.collect(),
            Some(ByPath::NoFollow(p)) => xattr::list(p)?.collect(),
            None => Vec::new(),
        },
    };
    let mut out = Vec::with_capacity(names.len());
    for attr in names {
        let value = match with_file(at, |f| f.get(&attr)) {
            Some(v) => v,
            None => match &path {
                Some(ByPath::Follow(p)) => xattr::get_deref(p, &attr),
                Some(ByPath::NoFollow(p)) => xattr::get(p, &attr),
                None => Ok(None),
            },
        };
        match value {
            Ok(Some(v)) => out.push((attr, v)),
            // Gone meanwhile, or not ours to read (another namespace).
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(Errno::NODATA.raw_os_error()) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(e),
        }
    }
    out.sort();
    Ok(Xattrs(out))
}

/// Makes `at`'s attributes `want`, given that they are `have` now: sets what differs, removes
/// what `want` lacks. Attributes this process may not write (another namespace, as a normal
/// user) are skipped. Returns whether anything changed.
pub fn write(at: &At, want: &Xattrs, have: &Xattrs) -> io::Result<bool> {
    let path = by_path(at)?;
    let mut changed = false;
    let skip = |e: &io::Error| e.raw_os_error() == Some(Errno::PERM.raw_os_error());
    for (name, value) in &want.0 {
        if have.0.iter().any(|(n, v)| n == name && v == value) {
            continue;
        }
        let done = match with_file(at, |f| f.set(name, value)) {
            Some(r) => r,
            None => match &path {
                Some(ByPath::Follow(p)) => xattr::set_deref(p, name, value),
                Some(ByPath::NoFollow(p)) => xattr::set(p, name, value),
                None => Ok(()),
            },
        };
        match done {
            Ok(()) => changed = true,
            Err(e) if skip(&e) => {}
            Err(e) => return Err(e),
        }
    }
    for (name, _) in &have.0 {
        if want.0.iter().any(|(n, _)| n == name) {
            continue;
        }
        let done = match with_file(at, |f| f.remove(name)) {
            Some(r) => r,
            None => match &path {
                Some(ByPath::Follow(p)) => xattr::remove_deref(p, name),
                Some(ByPath::NoFollow(p)) => xattr::remove(p, name),
                None => Ok(()),
            },
        };
        match done {
            Ok(()) => changed = true,
            Err(e) if skip(&e) || e.raw_os_error() == Some(Errno::NODATA.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(changed)
}

/// Whether this process writes the attribute `name` when it mirrors one: root every namespace
/// but the security label a policy gives REPLICA's entries itself; anyone else the user
/// namespace and ACLs (what an owner may set). What cannot be written is not compared, or a
/// difference would be found, and not mended, on every look.
fn mirrored(name: &[u8]) -> bool {
    if rustix::process::geteuid().is_root() {
        name != b"security.selinux"
    } else {
        name.starts_with(b"user.") || name.starts_with(b"system.posix_acl_")
    }
}

/// Whether the entries `a_name` in `a` and `b_name` in `b` differ in the attributes mirrored
/// (see [`mirrored`]): their names are listed first (two system calls where both have none, the
/// common case), and their values read only where there are names.
pub fn differ(a: &Dir, a_name: &OsStr, b: &Dir, b_name: &OsStr) -> io::Result<bool> {
    let (la, lb) = (list_at(a, a_name)?, list_at(b, b_name)?);
    let names = |list: &[u8]| -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = list
            .split(|c| *c == 0)
            .filter(|n| !n.is_empty() && mirrored(n))
            .map(<[u8]>::to_vec)
            .collect();
        v.sort();
        v
    };
    let (na, nb) = (names(&la), names(&lb));
    if na != nb {
        return Ok(true);
    }
    if na.is_empty() {
        return Ok(false);
    }
    let keep = |x: Xattrs| {
        Xattrs(
            x.0.into_iter()
                .filter(|(n, _)| mirrored(std::os::unix::ffi::OsStrExt::as_bytes(n.as_os_str())))
                .collect(),
        )
    };
    Ok(keep(read(&At::Name(a, a_name))?) != keep(read(&At::Name(b, b_name))?))
}

/// Whether the entry `name` in `dir` has an access ACL (beyond its mode bits). An entry whose
/// attributes cannot be listed has none that foldersync could carry.
pub fn has_acl_at(dir: &Dir, name: &OsStr) -> bool {
    list_at(dir, name).is_ok_and(|list| list.split(|c| *c == 0).any(|n| n == ACL_ACCESS))
}

/// Whether the open file or directory has an access ACL (beyond its mode bits).
pub fn has_acl(at: &At) -> bool {
    read_names(at).is_ok_and(|names| {
        names
            .iter()
            .any(|n| std::os::unix::ffi::OsStrExt::as_bytes(n.as_os_str()) == ACL_ACCESS)
    })
}

fn read_names(at: &At) -> io::Result<Vec<OsString>> {
    match with_file(at, |f| f.list()) {
        Some(result) => result,
        None => Ok(Vec::new()),
    }
}

const ACL_ACCESS: &[u8] = b"system.posix_acl_access";

/// Whether `listxattrat` is missing from this kernel (older than 6.13) or refused by a filter.
static NO_LISTXATTRAT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The NUL-separated attribute names of `name` in `dir` (a symlink itself, not followed).
fn list_at(dir: &Dir, name: &OsStr) -> io::Result<Vec<u8>> {
    use std::sync::atomic::Ordering;
    if !NO_LISTXATTRAT.load(Ordering::Relaxed) {
        match listxattrat(dir, name) {
            // Missing from the kernel, or refused by a system call filter that does not know
            // it (systemd's answers EPERM where the unit sets `SystemCallErrorNumber=EPERM`):
            // the path through /proc does the same.
            Err(e)
                if [Errno::NOSYS, Errno::PERM]
                    .iter()
                    .any(|n| e.raw_os_error() == Some(n.raw_os_error())) =>
            {
                NO_LISTXATTRAT.store(true, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    let path = proc_path(dir, name);
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::llistxattr(&path, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => {
                let need = rustix::fs::llistxattr_query(&path)?;
                buf.resize(need.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `listxattrat(2)`: neither rustix nor nix wraps it yet.
fn listxattrat(dir: &Dir, name: &OsStr) -> io::Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: the directory descriptor is open for the call; `name` is a NUL-terminated
        // string that outlives it; the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe {
            libc::syscall(
                libc::c_long::from(linux_raw_sys::general::__NR_listxattrat),
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if let Ok(n) = usize::try_from(n) {
            buf.truncate(n);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(e);
        }
        buf.resize(buf.len() * 4, 0);
    }
}

/// Copies `from`'s attributes to `to`, which has none yet (a new file).
pub fn copy(from: &At, to: &At) -> io::Result<bool> {
    let want = read(from)?;
    if want.is_empty() {
        return Ok(false);
    }
    write(to, &want, &Xattrs::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_syncs_user_attributes() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"x").unwrap();
        if xattr::set(&a, "user.k", b"v").is_err() {
            return; // a file system without user attributes
        }
        let root = Dir::open(tmp.path()).unwrap();
        let from = At::Name(&root, OsStr::new("a"));
        let to = At::Name(&root, OsStr::new("b"));
        assert!(copy(&from, &to).unwrap());
        assert_eq!(read(&to).unwrap(), read(&from).unwrap());
        xattr::set(&b, "user.extra", b"1").unwrap();
        let (want, have) = (read(&from).unwrap(), read(&to).unwrap());
        assert!(write(&to, &want, &have).unwrap());
        assert_eq!(read(&to).unwrap(), want);
        let f = File::open(&a).unwrap();
        assert_eq!(read(&At::Fd(&f)).unwrap(), want);
    }
}
