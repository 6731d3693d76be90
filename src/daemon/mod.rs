//! The run loop: full passes at start-up, every interval and on demand, and in between the
//! watcher's hints applied in batches. One `select!` waits on the stop channel, the watcher's
//! channel and the next deadline (while a full pass runs, a thread of [`watching`] queues the
//! watcher's hints); [`schedule`] says when things are due, [`source`] whether
//! SOURCE may be mirrored, [`pending`] what waits, and [`report`] keeps the status document.

pub mod failing;
mod feed;
mod memory;
pub mod notify;
mod passes;
pub mod pending;
pub mod report;
pub mod schedule;
pub mod source;
mod watching;

use std::time::Instant;

use crossbeam_channel::{after, never, select, Receiver};
use log::{error, info};

use crate::config::Config;
use crate::exit::Exit;
use crate::replica::{Replica, RootState};
use crate::status::State;
use crate::stop::Stop;
use crate::watch::Scope;
use feed::Feed;
pub use feed::Renew;

/// Past this many paths waiting, the queue collapses into a full pass: its memory stays
/// bounded while the replica is slow or away (lsyncd #695).
const MAX_PENDING: usize = 100_000;

use failing::Failing;
use pending::Pending;
use report::Report;
use schedule::Schedule;
use source::{Health, SourceCheck};

/// A running mirror.
pub struct Daemon<'a> {
    config: &'a Config,
    replica: &'a mut dyn Replica,
    source: SourceCheck,
    scope: Scope,
    schedule: Schedule,
    pending: Pending,
    /// Paths that failed, tried again until they succeed.
    failing: Failing,
    /// The watch messages: a watcher of its own, or a tap on one shared with other pairs.
    feed: Feed,
    report: Report,
    /// What is wrong with REPLICA's root, as last logged.
    replica_problem: Option<crate::replica::RootError>,
    errors_in_last_pass: u64,
    /// Full passes ended (the first one's summary is always said).
    passes_ended: u64,
    /// A directory too deep to watch was reported.
    deep_reported: bool,
    /// Why events were lost, until the full pass that catches up has ended; the watch is made
    /// anew when that pass starts.
    lost: Option<String>,
    /// How many times events were lost (a pass catches up with those lost before it started).
    lost_count: u64,
    /// The file systems mounted inside SOURCE, as last seen (watching only).
    mounts: Vec<crate::config::mounts::Below>,
    /// What is kept of this mirror between runs.
    memory: memory::Memory,
    /// When the replica has something due (removing what the watcher held back).
    replica_due: Option<Instant>,
    /// `WATCHDOG=1` for systemd, when it asks for it.
    watchdog: notify::Watchdog,
    stop: Stop,
    stop_rx: Receiver<()>,
}

