//! What foldersync remembers of a mirror between runs, outside SOURCE and REPLICA: whether it
//! has mirrored into this REPLICA before (the same directory: its identity is kept), and where
//! file systems were mounted inside SOURCE at the last pass (so that one that went away is
//! noticed, even across a restart). One small JSON file per pair, in the state directory:
//! `/var/lib/foldersync` as root, else `$XDG_STATE_HOME/foldersync` (`~/.local/state`), or
//! `--state-dir`. It is written atomically (a temporary file, then a rename); a state directory
//! that cannot be used is said once and the mirror goes on (its guards then act as on a first
//! run).

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dir::Dir;
use crate::own::TempNames;

/// The record of one SOURCE and REPLICA pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub source: String,
    pub replica: String,
    /// REPLICA's root as it was when foldersync last mirrored into it (`device:inode`, or the
    /// remote side's): the record speaks for that directory only.
    pub replica_id: Option<String>,
    /// A pass completed into it.
    pub mirrored: bool,
    /// Directories inside SOURCE (relative) where a file system was mounted at the last pass.
    #[serde(default)]
    pub source_mounts: BTreeSet<PathBuf>,
    /// The temporary-name tokens of the latest runs (see `own::TempNames`), newest last: a
    /// temporary file one of them left is a leftover, not data.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// What a remote REPLICA's passes compared by content (see [`Proof`]).
    #[serde(default)]
    pub proof: Proof,
}

/// What rsync's quick check (size and mtime) cannot be trusted with on a remote REPLICA, kept
/// between runs (see `remote::proof`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// When the last full pass that went through began (seconds and nanoseconds, this
    /// machine's clock, less a margin): a SOURCE file whose ctime is earlier had not changed
    /// since then, and that pass left REPLICA's copy as SOURCE has it.
    #[serde(default)]
    pub since: Option<(i64, u32)>,
    /// Directories REPLICA holds by a rename (or a move into SOURCE) whose files are still to be
    /// compared by content. Names that are not UTF-8 are kept as their nearest ancestor that is.
    #[serde(default)]
    pub unproven: BTreeSet<PathBuf>,
}

/// How many runs' tokens a record keeps.
pub const TOKENS: usize = 32;

impl Record {
    /// Adds this run's token (keeping the newest [`TOKENS`]).
    pub fn add_token(&mut self, token: &str) {
        if self.tokens.last().map(String::as_str) != Some(token) {
            self.tokens.retain(|t| t != token);
            self.tokens.push(token.to_string());
        }
        let extra = self.tokens.len().saturating_sub(TOKENS);
        self.tokens.drain(..extra);
    }
}

/// The state directory and the record file of one pair.
#[derive(Debug, Clone)]
pub struct State {
    dir: PathBuf,
    file: PathBuf,
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

impl State {
    /// The state of the pair `source` -> `replica` (how REPLICA was written), kept in `dir`.
    pub fn new(dir: PathBuf, source: &Path, replica: &str) -> State {
        let mut hasher = DefaultHasher::new();
        source.as_os_str().as_bytes().hash(&mut hasher);
        replica.as_bytes().hash(&mut hasher);
        let file = dir.join(format!("mirror-{:016x}.json", hasher.finish()));
        State { dir, file }
    }

    /// Where the record is kept.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The record, if there is a readable one for this pair.
    pub fn load(&self, source: &Path, replica: &str) -> Option<Record> {
        let bytes = std::fs::read(&self.file).ok()?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        // A hash shared by two pairs is told apart by the pair itself.
        (record.source == source.to_string_lossy() && record.replica == replica).then_some(record)
    }

    /// Writes the record (making the state directory, private, if it is missing).
    pub fn save(&self, record: &Record) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_kept_per_pair() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let state = State::new(dir.clone(), Path::new("/s"), "/r");
        assert_eq!(state.load(Path::new("/s"), "/r"), None);
        let record = Record {
            source: "/s".into(),
            replica: "/r".into(),
            replica_id: Some("1:2".into()),
            mirrored: true,
            source_mounts: [PathBuf::from("disk")].into(),
            tokens: vec!["0123456789abcdef".into()],
            proof: Proof {
                since: Some((1, 2)),
                unproven: [PathBuf::from("app")].into(),
            },
        };
        state.save(&record).unwrap();
        assert_eq!(state.load(Path::new("/s"), "/r"), Some(record));
        let other = State::new(dir, Path::new("/s"), "/other");
        assert_ne!(other.path(), state.path());
        assert_eq!(other.load(Path::new("/s"), "/other"), None);
        assert_eq!(
            std::fs::read_dir(tmp.path().join("state")).unwrap().count(),
            1
        );
    }

    /// A record written before the proof was kept reads as one without it.
    #[test]
    fn an_older_record_has_no_proof() {
        let old = r#"{"source": "/s", "replica": "/r", "replica_id": null, "mirrored": true}"#;
        let record: Record = serde_json::from_str(old).unwrap();
        assert_eq!(record.proof, Proof::default());
    }
}
