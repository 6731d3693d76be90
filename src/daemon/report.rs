//! What the run loop tells the world beyond the log: the status document (`--status-file`)
//! and the metrics (`--metrics`), fed by the same calls so they cannot disagree, and the
//! service manager (see [`super::notify`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::metrics::Metrics;

use crate::stats::Counts;
use crate::status::{self, State, StatusFile};

/// The mirror's state as others see it.
pub struct Report {
    file: Option<StatusFile>,
    metrics: Option<Arc<Metrics>>,
    watching: bool,
    /// Why the mirror relies on passes more than it should (watch limit, no watcher).
    degraded: Option<String>,
    notify: super::notify::Status,
}

impl Report {
    pub fn new(file: Option<StatusFile>, watching: bool) -> Report {
        Report {
            file,
            metrics: None,
            watching,
            degraded: None,
            notify: super::notify::Status::default(),
        }
    }

    /// Feeds `metrics` too.
    pub fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Report {
        self.metrics = metrics;
        self
    }

    /// A full pass starts (the first one makes the service ready).
    pub fn pass_started(&mut self) {
        if let Some(m) = &self.metrics {
            m.pass_running(true);
        }
        self.notify.pass_started();
    }

    /// Events were lost: a full pass catches up.
    pub fn lost(&mut self) {
        if let Some(m) = &self.metrics {
            m.lost();
        }
    }

    /// Something makes the mirror lean on its passes; the resting state says so from now on.
    pub fn degrade(&mut self, why: String) {
        self.degraded = Some(why);
    }

    /// The state between passes, when SOURCE is fine.
    pub fn rest(&mut self) {
        let (state, reason) = if let Some(reason) = &self.degraded {
            (State::Degraded, Some(reason.clone()))
        } else if self.watching {
            (State::Watching, None)
        } else {
            (State::PeriodicOnly, None)
        };
        self.state(state, reason);
    }

    pub fn state(&mut self, state: State, reason: Option<String>) {
        if let Some(m) = &self.metrics {
            m.state(state);
        }
        self.notify.state(state, reason.as_deref());
        if let Some(file) = self.file.as_mut() {
            if file.doc.state != state || file.doc.reason != reason {
                file.update(|doc| {
                    doc.state = state;
                    doc.reason = reason;
                });
            }
        }
    }

    /// What waits, whether a pass is queued, and since when the oldest hint waits.
    pub fn pending(&mut self, pending: u64, pass_pending: bool, oldest: Option<Instant>) {
        if let Some(m) = &self.metrics {
            m.pending(pending, oldest);
        }
        if let Some(file) = self.file.as_mut() {
            if file.doc.pending != pending || file.doc.pass_pending != pass_pending {
                file.update(|doc| {
                    doc.pending = pending;
                    doc.pass_pending = pass_pending;
                });
            }
        }
    }

    /// How many paths are failing now, and some of them.
    pub fn failing(&mut self, count: u64, sample: Vec<String>) {
        if let Some(m) = &self.metrics {
            m.failing(count);
        }
        self.notify.failing(count);
        if let Some(file) = self.file.as_mut() {
            if file.doc.failing != count || file.doc.failing_paths != sample {
                file.update(|doc| {
                    doc.failing = count;
                    doc.failing_paths = sample;
                });
            }
        }
    }

    /// A batch of watcher hints was applied, with these counts.
    pub fn applied(&mut self, paths: u64, counts: &Counts) {
        if let Some(m) = &self.metrics {
            m.applied(paths, counts);
        }
        let bytes = counts.bytes;
        if let Some(file) = self.file.as_mut() {
            file.update(|doc| {
                doc.events_applied += paths;
                doc.bytes_written += bytes;
            });
        }
    }

    /// A pass ended (or was skipped): its record, and the state after it.
    pub fn pass(
        &mut self,
        started: SystemTime,
        elapsed: Duration,
        counts: &Counts,
        (outcome, retried): (&'static str, u64),
    ) {
        if let Some(m) = &self.metrics {
            m.pass(elapsed.as_secs_f64(), counts, outcome);
        }
        self.notify
            .pass(format!("{outcome}, {}", counts.summary(elapsed)));
        if let Some(file) = self.file.as_mut() {
            let record = status::pass_record(started, elapsed, counts, outcome, retried);
            file.update(|doc| {
                doc.last_pass = Some(record);
                doc.pass_pending = false;
                doc.bytes_written += counts.bytes;
            });
        }
    }

    /// The final state, written at once.
    pub fn finish(&mut self, state: State) {
        self.notify.stopping(state);
        if let Some(file) = self.file.as_mut() {
            file.doc.state = state;
            file.doc.reason = None;
            file.write();
        }
    }

    pub fn write_now(&mut self) {
        if let Some(file) = self.file.as_mut() {
            file.write();
        }
    }

    /// Notes whether the log file can be written.
    pub fn log_problem(&mut self, problem: Option<String>) {
        if let Some(file) = self.file.as_mut() {
            if file.doc.log_problem != problem {
                file.update(|doc| doc.log_problem = problem);
            }
        }
    }

    pub fn due(&self) -> Option<Instant> {
        self.file.as_ref().and_then(StatusFile::due)
    }

    pub fn write_if_due(&mut self) {
        if let Some(file) = self.file.as_mut() {
            file.write_if_due();
        }
    }
}
