//! A file about to be copied takes REPLICA's copy of its earlier self instead, but only on
//! proof: the candidate (the old name of a rename the kernel reported, an entry held after a
//! move, a pass's orphan of the same size and mtime) is compared byte for byte with SOURCE's
//! file, under a read lease where one can be had, before it is renamed into place. The
//! comparison runs wherever the copy would have run (a copy worker for a large file), reads
//! only data, and gives up on a stop.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;

use super::{Orphan, RENAME_MIN};
use crate::dir::compare::{self, Compared};
use crate::dir::{Kind, Meta};
use crate::mirror::apply::Run;
use crate::mirror::node::Node;

impl Run<'_> {
    /// Takes a proven earlier self of the file `name` (at `rel`, SOURCE's `input` with `src`)
    /// instead of copying it; over REPLICA's file if `update`. Then sets what differs of its
    /// attributes. Returns whether it did.
    pub(in crate::mirror) fn claim_file(
        &self,
        node: &Node,
        name: &OsStr,
        rel: &Path,
        (input, src): (&File, &Meta),
        update: bool,
    ) -> bool {
        if !self.matching() {
            return false;
        }
        for candidate in self.candidates(rel, src) {
            if self.m.stop.is_set() {
                return false;
            }
            let Some(id) = self.proven(&candidate, input, src) else {
                continue;
            };
            if self.rename_orphan(&candidate, rel, update) {
                self.taken(&candidate);
                self.settle_claimed(node, name, rel, src, id);
                return true;
            }
        }
        false
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

    /// Whether REPLICA's `candidate` holds exactly the bytes of SOURCE's `input` (as `src`
    /// describes it), compared while no writer touches `input` (a read lease, where one can be
    /// had): the candidate's inode if so.
    fn proven(&self, candidate: &Orphan, input: &File, src: &Meta) -> Option<crate::dir::Id> {
        let root = self.m.root_dir()?;
        let (parent, name) = (candidate.rel.parent()?, candidate.rel.file_name()?);
        let theirs = root
            .open_beneath(parent)
            .and_then(|d| d.open_file(name))
            .ok()?;
        let meta = crate::dir::meta_of(&theirs).ok()?;
        if meta.size != src.size || meta.kind != Kind::File {
            return None;
        }
        // Not a file with names of its own elsewhere: renaming it would carry them along, and
        // setting its attributes would change theirs.
        if meta.nlink > 1 {
            return None;
        }
        let stop = || self.m.stop.is_set();
        let same = compare::same_data_undisturbed(input, src, &theirs, &stop);
        matches!(same, Ok(Compared::Same)).then_some(meta.id)
    }

    /// The file just renamed into place at `rel` gets what differs of SOURCE's attributes, and
    /// its extended attributes (the candidate's may differ; its ctime moved with the rename, so
    /// no later look would compare them).
    fn settle_claimed(
        &self,
        node: &Node,
        name: &OsStr,
        rel: &Path,
        src: &Meta,
        id: crate::dir::Id,
    ) {
        if self.dry_run() {
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
