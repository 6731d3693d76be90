//! Low-level filesystem operations on one path: entry kinds, atomic file and symlink creation
//! through a temporary name in the target's directory, metadata comparison and preservation.

use std::ffi::{CString, OsStr};
use std::fs::{self, File, FileTimes, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{
    fchown, lchown, DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt,
};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::PathError;
use crate::stop::Stop;

/// The kinds of entries the mirror knows about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Fifo, socket or device: never mirrored.
    Special(&'static str),
}

impl Kind {
    pub fn of(ft: fs::FileType) -> Kind {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_fifo() {
            Kind::Special("fifo")
        } else if ft.is_socket() {
            Kind::Special("socket")
        } else if ft.is_block_device() {
            Kind::Special("block device")
        } else if ft.is_char_device() {
            Kind::Special("character device")
        } else {
            Kind::Special("unknown file type")
        }
    }

    /// The noun used in log lines.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Special(name) => name,
        }
    }
}

/// `lstat`, with "not there" (including a parent that is no longer a directory) as `None`.
pub fn lstat(path: &Path) -> io::Result<Option<Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether an error means the path does not exist (anymore).
pub fn is_absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// Same size and the same modification time to the nanosecond: the contents are taken as equal.
pub fn same_stamp(a: &Metadata, b: &Metadata) -> bool {
    a.len() == b.len() && a.mtime() == b.mtime() && a.mtime_nsec() == b.mtime_nsec()
}

pub fn same_mtime(a: &Metadata, b: &Metadata) -> bool {
    a.mtime() == b.mtime() && a.mtime_nsec() == b.mtime_nsec()
}

/// Permission bits (and ownership when it is preserved) differ.
pub fn attrs_differ(src: &Metadata, dst: &Metadata, owner: bool) -> bool {
    (src.mode() & 0o7777) != (dst.mode() & 0o7777)
        || (owner && (src.uid() != dst.uid() || src.gid() != dst.gid()))
}

/// Whether the process may set ownership (it runs as root).
pub fn can_chown() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Names for temporary files: `.foldersync-<token>-<n>.tmp`, unique per process and call.
#[derive(Debug)]
pub struct TempNames {
    token: String,
    counter: AtomicU64,
}

const TEMP_PREFIX: &str = ".foldersync-";
const TEMP_SUFFIX: &str = ".tmp";

impl TempNames {
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        TempNames {
            token: format!("{:x}{:08x}", std::process::id(), nanos),
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh temporary path beside `target`.
    pub fn beside(&self, target: &Path) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{TEMP_PREFIX}{}-{n}{TEMP_SUFFIX}", self.token);
        target.with_file_name(name)
    }

    /// Whether `name` is a temporary file of this process (in flight, not to be touched).
    pub fn is_ours(&self, name: &OsStr) -> bool {
        let prefix = format!("{TEMP_PREFIX}{}-", self.token);
        name.as_bytes().starts_with(prefix.as_bytes()) && is_temp_name(name)
    }
}

impl Default for TempNames {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `name` looks like a temporary file of some foldersync process.
pub fn is_temp_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.starts_with(TEMP_PREFIX.as_bytes()) && b.ends_with(TEMP_SUFFIX.as_bytes())
}

/// Removes a temporary file when dropped, unless it was renamed into place.
struct TempGuard<'a> {
    path: &'a Path,
    armed: bool,
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(self.path);
        }
    }
}

/// Why a copy did not complete.
#[derive(Debug)]
pub enum CopyError {
    /// The source changed (size or mtime) while it was copied; the temporary file was dropped.
    Changed,
    /// The source is gone, or is no longer a regular file: nothing to copy.
    Vanished,
    /// A stop was requested; the temporary file was dropped.
    Stopped,
    Failed(PathError),
}

const CHUNK: u64 = 8 << 20;

