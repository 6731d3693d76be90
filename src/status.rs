//! The status file (`--status-file`): a small JSON document describing the running mirror,
//! replaced atomically, and the `foldersync status PATH` command that reads it for people and
//! monitoring checks. The schema is documented in docs/operations.md.

use std::fs;
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
        })
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
        let tmp = self.own.temps().fresh();
        let Some(name) = self.path.file_name() else {
            return;
        };
        let dir = &self.dir;
        let result = serde_json::to_vec_pretty(&self.doc)
            .map_err(std::io::Error::other)
            .and_then(|mut json| {
                json.push(b'\n');
                let mut f = dir.create_file(&tmp)?;
                rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(0o644))?;
                f.write_all(&json)?;
                drop(f);
                dir.rename(&tmp, dir, name)
            });
        if let Err(e) = result {
            let _ = dir.unlink(&tmp);
            log::warn!("cannot write status file {}: {e}", esc(&self.path));
        }
    }
}

/// `foldersync status PATH`: prints the status for people. Returns the exit status: 0 healthy,
/// 1 unhealthy, 2 unreadable.
pub fn print(path: &Path) -> crate::exit::Exit {
    let doc: Status = match fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!(
                "foldersync: error: cannot read status file {}: {}",
                esc(path),
                crate::escape::text(&e)
            );
            return crate::exit::Exit::BadInput;
        }
    };
    println!(
        "foldersync {} (pid {}): {}",
        controls(&doc.version),
        doc.pid,
        state_name(doc.state)
    );
    if let Some(reason) = &doc.reason {
        println!("  reason:  {}", controls(reason));
    }
    println!("  SOURCE:  {}", controls(&doc.source));
    println!("  REPLICA: {}", controls(&doc.replica));
    println!("  running since {}", controls(&doc.started_at));
    match &doc.last_pass {
        Some(p) => println!(
            "  last pass: {} at {}: {}",
            controls(&p.outcome),
            controls(&p.finished_at),
            p.counts
                .summary(Duration::from_secs_f64(p.seconds.max(0.0)))
        ),
        None => println!("  last pass: none yet"),
    }
    println!(
        "  bytes written since start: {}",
        indicatif::HumanBytes(doc.bytes_written)
    );
    println!(
        "  events applied since start: {}; pending: {}{}",
        doc.events_applied,
        doc.pending,
        if doc.pass_pending {
            " (a full pass is queued)"
        } else {
            ""
        }
    );
    if doc.failing > 0 {
        println!(
            "  failing now: {} paths, tried again until they succeed",
            doc.failing
        );
        for p in &doc.failing_paths {
            println!("    {}", controls(p));
        }
    }
    let age = (unix_now() - doc.updated_unix).max(0.0);
    println!("  status written {age:.0} s ago");
    match unhealthy(&doc, age) {
        None => {
            println!("healthy");
            crate::exit::Exit::Success
        }
        Some(why) => {
            println!("UNHEALTHY: {}", controls(&why));
            crate::exit::Exit::PassErrors
        }
    }
}

/// Why a mirror is not healthy, if it is not.
fn unhealthy(doc: &Status, age_seconds: f64) -> Option<String> {
    let alive = rustix::process::Pid::from_raw(doc.pid as i32).is_some_and(|pid| {
        matches!(
            rustix::process::test_kill_process(pid),
            Ok(()) | Err(rustix::io::Errno::PERM)
        )
    });
    match doc.state {
        State::Stopped => return Some("the mirror was stopped".into()),
        State::Finished => {
            return doc
                .last_pass
                .as_ref()
                .filter(|p| p.counts.errors > 0 || p.outcome != "ok")
                .map(|p| format!("the pass ended with outcome {}", p.outcome));
        }
        State::SourceMissing | State::ReplicaMissing | State::Degraded => {
            return Some(
                doc.reason
                    .clone()
                    .unwrap_or_else(|| state_name(doc.state).into()),
            )
        }
        _ => {}
    }
    if !alive {
        return Some(format!("process {} is not running", doc.pid));
    }
    if let Some(problem) = &doc.log_problem {
        return Some(problem.clone());
    }
    if doc.failing > 0 {
        return Some(format!(
            "{} paths are failing now (see the log); they are tried again until they succeed",
            doc.failing
        ));
    }
    if let Some(p) = &doc.last_pass {
        // Errors on paths that are tried again count while they fail (above); the others
        // until the next pass.
        if p.counts.errors > p.retried {
            return Some(format!(
                "the last pass had {} errors (see the log)",
                p.counts.errors
            ));
        }
    }
    // The file is rewritten at least after every pass; a pass every interval.
    let stale_after = doc.interval_seconds * 2.0 + 60.0;
    if age_seconds > stale_after && doc.state != State::Passing {
        return Some(format!(
            "no update for {age_seconds:.0} s (more than two intervals)"
        ));
    }
    None
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Watching => "watching",
        State::PeriodicOnly => "periodic passes only",
        State::Passing => "full pass running",
        State::SourceMissing => "SOURCE missing",
        State::ReplicaMissing => "REPLICA missing",
        State::Finished => "finished (one pass)",
        State::Degraded => "degraded",
        State::Stopped => "stopped",
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn now_text() -> String {
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

    #[test]
    fn health_rules() {
        let mut doc = Status::new(
            Path::new("/s"),
            "/r",
            Duration::from_secs(600),
            State::Watching,
        );
        assert_eq!(unhealthy(&doc, 1.0), None);
        assert!(unhealthy(&doc, 1300.0).is_some(), "stale");
        doc.state = State::SourceMissing;
        doc.reason = Some("SOURCE /s is unavailable".into());
        assert_eq!(
            unhealthy(&doc, 1.0).as_deref(),
            Some("SOURCE /s is unavailable")
        );
        doc.state = State::Watching;
        doc.pid = u32::MAX / 2;
        assert!(unhealthy(&doc, 1.0).unwrap().contains("not running"));
    }

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
