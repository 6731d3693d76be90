//! Removals held back a moment, so that a rename whose halves come in different batches (the
//! new name in a directory not yet watched, say) is still a rename on the remote side: a path
//! SOURCE moved away (and only such a path: a plain removal goes at once) stays on the remote
//! machine for a second; a path that then appears in SOURCE may take it, renamed there, if it
//! holds the same bytes (proven by the remote side, see [`super::digest`]) or is a directory
//! with as many entries. What nothing takes is removed when its time is up. The transfer that
//! follows reconciles what was taken. Which held path a newcomer may be is decided with the
//! batch's plan ([`super::plan::claims`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The held paths, each with when it is removed.
#[derive(Debug, Default)]
pub struct Held {
    entries: Vec<(PathBuf, Instant)>,
    hold: Duration,
}

impl Held {
    pub fn new(hold: Duration) -> Held {
        Held {
            entries: Vec::new(),
            hold,
        }
    }

    pub fn hold(&mut self, rel: PathBuf) {
        let until = Instant::now() + self.hold;
        match self.entries.iter_mut().find(|(p, _)| *p == rel) {
            Some(entry) => entry.1 = until,
            None => self.entries.push((rel, until)),
        }
    }

    /// `rel` was renamed away, or is looked at by a pass: no longer held.
    pub fn release(&mut self, rel: &Path) {
        self.entries.retain(|(p, _)| p != rel);
    }

    /// The held paths, oldest first.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.entries.iter().map(|(p, _)| p)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The held paths whose time is up, no longer held.
    pub fn due(&mut self, now: Instant) -> Vec<PathBuf> {
        let (due, keep): (Vec<_>, Vec<_>) = self.entries.drain(..).partition(|(_, t)| *t <= now);
        self.entries = keep;
        due.into_iter().map(|(p, _)| p).collect()
    }

    pub fn next(&self) -> Option<Instant> {
        self.entries.iter().map(|(_, t)| *t).min()
    }
}
