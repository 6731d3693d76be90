//! One definition of foldersync's own files: the log, the status file, the backup directory and
//! temporary files. Built once in the validated configuration and asked by the empty-SOURCE
//! guard, the watcher and the passes alike, so they cannot disagree.

use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// What belongs to foldersync and not to the mirror.
#[derive(Debug, Default)]
pub struct OwnFiles {
    /// Our files inside SOURCE, relative to it (the log file, the status file): never mirrored,
    /// never counted as content, and their events never reach the mirror.
    in_source: Vec<PathBuf>,
    /// Our directories inside SOURCE, relative to it (the state directory, when SOURCE holds
    /// it: a home directory): never mirrored, never counted, never watched.
    dirs_in_source: Vec<PathBuf>,
    /// Directories inside SOURCE where our temporary files appear (the status file's directory).
    temp_dirs_in_source: Vec<PathBuf>,
    /// Our directories inside REPLICA, relative to it (a backup directory): never mirrored into
    /// and never removed, nor are the directories that lead to them.
    in_replica: Vec<PathBuf>,
    temps: TempNames,
    /// The tokens of earlier runs on this mirror (from the state record): their temporary
    /// files, left by a run that was killed, are leftovers, not data.
    past: std::sync::OnceLock<Vec<String>>,
}

impl OwnFiles {
    /// `source_files` are our files that live in SOURCE (relative paths); `replica_dirs` our
    /// directories that live in REPLICA.
    pub fn new(source_files: Vec<PathBuf>, replica_dirs: Vec<PathBuf>) -> OwnFiles {
        let temp_dirs_in_source = source_files
            .iter()
            .map(|p| p.parent().unwrap_or(Path::new("")).to_path_buf())
            .collect();
        OwnFiles {
            in_source: source_files,
            dirs_in_source: Vec::new(),
            temp_dirs_in_source,
            in_replica: replica_dirs,
            // One token for every pair of a process (`--config`): the status file's temporary
            // files, written for all pairs, are then every pair's own where a SOURCE holds them.
            temps: TempNames::process(),
            past: std::sync::OnceLock::new(),
        }
    }

    /// Adds our directories inside SOURCE (relative paths; the root itself never is one).
    pub fn with_source_dirs(mut self, dirs: Vec<PathBuf>) -> OwnFiles {
        self.dirs_in_source = dirs
            .into_iter()
            .filter(|d| !d.as_os_str().is_empty())
            .collect();
        self
    }

    /// Adds directories of ours inside REPLICA (relative paths; the root itself never is one).
    pub fn with_replica_dirs(mut self, dirs: Vec<PathBuf>) -> OwnFiles {
        self.in_replica
            .extend(dirs.into_iter().filter(|d| !d.as_os_str().is_empty()));
        self
    }

    /// The tokens of earlier runs on this mirror (set once, at start-up).
    pub fn know_past_tokens(&self, tokens: Vec<String>) {
        let _ = self.past.set(tokens);
    }

    /// Whether `name` is a temporary file of this run or of an earlier run on this mirror (left
    /// by one that was killed): a leftover, not data. A user's file of the same shape, with
    /// another token, is data.
    pub fn is_leftover(&self, name: &OsStr) -> bool {
        is_temp_name(name)
            && (self.temps.is_ours(name)
                || self.past.get().is_some_and(|past| {
                    let token = &name.as_bytes()[PREFIX.len()..PREFIX.len() + TOKEN_LEN];
                    past.iter().any(|t| t.as_bytes() == token)
                }))
    }

    /// Whether the SOURCE path `rel` is one of ours (so it is neither mirrored nor watched).
    pub fn in_source(&self, rel: &Path) -> bool {
        if self.in_source.iter().any(|p| p == rel)
            || self.dirs_in_source.iter().any(|d| rel.starts_with(d))
        {
            return true;
        }
        rel.file_name().is_some_and(|name| {
            self.temps.is_ours(name)
                && self
                    .temp_dirs_in_source
                    .iter()
                    .any(|d| rel.parent() == Some(d.as_path()))
        })
    }

    /// Whether the REPLICA path `rel` is ours or lies inside something of ours: never touched.
    pub fn in_replica(&self, rel: &Path) -> bool {
        self.in_replica.iter().any(|p| rel.starts_with(p))
    }

    /// Whether the REPLICA directory `rel` leads to something of ours: it may lose its other
    /// contents but is never removed itself.
    pub fn leads_to_own(&self, rel: &Path) -> bool {
        self.in_replica
            .iter()
            .any(|p| p.starts_with(rel) && p.as_path() != rel)
    }

    /// Whether a watcher event for the SOURCE path `rel` can be dropped: it concerns one of our
    /// own files, which must never feed the mirror.
    pub fn ignores_event(&self, rel: &Path) -> bool {
        self.in_source(rel)
    }

    /// The temporary-name scheme.
    pub fn temps(&self) -> &TempNames {
        &self.temps
    }

