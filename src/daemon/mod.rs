//! The run loop: full passes at start-up, every interval and on demand, and in between the
//! watcher's hints applied in batches. One `select!` waits on the stop channel, the watcher's
//! channel and the next deadline; [`schedule`] says when things are due, [`source`] whether
//! SOURCE may be mirrored, [`pending`] what waits, and [`report`] keeps the status document.

pub mod failing;
mod memory;
pub mod pending;
pub mod report;
pub mod schedule;
pub mod source;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{after, never, select, Receiver};
use log::{debug, error, info, warn};

use crate::config::Config;
use crate::exit::Exit;
use crate::progress;
use crate::replica::{Look, Replica, RootState};
use crate::stats::Stats;
use crate::status::State;
use crate::stop::Stop;
use crate::watch::{Hint, Scope, WatchMsg, Watcher};

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
    watcher: Option<Watcher>,
    report: Report,
    /// What is wrong with REPLICA's root, as last logged.
    replica_problem: Option<crate::replica::RootError>,
    errors_in_last_pass: u64,
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
            schedule: Schedule::new(config.interval, config.debounce),
            pending: Pending::new(config.debounce),
            failing: Failing::default(),
            watcher: None,
            report,
            replica_problem: None,
            errors_in_last_pass: 0,
            deep_reported: false,
            lost: None,
            lost_count: 0,
            mounts: Vec::new(),
            memory: memory::Memory::default(),
            replica_due: None,
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
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| now + self.config.interval);
            let messages = self
                .watcher
                .as_ref()
                .map_or_else(never, |w| w.messages().clone());
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

    fn stopped(&mut self) -> Exit {
        info!("stopped by user (Ctrl+C or SIGTERM)");
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
    fn finished(&mut self) -> Exit {
        self.report.finish(State::Finished);
        if self.errors_in_last_pass > 0 {
            Exit::PassErrors
        } else {
            Exit::Success
        }
    }

    /// The other paths of `path` inside SOURCE: a directory bind-mounted inside SOURCE is one
    /// directory at two paths, and its events name one of them.
    fn aliases(&self, path: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for below in &self.mounts {
            let Some(original) = &below.alias_of else {
                continue;
            };
            if let Ok(rest) = path.strip_prefix(original) {
                out.push(below.rel.join(rest));
            }
            if let Ok(rest) = path.strip_prefix(&below.rel) {
                out.push(original.join(rest));
            }
        }
        out
    }

    /// The mount table changed: where a file system came or went inside SOURCE is looked at
    /// as a whole (one gone is an error there, see `mirror::mounts`), and SOURCE is watched
    /// anew (the new one's directories had no watch).
    fn mounts_changed(&mut self) {
        let now = crate::config::mounts::below(&self.source.root.path);
        if now == self.mounts {
            return;
        }
        let changed: Vec<PathBuf> = now
            .iter()
            .filter(|b| !self.mounts.contains(b))
            .chain(self.mounts.iter().filter(|b| !now.contains(b)))
            .map(|b| b.rel.clone())
            .collect();
        info!(
            "file systems were mounted or unmounted inside SOURCE: {}",
            changed
                .iter()
                .map(|p| crate::escape::rel(p).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for rel in changed {
            self.pending.add(rel, Look::TREE);
        }
        self.mounts = now;
        if self.watcher.is_some() {
            self.watcher = None;
            self.start_watcher();
        }
    }

    fn start_watcher(&mut self) {
        self.mounts = crate::config::mounts::below(&self.source.root.path);
        let gather_removals = self.config.max_delete.is_some();
        match Watcher::start(self.scope.clone(), self.config.debounce, gather_removals) {
            Ok(watcher) => self.watcher = Some(watcher),
            Err(e) => {
                warn!(
                    "watching SOURCE failed ({}); mirroring by periodic passes only",
                    crate::escape::text(&e.to_string())
                );
                self.report
                    .degrade(format!("no watcher ({e}): periodic passes only"));
            }
        }
    }

    fn absorb(&mut self, msg: WatchMsg) {
        match msg {
            WatchMsg::Hints(hints) => {
                for hint in hints {
                    match hint {
                        Hint::Path(path, look) => {
                            for alias in self.aliases(&path) {
                                self.pending.add(alias, look);
                            }
                            self.pending.add(path, look);
                        }
                        Hint::Rename(from, to) => {
                            for alias in self.aliases(&from).into_iter().chain(self.aliases(&to)) {
                                self.pending.add(alias, Look::TREE);
                            }
                            self.pending.rename(from, to);
                        }
                        Hint::Rescan => self.lost("the watcher asked for a rescan".into()),
                        Hint::RootGone => {
                            self.check(false);
                        }
                    }
                }
                if self.pending.len() > MAX_PENDING {
                    info!("more than {MAX_PENDING} paths waiting: a full pass takes them over");
                    self.pending.clear();
                    self.schedule.want_pass(false);
                }
            }
            WatchMsg::Lost(why) => self.lost(why),
            WatchMsg::Mounts => self.mounts_changed(),
            WatchMsg::Trouble { message, degraded } => {
                warn!("{message}");
                if let Some(why) = degraded {
                    self.report.degrade(why);
                    self.report.rest();
                }
            }
        }
    }

    /// Events were lost: the watch is made anew before the next full pass, which comes as soon
    /// as the rescan spacing allows, and until it ends the status says the mirror is catching up.
    fn lost(&mut self, why: String) {
        if self.lost.is_none() {
            warn!("events were lost ({why}): SOURCE is watched anew and a full pass catches up");
        }
        self.lost_count += 1;
        self.lost = Some(why);
        self.schedule.want_pass(true);
        self.report.state(State::Degraded, self.catching_up());
    }

    /// The reason the status gives while a pass catches up after lost events.
    fn catching_up(&self) -> Option<String> {
        self.lost
            .as_ref()
            .map(|why| format!("events were lost ({why}); a full pass is catching up"))
    }

    /// Checks both roots; returns whether the mirror may act. SOURCE comes back (or is
    /// replaced) with a new watch and a full pass; while it is unusable, what the watch
    /// reported is moot.
    fn check(&mut self, thorough: bool) -> bool {
        match self.source.check(thorough, &*self.replica) {
            Health::Unusable => {
                let problem = self.source.problem().map(str::to_string);
                self.report.state(State::SourceMissing, problem);
                self.watcher = None;
                self.pending.clear();
                return false;
            }
            Health::Renewed => {
                self.report.rest();
                self.pending.clear();
                if self.config.watch {
                    self.watcher = None;
                    self.start_watcher();
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

    fn full_pass(&mut self) {
        let was_rescan = self.schedule.start_pass();
        let started = Instant::now();
        let started_at = SystemTime::now();
        if !self.check(true) {
            self.errors_in_last_pass = 1;
            self.report.pass(
                started_at,
                Duration::ZERO,
                &Default::default(),
                ("skipped", 0),
            );
            return;
        }
        let lost_before = self.lost_count;
        if self.lost.is_some() && self.config.watch {
            // A new watch, before the pass looks: a directory made while events were lost is
            // watched again, and what changes during the pass is seen.
            self.watcher = None;
            self.start_watcher();
            self.report.state(State::Degraded, self.catching_up());
        } else {
            self.report.state(State::Passing, None);
        }
        // The pass looks at everything, so what was queued before it started is covered.
        self.pending.clear();
        let stats = Stats::new();
        let (replica, source) = (&mut *self.replica, &self.source.root);
        let outcome = progress::during(&stats, || replica.pass(source, &stats));
        // A pass held back (its removals refused) has not made REPLICA a copy of SOURCE.
        let held_back = outcome.held_back;
        // Whether the stop cut the pass short, not whether it came just after.
        let interrupted = self.stop.is_set();
        let counts = stats.snapshot();
        let elapsed = started.elapsed();
        if interrupted {
            info!("pass interrupted: {}", counts.summary(elapsed));
        } else {
            info!("pass finished: {}", counts.summary(elapsed));
        }
        self.errors_in_last_pass = counts.errors;
        let outcome_name = if interrupted {
            "interrupted"
        } else if counts.errors > 0 {
            "errors"
        } else {
            "ok"
        };
        // Each error on a path is tried again (its path counts as failing until it succeeds):
        // one entry in `failed` per such error.
        let retried = counts.errors.min(outcome.failed.len() as u64);
        self.report
            .pass(started_at, elapsed, &counts, (outcome_name, retried));
        if !interrupted {
            let recovered = self.failing.replace(outcome.failed, Instant::now());
            if recovered > 0 {
                info!("{recovered} paths that failed before are mirrored now");
            }
            self.note_failing();
        }
        self.report.log_problem(crate::logging::trouble());
        if !interrupted && self.lost.is_some() && self.lost_count == lost_before {
            self.lost = None;
            info!("caught up with the events that were lost");
        }
        if self.lost.is_none() {
            self.report.rest();
        }
        self.schedule
            .end_pass(elapsed, counts.changed(), was_rescan);
        self.schedule.retry(outcome.retry);
        self.schedule.retry_at(outcome.later);
        if outcome.rewatch && self.config.watch {
            // A file system inside SOURCE is mounted again: its directories are watched anew.
            self.watcher = None;
            self.start_watcher();
        }
        if !interrupted {
            self.remember(!held_back);
        }
        if outcome.unwatchable && !self.deep_reported {
            self.deep_reported = true;
            warn!(
                "part of SOURCE lies deeper than inotify can watch (paths of 4,096 bytes or \
                 more): changes there wait for the next full pass"
            );
            self.report
                .degrade("part of SOURCE is too deep to watch: carried by passes only".into());
            self.report.rest();
        }
    }

    fn apply_pending(&mut self) {
        if !self.check(true) {
            return;
        }
        let mut batch = self.pending.take(Instant::now());
        // A path that is failing already is being tried again, whatever brought it here.
        for (path, _) in &batch.paths {
            if self.failing.contains(path) {
                batch.retries.insert(path.clone());
            }
        }
        let paths = batch.paths.len() as u64;
        let retried = batch.retries.clone();
        let stats = Stats::new();
        let mut outcome = self.replica.apply(&self.source.root, batch, &stats);
        let failed = std::mem::take(&mut outcome.failed);
        if !self.stop.is_set() {
            for (path, tries) in self.failing.settle(&retried, failed, Instant::now()) {
                info!(
                    "{} is mirrored now, after {} failed tries",
                    crate::escape::rel(&path),
                    tries
                );
            }
            self.note_failing();
        }
        self.replica_due = self.replica.tick(&self.source.root, &stats);
        self.take_leftover();
        // A file system met inside SOURCE is remembered at once, not at the next pass.
        self.remember(false);
        self.report.applied(paths, stats.snapshot().bytes);
        self.report.log_problem(crate::logging::trouble());
        self.schedule.retry(outcome.retry);
        self.schedule.retry_at(outcome.later);
        if outcome.rewatch {
            self.lost("a file system mounted inside SOURCE is back".into());
        }
        if outcome.pass {
            // Spaced like a rescan's, so a file with other names rewritten often cannot keep
            // the replica in passes.
            self.schedule.want_pass(true);
        }
        self.note_pending();
        let counts = stats.snapshot();
        if counts.changed() || counts.errors > 0 {
            debug!("applied {paths} hints: {}", counts.summary(Duration::ZERO));
        }
    }

    /// Lets the replica do what has come due (remove what the watcher held back), if SOURCE
    /// and REPLICA are usable.
    fn tick(&mut self) {
        self.replica_due = None;
        if !self.check(true) {
            return;
        }
        let stats = Stats::new();
        self.replica_due = self.replica.tick(&self.source.root, &stats);
        self.take_leftover();
    }

    /// What the replica's tick left: its failures join the failing paths, its retries the
    /// schedule.
    fn take_leftover(&mut self) {
        let left = self.replica.leftover();
        if !left.failed.is_empty() && !self.stop.is_set() {
            let none = std::collections::HashSet::new();
            self.failing.settle(&none, left.failed, Instant::now());
            self.note_failing();
        }
        self.schedule.retry(left.retry);
        self.schedule.retry_at(left.later);
        if left.pass {
            self.schedule.want_pass(true);
        }
    }

    /// Keeps what is known now in the record (see [`memory::Memory::remember`]).
    fn remember(&mut self, pass_done: bool) {
        self.memory
            .remember(self.config, &self.source.root, &*self.replica, pass_done);
    }

    fn note_failing(&mut self) {
        let sample = self
            .failing
            .sample(10)
            .iter()
            .map(|p| crate::escape::rel(p).to_string())
            .collect();
        self.report.failing(self.failing.len() as u64, sample);
    }

    fn note_pending(&mut self) {
        let pending = (self.pending.len() + self.schedule.retries_waiting()) as u64;
        let pass = self.schedule.pass_wanted();
        self.report.pending(pending, pass);
    }
}