/// Copies the regular file `src` to `dst` atomically: into a temporary file beside `dst`, with
/// permissions, ownership (if `owner`) and times set, then renamed over `dst`. Returns the
/// number of bytes copied.
pub fn copy_file(
    src: &Path,
    dst: &Path,
    temps: &TempNames,
    owner: bool,
    stop: &Stop,
    keep_old: Option<&Path>,
    on_chunk: &dyn Fn(u64),
) -> Result<u64, CopyError> {
    // O_NOFOLLOW: a source path that became a symlink is not followed; O_NONBLOCK: a path that
    // became a fifo does not block the open.
    let input = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(src)
    {
        Ok(f) => f,
        Err(e) if is_absent(&e) || e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(CopyError::Vanished)
        }
        Err(e) => return Err(CopyError::Failed(PathError::new("open", src, e))),
    };
    let before = input
        .metadata()
        .map_err(|e| CopyError::Failed(PathError::new("stat", src, e)))?;
    if !before.is_file() {
        return Err(CopyError::Vanished);
    }

    let tmp = temps.beside(dst);
    let output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| CopyError::Failed(PathError::new("create", &tmp, e)))?;
    let mut guard = TempGuard {
        path: &tmp,
        armed: true,
    };

    let copied = copy_data(&input, &output, &before, stop, on_chunk).map_err(|e| match e {
        DataError::Stopped => CopyError::Stopped,
        DataError::Changed => CopyError::Changed,
        DataError::Read(e) => CopyError::Failed(PathError::new("read", src, e)),
        DataError::Write(e) => CopyError::Failed(PathError::new("write", dst, e)),
    })?;

    let set = |e| CopyError::Failed(PathError::new("set metadata of", dst, e));
    if owner {
        fchown(&output, Some(before.uid()), Some(before.gid())).map_err(set)?;
    }
    output
        .set_permissions(Permissions::from_mode(before.mode() & 0o7777))
        .map_err(set)?;
    output.set_times(file_times(&before)).map_err(set)?;

    let after = input
        .metadata()
        .map_err(|e| CopyError::Failed(PathError::new("stat", src, e)))?;
    if copied != before.len() || !same_stamp(&before, &after) {
        return Err(CopyError::Changed);
    }
    drop(output);
    if let Some(target) = keep_old {
        // The version being replaced goes to the backup first; the replacement stays atomic.
        keep_copy(dst, target).map_err(|e| CopyError::Failed(PathError::new("back up", dst, e)))?;
    }
    fs::rename(&tmp, dst).map_err(|e| CopyError::Failed(PathError::new("rename into", dst, e)))?;
    guard.armed = false;
    Ok(copied)
}

enum DataError {
    Stopped,
    /// The source's size or mtime changed between two chunks: it is being written.
    Changed,
    Read(io::Error),
    Write(io::Error),
}

/// Copies the source's `before.len()` bytes with `copy_file_range` (the kernel's fast path,
/// reflinks where the filesystem offers them), in chunks so a stop is noticed within
/// milliseconds and a source still being written is given up on at once; falls back to reads and
/// writes where the kernel cannot. Stops early at end of file.
fn copy_data(
    input: &File,
    output: &File,
    before: &Metadata,
    stop: &Stop,
    on_chunk: &dyn Fn(u64),
) -> Result<u64, DataError> {
    let len = before.len();
    let mut done: u64 = 0;
    let mut fast = true;
    let mut buf = Vec::new();
    while done < len {
        if stop.is_set() {
            return Err(DataError::Stopped);
        }
        if done > 0 {
            let now = input.metadata().map_err(DataError::Read)?;
            if !same_stamp(before, &now) {
                return Err(DataError::Changed);
            }
        }
        let want = (len - done).min(CHUNK);
        if fast {
            let mut off_in = done as libc::loff_t;
            let mut off_out = done as libc::loff_t;
            // SAFETY: both descriptors are open for the duration of the call and the offset
            // pointers point to live locals.
            let n = unsafe {
                libc::copy_file_range(
                    input.as_raw_fd(),
                    &mut off_in,
                    output.as_raw_fd(),
                    &mut off_out,
                    want as usize,
                    0,
                )
            };
            if n > 0 {
                done += n as u64;
                on_chunk(n as u64);
                continue;
            }
            if n == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(
                    libc::EXDEV
                    | libc::ENOSYS
                    | libc::EOPNOTSUPP
                    | libc::EINVAL
                    | libc::EPERM
                    | libc::ETXTBSY,
                ) => {
                    fast = false;
                    continue;
                }
                Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => {
                    return Err(DataError::Write(err))
                }
                _ => return Err(DataError::Read(err)),
            }
        }
        if buf.is_empty() {
            buf = vec![0u8; 256 << 10];
        }
        let want = (want as usize).min(buf.len());
        let n = match input.read_at(&mut buf[..want], done) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DataError::Read(e)),
        };
        output
            .write_all_at(&buf[..n], done)
            .map_err(DataError::Write)?;
        done += n as u64;
        on_chunk(n as u64);
    }
    Ok(done)
}

