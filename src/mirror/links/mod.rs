//! Hard links kept as hard links. A SOURCE inode with more than one name is copied once, under
//! the first name met (its leader); every other name becomes a link to the leader's copy in
//! REPLICA. Memory goes only to inodes with more than one link: the names of each, kept from
//! pass to pass so the watcher can link a new name to a mirrored inode, and re-link every
//! name when the content changes through one of them. A new name whose other names are not
//! known (`ln a/f b/g` while watching makes no event for `a/f`) waits for the end of its batch,
//! when one search of SOURCE's listings finds them ([`search`]). [`place`] carries the roles
//! out.

mod place;
mod search;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::dir::{Id, Meta};

/// The names of SOURCE's multi-link inodes, as far as they are known (across runs). An inode
/// known with one name has no other in SOURCE (as far as the last pass or search saw).
#[derive(Debug, Default)]
pub struct Known(Mutex<HashMap<Id, HashSet<PathBuf>>>);

impl Known {
    pub fn clear(&self) {
        crate::lock(&self.0).clear();
    }

    /// Notes that `rel` is a name of the SOURCE inode `id`.
    pub fn note(&self, id: Id, rel: &Path) {
        let mut known = crate::lock(&self.0);
        let names = known.entry(id).or_default();
        if !names.contains(rel) {
            names.insert(rel.to_path_buf());
        }
    }

    /// Whether any name of `id` is known.
    pub fn knows(&self, id: Id) -> bool {
        crate::lock(&self.0).contains_key(&id)
    }

    /// Up to `most` other names known for `id` (sorted, so the same ones come first each time).
    pub fn others(&self, id: Id, rel: &Path, most: usize) -> Vec<PathBuf> {
        let known = crate::lock(&self.0);
        let Some(names) = known.get(&id) else {
            return Vec::new();
        };
        let mut others: Vec<&PathBuf> = names.iter().filter(|n| *n != rel).collect();
        if others.len() > most {
            others.select_nth_unstable(most);
            others.truncate(most);
        }
        others.sort();
        others.into_iter().cloned().collect()
    }

    /// Forgets that `rel` was a name of `id` (SOURCE says otherwise now).
    pub fn forget(&self, id: Id, rel: &Path) {
        let mut known = crate::lock(&self.0);
        if let Some(names) = known.get_mut(&id) {
            names.remove(rel);
            if names.is_empty() {
                known.remove(&id);
            }
        }
    }
}

/// Where a multi-link inode stands in one run.
#[derive(Debug, Clone)]
pub struct Leader {
    /// The name whose copy carries the content.
    pub rel: PathBuf,
    /// That copy's inode in REPLICA, once it is there.
    pub replica: Option<Id>,
    /// Its content was (re)written in this run: every other name must follow.
    pub rewritten: bool,
}

/// What one name of a multi-link inode is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Carry the content: decide and act as for any file.
    Lead,
    /// Be a link to the leader's copy at `to`, whose REPLICA inode is `replica` (not known yet
    /// while its copy runs: then the link is made at the end of the run).
    Follow { to: PathBuf, replica: Option<Id> },
}

/// One run's leaders, and the names that wait for theirs.
#[derive(Debug, Default)]
pub struct RunLinks {
    leaders: Mutex<HashMap<Id, Leader>>,
    waiting: Mutex<Vec<(PathBuf, Id)>>,
    /// New names whose other names are not known: placed after a search at the run's end.
    unplaced: Mutex<Vec<(PathBuf, Id)>>,
}

impl RunLinks {
    /// The role of `rel`, a name of the SOURCE inode described by `src`.
    pub fn role(&self, src: &Meta, rel: &Path) -> Role {
        let mut leaders = crate::lock(&self.leaders);
        match leaders.get(&src.id) {
            Some(leader) if leader.rel != rel => Role::Follow {
                to: leader.rel.clone(),
                replica: leader.replica,
            },
            Some(_) => Role::Lead,
            None => {
                leaders.insert(
                    src.id,
                    Leader {
                        rel: rel.to_path_buf(),
                        replica: None,
                        rewritten: false,
                    },
                );
                Role::Lead
            }
        }
    }

    /// The leader's copy is in place as REPLICA's inode `replica`; `rewritten` if its content
    /// was written in this run.
    pub fn settle(&self, src: Id, replica: Id, rewritten: bool) {
        if let Some(leader) = crate::lock(&self.leaders).get_mut(&src) {
            leader.replica = Some(replica);
            leader.rewritten |= rewritten;
        }
    }

    /// Makes `rel`, whose copy in REPLICA is `replica`, the leader for `src`.
    pub fn lead_with(&self, src: Id, rel: &Path, replica: Id) {
        crate::lock(&self.leaders).insert(
            src,
            Leader {
                rel: rel.to_path_buf(),
                replica: Some(replica),
                rewritten: false,
            },
        );
    }

    /// `rel` is to be linked once its leader's copy is in place.
    pub fn wait(&self, rel: &Path, src: Id) {
        crate::lock(&self.waiting).push((rel.to_path_buf(), src));
    }

    /// `rel`, a new name of `src`, waits for the search for its other names.
    pub fn unplaced(&self, rel: &Path, src: Id) {
        crate::lock(&self.unplaced).push((rel.to_path_buf(), src));
    }

    /// The names that wait for a search.
    pub fn take_unplaced(&self) -> Vec<(PathBuf, Id)> {
        std::mem::take(&mut *crate::lock(&self.unplaced))
    }

    /// The waiting names, and the leaders rewritten in this run: the work left for the end.
    pub fn take(&self) -> (Vec<(PathBuf, Id)>, HashMap<Id, Leader>) {
        let waiting = std::mem::take(&mut *crate::lock(&self.waiting));
        let leaders = std::mem::take(&mut *crate::lock(&self.leaders));
        (waiting, leaders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir::{Kind, Stamp};

    fn meta(ino: u64) -> Meta {
        Meta {
            kind: Kind::File,
            perm: 0o644,
            uid: 0,
            gid: 0,
            size: 1,
            blocks: 8,
            nlink: 2,
            atime: Stamp::default(),
            mtime: Stamp::default(),
            ctime: Stamp::default(),
            id: Id { dev: 1, ino },
            mount_root: false,
            acl: false,
        }
    }

    #[test]
    fn the_first_name_leads_and_the_others_follow() {
        let links = RunLinks::default();
        assert_eq!(links.role(&meta(7), Path::new("a")), Role::Lead);
        assert_eq!(
            links.role(&meta(7), Path::new("b")),
            Role::Follow {
                to: "a".into(),
                replica: None
            }
        );
        links.settle(meta(7).id, Id { dev: 2, ino: 70 }, true);
        assert_eq!(
            links.role(&meta(7), Path::new("c")),
            Role::Follow {
                to: "a".into(),
                replica: Some(Id { dev: 2, ino: 70 })
            }
        );
        assert_eq!(links.role(&meta(7), Path::new("a")), Role::Lead);
        let known = Known::default();
        known.note(meta(7).id, Path::new("a"));
        known.note(meta(7).id, Path::new("b"));
        assert_eq!(
            known.others(meta(7).id, Path::new("a"), 8),
            vec![PathBuf::from("b")]
        );
        known.forget(meta(7).id, Path::new("b"));
        assert!(known.others(meta(7).id, Path::new("a"), 8).is_empty());
        assert!(known.knows(meta(7).id));
    }
}
