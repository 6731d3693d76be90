//! A file about to be copied takes REPLICA's copy of its earlier self instead, but only on
//! proof: the candidate (the old name of a rename the kernel reported, an entry held after a
//! move, a pass's orphan of the same size and mtime) is compared byte for byte with SOURCE's
//! file, under a read lease where one can be had, before it is renamed into place. The
//! comparison runs wherever the copy would have run (a copy worker for a large file), reads
//! only data, and gives up on a stop.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;

use super::aside::{self, Known};
use super::{Orphan, RENAME_MIN};
use crate::dir::compare::{self, Compared};
use crate::dir::{Id, Kind, Meta};
use crate::mirror::dir_pair::{DirPair, Incoming};
use crate::mirror::round::Round;

/// What became of an arrival's search for its earlier self.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Found and renamed into place.
    Claimed,
    /// None proven: it is copied.
    No,
    /// A comparison runs aside (see [`super::aside`]): the arrival waits for it.
    Waiting,
}

/// Whether a candidate is proven.
enum Proven {
    Same(Id),
    Not,
    Waiting,
}

impl Round<'_> {
    /// Takes a proven earlier self of the file about to be copied instead of copying it (over
    /// REPLICA's file if `update`). Then sets what differs of its attributes.
    pub(in crate::mirror) fn claim_file(&self, file: &Incoming) -> Claim {
        let (rel, src) = (file.rel, file.src);
        if !self.matching() {
            return Claim::No;
        }
        for candidate in self.candidates(rel, src) {
            if self.m.stop.is_set() {
                return Claim::No;
            }
            let id = match self.proven(&candidate, rel, file.input, src) {
                Proven::Same(id) => id,
                Proven::Not => continue,
                Proven::Waiting => {
                    self.keep_for_proof(&candidate);
                    return Claim::Waiting;
                }
            };
            if self.rename_orphan(&candidate, rel, file.update) {
                self.taken(&candidate);
                self.settle_claimed(file.node, file.name, rel, src, id);
                return Claim::Claimed;
            }
        }
        Claim::No
    }

    /// A candidate under comparison aside stays until the comparison ends: the old name of a
    /// reported rename, removed at the batch's end otherwise, is held instead.
    fn keep_for_proof(&self, candidate: &Orphan) {
        let mut left = crate::lock(&self.left);
        let Some(i) = left.iter().position(|o| o.rel == candidate.rel) else {
            return;
        };
        let orphan = left.remove(i);
        drop(left);
        let until = std::time::Instant::now() + self.m.opts.timing.hold_moved();
        crate::lock(&self.m.held).hold(orphan, until, None);
    }

    /// Who may be `rel`'s earlier self, most likely first: the old name of a reported rename,
    /// then entries held after a move or a pass's orphans of the same size and mtime (those
    /// of the same name first).
    fn candidates(&self, rel: &Path, src: &Meta) -> Vec<Orphan> {
        let mut out = Vec::new();
        if let Some(from) = self.expected_for(rel) {
            if let Some(orphan) = self.replica_file(&from) {
                if orphan.size == src.size {
                    out.push(orphan);
                }
            }
        }
        if src.size < RENAME_MIN {
            return out;
        }
        let window = self.m.opts.rules.window;
        let fits = |o: &Orphan| {
            o.kind == Kind::File && o.size == src.size && o.mtime.near(src.mtime, window)
        };
        let mut more: Vec<Orphan> = crate::lock(&self.m.held)
            .files(src.size, src.mtime, window)
            .into_iter()
            .filter(|o| fits(o))
            .collect();
        if self.full {
            more.extend(self.indexed_files(src));
        }
        more.sort_by_key(|o| o.rel.file_name() != rel.file_name());
        out.extend(more);
        out
    }

    /// REPLICA's file at `rel`, as an orphan to offer.
    fn replica_file(&self, rel: &Path) -> Option<Orphan> {
        let dir = self.m.root_dir()?.open_beneath(rel.parent()?).ok()?;
        let meta = dir.stat_at(rel.file_name()?).ok()??;
        (meta.kind == Kind::File).then(|| Orphan {
            rel: rel.to_path_buf(),
            kind: Kind::File,
            size: meta.size,
            mtime: meta.mtime,
            inside: false,
        })
    }

    /// Whether REPLICA's `candidate` holds exactly the bytes of SOURCE's `input` at `rel` (as
    /// `src` describes it), compared while no writer touches `input` (a read lease, where one
    /// can be had); a large file in watch mode is compared aside.
    fn proven(&self, candidate: &Orphan, rel: &Path, input: &File, src: &Meta) -> Proven {
        let Some(root) = self.m.root_dir() else {
            return Proven::Not;
        };
        let (Some(parent), Some(name)) = (candidate.rel.parent(), candidate.rel.file_name()) else {
            return Proven::Not;
        };
        let Ok(theirs) = root.open_beneath(parent).and_then(|d| d.open_file(name)) else {
            return Proven::Not;
        };
        let Ok(meta) = crate::dir::meta_of(&theirs) else {
            return Proven::Not;
        };
        // Not a file with names of its own elsewhere: renaming it would carry them along, and
        // setting its attributes would change theirs.
        if meta.size != src.size || meta.kind != Kind::File || meta.nlink > 1 {
            return Proven::Not;
        }
        if self.m.opts.requeue && !self.full && src.size >= aside::ASIDE_MIN {
            let asked = crate::lock(&self.m.aside).ask(
                (rel, input, src),
                (&candidate.rel, theirs, &meta),
                &self.m.stop,
            );
            match asked {
                Known::Same => return Proven::Same(meta.id),
                Known::Differ => return Proven::Not,
                Known::Running => return Proven::Waiting,
                Known::InLine => {
                    let Ok(again) = root.open_beneath(parent).and_then(|d| d.open_file(name))
                    else {
                        return Proven::Not;
                    };
                    return self.compare_in_line(input, src, &again, &meta);
                }
            }
        }
        self.compare_in_line(input, src, &theirs, &meta)
    }

    fn compare_in_line(&self, input: &File, src: &Meta, theirs: &File, meta: &Meta) -> Proven {
        let stop = || self.m.stop.is_set();
        match compare::same_data_undisturbed(input, src, theirs, &stop) {
            Ok(Compared::Same) => Proven::Same(meta.id),
            _ => Proven::Not,
        }
    }

    /// The file just renamed into place at `rel` gets what differs of SOURCE's attributes, and
    /// its extended attributes (the candidate's may differ; its ctime moved with the rename, so
    /// no later look would compare them).
    fn settle_claimed(&self, node: &DirPair, name: &OsStr, rel: &Path, src: &Meta, id: Id) {
        if !self.writes() {
            return;
        }
        let Some(dst) = node.dst.as_ref() else { return };
        node.touch();
        let rules = &self.m.opts.rules;
        match dst.stat_at(name) {
            Ok(Some(now)) if now.id != id => {}
            Ok(Some(now))
                if rules.attrs_differ(src, &now) || !src.mtime.near(now.mtime, rules.window) =>
            {
                self.attrs(node, name, rel, src, &now, true)
            }
            Ok(Some(_)) => self.sync_xattrs(node, name, Some(id)),
            Ok(None) => {}
            Err(e) => self.fail(self.dst_err("stat", rel, e)),
        }
    }
}
