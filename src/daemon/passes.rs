//! The work of the run loop: a full pass and what it leaves, a batch of the watcher's hints, and
//! what the replica has come due between them.

use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};

use super::Daemon;
use crate::progress;
use crate::stats::Stats;
use crate::status::State;

impl Daemon<'_> {
    pub(super) fn full_pass(&mut self) {
        let was_rescan = self.schedule.start_pass();
        let started = Instant::now();
        let started_at = SystemTime::now();
        self.report.pass_started();
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
        let special = was_rescan || self.lost.is_some();
        if self.lost.is_some() && self.config.watch {
            // A new watch, before the pass looks: a directory made while events were lost is
            // watched again, and what changes during the pass is seen.
            self.renew_watcher(super::Renew::Lost);
            self.report.state(State::Degraded, self.catching_up());
        } else {
            self.report.state(State::Passing, None);
        }
        // The pass looks at everything, so what was queued before it started is covered.
        self.pending.clear();
        let stats = Stats::new();
        let messages = self.feed.messages();
        let (replica, source) = (&mut *self.replica, &self.source.root);
        let watchdog = &mut self.watchdog;
        let (outcome, meanwhile) =
            super::watching::meanwhile(messages, &mut self.pending, &self.mounts, || {
                watchdog.during(&stats, || {
                    progress::during(&stats, &self.stop, || replica.pass(source, &stats))
                })
            });
        // Whether the stop cut the pass short, not whether it came just after.
        let interrupted = self.stop.is_set();
        let counts = stats.snapshot();
        let elapsed = started.elapsed();
        let lost_during = self.lost_count != lost_before || meanwhile.lost();
        if interrupted {
            info!("pass interrupted: {}", counts.summary(elapsed));
        } else if self.passes_ended > 0 && !special && !counts.changed() && counts.errors == 0 {
            // A periodic pass that found nothing to do is no news (the status file and the
            // metrics still count it); the first pass, and one that catches up, are said.
            debug!("pass finished: {}", counts.summary(elapsed));
        } else {
            info!("pass finished: {}", counts.summary(elapsed));
        }
        self.passes_ended += 1;
        self.errors_in_last_pass = counts.errors;
        self.after_pass(
            outcome,
            &counts,
            (elapsed, started_at),
            (interrupted, lost_during),
        );
        self.schedule
            .end_pass(elapsed, counts.changed(), was_rescan);
        // After the pass's end, as if read from the channel now: a rescan asked for during the
        // pass waits the rescan gap from here.
        self.take_in(meanwhile);
    }

    /// What a pass leaves: the report, the paths failing now, the watch made anew where a file
    /// system came back, the record, a warning about directories too deep to watch.
    pub(super) fn after_pass(
        &mut self,
        outcome: crate::replica::Outcome,
        counts: &crate::stats::Counts,
        (elapsed, started_at): (Duration, SystemTime),
        (interrupted, lost_during): (bool, bool),
    ) {
        let held_back = outcome.held_back;
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
            .pass(started_at, elapsed, counts, (outcome_name, retried));
        if !interrupted {
            let recovered = self.failing.replace(outcome.failed, Instant::now());
            if recovered > 0 {
                info!("{recovered} paths that failed before are mirrored now");
            }
            self.note_failing();
        }
        self.report.log_problem(crate::logging::trouble());
        if !interrupted && self.lost.is_some() && !lost_during {
            self.lost = None;
            info!("caught up with the events that were lost");
        }
        if self.lost.is_none() {
            self.report.rest();
        }
        self.schedule.retry(outcome.retry);
        self.schedule.retry_at(outcome.later);
        if outcome.rewatch && self.config.watch {
            // A file system inside SOURCE is mounted again: its directories are watched anew.
            self.renew_watcher(super::Renew::Back);
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

    pub(super) fn apply_pending(&mut self) {
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
        let (replica, source) = (&mut *self.replica, &self.source.root);
        let mut outcome = self
            .watchdog
            .during(&stats, || replica.apply(source, batch, &stats));
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
        self.report.applied(paths, &stats.snapshot());
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
    pub(super) fn tick(&mut self) {
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
    pub(super) fn take_leftover(&mut self) {
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
}