fn file_times(meta: &Metadata) -> FileTimes {
    let mut times = FileTimes::new();
    if let Ok(t) = meta.modified() {
        times = times.set_modified(t);
    }
    if let Ok(t) = meta.accessed() {
        times = times.set_accessed(t);
    }
    times
}

/// Whether two files have the same bytes: read side by side, stopping at the first difference.
pub fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let open = |p: &Path| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(p)
    };
    let (fa, fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 256 << 10], vec![0u8; 256 << 10]);
    let mut offset = 0u64;
    loop {
        let na = read_full(&fa, &mut ba, offset)?;
        let nb = read_full(&fb, &mut bb, offset)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
        offset += na as u64;
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Keeps the current version of `path` at `target` without moving it: a hard link where the
/// file system allows, a copy with the same times otherwise.
fn keep_copy(path: &Path, target: &Path) -> io::Result<()> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::hard_link(path, target) {
        Ok(()) => Ok(()),
        Err(_) => copy_tree(path, target),
    }
}

/// Moves `path` (of any kind) to `target`, creating target's parents: a rename where possible,
/// a copy then a removal across file systems.
pub fn move_to(path: &Path, kind: Kind, target: &Path) -> io::Result<()> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::rename(path, target) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            copy_tree(path, target)?;
            if kind == Kind::Dir {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            }
        }
        Err(e) => Err(e),
    }
}

/// Copies a file, symlink or directory tree to `target` (which must not exist), keeping
/// permissions and modification times; symlinks are copied as links.
fn copy_tree(path: &Path, target: &Path) -> io::Result<()> {
    for entry in walkdir::WalkDir::new(path).follow_links(false) {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry.path().strip_prefix(path).unwrap_or(Path::new(""));
        let to = if rel.as_os_str().is_empty() {
            target.to_path_buf()
        } else {
            target.join(rel)
        };
        let meta = entry.path().symlink_metadata()?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &to)?;
            continue;
        } else if ft.is_file() {
            fs::copy(entry.path(), &to)?;
        } else {
            continue;
        }
        fs::set_permissions(&to, Permissions::from_mode(meta.mode() & 0o7777))?;
        set_times_nofollow(&to, &meta)?;
    }
    Ok(())
}

/// Creates (or atomically replaces) the symlink `dst` pointing at `target`, with the source
/// link's times and, if `owner`, its ownership.
pub fn make_symlink(
    target: &Path,
    dst: &Path,
    src_meta: &Metadata,
    temps: &TempNames,
    owner: bool,
) -> Result<(), PathError> {
    let tmp = temps.beside(dst);
    std::os::unix::fs::symlink(target, &tmp).map_err(PathError::at("create symlink", dst))?;
    let mut guard = TempGuard {
        path: &tmp,
        armed: true,
    };
    set_link_attrs(&tmp, src_meta, owner).map_err(PathError::at("set metadata of", dst))?;
    fs::rename(&tmp, dst).map_err(PathError::at("rename into", dst))?;
    guard.armed = false;
    Ok(())
}

/// Creates a directory, private until its final permissions are applied after its contents.
pub fn make_dir(dst: &Path) -> Result<(), PathError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dst)
        .map_err(PathError::at("create directory", dst))
}

