//! Comparing two files' bytes, the only proof that they hold the same content (equal size and
//! mtime are a hint, never proof). Only the ranges where either file holds data are read: a
//! range that is a hole in both is equal without a read, so a 256 GiB sparse file with little
//! data compares in moments. The comparison stops at the first difference, and between chunks
//! it asks whether to give up (a stop was requested), so it never outlasts a SIGTERM by more
//! than one chunk's read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

/// How much of each file is read at a time.
const CHUNK: usize = 256 << 10;

/// What a comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    Same,
    Differ,
    /// Given up on (a stop was requested): nothing is known.
    Stopped,
}

/// Whether the first `len` bytes of `a` and of `b` are the same; a file shorter than `len`
/// differs from one that is not. `stop` is asked between chunks.
pub fn same_data(a: &File, b: &File, len: u64, stop: &dyn Fn() -> bool) -> io::Result<Compared> {
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut pos = 0u64;
    while pos < len {
        if stop() {
            return Ok(Compared::Stopped);
        }
        // The next byte either file holds as data; what lies before it is a hole in both.
        let start = next_data(a, pos, len)?.min(next_data(b, pos, len)?);
        if start >= len {
            // Only holes are left in both; the lengths still have to agree.
            let (la, lb) = (a.metadata()?.len(), b.metadata()?.len());
            return Ok(if la.min(len) == lb.min(len) {
                Compared::Same
            } else {
                Compared::Differ
            });
        }
        let want = ((len - start).min(CHUNK as u64)) as usize;
        let na = read_full(a, &mut ba[..want], start)?;
        let nb = read_full(b, &mut bb[..want], start)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(Compared::Differ);
        }
        if na < want {
            // Both ended early, at the same place: equal only if that is the end.
            return Ok(if start + na as u64 >= len {
                Compared::Same
            } else {
                Compared::Differ
            });
        }
        pos = start + na as u64;
    }
    Ok(Compared::Same)
}

/// Whether SOURCE's `input` (as `before` describes it) holds the same bytes as `theirs`, compared
/// while no writer touched `input`: under a read lease where one can be had (a writer opening it
/// breaks the lease), else with its ctime checked after. A writer at work, or one that came
/// meanwhile, makes it [`Compared::Differ`]: not proven.
pub fn same_data_undisturbed(
    input: &File,
    before: &super::Meta,
    theirs: &File,
    stop: &dyn Fn() -> bool,
) -> io::Result<Compared> {
    use super::lease::{self, Lease};
    let leased = match lease::take(input) {
        Lease::Busy => return Ok(Compared::Differ),
        Lease::Held => true,
        Lease::Unavailable => false,
    };
    let same = same_data(input, theirs, before.size, stop);
    let undisturbed = if leased {
        let holds = lease::holds(input);
        lease::release(input);
        holds
    } else {
        super::meta_of(input).is_ok_and(|now| now.ctime == before.ctime)
    };
    match same? {
        Compared::Same if !undisturbed => Ok(Compared::Differ),
        other => Ok(other),
    }
}

/// The offset of the next data at or after `pos` in `file`, or `len` if there is none before
/// it. A file system that cannot say (no `SEEK_DATA`) is taken as all data.
fn next_data(file: &File, pos: u64, len: u64) -> io::Result<u64> {
    match rustix::fs::seek(file, SeekFrom::Data(pos)) {
        Ok(at) => Ok(at.min(len)),
        Err(Errno::NXIO) => Ok(len),
        Err(Errno::INVAL | Errno::OPNOTSUPP) => Ok(pos),
        Err(e) => Err(e.into()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    fn file(dir: &std::path::Path, name: &str, parts: &[(u64, &[u8])], len: u64) -> File {
        let path = dir.join(name);
        let mut f = File::create(&path).unwrap();
        for (at, data) in parts {
            f.seek(io::SeekFrom::Start(*at)).unwrap();
            f.write_all(data).unwrap();
        }
        f.set_len(len).unwrap();
        File::open(&path).unwrap()
    }

    const NEVER: &dyn Fn() -> bool = &|| false;

    #[test]
    fn sparse_files_compare_by_their_data() {
        let tmp = tempfile::tempdir().unwrap();
        let big = 64u64 << 30;
        let a = file(tmp.path(), "a", &[(7, b"x"), (40 << 30, b"tail")], big);
        let b = file(tmp.path(), "b", &[(7, b"x"), (40 << 30, b"tail")], big);
        let c = file(tmp.path(), "c", &[(7, b"x"), (40 << 30, b"tall")], big);
        let started = std::time::Instant::now();
        assert_eq!(same_data(&a, &b, big, NEVER).unwrap(), Compared::Same);
        assert_eq!(same_data(&a, &c, big, NEVER).unwrap(), Compared::Differ);
        assert!(started.elapsed().as_secs() < 5, "holes are not read");
        // A hole on one side equals zeros written on the other.
        let zeros = vec![0u8; 1 << 20];
        let d = file(tmp.path(), "d", &[(7, b"x"), (1 << 20, &zeros)], 4 << 20);
        let e = file(tmp.path(), "e", &[(7, b"x")], 4 << 20);
        assert_eq!(same_data(&d, &e, 4 << 20, NEVER).unwrap(), Compared::Same);
    }

    #[test]
    fn lengths_and_stops() {
        let tmp = tempfile::tempdir().unwrap();
        let a = file(tmp.path(), "a", &[(0, b"abcdef")], 6);
        let b = file(tmp.path(), "b", &[(0, b"abc")], 3);
        assert_eq!(same_data(&a, &b, 6, NEVER).unwrap(), Compared::Differ);
        assert_eq!(same_data(&a, &b, 3, NEVER).unwrap(), Compared::Same);
        let c = file(tmp.path(), "c", &[], 6);
        let d = file(tmp.path(), "d", &[], 9);
        assert_eq!(same_data(&c, &d, 6, NEVER).unwrap(), Compared::Same);
        assert_eq!(same_data(&c, &d, 9, NEVER).unwrap(), Compared::Differ);
        assert_eq!(same_data(&a, &a, 6, &|| true).unwrap(), Compared::Stopped);
    }
}
