//! When the next thing is due: the periodic pass, a queued pass (at most one; a rescan-driven
//! one rate-limited), and the files to look at again: those that changed while being copied,
//! and those a writer had open.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::timing::{Timing, RESCAN_GAP_LEAST};

/// The run loop's timetable.
#[derive(Debug)]
pub struct Schedule {
    /// The interval, the rescan gap and the retry of a dropped copy.
    timing: Timing,
    /// A full pass is queued, to start no sooner than `pass_not_before`.
    pass_wanted: bool,
    pass_not_before: Instant,
    /// The queued pass was asked for by a rescan (overflow, watcher errors).
    pass_is_rescan: bool,
    next_periodic: Instant,
    /// The least time between the end of a pass and a rescan-driven one; it doubles while
    /// rescan passes find nothing to do, so a pass's own events cannot keep triggering passes.
    rescan_gap: Duration,
    /// When the last pass ended.
    last_end: Option<Instant>,
    /// Files to look at again, each with when.
    retries: HashMap<PathBuf, Instant>,
}

impl Schedule {
    /// A schedule with the start-up pass queued.
    pub fn new(timing: Timing) -> Schedule {
        let now = Instant::now();
        Schedule {
            timing,
            pass_wanted: true,
            pass_not_before: now,
            pass_is_rescan: false,
            next_periodic: now + timing.interval,
            rescan_gap: RESCAN_GAP_LEAST,
            last_end: None,
            retries: HashMap::new(),
        }
    }

    /// Queues a full pass. A rescan-driven one waits until the rescan gap after the last pass
    /// has passed.
    pub fn want_pass(&mut self, rescan: bool) {
        self.want_pass_at(Instant::now(), rescan);
    }

    fn want_pass_at(&mut self, now: Instant, rescan: bool) {
        if !self.pass_wanted {
            self.pass_wanted = true;
            self.pass_is_rescan = rescan;
            self.pass_not_before = match self.last_end {
                Some(end) if rescan => now.max(end + self.rescan_gap),
                _ => now,
            };
        } else if !rescan {
            self.pass_is_rescan = false;
            self.pass_not_before = now;
        }
    }

    pub fn pass_wanted(&self) -> bool {
        self.pass_wanted
    }

    /// Whether a full pass should start now; the periodic one included.
    pub fn pass_due(&mut self, now: Instant) -> bool {
        if now >= self.next_periodic {
            self.want_pass_at(now, false);
        }
        self.pass_wanted && now >= self.pass_not_before
    }

    /// A pass starts: returns whether it was a rescan. What waited for a retry is covered by it.
    pub fn start_pass(&mut self) -> bool {
        self.pass_wanted = false;
        self.retries.clear();
        self.next_periodic = Instant::now() + self.timing.interval;
        self.pass_is_rescan
    }

    /// A pass ended after `elapsed`. The interval runs from here, so a long pass never makes
    /// passes run back to back.
    pub fn end_pass(&mut self, elapsed: Duration, changed: bool, was_rescan: bool) {
        self.next_periodic = Instant::now() + self.timing.interval;
        self.last_end = Some(Instant::now());
        self.rescan_gap = self
            .timing
            .rescan_gap(self.rescan_gap, elapsed, was_rescan && !changed);
    }

    /// Files that changed while they were copied: looked at again once the writer had time
    /// to go on.
    pub fn retry(&mut self, paths: Vec<PathBuf>) {
        self.retry_in(paths, self.timing.retry_changed());
    }

    /// Files to look at again after `after`.
    pub fn retry_in(&mut self, paths: Vec<PathBuf>, after: Duration) {
        let due = Instant::now() + after;
        self.retry_at(paths.into_iter().map(|path| (path, due)));
    }

    /// Files to look at again, each at its time (or sooner, if it is already due sooner).
    pub fn retry_at(&mut self, paths: impl IntoIterator<Item = (PathBuf, Instant)>) {
        for (path, due) in paths {
            let at = self.retries.entry(path).or_insert(due);
            *at = (*at).min(due);
        }
    }

    pub fn retries_waiting(&self) -> usize {
        self.retries.len()
    }

    /// The retries that are due.
    pub fn due_retries(&mut self, now: Instant) -> Vec<PathBuf> {
        if !self.retries.values().any(|due| now >= *due) {
            return Vec::new();
        }
        let due: Vec<PathBuf> = self
            .retries
            .iter()
            .filter(|(_, at)| now >= **at)
            .map(|(path, _)| path.clone())
            .collect();
        for path in &due {
            self.retries.remove(path);
        }
        due
    }

    /// When something here is next due.
    pub fn next_deadline(&self) -> Instant {
        let mut deadline = self.next_periodic;
        if self.pass_wanted {
            deadline = deadline.min(self.pass_not_before);
        }
        if let Some(due) = self.retries.values().min() {
            deadline = deadline.min(*due);
        }
        deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescan_passes_back_off_while_they_find_nothing() {
        let mut s = Schedule::new(Timing::new(
            Duration::from_millis(50),
            Duration::from_secs(600),
        ));
        assert!(s.pass_due(Instant::now()), "the start-up pass");
        let rescan = s.start_pass();
        s.end_pass(Duration::from_millis(10), true, rescan);
        s.want_pass(true);
        assert!(!s.pass_due(Instant::now()), "a rescan waits for the gap");
        let rescan = s.start_pass();
        assert!(rescan);
        s.end_pass(Duration::from_millis(10), false, rescan);
        assert_eq!(s.rescan_gap, Duration::from_secs(2));
        s.want_pass(false);
        assert!(
            s.pass_due(Instant::now()),
            "an asked-for pass does not wait"
        );
    }
}
