//! A batch of watcher hints on a remote replica, carried out. What it will do is decided by
//! [`super::plan::decide`] from what SOURCE holds now at its paths ([`super::source::gather`]);
//! here the plan is carried out: the paths go to rsync as a `--files-from` list, those to look
//! at alone in a run without recursion, those to look at whole (new and moved-in directories) in
//! a recursive run with `--delete`; `--delete-missing-args` removes what SOURCE lacks (see
//! [`super::send`]). Renames seen in SOURCE are made on the remote side first, in the same ssh
//! session, where the remote side proves that the old name holds what SOURCE now has at the new
//! one ([`super::digest`]). Only an entry SOURCE moved away (a rename's first half) is held back
//! before its removal ([`super::held`]); whatever else SOURCE lacks is removed at once.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::plan::{self, Known, Plan, Rules, Source};
use super::script::Rename;
use super::send::{compare, send, Delivery, Done};
use super::source::{gather, SourceReads};
use super::suspects;
use super::work::{sent_key, wanted, Work, MAX_SENT};
use super::Remote;
use crate::dir::Kind;
use crate::replica::{Batch, Look, Outcome};
use crate::root::Root;
use crate::stats::{Count, Stats};

/// Applies a batch; with `hold`, what SOURCE moved away is held back a moment (see
/// [`super::held`]), and new directories settle before they are sent whole.
pub fn apply(r: &mut Remote, source: &Root, batch: Batch, stats: &Stats, hold: bool) -> Outcome {
    let facts = gather(source, &batch);
    let plan = {
        let wanted = |p: &Path, is_dir: bool| wanted(r, p, is_dir);
        let rules = Rules {
            hold,
            dry_run: r.settings.dry_run,
            comparing: comparing(r),
            hard_links: r.settings.hard_links,
            files_from: r.files_from,
            touch: r.touch,
            settle: r.settings.timing.settle(),
            now: std::time::SystemTime::now(),
            wanted: &wanted,
        };
        let known = Known {
            sent: &r.sent,
            held: r.held.paths().cloned().collect(),
            root_sent: r.root_sent.clone(),
            root_mtime: r.root_mtime,
            root_waited: r.root_waited,
        };
        let mut reads = SourceReads::new(r, source);
        plan::decide(&batch, &facts, &known, &rules, &mut reads)
    };
    if plan.whole {
        // The whole replica (a pass that failed, tried again).
        return r.whole(source, stats, plan.repeat);
    }
    carry(r, &plan);
    if plan.wait_for_root {
        return Outcome {
            retry: vec![PathBuf::new()],
            ..Outcome::default()
        };
    }
    if plan.is_empty() {
        return Outcome::default();
    }
    let named = if comparing(r) {
        plan::named(&plan.work, &facts, &r.sent, &r.proof)
    } else {
        Vec::new()
    };
    let work = &plan.work;
    stats.add_n(
        Count::Checked,
        (work.entries.len() + work.trees.len()) as u64,
    );
    let done = send(r, source, work, &plan.renames, stats, plan.repeat);
    let seen = (&batch.renames[..], &plan.renames[..]);
    let went = compared(
        r,
        source,
        &facts,
        seen,
        work,
        (done, named),
        stats,
        plan.repeat,
    );
    let mut outcome = outcome(r, &facts, went, plan.work);
    outcome.pass = plan.other_names;
    outcome
}

/// Whether runs compare what rsync's quick check may pass over by content afterwards (not
/// with `--checksum`, which compares everything anyway, nor in a dry run).
fn comparing(r: &Remote) -> bool {
    !r.settings.checksum && !r.settings.dry_run
}

