//! Moving a file's bytes: `copy_file_range` (the kernel's fast path, which reflinks where the
//! file system can) in chunks, only over the source's data segments so holes stay holes, with a
//! read/write fallback.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

use super::Meta;

/// How much is copied between two looks at the stop flag and at the source's metadata.
pub const CHUNK: u64 = 8 << 20;

/// Why a copy of bytes stopped early.
#[derive(Debug)]
pub enum DataError {
    /// A stop was requested.
    Stopped,
    /// The source's size or mtime changed between two chunks: it is being written.
    Changed,
    Read(io::Error),
    Write(io::Error),
}

/// What the copy asks of its caller between chunks.
pub trait Progress {
    /// Whether to give up now.
    fn stopped(&self) -> bool;
    /// `n` more bytes were written.
    fn wrote(&self, n: u64);
    /// Whether `input` is still as `before` describes it: by default, the same size and
    /// mtime.
    fn unchanged(&self, input: &File, before: &Meta) -> io::Result<bool> {
        same_size_and_mtime(input, before)
    }
}

/// Whether `input` still has the size and mtime `before` gives.
pub fn same_size_and_mtime(input: &File, before: &Meta) -> io::Result<bool> {
    let now = super::meta_of(input)?;
    Ok(now.size == before.size && now.mtime == before.mtime)
}

/// Copies `before.size` bytes of `input` into the empty file `output`, leaving holes where the
/// source has them, and returns the number of bytes written. Between chunks the stop flag and
/// the source's metadata are checked, so a stop takes effect within milliseconds and a source
/// that is being written is given up on at once.
pub fn copy_data(
    input: &File,
    output: &File,
    before: &Meta,
    progress: &dyn Progress,
) -> Result<u64, DataError> {
    copy_from(input, output, 0, before, progress)
}

/// Copies the bytes from `from` to `before.size` of `input` to the same offsets of `output`:
/// the tail of a file that grew.
pub fn copy_from(
    input: &File,
    output: &File,
    from: u64,
    before: &Meta,
    progress: &dyn Progress,
) -> Result<u64, DataError> {
    let len = before.size;
    let sparse = before.blocks.saturating_mul(512) < len;
    let mut written = 0u64;
    let mut pos = from;
    let mut fast = true;
    let mut buf = Vec::new();
    while pos < len {
        if progress.stopped() {
            return Err(DataError::Stopped);
        }
        if pos > from && !progress.unchanged(input, before).map_err(DataError::Read)? {
            return Err(DataError::Changed);
        }
        // The next data segment: [start, end).
        let (start, end) = if sparse {
            match data_segment(input, pos, len) {
                Ok(Some(seg)) => seg,
                Ok(None) => break,
                Err(e) => return Err(DataError::Read(e)),
            }
        } else {
            (pos, len)
        };
        let want = (end - start).min(CHUNK);
        let n = if fast {
            match copy_range(input, output, start, want) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if falls_back(&e) => {
                    fast = false;
                    continue;
                }
                Err(e) if is_write_error(&e) => return Err(DataError::Write(e)),
                Err(e) => return Err(DataError::Read(e)),
            }
        } else {
            if buf.is_empty() {
                buf = vec![0u8; 256 << 10];
            }
            let want = (want as usize).min(buf.len());
            let n = match input.read_at(&mut buf[..want], start) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DataError::Read(e)),
            };
            output
                .write_all_at(&buf[..n], start)
                .map_err(DataError::Write)?;
            n as u64
        };
        written += n;
        pos = start + n;
        progress.wrote(n);
    }
    // Trailing holes, and a source that shrank to a hole: the size is set, not written.
    if sparse {
        output.set_len(len).map_err(DataError::Write)?;
    }
    Ok(written)
}

/// The data segment at or after `pos`, clipped to `len`; `None` when only a hole is left.
pub(crate) fn data_segment(file: &File, pos: u64, len: u64) -> io::Result<Option<(u64, u64)>> {
    let start = match rustix::fs::seek(file, SeekFrom::Data(pos)) {
        Ok(start) => start,
        Err(Errno::NXIO) => return Ok(None),
        // A file system without SEEK_DATA: the whole rest is data.
        Err(Errno::INVAL | Errno::NOTSUP) => return Ok(Some((pos, len))),
        Err(e) => return Err(e.into()),
    };
    if start >= len {
        return Ok(None);
    }
    let end = match rustix::fs::seek(file, SeekFrom::Hole(start)) {
        Ok(end) => end,
        Err(Errno::NXIO) => len,
        Err(e) => return Err(e.into()),
    };
    Ok(Some((start, end.min(len))))
}

fn copy_range(input: &File, output: &File, at: u64, len: u64) -> io::Result<u64> {
    let (mut off_in, mut off_out) = (at, at);
    loop {
        match rustix::fs::copy_file_range(
            input,
            Some(&mut off_in),
            output,
            Some(&mut off_out),
            len as usize,
        ) {
            Ok(n) => return Ok(n as u64),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Errors after which plain reads and writes may still work.
fn falls_back(e: &io::Error) -> bool {
    [
        Errno::XDEV,
        Errno::NOSYS,
        Errno::OPNOTSUPP,
        Errno::INVAL,
        Errno::PERM,
        Errno::TXTBSY,
    ]
    .iter()
    .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

/// Errors that are the target's fault (a full disk), not the source's.
pub fn is_write_error(e: &io::Error) -> bool {
    [
        Errno::NOSPC,
        Errno::DQUOT,
        Errno::FBIG,
        Errno::IO,
        Errno::ROFS,
    ]
    .iter()
    .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    struct Quiet;
    impl Progress for Quiet {
        fn stopped(&self) -> bool {
            false
        }
        fn wrote(&self, _: u64) {}
    }

    #[test]
    fn holes_stay_holes() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("s"), tmp.path().join("d"));
        let mut f = File::create(&src).unwrap();
        f.write_all(b"head").unwrap();
        f.seek(io::SeekFrom::Start(64 << 20)).unwrap();
        f.write_all(b"tail").unwrap();
        f.set_len(128 << 20).unwrap();
        drop(f);
        let input = File::open(&src).unwrap();
        let before = super::super::meta_of(&input).unwrap();
        let output = File::create(&dst).unwrap();
        let n = copy_data(&input, &output, &before, &Quiet).unwrap();
        assert!(n < 1 << 20, "only the data segments are written: {n}");
        let after = super::super::meta_of(&output).unwrap();
        assert_eq!(after.size, 128 << 20);
        assert!(
            after.blocks * 512 < 4 << 20,
            "sparse: {} blocks",
            after.blocks
        );
        let same = super::super::compare::same_data(
            &File::open(&src).unwrap(),
            &File::open(&dst).unwrap(),
            128 << 20,
            &|| false,
        );
        assert_eq!(same.unwrap(), super::super::compare::Compared::Same);
    }
}