/// Removes whatever is at `path`; a directory with all its contents, never following symlinks.
pub fn remove(path: &Path, kind: Kind) -> Result<(), PathError> {
    let result = if kind == Kind::Dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PathError::new("remove", path, e)),
    }
}

/// Applies the source's permissions, ownership (if `owner`) and times to an existing file or
/// directory `dst`, changing only what differs.
pub fn apply_attrs(dst: &Path, src: &Metadata, dst_meta: &Metadata, owner: bool) -> io::Result<()> {
    let chown = owner && (src.uid() != dst_meta.uid() || src.gid() != dst_meta.gid());
    if chown {
        lchown(dst, Some(src.uid()), Some(src.gid()))?;
    }
    // chown may clear set-id bits, so permissions come after it.
    if chown || (src.mode() & 0o7777) != (dst_meta.mode() & 0o7777) {
        fs::set_permissions(dst, Permissions::from_mode(src.mode() & 0o7777))?;
    }
    if !same_mtime(src, dst_meta) {
        set_times_nofollow(dst, src)?;
    }
    Ok(())
}

/// Applies ownership and times to a symlink itself (its permissions mean nothing on Linux).
pub fn set_link_attrs(link: &Path, src: &Metadata, owner: bool) -> io::Result<()> {
    if owner {
        lchown(link, Some(src.uid()), Some(src.gid()))?;
    }
    set_times_nofollow(link, src)
}

fn set_times_nofollow(path: &Path, src: &Metadata) -> io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let times = [
        libc::timespec {
            tv_sec: src.atime() as libc::time_t,
            tv_nsec: src.atime_nsec() as _,
        },
        libc::timespec {
            tv_sec: src.mtime() as libc::time_t,
            tv_nsec: src.mtime_nsec() as _,
        },
    ];
    // SAFETY: c_path is a valid NUL-terminated string and times points to two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised() {
        let names = TempNames::new();
        let p = names.beside(Path::new("/r/dir/file.txt"));
        let name = p.file_name().unwrap();
        assert_eq!(p.parent(), Some(Path::new("/r/dir")));
        assert!(is_temp_name(name));
        assert!(names.is_ours(name));
        assert!(!TempNames::new().is_ours(OsStr::new(".foldersync-0-0.tmp")));
        assert!(!is_temp_name(OsStr::new("file.tmp")));
    }

    #[test]
    fn copy_preserves_bytes_mode_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("s");
        let dst = dir.path().join("d");
        fs::write(&src, vec![7u8; 100_000]).unwrap();
        fs::set_permissions(&src, Permissions::from_mode(0o640)).unwrap();
        let n = copy_file(
            &src,
            &dst,
            &TempNames::new(),
            false,
            &Stop::new(),
            None,
            &|_| {},
        )
        .unwrap();
        assert_eq!(n, 100_000);
        let (a, b) = (fs::metadata(&src).unwrap(), fs::metadata(&dst).unwrap());
        assert!(same_stamp(&a, &b));
        assert_eq!(b.mode() & 0o7777, 0o640);
        assert_eq!(fs::read(&dst).unwrap(), fs::read(&src).unwrap());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }

    #[test]
    fn same_bytes_stops_at_a_difference() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        let mut data = vec![5u8; 600_000];
        fs::write(&a, &data).unwrap();
        fs::write(&b, &data).unwrap();
        data[599_999] = 6;
        fs::write(&c, &data).unwrap();
        assert!(same_bytes(&a, &b).unwrap());
        assert!(!same_bytes(&a, &c).unwrap());
    }

    #[test]
    fn stopped_copy_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("s");
        fs::write(&src, b"data").unwrap();
        let stop = Stop::new();
        stop.set();
        let r = copy_file(
            &src,
            &dir.path().join("d"),
            &TempNames::new(),
            false,
            &stop,
            None,
            &|_| {},
        );
        assert!(matches!(r, Err(CopyError::Stopped)));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
