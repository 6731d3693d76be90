//! Carrying out the names' roles: a follower linked to its leader's copy (atomically, under a
//! temporary name then renamed), a new name adopting a copy another name already has, the end
//! of a run (names that waited for their leader, names whose other names were searched for,
//! every other name of a rewritten leader re-linked).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::Role;
use std::fs::File;

use crate::dir::compare;
use crate::dir::{Dir, Id, Kind, Meta};
use crate::mirror::act::Acted;
use crate::mirror::change::Change;
use crate::mirror::copy::TempGuard;
use crate::mirror::dir_pair::{DirPair, Incoming};
use crate::mirror::round::Round;
use crate::replica::Look;

/// At most this many other names are tried for a copy to adopt.
const ADOPT_FROM: usize = 16;

/// What [`Round::adopt`] found.
enum Adopted {
    /// This other name's copy is current: link to it.
    From(PathBuf),
    /// No other name of the inode is known yet: search for them at the end of the batch.
    Unknown,
    /// None of the known names has a current copy: copy.
    Nothing,
}

impl Round<'_> {
    /// For a file with more than one link about to be copied: links it to the copy another of
    /// its names already has in REPLICA, or leaves it waiting for that copy (or for a search
    /// for its other names), instead of copying again. Returns whether the copy is skipped.
    pub(in crate::mirror) fn link_instead(&self, file: &Incoming) -> bool {
        let (node, name, rel, src) = (file.node, file.name, file.rel, file.src);
        let known = self.m.known.knows(src.id);
        self.m.known.note(src.id, rel);
        match self.links.role(src, rel) {
            Role::Follow {
                to,
                replica: Some(_),
            } => {
                self.link_and_sync(node, name, rel, &to);
                true
            }
            Role::Follow { replica: None, .. } => {
                self.links.wait(rel, src.id);
                true
            }
            // A new name of an inode already mirrored under another name (the watcher's `ln`):
            // that copy becomes the leader, and this name a link to it.
            Role::Lead if !file.update => match self.adopt((file.input, src), rel, node, known) {
                Adopted::From(to) => {
                    self.link_and_sync(node, name, rel, &to);
                    true
                }
                Adopted::Unknown => {
                    self.links.unplaced(rel, src.id);
                    true
                }
                Adopted::Nothing => false,
            },
            Role::Lead => false,
        }
    }

    /// Links `rel` to `to`'s copy, and gives it SOURCE's extended attributes: linking moved
    /// the copy's ctime, which would hide a change to them from later looks.
    fn link_and_sync(&self, node: &DirPair, name: &OsStr, rel: &Path, to: &Path) {
        if let Some(id) = self.link(node.dst.as_ref(), name, rel, to) {
            node.touch();
            self.sync_xattrs(node, name, Some(id));
        }
    }

    /// Finds another name of `src` whose copy in REPLICA is current, and makes it the run's
    /// leader for `src`. A batch that knows no other name looks in the same directory first
    /// (`ln a b` makes no event for `a`), and else asks for a search; a pass meets every name.
    fn adopt(
        &self,
        (input, src): (&File, &Meta),
        rel: &Path,
        node: &DirPair,
        known: bool,
    ) -> Adopted {
        let mut others = self.m.known.others(src.id, rel, ADOPT_FROM);
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
            if let Some(copy) = self.current_copy(&other, input, src) {
                self.links.lead_with(src.id, &other, copy);
                return Adopted::From(other);
            }
        }
        if !known && !self.full && !self.links_searched {
            Adopted::Unknown
        } else {
            Adopted::Nothing
        }
    }

    /// REPLICA's copy at `other` (its inode), if it holds the bytes of SOURCE's `input` (as
    /// `src` describes it): the same size and mtime, and either written after SOURCE's inode
    /// last changed (its ctime, where REPLICA keeps ctimes), or its bytes compared (a new name
    /// moves the inode's ctime too, as would a rewrite that kept the size and mtime).
    fn current_copy(&self, other: &Path, input: &File, src: &Meta) -> Option<Id> {
        let dir = self.m.root_dir()?.open_beneath(other.parent()?).ok()?;
        let name = other.file_name()?;
        let copy = dir.stat_at(name).ok()??;
        if copy.kind != Kind::File || !copy.same_stamp(src, self.m.opts.rules.window) {
            return None;
        }
        if !(self.m.opts.ctimes && src.changed_after(&copy)) {
            return Some(copy.id);
        }
        let theirs = dir.open_file(name).ok()?;
        if crate::dir::meta_of(&theirs).ok()?.id != copy.id {
            return None;
        }
        let stop = || self.m.stop.is_set();
        let same = compare::same_data_undisturbed(input, src, &theirs, &stop);
        matches!(same, Ok(compare::Compared::Same)).then_some(copy.id)
    }

    /// Makes REPLICA's `name` (at `rel`) a hard link to REPLICA's `to`, replacing what is there
    /// atomically (a link under a temporary name, then a rename). Returns the inode linked (in a
    /// dry run, a stand-in).
    pub(in crate::mirror) fn link(
        &self,
        dir: Option<&Dir>,
        name: &OsStr,
        rel: &Path,
        to: &Path,
    ) -> Option<Id> {
        let made = self.act(
            dir,
            ("link", rel),
            |dir| {
                let (Some(root), Some(to_parent), Some(to_name)) =
                    (self.m.root_dir(), to.parent(), to.file_name())
                else {
                    return Err(std::io::ErrorKind::NotFound.into());
                };
                let to_dir = root.open_beneath(to_parent)?;
                let tmp = self.m.own().temps().fresh();
                to_dir.hard_link(to_name, dir, &tmp)?;
                let guard = TempGuard::new(dir, &tmp);
                let linked = dir.handle(&tmp)?.meta.id;
                self.put_in_place(dir, tmp.as_ref(), name, rel)
                    .map_err(|(_, e)| e)?;
                guard.disarm();
                Ok(linked)
            },
            |_| Change::Linked {
                rel: rel.to_path_buf(),
                to: to.to_path_buf(),
            },
        );
        match made {
            Acted::Done(linked) => Some(linked),
            // A stand-in for the inode a dry run would have linked.
            Acted::Dry => Some(Id { dev: 0, ino: 0 }),
            Acted::Failed => None,
        }
    }

    /// The new names whose other names were unknown: one search of SOURCE finds the other names
    /// of all their inodes. Returns them, for the driver to place in a run of their own (a link
    /// where another name's copy is current, a copy otherwise).
    pub(in crate::mirror) fn unplaced(&self) -> Vec<(PathBuf, Look)> {
        let unplaced = self.links.take_unplaced();
        if unplaced.is_empty() || self.m.stop.is_set() {
            return Vec::new();
        }
        let wanted: HashSet<Id> = unplaced.iter().map(|(_, id)| *id).collect();
        let stop = || self.m.stop.is_set();
        for (id, rel) in super::search::names_of(self.source, &wanted, &stop) {
            self.m.known.note(id, &rel);
        }
        let mut paths: Vec<(PathBuf, Look)> = Vec::with_capacity(unplaced.len());
        for (rel, id) in unplaced {
            // Known now, even if it has no other name in SOURCE: not searched for again.
            self.m.known.note(id, &rel);
            paths.push((rel, Look::ENTRY));
        }
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        paths.dedup_by(|a, b| a.0 == b.0);
        paths
    }

    /// The end of a run: the names that waited for their leader's copy are linked to it, and
    /// where a leader's content was rewritten, every other known name follows. The directories
    /// whose entries changed get their attributes (mtime) set again.
    pub(in crate::mirror) fn finish_links(&self) {
        let (waiting, leaders) = self.links.take();
        let Some(root) = self.m.root_dir() else {
            return;
        };
        let mut seen: HashSet<PathBuf> = waiting.iter().map(|(r, _)| r.clone()).collect();
        let mut todo: Vec<(PathBuf, Id)> = waiting;
        for (id, leader) in &leaders {
            // A pass meets every name, and links it as it goes; a batch meets only some: the
            // other names of its inodes are checked here (a new `ln` makes a name linked late).
            if leader.rewritten || !self.full {
                for other in self.m.known.others(*id, &leader.rel, usize::MAX) {
                    if seen.insert(other.clone()) {
                        todo.push((other, *id));
                    }
                }
            }
        }
        // Waiting names came from walkers in any order: linked in path order.
        todo.sort_by(|a, b| a.0.cmp(&b.0));
        for (rel, id) in todo {
            if self.m.stop.is_set() {
                break;
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
            if self.link(Some(&dir), name, &rel, &leader.rel).is_some() {
                self.settle.note_dir(parent, &dir);
            }
        }
    }
}

/// The other names of `src` in `rel`'s own directory of SOURCE.
fn siblings(node: &DirPair, src: &Meta, rel: &Path) -> Vec<PathBuf> {
    /// More than this many entries, and the search at the batch's end is the cheaper way.
    const LOOK_AT_MOST: usize = 10_000;
    let (Some(dir), Some(parent)) = (&node.src, rel.parent()) else {
        return Vec::new();
    };
    let Ok(entries) = dir.list_inodes() else {
        return Vec::new();
    };
    if entries.len() > LOOK_AT_MOST {
        return Vec::new();
    }
    entries
        .iter()
        .filter(|(name, kind, ino)| {
            *kind == Kind::File && *ino == src.id.ino && Some(name.as_os_str()) != rel.file_name()
        })
        .filter(|(name, _, _)| {
            dir.stat_at(name)
                .is_ok_and(|m| m.is_some_and(|m| m.id == src.id))
        })
        .map(|(name, _, _)| parent.join(name))
        .collect()
}