impl<'a> Daemon<'a> {
    pub fn new(
        config: &'a Config,
        replica: &'a mut dyn Replica,
        source: SourceCheck,
        report: Report,
        stop: Stop,
        stop_rx: Receiver<()>,
    ) -> Daemon<'a> {
        Daemon {
            scope: Scope {
                root: source.root.path.clone(),
                own: config.own.clone(),
                filter: config.filter.clone(),
            },
            config,
            replica,
            source,
            schedule: Schedule::new(config.timing),
            pending: Pending::new(config.timing.look_gap()),
            failing: Failing::default(),
            feed: Feed::Own(None),
            report,
            replica_problem: None,
            errors_in_last_pass: 0,
            passes_ended: 0,
            deep_reported: false,
            lost: None,
            lost_count: 0,
            mounts: Vec::new(),
            memory: memory::Memory::default(),
            replica_due: None,
            watchdog: notify::Watchdog::from_env(),
            stop,
            stop_rx,
        }
    }

    /// Keeps the record of this mirror (what it says at start-up is `recorded`), and the
    /// pair's lock.
    pub fn with_state(
        mut self,
        state: Option<crate::state::State>,
        recorded: Option<crate::state::Record>,
        lock: Vec<std::fs::File>,
    ) -> Self {
        self.memory = memory::Memory::new(state, recorded, lock);
        self
    }

    /// Takes its watch messages from a watcher shared with the other pairs of its SOURCE.
    pub fn with_tap(mut self, tap: Option<crate::watch::shared::Tap>) -> Self {
        if let Some(tap) = tap {
            self.feed = Feed::Shared(tap, false);
        }
        self
    }

    /// Runs until stopped (or after one pass with `--once`) and returns the exit status.
    pub fn run(mut self) -> Exit {
        self.memory.token(self.config);
        self.report.state(State::Passing, None);
        self.report.write_now();
        if self.config.watch {
            // The watch is in place before the first pass, so nothing changed during it is lost.
            self.start_watcher();
        }
        loop {
            if self.stop.is_set() {
                return self.stopped();
            }
            self.watchdog.keep();
            let now = Instant::now();
            if self.schedule.pass_due(now) {
                self.full_pass();
                if self.config.once && !self.stop.is_set() {
                    return self.finished();
                }
                continue;
            }
            for path in self.schedule.due_retries(now) {
                self.pending.add(path, crate::replica::Look::ENTRY);
            }
            for (path, look) in self.failing.due(now) {
                self.pending.retry(path, look);
            }
            self.pending.forget(now);
            if self.pending.due(now).is_some_and(|due| now >= due) {
                self.apply_pending();
                continue;
            }
            let deadline = [
                Some(self.schedule.next_deadline()),
                self.pending.due(now),
                self.source.check_due(),
                self.report.due(),
                self.replica_due,
                self.replica.next_check(),
                self.failing.next_due(),
                self.watchdog.due(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| now + self.config.timing.interval);
            let messages = self.feed.messages().unwrap_or_else(never);
            select! {
                recv(self.stop_rx) -> _ => return self.stopped(),
                recv(messages) -> msg => match msg {
                    Ok(msg) => {
                        self.absorb(msg);
                        // Coalesce whatever else is already waiting.
                        for msg in messages.try_iter() {
                            self.absorb(msg);
                        }
                        self.note_pending();
                    }
                    Err(_) => self.lost("the watcher stopped".into()),
                },
                recv(after(deadline.saturating_duration_since(Instant::now()))) -> _ => {
                    if self.replica_due.is_some_and(|due| Instant::now() >= due) {
                        self.tick();
                    }
                    let replica_check = self.replica.next_check();
                    if replica_check.is_some_and(|due| Instant::now() >= due) {
                        self.check(true);
                    }
                    if self.source.check_due().is_some_and(|due| Instant::now() >= due) {
                        self.check(false);
                        self.report.log_problem(crate::logging::trouble());
                    }
                    self.report.write_if_due();
                }
            }
        }
    }

    pub(super) fn stopped(&mut self) -> Exit {
        if self.stop.by_reload() {
            info!("stopped: a reload of the configuration removed or changed this pair");
        } else {
            info!("stopped by user (Ctrl+C or SIGTERM)");
        }
        self.remember(false);
        self.report.finish(State::Stopped);
        // A daemon stopped is a success; a single pass cut short is not (a cron job must not
        // take it for one).
        if self.config.once {
            Exit::Interrupted
        } else {
            Exit::Success
        }
    }

    /// The end of a `--once` run.
    pub(super) fn finished(&mut self) -> Exit {
        self.report.finish(State::Finished);
        if self.errors_in_last_pass > 0 {
            Exit::Failed
        } else {
            Exit::Success
        }
    }

    /// Checks both roots; returns whether the mirror may act. SOURCE comes back (or is
    /// replaced) with a new watch and a full pass; while it is unusable, what the watch
    /// reported is moot.
    pub(super) fn check(&mut self, thorough: bool) -> bool {
        match self.source.check(thorough, &*self.replica) {
            Health::Unusable => {
                let problem = self.source.problem().map(str::to_string);
                self.report.state(State::SourceMissing, problem);
                self.feed.stop();
                self.pending.clear();
                return false;
            }
            Health::Renewed => {
                self.report.rest();
                self.pending.clear();
                if self.config.watch {
                    self.renew_watcher(Renew::Back);
                }
                self.schedule.want_pass(false);
            }
            Health::Fine => {}
        }
        match self.replica.check() {
            Ok(state) => {
                if self.replica_problem.take().is_some() {
                    info!("REPLICA {} is usable again", self.replica.describe());
                    self.report.rest();
                    self.schedule.want_pass(false);
                } else if state == RootState::Renewed {
                    self.schedule.want_pass(false);
                }
                true
            }
            Err(problem) => {
                // A full pass follows when REPLICA is back; until then hints are moot.
                self.pending.clear();
                if self.replica_problem.as_ref() != Some(&problem) {
                    error!("{problem}; nothing is written until it is back");
                    self.report
                        .state(State::ReplicaMissing, Some(problem.to_string()));
                    self.replica_problem = Some(problem);
                }
                false
            }
        }
    }

    /// Keeps what is known now in the record (see [`memory::Memory::remember`]).
    pub(super) fn remember(&mut self, pass_done: bool) {
        self.memory
            .remember(self.config, &self.source.root, &*self.replica, pass_done);
    }

    pub(super) fn note_failing(&mut self) {
        let sample = self
            .failing
            .sample(10)
            .iter()
            .map(|p| crate::escape::rel(p).to_string())
            .collect();
        self.report.failing(self.failing.len() as u64, sample);
    }

    pub(super) fn note_pending(&mut self) {
        let pending = (self.pending.len() + self.schedule.retries_waiting()) as u64;
        let pass = self.schedule.pass_wanted();
        self.report.pending(pending, pass, self.pending.oldest());
    }
}
