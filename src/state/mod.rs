//! What foldersync remembers of a mirror between runs, outside SOURCE and REPLICA: whether it
//! has mirrored into this REPLICA before (the same directory: its identity is kept, and where
//! its path led), what SOURCE was (its identity, and whether a disk was mounted there), where
//! file systems were mounted inside SOURCE (so that one that went away is noticed, even across a
//! restart), and the tokens of its runs' temporary files. One small JSON file per pair, in the
//! state directory: `/var/lib/foldersync` as root, else `$XDG_STATE_HOME/foldersync`
//! (`~/.local/state`), or `--state-dir`; private (0700). It is written atomically (a temporary
//! file, then a rename); a state directory that cannot be used is said and the mirror goes on
//! (its guards then act as on a first run). A lock beside the record keeps two foldersync
//! processes from mirroring the same pair at once.

mod record;

pub use record::{Proof, Record};

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::dir::Dir;
use crate::own::TempNames;

/// The state directory and the record file of one pair.
#[derive(Debug, Clone)]
pub struct State {
    dir: PathBuf,
    file: PathBuf,
    source: PathBuf,
    replica: PathBuf,
}

/// What [`State::load`] found.
#[derive(Debug)]
pub enum Loaded {
    /// No record: this pair was never mirrored (with this state directory).
    None,
    Record(Record),
    /// A record that cannot be read or understood: said, and taken for none.
    Unreadable(String),
}

/// The default state directory.
pub fn default_dir() -> Option<PathBuf> {
    if rustix::process::geteuid().is_root() {
        return Some(PathBuf::from("/var/lib/foldersync"));
    }
    let xdg = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let home = || {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|h| h.join(".local/state"))
    };
    Some(xdg.or_else(home)?.join("foldersync"))
}

/// FNV-1a, 64 bits: a hash that stays the same from one build of foldersync to the next (the
/// standard library's does not promise to), for names kept on disk.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

impl State {
    /// The state of the pair `source` -> `replica`, both as given (absolute, symlinks not
    /// resolved: a symlink put at REPLICA's path later must not make it another pair), kept in
    /// `dir`.
    pub fn new(dir: PathBuf, source: &Path, replica: &Path) -> State {
        let hash = stable_hash(&[
            source.as_os_str().as_bytes(),
            replica.as_os_str().as_bytes(),
        ]);
        let file = dir.join(format!("mirror-{hash:016x}.json"));
        State {
            dir,
            file,
            source: source.to_path_buf(),
            replica: replica.to_path_buf(),
        }
    }

    /// Where the record is kept.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// A new record for this pair.
    pub fn fresh(&self) -> Record {
        Record {
            source: self.source.clone(),
            replica: self.replica.clone(),
            ..Record::default()
        }
    }

    /// The record, if there is one for this pair.
    pub fn load(&self) -> Loaded {
        let bytes = match std::fs::read(&self.file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::None,
            Err(e) => return Loaded::Unreadable(e.to_string()),
        };
        match serde_json::from_slice::<Record>(&bytes) {
            // A hash shared by two pairs is told apart by the pair itself.
            Ok(r) if r.source == self.source && r.replica == self.replica => Loaded::Record(r),
            Ok(_) => Loaded::None,
            Err(e) => Loaded::Unreadable(e.to_string()),
        }
    }

    /// Makes the state directory (private) if it is missing.
    fn make_dir(&self) -> std::io::Result<()> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
    }

    /// Writes the record.
    pub fn save(&self, record: &Record) -> std::io::Result<()> {
        self.make_dir()?;
        let dir = Dir::open(&self.dir)?;
        let name = self
            .file
            .file_name()
            .ok_or_else(|| std::io::Error::other("no file name"))?;
        let tmp = TempNames::new().fresh();
        let mut json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        json.push(b'\n');
        let written = dir.create_file(&tmp).and_then(|mut f| {
            f.write_all(&json)?;
            f.sync_all()
        });
        let renamed = written.and_then(|()| dir.rename(&tmp, &dir, name));
        if renamed.is_err() {
            let _ = dir.unlink(&tmp);
        }
        renamed
    }

    /// Takes the lock of this pair for as long as the returned file is open; `Ok(None)` if
    /// another process holds it.
    pub fn lock(&self) -> std::io::Result<Option<File>> {
        self.lock_at(&self.file.with_extension("lock"))
    }

    /// Takes the lock on the REPLICA whose identity is `identity`, whatever path reached it
    /// (a symlinked parent, a bind mount): `None` if another process holds it.
    pub fn lock_replica(&self, identity: &str) -> std::io::Result<Option<File>> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        let hash = stable_hash(&[identity.as_bytes()]);
        self.lock_at(&dir.join(format!("replica-{hash:016x}.lock")))
    }

    fn lock_at(&self, path: &Path) -> std::io::Result<Option<File>> {
        use rustix::fs::{flock, FlockOperation};
        self.make_dir()?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(file)),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Where the lock is kept.
    pub fn lock_path(&self) -> PathBuf {
        self.file.with_extension("lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_record_is_kept_per_pair() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let state = State::new(dir.clone(), Path::new("/s"), Path::new("/r"));
        assert!(matches!(state.load(), Loaded::None));
        let record = Record {
            replica_id: Some("1:2".into()),
            mirrored: true,
            source_mounts: [PathBuf::from("disk")].into(),
            tokens: vec!["0123456789abcdef".into()],
            ..state.fresh()
        };
        state.save(&record).unwrap();
        assert!(matches!(state.load(), Loaded::Record(r) if r == record));
        let other = State::new(dir.clone(), Path::new("/s"), Path::new("/other"));
        assert_ne!(other.path(), state.path());
        assert!(matches!(other.load(), Loaded::None));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(state.path(), "{ not json").unwrap();
        assert!(matches!(state.load(), Loaded::Unreadable(_)));
    }

    #[test]
    fn one_process_holds_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let state = State::new(tmp.path().join("state"), Path::new("/s"), Path::new("/r"));
        let held = state.lock().unwrap();
        assert!(held.is_some());
        // flock locks belong to the open file: a second open is refused while the first holds.
        assert!(state.lock().unwrap().is_none());
        drop(held);
        assert!(state.lock().unwrap().is_some());
    }

    #[test]
    fn the_hash_is_stable() {
        assert_eq!(stable_hash(&[b"/s", b"/r"]), stable_hash(&[b"/s", b"/r"]));
        assert_ne!(stable_hash(&[b"/s", b"/r"]), stable_hash(&[b"/s/", b"r"]));
        assert_eq!(stable_hash(&[]), 0xcbf2_9ce4_8422_2325);
    }
}
