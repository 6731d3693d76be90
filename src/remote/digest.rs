//! Proof that a remote entry holds a SOURCE file's bytes, before a rename moves it into place:
//! a strong digest of SOURCE's file, computed here, which the remote side compares with the
//! same digest of the entry it would rename (see [`super::script`]): BLAKE2b-512 with `b2sum`
//! where the remote machine has it (coreutils), SHA-256 with `sha256sum` otherwise (BusyBox). Equal size and mtime is a
//! hint, never proof. Only data regions are read (holes are hashed as the zeros they read as);
//! a stop ends the reading within a buffer's time; a file that changes while it is read proves
//! nothing.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use blake2::Blake2b512;
use sha2::{Digest, Sha256};

use crate::dir::{Kind, Meta};
use crate::root::Root;
use crate::stop::Stop;

/// How much is read (or hashed as zeros) between two looks at the stop flag.
const CHUNK: usize = 1 << 20;
/// How many bytes of SOURCE one batch hashes at most (a few seconds' reading, and as much
/// again on the remote side): a larger renamed file is sent by rsync instead.
const BATCH_BUDGET: u64 = 16 << 30;

/// The digest both sides compute, as the remote machine's tool for it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// BLAKE2b-512, `b2sum`.
    Blake2b,
    /// SHA-256, `sha256sum`.
    Sha256,
}

impl Alg {
    /// The best the remote machine has, as its probe found.
    pub fn of(probe: &super::probe::Probe) -> Option<Alg> {
        if probe.b2sum {
            Some(Alg::Blake2b)
        } else if probe.sha256sum {
            Some(Alg::Sha256)
        } else {
            None
        }
    }

    /// The remote command that prints the digest of its standard input.
    pub fn tool(self) -> &'static str {
        match self {
            Alg::Blake2b => "b2sum",
            Alg::Sha256 => "sha256sum",
        }
    }
}

/// The proofs one batch may ask for: none where the remote machine has no digest tool, and no
/// more bytes than the budget.
pub struct Prover {
    stop: Stop,
    budget: u64,
    alg: Option<Alg>,
}

impl Prover {
    pub fn new(stop: Stop, alg: Option<Alg>) -> Prover {
        Prover {
            stop,
            budget: BATCH_BUDGET,
            alg,
        }
    }

    /// What the remote entry must be to be renamed into SOURCE's file `rel` (see [`what`]).
    pub fn file(&mut self, source: &Root, rel: &Path) -> Option<String> {
        what(source, rel, self.alg?, &self.stop, &mut self.budget)
    }
}

/// What the remote entry must be to be renamed into SOURCE's `rel`, a regular file: `f:SIZE:HEX`
/// (HEX its digest). `None` if it is not a regular file, cannot be read, changed while it was
/// read, or the mirror is stopping. `budget` is what may still be read in this batch; a file
/// larger than what is left is not hashed.
pub fn what(source: &Root, rel: &Path, alg: Alg, stop: &Stop, budget: &mut u64) -> Option<String> {
    let (parent, name) = (rel.parent()?, rel.file_name()?);
    let file = source.dir.open_beneath(parent).ok()?.open_file(name).ok()?;
    let before = crate::dir::meta_of(&file).ok()?;
    if before.kind != Kind::File || before.size > *budget {
        return None;
    }
    *budget -= before.size;
    let hex = match alg {
        Alg::Blake2b => digest::<Blake2b512>(&file, before.size, stop)?,
        Alg::Sha256 => digest::<Sha256>(&file, before.size, stop)?,
    };
    let after = crate::dir::meta_of(&file).ok()?;
    unchanged(&before, &after).then(|| format!("f:{}:{hex}", before.size))
}

fn unchanged(a: &Meta, b: &Meta) -> bool {
    a.size == b.size && a.mtime == b.mtime && a.ctime == b.ctime
}

/// The digest of `file`'s first `len` bytes, as lowercase hex.
fn digest<D: Digest>(file: &File, len: u64, stop: &Stop) -> Option<String> {
    let mut hash = D::new();
    let mut buf = vec![0u8; CHUNK];
    let zeros = vec![0u8; CHUNK];
    let mut pos = 0u64;
    while pos < len {
        let (start, end) = crate::dir::copy::data_segment(file, pos, len)
            .ok()?
            .unwrap_or((len, len));
        // The hole before the data: zeros, not read.
        while pos < start {
            if stop.is_set() {
                return None;
            }
            let n = (start - pos).min(CHUNK as u64) as usize;
            hash.update(&zeros[..n]);
            pos += n as u64;
        }
        while pos < end {
            if stop.is_set() {
                return None;
            }
            let want = (end - pos).min(CHUNK as u64) as usize;
            let n = file.read_at(&mut buf[..want], pos).ok()?;
            if n == 0 {
                // Shorter than it said: it changed.
                return None;
            }
            hash.update(&buf[..n]);
            pos += n as u64;
        }
    }
    Some(hex(&hash.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    #[test]
    fn the_digest_is_sha256sums_holes_included() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"head").unwrap();
        f.seek(std::io::SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(b"tail").unwrap();
        drop(f);
        let root = Root::open(tmp.path()).unwrap();
        for alg in [Alg::Blake2b, Alg::Sha256] {
            let mut budget = u64::MAX;
            let what = what(&root, Path::new("f"), alg, &Stop::new(), &mut budget).unwrap();
            let out = std::process::Command::new(alg.tool())
                .stdin(File::open(&path).unwrap())
                .output()
                .unwrap();
            let theirs = String::from_utf8_lossy(&out.stdout);
            let theirs = theirs.split_whitespace().next().unwrap();
            assert_eq!(what, format!("f:{}:{theirs}", (3 << 20) + 4));
            assert_eq!(budget, u64::MAX - ((3 << 20) + 4));
        }
        let mut small = 10;
        assert_eq!(what_for(&root, &mut small), None, "over the budget");
        let stop = Stop::new();
        stop.set();
        let mut budget = u64::MAX;
        assert_eq!(
            super::what(&root, Path::new("f"), Alg::Sha256, &stop, &mut budget),
            None
        );
    }

    fn what_for(root: &Root, budget: &mut u64) -> Option<String> {
        super::what(root, Path::new("f"), Alg::Sha256, &Stop::new(), budget)
    }
}
