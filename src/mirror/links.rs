//! Hard links kept as hard links. A SOURCE inode with more than one name is copied once, under
//! the first name met (its leader); every other name becomes a link to the leader's copy in
//! REPLICA. Memory goes only to inodes with more than one link: the names of each, kept from
//! pass to pass so the watcher can link a new name to a mirrored inode, and re-link every
//! name when the content changes through one of them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::apply::Run;
use super::copy::TempGuard;
use super::done::Done;
use super::node::Node;
use crate::dir::{Dir, Id, Kind, Meta};

/// The names of SOURCE's multi-link inodes, as far as they are known (across runs).
#[derive(Debug, Default)]
pub struct Known(Mutex<HashMap<Id, Vec<PathBuf>>>);

impl Known {
    pub fn clear(&self) {
        crate::lock(&self.0).clear();
    }

    /// Notes that `rel` is a name of the SOURCE inode `id`.
    pub fn note(&self, id: Id, rel: &Path) {
        let mut known = crate::lock(&self.0);
        let names = known.entry(id).or_default();
        if !names.iter().any(|n| n == rel) {
            names.push(rel.to_path_buf());
        }
    }

    /// The other names known for `id`.
    pub fn others(&self, id: Id, rel: &Path) -> Vec<PathBuf> {
        crate::lock(&self.0)
            .get(&id)
            .map(|names| names.iter().filter(|n| *n != rel).cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets that `rel` was a name of `id` (SOURCE says otherwise now).
    pub fn forget(&self, id: Id, rel: &Path) {
        let mut known = crate::lock(&self.0);
        if let Some(names) = known.get_mut(&id) {
            names.retain(|n| n != rel);
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

    /// The waiting names, and the leaders rewritten in this run: the work left for the end.
    pub fn take(&self) -> (Vec<(PathBuf, Id)>, HashMap<Id, Leader>) {
        let waiting = std::mem::take(&mut *crate::lock(&self.waiting));
        let leaders = std::mem::take(&mut *crate::lock(&self.leaders));
        (waiting, leaders)
    }
}

impl Run<'_> {
    /// For a file with more than one link about to be copied: links it to the copy another of
    /// its names already has in REPLICA, or leaves it waiting for that copy, instead of copying
    /// again. Returns whether the copy is to be skipped.
    pub(super) fn link_instead(
        &self,
        node: &Node,
        name: &OsStr,
        rel: &Path,
        src: &Meta,
        update: bool,
    ) -> bool {
        self.m.known.note(src.id, rel);
        match self.links.role(src, rel) {
            Role::Follow {
                to,
                replica: Some(_),
            } => {
                if self.link(node.dst.as_ref(), name, rel, &to) {
                    // Linking moved the copy's ctime, which would hide a change to SOURCE's
                    // attributes from later looks.
                    self.sync_xattrs(node, name);
                }
                true
            }
            Role::Follow { replica: None, .. } => {
                self.links.wait(rel, src.id);
                true
            }
            // A new name of an inode already mirrored under another name (the watcher's `ln`):
            // that copy becomes the leader, and this name a link to it.
            Role::Lead if !update => match self.adopt(src, rel, node) {
                Some(to) => {
                    if self.link(node.dst.as_ref(), name, rel, &to) {
                        self.sync_xattrs(node, name);
                    }
                    true
                }
                None => false,
            },
            Role::Lead => false,
        }
    }

    /// Finds another known name of `src` whose copy in REPLICA is current, and makes it the
    /// run's leader for `src`. A batch that knows no other name looks in the same directory
    /// (`ln a b` makes no event for `a`); a pass meets every name anyway.
    fn adopt(&self, src: &Meta, rel: &Path, node: &Node) -> Option<PathBuf> {
        let root = self.m.root_dir()?;
        let mut others = self.m.known.others(src.id, rel);
        if others.is_empty() && !self.full {
            others = siblings(node, src, rel);
        }
        for other in others {
            let (Some(parent), Some(other_name)) = (other.parent(), other.file_name()) else {
                continue;
            };
            let same_source = self
                .source
                .dir
                .open_beneath(parent)
                .and_then(|d| d.stat_at(other_name))
                .is_ok_and(|m| m.is_some_and(|m| m.id == src.id));
            if !same_source {
                self.m.known.forget(src.id, &other);
                continue;
            }
            let copy = root
                .open_beneath(parent)
                .and_then(|d| d.stat_at(other_name))
                .ok()
                .flatten();
            if let Some(copy) =
                copy.filter(|c| c.kind == Kind::File && c.same_stamp(src, self.m.opts.rules.window))
            {
                self.links.lead_with(src.id, &other, copy.id);
                return Some(other);
            }
        }
        None
    }

    /// Makes REPLICA's `name` (at `rel`) a hard link to REPLICA's `to`, replacing what is there
    /// atomically (a link under a temporary name, then a rename).
    pub(super) fn link(&self, dir: Option<&Dir>, name: &OsStr, rel: &Path, to: &Path) -> bool {
        if self.dry_run() {
            self.note(Done::Linked { rel, to });
            return true;
        }
        let (Some(dir), Some(root), Some(to_parent), Some(to_name)) =
            (dir, self.m.root_dir(), to.parent(), to.file_name())
        else {
            return false;
        };
        let made = root.open_beneath(to_parent).and_then(|to_dir| {
            let tmp = self.m.own().temps().fresh();
            to_dir.hard_link(to_name, dir, &tmp)?;
            let guard = TempGuard::new(dir, &tmp);
            if let (Some(backup), Ok(Some(old))) = (&self.m.backup, dir.stat_at(name)) {
                if old.kind == Kind::File {
                    backup.keep_old(dir, name, rel)?;
                }
            }
            dir.rename(&tmp, dir, name)?;
            guard.disarm();
            Ok(())
        });
        match made {
            Ok(()) => {
                self.note(Done::Linked { rel, to });
                true
            }
            Err(e) => {
                self.fail(self.dst_err("link", rel, e));
                false
            }
        }
    }

    /// The end of a run: the names that waited for their leader's copy are linked to it, and
    /// where a leader's content was rewritten, every other known name follows. Returns the
    /// directories whose entries changed, whose attributes (mtime) must be set again.
    pub(super) fn finish_links(&self) -> Vec<PathBuf> {
        let mut touched: Vec<PathBuf> = Vec::new();
        let (waiting, leaders) = self.links.take();
        let Some(root) = self.m.root_dir() else {
            return touched;
        };
        let mut todo: Vec<(PathBuf, Id)> = waiting;
        for (id, leader) in &leaders {
            // A pass meets every name, and links it as it goes; a batch meets only some: the
            // other names of its inodes are checked here (a new `ln` makes a name linked late).
            if leader.rewritten || !self.full {
                for other in self.m.known.others(*id, &leader.rel) {
                    if !todo.iter().any(|(r, _)| *r == other) {
                        todo.push((other, *id));
                    }
                }
            }
        }
        for (rel, id) in todo {
            if self.m.stop.is_set() {
                return touched;
            }
            let (Some(leader), Some(parent), Some(name)) =
                (leaders.get(&id), rel.parent(), rel.file_name())
            else {
                continue;
            };
            let Some(replica) = leader.replica else {
                continue;
            };
            // Still a name of the same inode in SOURCE?
            let same = self
                .source
                .dir
                .open_beneath(parent)
                .and_then(|d| d.stat_at(name))
                .is_ok_and(|m| m.is_some_and(|m| m.id == id));
            if !same {
                self.m.known.forget(id, &rel);
                continue;
            }
            let Ok(dir) = root.open_beneath(parent) else {
                continue;
            };
            if dir
                .stat_at(name)
                .is_ok_and(|m| m.is_some_and(|m| m.id == replica))
            {
                continue;
            }
            if self.link(Some(&dir), name, &rel, &leader.rel)
                && !touched.iter().any(|p| p == parent)
            {
                touched.push(parent.to_path_buf());
            }
        }
        touched
    }
}

/// The other names of `src` in `rel`'s own directory of SOURCE.
fn siblings(node: &Node, src: &Meta, rel: &Path) -> Vec<PathBuf> {
    /// More than this many entries, and the next pass is the cheaper way to find them.
    const LOOK_AT_MOST: usize = 10_000;
    let (Some(dir), Some(parent)) = (&node.src, rel.parent()) else {
        return Vec::new();
    };
    let Ok(entries) = dir.list() else {
        return Vec::new();
    };
    if entries.len() > LOOK_AT_MOST {
        return Vec::new();
    }
    entries
        .iter()
        .filter(|(name, kind)| *kind == Kind::File && Some(name.as_os_str()) != rel.file_name())
        .filter(|(name, _)| {
            dir.stat_at(name)
                .is_ok_and(|m| m.is_some_and(|m| m.id == src.id))
        })
        .map(|(name, _)| parent.join(name))
        .collect()
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
            known.others(meta(7).id, Path::new("a")),
            vec![PathBuf::from("b")]
        );
        known.forget(meta(7).id, Path::new("b"));
        assert!(known.others(meta(7).id, Path::new("a")).is_empty());
    }
}