/// What the plan changes in the remote replica's own state before anything is sent: new
/// directories waiting to settle, paths held back, directories doubted, the root's wait.
fn carry(r: &mut Remote, plan: &Plan) {
    let due = Instant::now() + r.settings.timing.settle();
    for tree in &plan.settle {
        if !r.settling.iter().any(|(p, _)| p == tree) {
            r.settling.push((tree.clone(), due));
        }
    }
    for p in &plan.hold {
        r.held.hold(p.clone());
    }
    if !plan.doubt.is_empty() {
        r.proof.doubt(&plan.doubt);
    }
    if let Some(waited) = plan.root_waited {
        r.root_waited = waited;
    }
}

/// After the batch's runs: what REPLICA holds by the renames made moves with them, and the
/// files rsync's quick check may have passed over are compared by content: files that took
/// another's name by a rename the remote side did not make, `named` entries and files in the
/// batch's trees (see [`suspects`]) that rsync did not send. Returns how the batch went.
#[allow(clippy::too_many_arguments)]
fn compared(
    r: &mut Remote,
    source: &Root,
    facts: &Source,
    (seen, renames): (&[(PathBuf, PathBuf)], &[Rename]),
    work: &Work,
    (done, named): (Done, Vec<PathBuf>),
    stats: &Stats,
    repeat: bool,
) -> Delivery {
    for &i in &done.renamed {
        if let Some(m) = renames.get(i) {
            r.held.release(&m.from);
            r.proof.renamed(&m.from, &m.to);
        }
    }
    let mut suspects = suspects::swapped(r, facts, seen, renames, &done.renamed);
    if done.went == Delivery::Through && comparing(r) {
        suspects.extend(named.into_iter().filter(|p| !done.copied.contains(p)));
        suspects.extend(suspects::in_trees(r, source, &work.trees, &done.copied));
        suspects.sort();
        suspects.dedup();
    }
    let went = match done.went {
        Delivery::Lost => Delivery::Lost,
        // A dry run changed nothing: comparing again would only say the same again.
        went if suspects.is_empty() || r.settings.dry_run => went,
        went => went.worse(compare(r, source, &suspects, stats, repeat, work.touch)),
    };
    if went == Delivery::Through && comparing(r) {
        r.proof.proven(&work.trees);
    }
    went
}

/// What the run loop is to do after a batch that went as `went`.
fn outcome(r: &mut Remote, facts: &Source, went: Delivery, work: Work) -> Outcome {
    let mut outcome = Outcome::default();
    if went != Delivery::Through {
        // Not known to be on the remote side as SOURCE has it.
        for p in &work.entries {
            r.sent.remove(p);
        }
    }
    match went {
        Delivery::Through => {
            if r.sent.len() > MAX_SENT {
                r.sent.clear();
            }
            for p in work.entries.iter().filter(|_| !r.settings.dry_run) {
                if let Some(m) = facts.meta(p).filter(|m| m.kind != Kind::Dir) {
                    r.sent.insert(p.clone(), sent_key(&m));
                }
            }
            if work.root_look.is_some() {
                r.root_sent = work.root_look;
            }
            if work.root_mtime.is_some() {
                r.root_mtime = work.root_mtime;
            }
        }
        Delivery::Lost => {}
        // A dry run is not tried again: nothing it said would be different.
        Delivery::Partly { .. } if r.settings.dry_run => {}
        Delivery::Partly { raced: true } => {
            // SOURCE changed under rsync: not a failure. The entries are looked at again
            // shortly, a directory whole once it has settled.
            outcome.retry = work.entries;
            let due = Instant::now() + r.settings.timing.settle();
            for tree in work.trees {
                if !r.settling.iter().any(|(p, _)| *p == tree) {
                    r.settling.push((tree, due));
                }
            }
        }
        Delivery::Partly { raced: false } => {
            // Tried again by the run loop, with a growing wait, until they succeed.
            outcome.failed = work
                .entries
                .into_iter()
                .map(|p| (p, Look::ENTRY))
                .chain(work.trees.into_iter().map(|p| (p, Look::TREE)))
                .collect();
        }
    }
    outcome
}
