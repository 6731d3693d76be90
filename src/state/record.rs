//! The record of one SOURCE and REPLICA pair, as kept on disk: JSON, with every path kept
//! exactly (a name that is not UTF-8 is kept as its bytes, in hex), so no name can keep the
//! record from being written.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The record of one SOURCE and REPLICA pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// SOURCE as it was given (absolute, symlinks not resolved).
    #[serde(with = "one")]
    pub source: PathBuf,
    /// REPLICA as it was given (absolute, symlinks not resolved; `host:path` for a remote one).
    #[serde(with = "one")]
    pub replica: PathBuf,
    /// REPLICA's root as it was when foldersync last mirrored into it (`device:inode:birth:fs`,
    /// or the remote side's): the record speaks for that directory only.
    pub replica_id: Option<String>,
    /// REPLICA's root was a mount point (a disk mounted there) then.
    #[serde(default)]
    pub replica_mount: bool,
    /// Where REPLICA's path led then (symlinks resolved), for a local one.
    #[serde(default, with = "maybe")]
    pub replica_place: Option<PathBuf>,
    /// SOURCE's root as it was then (the same form as `replica_id`).
    #[serde(default)]
    pub source_id: Option<String>,
    /// SOURCE's root was a mount point (a disk mounted there) then.
    #[serde(default)]
    pub source_mount: bool,
    /// A pass completed into it.
    pub mirrored: bool,
    /// Directories inside SOURCE (relative) where a file system was mounted at the last pass.
    #[serde(default, with = "set")]
    pub source_mounts: BTreeSet<PathBuf>,
    /// The temporary-name tokens of the latest runs (see `own::TempNames`), newest last: a
    /// temporary file one of them left is a leftover, not data.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// What a remote REPLICA's passes compared by content (see [`Proof`]).
    #[serde(default)]
    pub proof: Proof,
}

/// What rsync's quick check (size and mtime) is not trusted with on a remote REPLICA, kept
/// between runs (see `remote::proof`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// When the last full pass that went through began (seconds and nanoseconds, this
    /// machine's clock, less a margin): a SOURCE file whose ctime is earlier had not changed
    /// since then, and that pass left REPLICA's copy as SOURCE has it.
    #[serde(default)]
    pub since: Option<(i64, u32)>,
    /// Directories REPLICA holds by a rename found by looking (or that came into SOURCE whole
    /// from elsewhere), whose files are still to be compared by content.
    #[serde(default, with = "set")]
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

/// A path as the record keeps it: its text, or, if it is not UTF-8, its bytes in hex.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Kept {
    Text(String),
    Bytes { hex: String },
}

impl From<&PathBuf> for Kept {
    fn from(path: &PathBuf) -> Kept {
        match path.to_str() {
            Some(text) => Kept::Text(text.to_string()),
            None => Kept::Bytes {
                hex: path
                    .as_os_str()
                    .as_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            },
        }
    }
}

impl TryFrom<Kept> for PathBuf {
    type Error = String;

    fn try_from(kept: Kept) -> Result<PathBuf, String> {
        match kept {
            Kept::Text(text) => Ok(PathBuf::from(text)),
            Kept::Bytes { hex } => {
                let digits = hex.as_bytes();
                if digits.len() % 2 != 0 {
                    return Err("odd hex digits".into());
                }
                let bytes = digits
                    .chunks(2)
                    .map(|pair| {
                        std::str::from_utf8(pair)
                            .ok()
                            .and_then(|p| u8::from_str_radix(p, 16).ok())
                            .ok_or_else(|| "not hex".to_string())
                    })
                    .collect::<Result<Vec<u8>, String>>()?;
                Ok(PathBuf::from(OsString::from_vec(bytes)))
            }
        }
    }
}

mod one {
    use super::*;

    pub fn serialize<S: serde::Serializer>(path: &PathBuf, s: S) -> Result<S::Ok, S::Error> {
        Kept::from(path).serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        PathBuf::try_from(Kept::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod maybe {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        path: &Option<PathBuf>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        path.as_ref().map(Kept::from).serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<PathBuf>, D::Error> {
        Option::<Kept>::deserialize(d)?
            .map(PathBuf::try_from)
            .transpose()
            .map_err(serde::de::Error::custom)
    }
}

mod set {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        paths: &BTreeSet<PathBuf>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        paths
            .iter()
            .map(Kept::from)
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeSet<PathBuf>, D::Error> {
        Vec::<Kept>::deserialize(d)?
            .into_iter()
            .map(PathBuf::try_from)
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_utf8_are_kept_exactly() {
        let odd = PathBuf::from(OsString::from_vec(b"Fotos-\xff\xfe\n".to_vec()));
        let record = Record {
            source: PathBuf::from("/s"),
            replica: odd.clone(),
            replica_place: Some(odd.clone()),
            source_mounts: [odd.clone(), PathBuf::from("disk")].into(),
            ..Record::default()
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains(r#"{"hex":"466f746f732dfffe0a"}"#), "{json}");
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn tokens_keep_the_newest() {
        let mut record = Record::default();
        for i in 0..40 {
            record.add_token(&format!("{i:016x}"));
        }
        record.add_token(&format!("{:016x}", 39));
        assert_eq!(record.tokens.len(), TOKENS);
        assert_eq!(record.tokens.last().unwrap(), &format!("{:016x}", 39));
    }

    /// A record written before the proof was kept reads as one without it.
    #[test]
    fn an_older_record_has_no_proof() {
        let old = r#"{"source": "/s", "replica": "/r", "replica_id": null, "mirrored": true}"#;
        let record: Record = serde_json::from_str(old).unwrap();
        assert_eq!(record.proof, Proof::default());
        let odd = PathBuf::from(OsString::from_vec(b"app-\xff".to_vec()));
        let kept = Record {
            proof: Proof {
                since: Some((1, 2)),
                unproven: [odd, PathBuf::from("app")].into(),
            },
            ..Record::default()
        };
        let json = serde_json::to_string(&kept).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), kept);
    }
}
