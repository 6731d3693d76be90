//! What the run loop tells the world beyond the log: the status document (`--status-file`),
//! kept in step with the mirror's state, and the service manager (see [`super::notify`]).

use std::time::{Duration, Instant, SystemTime};

use crate::stats::Counts;
use crate::status::{self, State, StatusFile};

/// The mirror's state as others see it.
pub struct Report {
    file: Option<StatusFile>,
    watching: bool,
    /// Why the mirror relies on passes more than it should (watch limit, no watcher).
    degraded: Option<String>,
    notify: super::notify::Status,
}

impl Report {
    pub fn new(file: Option<StatusFile>, watching: bool) -> Report {
        Report {
            file,
            watching,
            degraded: None,
            notify: super::notify::Status::default(),
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

    pub fn pending(&mut self, pending: u64, pass_pending: bool) {
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

    /// A batch of watcher hints was applied, writing `bytes`.
    pub fn applied(&mut self, paths: u64, bytes: u64) {
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
        (outcome, retried): (&str, u64),
    ) {
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

    /// A full pass starts (the first one makes the service ready).
    pub fn pass_started(&mut self) {
        self.notify.pass_started();
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
