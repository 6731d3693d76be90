//! What the watcher asked to look at and the run loop has not applied yet: paths coalesced (the
//! closer look wins, a tree look covers what lies below it) and renames in their order. A path
//! is looked at no more often than once per `gap`: a file that keeps changing is copied at a
//! bounded rate, and what waits is always its latest state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::replica::{Batch, Look};

/// Pending paths and renames.
#[derive(Debug, Default)]
pub struct Pending {
    paths: BTreeMap<PathBuf, Look>,
    renames: Vec<(PathBuf, PathBuf)>,
    /// The least time between two looks at one path.
    gap: Duration,
    /// When each path was last handed out, for those handed out within the last `gap`.
    recent: HashMap<PathBuf, Instant>,
    /// When paths were last handed out.
    newest: Option<Instant>,
    /// Paths added because they failed before: tried again.
    retries: HashSet<PathBuf>,
    /// Since when something has waited without a pause (for the metrics' oldest age).
    since: Option<Instant>,
}

impl Pending {
    /// Nothing pending; a path is looked at no more often than once per `gap`.
    pub fn new(gap: Duration) -> Pending {
        Pending {
            gap,
            ..Pending::default()
        }
    }

    pub fn add(&mut self, path: PathBuf, look: Look) {
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
        let entry = self.paths.entry(path).or_default();
        *entry = entry.merge(look);
    }

    /// A path that failed before, to be tried again.
    pub fn retry(&mut self, path: PathBuf, look: Look) {
        self.retries.insert(path.clone());
        self.add(path, look);
    }

    /// A rename seen in SOURCE: mirrored as a rename if it can be, and both paths looked at.
    pub fn rename(&mut self, from: PathBuf, to: PathBuf) {
        self.add(from.clone(), Look::ENTRY);
        self.add(to.clone(), Look::TREE);
        self.renames.push((from, to));
    }

    pub fn len(&self) -> usize {
        self.paths.len() + self.renames.len()
    }

    /// Since when the oldest of what waits has waited: since the queue was last empty.
    pub fn oldest(&self) -> Option<Instant> {
        self.since
    }

    pub fn clear(&mut self) {
        self.since = None;
        self.paths.clear();
        self.renames.clear();
        self.retries.clear();
    }

    /// When something pending may be handed out: now, or when the gap of a path looked at
    /// moments ago has passed. `None` when nothing is pending.
    pub fn due(&self, now: Instant) -> Option<Instant> {
        if !self.renames.is_empty() {
            return Some(now);
        }
        self.paths
            .keys()
            .map(|path| self.not_before(path).unwrap_or(now))
            .min()
    }

    /// Forgets the paths looked at, once their gaps have all passed (memory stays flat).
    pub fn forget(&mut self, now: Instant) {
        if self.newest.is_some_and(|newest| now >= newest + self.gap) {
            self.recent = HashMap::new();
            self.newest = None;
        }
    }

    fn not_before(&self, path: &PathBuf) -> Option<Instant> {
        self.recent.get(path).map(|at| *at + self.gap)
    }

    /// What is pending and due, as one batch: the paths in order, without those that a tree
    /// look at an ancestor already covers. A path looked at less than `gap` ago waits (unless
    /// a rename involves it).
    pub fn take(&mut self, now: Instant) -> Batch {
        let gap = self.gap;
        self.recent.retain(|_, at| now < *at + gap);
        let renames = std::mem::take(&mut self.renames);
        let mut paths: Vec<(PathBuf, Look)> = Vec::with_capacity(self.paths.len());
        let mut covering: Option<PathBuf> = None;
        let mut waiting = BTreeMap::new();
        let mut retries = HashSet::new();
        for (path, look) in std::mem::take(&mut self.paths) {
            if covering.as_ref().is_some_and(|c| path.starts_with(c)) {
                if self.retries.remove(&path) {
                    retries.insert(path);
                }
                continue;
            }
            let renamed = renames.iter().any(|(a, b)| *a == path || *b == path);
            if !renamed && self.recent.contains_key(&path) {
                waiting.insert(path, look);
                continue;
            }
            if look.tree {
                covering = Some(path.clone());
            }
            self.recent.insert(path.clone(), now);
            self.newest = Some(now);
            if self.retries.remove(&path) {
                retries.insert(path.clone());
            }
            paths.push((path, look));
        }
        self.paths = waiting;
        if self.paths.is_empty() {
            self.since = None;
        }
        Batch {
            renames,
            paths,
            retries,
        }
    }
}

#[cfg(test)]
impl Pending {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.renames.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_coalesce_under_a_tree_look() {
        let mut p = Pending::new(Duration::from_millis(50));
        p.add("a/b/c".into(), Look::ENTRY);
        p.add("a".into(), Look::ENTRY);
        p.add("a/b".into(), Look::TREE);
        p.add("a b".into(), Look::ENTRY);
        p.add("a/b/d".into(), Look::ENTRY);
        p.add("a".into(), Look::ENTRY);
        let batch = p.take(Instant::now());
        assert_eq!(
            batch.paths,
            vec![
                ("a".into(), Look::ENTRY),
                ("a/b".into(), Look::TREE),
                ("a b".into(), Look::ENTRY),
            ]
        );
        assert!(p.is_empty());
    }

    #[test]
    fn looks_merge_and_renames_keep_their_order() {
        let mut p = Pending::new(Duration::from_millis(50));
        p.add("x".into(), Look::TREE);
        p.add("x".into(), Look::ENTRY);
        p.rename("a".into(), "b".into());
        p.rename("b".into(), "c".into());
        let batch = p.take(Instant::now());
        assert_eq!(
            batch.renames,
            vec![("a".into(), "b".into()), ("b".into(), "c".into())]
        );
        assert!(batch.paths.contains(&("x".into(), Look::TREE)));
    }

    #[test]
    fn a_path_looked_at_moments_ago_waits_for_its_gap() {
        let gap = Duration::from_millis(50);
        let mut p = Pending::new(gap);
        let t0 = Instant::now();
        p.add("log".into(), Look::ENTRY);
        assert_eq!(p.due(t0), Some(t0));
        assert_eq!(p.take(t0).paths.len(), 1);
        p.add("log".into(), Look::ENTRY);
        p.add("other".into(), Look::ENTRY);
        let batch = p.take(t0 + gap / 2);
        assert_eq!(batch.paths, vec![("other".into(), Look::ENTRY)]);
        assert_eq!(p.due(t0 + gap / 2), Some(t0 + gap));
        assert!(p.take(t0 + gap / 2).paths.is_empty());
        assert_eq!(p.take(t0 + gap).paths, vec![("log".into(), Look::ENTRY)]);
        assert!(p.is_empty());
    }
}