    /// Our files inside SOURCE, relative to it.
    pub fn source_files(&self) -> &[PathBuf] {
        &self.in_source
    }

    /// Our directories inside SOURCE, relative to it.
    pub fn source_dirs(&self) -> &[PathBuf] {
        &self.dirs_in_source
    }

    /// The SOURCE directories where our temporary files appear.
    pub fn source_temp_dirs(&self) -> &[PathBuf] {
        &self.temp_dirs_in_source
    }

    /// Our directories inside REPLICA, relative to it.
    pub fn replica_dirs(&self) -> &[PathBuf] {
        &self.in_replica
    }
}

/// Temporary names: `.foldersync-<16 hex digits>-<n>.tmp`, the hex digits random for each
/// process. A user's file may look like one; only the exact shape counts as a leftover of some
/// foldersync run, and only this process's token as in flight.
#[derive(Debug)]
pub struct TempNames {
    token: String,
    /// Shared by the names of one token, so that no two are alike.
    counter: Arc<AtomicU64>,
}

const PREFIX: &[u8] = b".foldersync-";
const SUFFIX: &[u8] = b".tmp";
const TOKEN_LEN: usize = 16;

impl TempNames {
    pub fn new() -> TempNames {
        // RandomState is seeded from the operating system's random source.
        let random = RandomState::new().build_hasher().finish();
        TempNames {
            token: format!("{random:016x}"),
            counter: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The process's own names: one token (and one counter) for all who ask.
    pub fn process() -> TempNames {
        static PROCESS: OnceLock<TempNames> = OnceLock::new();
        let names = PROCESS.get_or_init(TempNames::new);
        TempNames {
            token: names.token.clone(),
            counter: names.counter.clone(),
        }
    }

    /// A fresh temporary name (a single path component).
    pub fn fresh(&self) -> OsString {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut name = PREFIX.to_vec();
        name.extend_from_slice(self.token.as_bytes());
        name.extend_from_slice(format!("-{n}").as_bytes());
        name.extend_from_slice(SUFFIX);
        OsString::from_vec(name)
    }

    /// This process's token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A wildcard pattern matching this process's temporary names (`*` for the counter).
    pub fn pattern(&self) -> String {
        format!(
            "{}{}-*{}",
            String::from_utf8_lossy(PREFIX),
            self.token,
            String::from_utf8_lossy(SUFFIX)
        )
    }

    /// Whether `name` is a temporary name of this process.
    pub fn is_ours(&self, name: &OsStr) -> bool {
        is_temp_name(name) && name.as_bytes()[PREFIX.len()..].starts_with(self.token.as_bytes())
    }
}

impl Default for TempNames {
    fn default() -> Self {
        TempNames::new()
    }
}

/// Whether `name` has the exact shape of a foldersync temporary name (of any run).
pub fn is_temp_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    let Some(middle) = b
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(SUFFIX))
    else {
        return false;
    };
    let Some((token, n)) = middle.split_at_checked(TOKEN_LEN) else {
        return false;
    };
    token
        .iter()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        && n.len() > 1
        && n[0] == b'-'
        && n[1..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_have_one_exact_shape() {
        let temps = TempNames::new();
        let name = temps.fresh();
        assert!(is_temp_name(&name), "{name:?}");
        assert!(temps.is_ours(&name));
        assert!(!TempNames::new().is_ours(&name));
        for user in [
            ".foldersync-x.tmp",
            ".foldersync-.tmp",
            ".foldersync-0123456789abcdef.tmp",
            ".foldersync-0123456789ABCDEF-1.tmp",
            ".foldersync-0123456789abcdef-1x.tmp",
            "file.tmp",
        ] {
            assert!(!is_temp_name(OsStr::new(user)), "{user}");
        }
        assert!(is_temp_name(OsStr::new(
            ".foldersync-0123456789abcdef-17.tmp"
        )));
    }

    #[test]
    fn own_files_in_source_and_replica() {
        let own = OwnFiles::new(
            vec!["logs/sync.log".into(), "state/status.json".into()],
            vec!["old/bk".into()],
        );
        assert!(own.in_source(Path::new("logs/sync.log")));
        assert!(!own.in_source(Path::new("logs/other.log")));
        let tmp = own.temps().fresh();
        assert!(own.in_source(&Path::new("state").join(&tmp)));
        assert!(!own.in_source(&Path::new("elsewhere").join(&tmp)));
        assert!(own.in_replica(Path::new("old/bk")));
        assert!(own.in_replica(Path::new("old/bk/x")));
        assert!(!own.in_replica(Path::new("old")));
        assert!(own.leads_to_own(Path::new("old")));
        assert!(own.leads_to_own(Path::new("")));
        assert!(!own.leads_to_own(Path::new("old/bk")));
        assert!(!own.leads_to_own(Path::new("other")));
    }
}
