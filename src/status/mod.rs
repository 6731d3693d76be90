//! The status file (`--status-file`): a small JSON document describing the running mirror,
//! replaced atomically, and the `foldersync status PATH` command that reads it for people and
//! monitoring checks. The schema is documented in docs/operations.md.

pub mod board;
mod show;
pub use board::Board;
pub use show::print;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::dir::Dir;
use crate::escape::{controls, esc};
use crate::own::OwnFiles;
use crate::stats::Counts;

/// What the mirror is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Between passes, watching SOURCE.
    Watching,
    /// Between passes, without a watcher (`--no-watch`).
    PeriodicOnly,
    /// A full pass is running.
    Passing,
    /// SOURCE is gone, unreadable, on another device or empty: nothing is changed.
    SourceMissing,
    /// REPLICA is gone, replaced or unmounted: nothing is written (see `reason`).
    ReplicaMissing,
    /// Running, but part of the work falls to the periodic passes (see `reason`).
    Degraded,
    /// Stopped by a signal.
    Stopped,
    /// A `--once` run ended.
    Finished,
}

/// The last full pass.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pass {
    pub started_at: String,
    pub finished_at: String,
    pub seconds: f64,
    /// `ok`, `errors`, `interrupted` or `skipped` (SOURCE unavailable).
    pub outcome: String,
    /// `checked`, `copied`, `updated`, `created`, `removed`, `renamed`, `bytes`, `errors`.
    #[serde(flatten)]
    pub counts: Counts,
    /// How many of the pass's errors were on paths that are tried again (and counted in
    /// `failing` until they succeed).
    #[serde(default)]
    pub retried: u64,
}

/// The whole document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub source: String,
    pub replica: String,
    pub state: State,
    /// Why the state is `source-missing` or `degraded`.
    pub reason: Option<String>,
    pub started_at: String,
    pub updated_at: String,
    /// `updated_at` as seconds since the epoch, for checks.
    pub updated_unix: f64,
    pub interval_seconds: f64,
    pub last_pass: Option<Pass>,
    /// Paths the watcher has brought up to date since start.
    pub events_applied: u64,
    /// Bytes of file data written into REPLICA since start, by passes and the watcher.
    #[serde(default)]
    pub bytes_written: u64,
    /// Paths waiting for the worker (hints, retries); `pass_pending` when a full pass is queued.
    pub pending: u64,
    pub pass_pending: bool,
    /// Why the log file cannot be written, while it cannot.
    #[serde(default)]
    pub log_problem: Option<String>,
    /// Paths that failed and are being tried again (see the log for their errors).
    #[serde(default)]
    pub failing: u64,
    /// Some of them (relative to SOURCE, escaped).
    #[serde(default)]
    pub failing_paths: Vec<String>,
}

impl Status {
    pub fn new(source: &Path, replica: &str, interval: Duration, state: State) -> Status {
        let now = now_text();
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            source: esc(source).to_string(),
            replica: replica.to_string(),
            state,
            reason: None,
            started_at: now.clone(),
            updated_at: now,
            updated_unix: unix_now(),
            interval_seconds: interval.as_secs_f64(),
            last_pass: None,
            events_applied: 0,
            bytes_written: 0,
            pending: 0,
            pass_pending: false,
            log_problem: None,
            failing: 0,
            failing_paths: Vec::new(),
        }
    }
}

/// Builds the record of a finished pass.
pub fn pass_record(
    started: SystemTime,
    elapsed: Duration,
    counts: &Counts,
    outcome: &str,
    retried: u64,
) -> Pass {
    Pass {
        started_at: text(started),
        finished_at: now_text(),
        seconds: elapsed.as_secs_f64(),
        outcome: outcome.to_string(),
        counts: *counts,
        retried,
    }
}

/// Keeps the document and writes it, atomically and at most a few times a second.
#[derive(Debug)]
pub struct StatusFile {
    path: PathBuf,
    dir: Dir,
    pub doc: Status,
    dirty: bool,
    last_write: Option<Instant>,
    own: Arc<OwnFiles>,
    /// With several pairs in one process: the shared file, this pair's place in it, and its
    /// mirror's name.
    board: Option<(Arc<Board>, usize, String)>,
}

impl StatusFile {
    /// The status file at `path` (resolved), written in its directory, which is opened now and
    /// held: a symlink swapped in later for that directory is not followed.
    pub fn new(path: PathBuf, doc: Status, own: Arc<OwnFiles>) -> std::io::Result<StatusFile> {
        let dir = Dir::open(path.parent().unwrap_or(Path::new("/")))?;
        Ok(StatusFile {
            path,
            dir,
            doc,
            dirty: true,
            last_write: None,
            own,
            board: None,
        })
    }

    /// Writes through `board` (the status file of several pairs) as pair `index` of mirror
    /// `mirror`, instead of a file of its own.
    pub fn on_board(mut self, board: Arc<Board>, index: usize, mirror: &str) -> StatusFile {
        board.set(index, mirror, &self.doc);
        self.board = Some((board, index, mirror.to_string()));
        self
    }

    /// Changes the document; it is written now, or as soon as the rate limit allows.
    pub fn update(&mut self, change: impl FnOnce(&mut Status)) {
        change(&mut self.doc);
        self.dirty = true;
        self.write_if_due();
    }

    /// When a pending change may be written.
    pub fn due(&self) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(
            self.last_write
                .map_or_else(Instant::now, |t| t + crate::timing::STATUS_GAP),
        )
    }

    pub fn write_if_due(&mut self) {
        if self.dirty
            && self
                .last_write
                .is_none_or(|t| t.elapsed() >= crate::timing::STATUS_GAP)
        {
            self.write();
        }
    }

    /// Writes now: into a temporary file beside it (named as all of foldersync's temporary
    /// files are), then renamed over it.
    pub fn write(&mut self) {
        self.doc.updated_at = now_text();
        self.doc.updated_unix = unix_now();
        self.dirty = false;
        self.last_write = Some(Instant::now());
        let result = match &self.board {
            Some((board, index, mirror)) => board.put(*index, mirror, &self.doc),
            None => write_json(&self.dir, &self.path, &self.own, &self.doc),
        };
        if let Err(e) = result {
            log::warn!("cannot write status file {}: {e}", esc(&self.path));
        }
    }
}

/// Writes `doc` as JSON at `path` (in `dir`): into a temporary file beside it (named as all of
/// foldersync's temporary files are), then renamed over it.
fn write_json(dir: &Dir, path: &Path, own: &OwnFiles, doc: &impl Serialize) -> std::io::Result<()> {
    let tmp = own.temps().fresh();
    let Some(name) = path.file_name() else {
        return Ok(());
    };
    let result = serde_json::to_vec_pretty(doc)
        .map_err(std::io::Error::other)
        .and_then(|mut json| {
            json.push(b'\n');
            let mut f = dir.create_file(&tmp)?;
            rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(0o644))?;
            f.write_all(&json)?;
            drop(f);
            dir.rename(&tmp, dir, name)
        });
    if result.is_err() {
        let _ = dir.unlink(&tmp);
    }
    result
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Now, as RFC 3339 in UTC to the millisecond.
pub(crate) fn now_text() -> String {
    text(SystemTime::now())
}

/// RFC 3339 in UTC, to the millisecond.
fn text(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn written_atomically_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        let doc = Status::new(
            Path::new("/s"),
            "/r",
            Duration::from_secs(60),
            State::Watching,
        );
        let mut file = StatusFile::new(path.clone(), doc, Arc::default()).unwrap();
        file.write();
        let back: Status = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(back.state, State::Watching);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
