//! What the watcher asked to look at and the run loop has not applied yet: paths coalesced (the
//! closer look wins, a tree look covers what lies below it) and renames in their order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::replica::{Batch, Look};

/// Pending paths and renames.
#[derive(Debug, Default)]
pub struct Pending {
    paths: BTreeMap<PathBuf, Look>,
    renames: Vec<(PathBuf, PathBuf)>,
}

impl Pending {
    pub fn add(&mut self, path: PathBuf, look: Look) {
        let entry = self.paths.entry(path).or_default();
        *entry = entry.merge(look);
    }

    /// A rename seen in SOURCE: mirrored as a rename if it can be, and both paths looked at.
    pub fn rename(&mut self, from: PathBuf, to: PathBuf) {
        self.add(from.clone(), Look::ENTRY);
        self.add(to.clone(), Look::TREE);
        self.renames.push((from, to));
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.renames.is_empty()
    }

    pub fn len(&self) -> usize {
        self.paths.len() + self.renames.len()
    }

    pub fn clear(&mut self) {
        self.paths.clear();
        self.renames.clear();
    }

    /// Everything pending, as one batch: the paths in order, without those that a tree look at
    /// an ancestor already covers.
    pub fn take(&mut self) -> Batch {
        let mut paths: Vec<(PathBuf, Look)> = Vec::with_capacity(self.paths.len());
        let mut covering: Option<PathBuf> = None;
        for (path, look) in std::mem::take(&mut self.paths) {
            if covering.as_ref().is_some_and(|c| path.starts_with(c)) {
                continue;
            }
            if look.tree {
                covering = Some(path.clone());
            }
            paths.push((path, look));
        }
        Batch {
            renames: std::mem::take(&mut self.renames),
            paths,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_coalesce_under_a_tree_look() {
        let mut p = Pending::default();
        p.add("a/b/c".into(), Look::ENTRY);
        p.add("a".into(), Look::ENTRY);
        p.add("a/b".into(), Look::TREE);
        p.add("a b".into(), Look::ENTRY);
        p.add("a/b/d".into(), Look::ENTRY);
        p.add("a".into(), Look::ENTRY);
        let batch = p.take();
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
        let mut p = Pending::default();
        p.add("x".into(), Look::TREE);
        p.add("x".into(), Look::ENTRY);
        p.rename("a".into(), "b".into());
        p.rename("b".into(), "c".into());
        let batch = p.take();
        assert_eq!(
            batch.renames,
            vec![("a".into(), "b".into()), ("b".into(), "c".into())]
        );
        assert!(batch.paths.contains(&("x".into(), Look::TREE)));
    }
}
