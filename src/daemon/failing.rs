//! Paths that failed (a full disk, a read-only replica, an unreadable file), tried again with a
//! growing wait until they succeed. A failure is logged once; its retries fail quietly, and the
//! success is said. While any path fails, the status says how many, and the mirror is not healthy.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::replica::Look;

/// A failed path.
#[derive(Debug, Clone)]
struct Failed {
    look: Look,
    tries: u32,
    due: Instant,
}

/// The paths failing now.
#[derive(Debug, Default)]
pub struct Failing {
    paths: HashMap<PathBuf, Failed>,
}

/// How long to wait after the `tries`-th failure.
fn wait_after(tries: u32) -> Duration {
    crate::timing::RETRY_FIRST
        .saturating_mul(1 << tries.saturating_sub(1).min(16))
        .min(crate::timing::RETRY_LONGEST)
}

impl Failing {
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.paths.contains_key(path)
    }

    /// Some of the failing paths, sorted, for the status document.
    pub fn sample(&self, n: usize) -> Vec<PathBuf> {
        let mut all: Vec<&PathBuf> = self.paths.keys().collect();
        all.sort();
        all.into_iter().take(n).cloned().collect()
    }

    /// After a batch that tried `retried` again and saw `failed` fail: the retried paths with no
    /// failure at or below them succeeded, and are returned with how many tries they took; the
    /// failures are kept, each to be tried again after a wait that grows with its tries. When a
    /// path succeeds, its cause may be gone for the others too: they are all due at once.
    pub fn settle(
        &mut self,
        retried: &HashSet<PathBuf>,
        failed: Vec<(PathBuf, Look)>,
        now: Instant,
    ) -> Vec<(PathBuf, u32)> {
        let failing_at = |p: &Path| failed.iter().any(|(f, _)| f == p);
        let failing_below = |p: &Path| failed.iter().any(|(f, _)| f.starts_with(p));
        let mut recovered = Vec::new();
        for path in retried {
            if failing_at(path) {
                continue;
            }
            // What fails now lies deeper (and is kept below), or nothing does.
            if let Some(gone) = self.paths.remove(path) {
                if !failing_below(path) {
                    recovered.push((path.clone(), gone.tries));
                }
            }
        }
        recovered.sort();
        self.add(failed, now);
        if !recovered.is_empty() {
            for f in self.paths.values_mut() {
                f.due = f.due.min(now);
            }
        }
        recovered
    }

    /// After a full pass, which looked at everything: what failed in it is all that fails now.
    /// Returns how many paths that failed before do not any more.
    pub fn replace(&mut self, failed: Vec<(PathBuf, Look)>, now: Instant) -> usize {
        let before: HashSet<PathBuf> = self.paths.keys().cloned().collect();
        let kept: HashMap<PathBuf, Failed> = failed
            .iter()
            .filter_map(|(p, _)| self.paths.get(p).map(|f| (p.clone(), f.clone())))
            .collect();
        self.paths = kept;
        self.add(failed, now);
        before
            .iter()
            .filter(|p| !self.paths.contains_key(*p))
            .count()
    }

    fn add(&mut self, failed: Vec<(PathBuf, Look)>, now: Instant) {
        for (path, look) in failed {
            let entry = self.paths.entry(path).or_insert(Failed {
                look,
                tries: 0,
                due: now,
            });
            entry.look = entry.look.merge(look);
            entry.tries += 1;
            entry.due = now + wait_after(entry.tries);
        }
    }

    /// The failed paths whose wait is over; they stay failing until a batch says otherwise, and
    /// are not due again until then.
    pub fn due(&mut self, now: Instant) -> Vec<(PathBuf, Look)> {
        let mut out = Vec::new();
        for (path, f) in &mut self.paths {
            if f.due <= now {
                out.push((path.clone(), f.look));
                // Not handed out again before its batch settles it.
                f.due = now + crate::timing::RETRY_HANDED_OUT;
            }
        }
        out
    }

    /// When the next failed path is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.paths.values().map(|f| f.due).min()
    }
}

#[cfg(test)]
impl Failing {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&str]) -> HashSet<PathBuf> {
        paths.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn failures_wait_longer_each_time_and_end_when_a_retry_succeeds() {
        let t0 = Instant::now();
        let mut f = Failing::default();
        f.settle(&set(&[]), vec![("a/x".into(), Look::ENTRY)], t0);
        assert_eq!(f.len(), 1);
        assert!(f.due(t0).is_empty(), "waits first");
        assert_eq!(f.next_due(), Some(t0 + crate::timing::RETRY_FIRST));
        let due = f.due(t0 + crate::timing::RETRY_FIRST);
        assert_eq!(due, vec![("a/x".into(), Look::ENTRY)]);
        // It fails again: the wait doubles.
        let t1 = t0 + crate::timing::RETRY_FIRST;
        f.settle(&set(&["a/x"]), vec![("a/x".into(), Look::ENTRY)], t1);
        assert_eq!(f.next_due(), Some(t1 + crate::timing::RETRY_FIRST * 2));
        // A retry of its parent that fails below it does not end it.
        let t2 = t1 + crate::timing::RETRY_FIRST * 2;
        f.due(t2);
        let recovered = f.settle(&set(&["a/x"]), vec![("a/x/deeper".into(), Look::ENTRY)], t2);
        assert!(recovered.is_empty());
        assert_eq!(f.len(), 1, "a/x/deeper fails now, in its place");
        assert!(f.paths.contains_key(Path::new("a/x/deeper")));
        let recovered = f.settle(&set(&["a/x/deeper"]), vec![], t2);
        assert_eq!(recovered, vec![(PathBuf::from("a/x/deeper"), 1)]);
        assert!(f.is_empty());
    }

    #[test]
    fn the_wait_stops_growing_and_a_success_makes_the_rest_due() {
        assert_eq!(wait_after(1), crate::timing::RETRY_FIRST);
        assert_eq!(wait_after(30), crate::timing::RETRY_LONGEST);
        let t0 = Instant::now();
        let mut f = Failing::default();
        f.settle(
            &set(&[]),
            vec![("a".into(), Look::ENTRY), ("b".into(), Look::TREE)],
            t0,
        );
        let recovered = f.settle(&set(&["a"]), vec![], t0);
        assert_eq!(recovered.len(), 1);
        assert_eq!(f.due(t0), vec![("b".into(), Look::TREE)]);
    }

    #[test]
    fn a_pass_replaces_the_list() {
        let t0 = Instant::now();
        let mut f = Failing::default();
        f.settle(
            &set(&[]),
            vec![("a".into(), Look::ENTRY), ("b".into(), Look::ENTRY)],
            t0,
        );
        assert_eq!(f.replace(vec![("b".into(), Look::ENTRY)], t0), 1);
        assert_eq!(f.sample(5), vec![PathBuf::from("b")]);
        assert_eq!(f.paths[Path::new("b")].tries, 2);
    }
}
