//! Carrying out a plan for one entry met by the walk: the removal first (or the orphan kept for
//! a rename), then what SOURCE's entry needs: a directory made (or taken from an orphan) and
//! pushed to the stack, a file copied (small ones at once, large ones by a copy worker), or an
//! operation of [`super::ops`].

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;

use log::warn;

use super::dir_pair::{DirPair, DirTask};
use super::links::Role;
use super::ops::Relink;
use super::plan::{Facts, Op, Plan};
use super::walk::{CopyJob, Walk};
use crate::dir::{Kind, Meta};
use crate::escape::esc;
use crate::replica::Look;

/// Files up to this size are copied by the walker that meets them.
const INLINE_COPY: u64 = 1 << 20;

impl<'r> Walk<'_, 'r> {
    /// Carries out a plan: the removal first, then the creation or update.
    pub(super) fn carry(
        &self,
        node: &Arc<DirPair<'r>>,
        name: &OsStr,
        rel: PathBuf,
        plan: Plan,
        facts: &Facts,
        look: Look,
    ) {
        let run = self.run;
        let tree = look.tree;
        if !self.clear_the_way(node, name, &rel, &plan, look) {
            return;
        }
        let new = plan.remove.is_none();
        let src_meta = facts.src.as_ref().and_then(|e| e.meta);
        let dst_meta = facts.dst.as_ref().and_then(|e| e.meta);
        // Extended attributes are written when they differ, or may (SOURCE's status changed).
        let newer = facts.status_newer || facts.xattrs_differ;
        if let (Some(Role::Lead), Some(s), Some(d)) = (&facts.link, src_meta, dst_meta) {
            // The leader's copy stays where it is: the other names link to it.
            if !matches!(plan.then, Op::Copy { .. }) && plan.remove.is_none() {
                run.links.settle(s.id, d.id, false);
            }
        }
        match plan.then {
            Op::Keep => {}
            Op::MakeDir => self.make_dir(node, name, rel, new),
            Op::Walk => self.push(DirTask {
                parent: Arc::clone(node),
                name: name.to_os_string(),
                rel,
                made: None,
                empty: false,
                tree,
                verify: look.verify,
            }),
            Op::Copy { update } => {
                let update = update && plan.remove.is_none();
                let dst = if update { dst_meta } else { None };
                self.copy(node, name, rel, (update, new), dst);
            }
            Op::Attrs => {
                if let (Some(s), Some(d)) = (src_meta, dst_meta) {
                    run.attrs(node, name, &rel, &s, &d, newer);
                }
            }
            Op::Symlink { target, update } => {
                let how = if update { Relink::Update } else { Relink::New };
                run.symlink(node, name, &rel, &target, how)
            }
            Op::SymlinkAttrs => {
                if let Some(target) = facts.src.as_ref().and_then(|e| e.target.as_deref()) {
                    run.symlink(node, name, &rel, target, Relink::Attrs);
                }
            }
            Op::Verified => {
                if let (Some(s), Some(d)) = (src_meta, dst_meta) {
                    run.verified(node, name, &rel, &s, &d);
                }
            }
            Op::Link { to } => {
                if let Some(id) = run.link(node.dst.as_ref(), name, &rel, &to) {
                    node.touch();
                    run.sync_xattrs(node, name, Some(id));
                }
            }
            Op::LinkLater { .. } => {
                if let Some(s) = src_meta {
                    run.links.wait(&rel, s.id);
                }
            }
        }
    }

    /// What comes before a plan's operation: a skipped special file said, and REPLICA's entry
    /// removed (or, SOURCE lacking it, kept as an orphan for a rename's other half). Returns
    /// whether the operation may follow.
    fn clear_the_way(
        &self,
        node: &DirPair<'r>,
        name: &OsStr,
        rel: &std::path::Path,
        plan: &Plan,
        look: Look,
    ) -> bool {
        let run = self.run;
        if let Some(what) = plan.skipped {
            // Said once per pass, however often it is touched, and again if it changes kind.
            if run.m.skipped(rel, what) {
                warn!(
                    "skipped {what} {}: only files, directories and symlinks are mirrored",
                    esc(&run.source_path().join(rel))
                );
            }
        }
        let Some(kind) = plan.remove else {
            return true;
        };
        if plan.then == Op::Keep && run.orphan(node.dst.as_ref(), name, rel, kind, look) {
            return false;
        }
        if !run.remove(node.dst.as_ref(), name, rel, kind, plan.then != Op::Keep) {
            return false;
        }
        node.touch();
        true
    }

    /// A directory SOURCE has and REPLICA lacks: kept for a pass's end (it may be a rename),
    /// taken from an orphan with the same names, or made; then walked.
    fn make_dir(&self, node: &Arc<DirPair<'r>>, name: &OsStr, rel: PathBuf, new: bool) {
        let run = self.run;
        if new && run.keep_newcomer(node, &rel, Kind::Dir, None) {
            return;
        }
        let (made, verify) = if new && run.claim_dir(node, name, &rel) {
            // An earlier self renamed into place: its contents are reconciled, and its files
            // compared (taken by its names, it may be another directory's copy).
            node.touch();
            (None, true)
        } else {
            match run.make_dir(node, name, &rel) {
                Ok(made) => (Some(made), false),
                Err(_) => return,
            }
        };
        self.push(DirTask {
            parent: Arc::clone(node),
            name: name.to_os_string(),
            rel,
            made,
            empty: false,
            tree: true,
            verify,
        });
    }

    /// A file to copy (`update`: over REPLICA's older version, which was `dst`; `new`: REPLICA
    /// had nothing there). The source is opened here: a small file is copied at once (handing
    /// it to a worker costs more than the copy); a large one goes to the pool, opened, so the
    /// walk goes on meanwhile.
    fn copy(
        &self,
        node: &Arc<DirPair<'r>>,
        name: &OsStr,
        rel: PathBuf,
        (update, new): (bool, bool),
        dst: Option<Meta>,
    ) {
        let run = self.run;
        let opened = match run.open_source(node, name, &rel) {
            Ok(opened) => opened,
            Err(failure) => return run.failed(failure, &rel),
        };
        if !update && new && run.keep_newcomer(node, &rel, Kind::File, Some(&opened.1)) {
            return;
        }
        let job = CopyJob {
            node: Arc::clone(node),
            name: name.to_os_string(),
            rel,
            update,
            opened,
            dst,
        };
        self.hand(job, INLINE_COPY);
    }
}
