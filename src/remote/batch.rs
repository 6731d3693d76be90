//! A batch of watcher hints on a remote replica. The paths go to rsync as a `--files-from`
//! list: those to look at alone in a run without recursion, those to look at whole (new and
//! moved-in directories) in a recursive run with `--delete`; `--delete-missing-args` removes
//! what SOURCE lacks (see [`super::send`]). Renames seen in SOURCE are made on the remote side
//! first, in the same ssh session, where the remote side proves that the old name holds what
//! SOURCE now has at the new one ([`super::digest`]). Only an entry SOURCE moved away (a
//! rename's first half) is held back before its removal ([`super::held`]); whatever else SOURCE
//! lacks is removed at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::digest::Prover;
use super::script::Rename;
use super::send::{compare, plan_root, send, Delivery, Done};
use super::source::{inside, nearest_kept, rename, StatCache};
use super::suspects;
use super::work::{sent_key, wanted, Work, MAX_SENT};
use super::Remote;
use crate::dir::Kind;
use crate::replica::{Batch, Look, Outcome};
use crate::root::Root;
use crate::stats::{Count, Stats};

/// At most this many renames ride on one batch's remote command line.
const MAX_RENAMES: usize = 256;
/// How deep inside a new directory entries are offered to what is held.
const NEWCOMER_DEPTH: usize = 2;

/// Applies a batch; with `hold`, what SOURCE moved away is held back a moment (see
/// [`super::held`]), and new directories settle before they are sent whole.
pub fn apply(r: &mut Remote, source: &Root, batch: Batch, stats: &Stats, hold: bool) -> Outcome {
    // Every path tried again because it failed before: its failures were said already.
    let repeat =
        !batch.paths.is_empty() && batch.paths.iter().all(|(p, _)| batch.retries.contains(p));
    if batch
        .paths
        .iter()
        .any(|(p, look)| p.as_os_str().is_empty() && look.tree)
    {
        // The whole replica (a pass that failed, tried again).
        return r.whole(source, stats, repeat);
    }
    let mut looks = StatCache::new(source);
    let mut work = sort(r, &mut looks, batch.paths);
    let sent = &r.sent;
    work.entries.retain(|p| {
        !looks
            .meta(p)
            .is_some_and(|m| m.kind != Kind::Dir && sent.get(p) == Some(&sent_key(&m)))
    });
    if comparing(r) {
        // Moved in whole: what REPLICA holds there may be of the same size and mtime.
        let dirs: Vec<PathBuf> = (work.verify.iter())
            .filter(|p| looks.kind(p) == Some(Kind::Dir))
            .cloned()
            .collect();
        r.proof.doubt(&dirs);
    }
    // rsync's -H links only the names in one run's list: another name of a changed file is
    // left as it was until a full pass.
    let other_names = r.settings.hard_links
        && work.entries.iter().any(|p| {
            looks
                .meta(p)
                .is_some_and(|m| m.kind == Kind::File && m.nlink > 1)
        });
    let renames = renames(r, source, &mut looks, &mut work, &batch.renames, hold);
    let named = if comparing(r) {
        suspects::named(r, &mut looks, &work)
    } else {
        Vec::new()
    };
    // A change directly in the root changes the root's times (parents deeper down are listed,
    // or implied by the list).
    if !plan_root(r, source, &mut work, !renames.is_empty()) {
        return Outcome {
            retry: vec![PathBuf::new()],
            ..Outcome::default()
        };
    }
    if work.entries.is_empty()
        && work.trees.is_empty()
        && renames.is_empty()
        && work.touch.is_none()
    {
        return Outcome::default();
    }
    stats.add_n(
        Count::Checked,
        (work.entries.len() + work.trees.len()) as u64,
    );
    let done = send(r, source, &work, &renames, stats, repeat);
    let went = compared(
        r,
        &mut looks,
        (&batch.renames, &renames),
        &work,
        done,
        named,
        stats,
        repeat,
    );
    let mut outcome = outcome(r, &mut looks, went, work);
    outcome.pass = other_names;
    outcome
}

/// Whether runs compare what rsync's quick check may pass over by content afterwards (not
/// with `--checksum`, which compares everything anyway, nor in a dry run).
fn comparing(r: &Remote) -> bool {
    !r.settings.checksum && !r.settings.dry_run
}

/// The renames for the remote side to try before the batch's runs: those seen in SOURCE, and
/// (with `hold`) what is held taken by what is new. A directory taken for a new one by the
/// names inside is unproven (see [`super::proof`]) and goes whole.
fn renames(
    r: &mut Remote,
    source: &Root,
    looks: &mut StatCache,
    work: &mut Work,
    seen: &[(PathBuf, PathBuf)],
    hold: bool,
) -> Vec<Rename> {
    if r.settings.dry_run {
        return Vec::new();
    }
    let mut prover = Prover::new(r.stop.clone(), r.digests);
    let mut renames: Vec<Rename> = seen
        .iter()
        .filter_map(|(from, to)| rename(source, from, to, &mut prover))
        // Never to or from a name the mirror leaves out.
        .filter(|m| {
            let is_dir = m.what.starts_with('d');
            wanted(r, &m.from, is_dir) && wanted(r, &m.to, is_dir)
        })
        .take(MAX_RENAMES)
        .collect();
    if hold {
        settle(r, looks, &mut work.trees);
        hold_moved(r, work, &renames);
        if r.held.any() {
            let newcomers = newcomers(r, source, looks, work);
            renames.extend(r.held.claims(source, &newcomers, &mut prover));
        }
    }
    let claimed: Vec<PathBuf> = (renames.iter())
        .filter(|m| m.what.starts_with("d:"))
        .map(|m| m.to.clone())
        .collect();
    for to in &claimed {
        if !work.trees.iter().any(|t| to.starts_with(t)) {
            work.entries.retain(|p| p != to);
            work.trees.push(to.clone());
        }
    }
    if comparing(r) {
        r.proof.doubt(&claimed);
    }
    renames
}

/// After the batch's runs: what REPLICA holds by the renames made moves with them, and the
/// files rsync's quick check may have passed over are compared by content: files that took
/// another's name by a rename the remote side did not make, `named` entries and files in the
/// batch's trees (see [`suspects`]) that rsync did not send. Returns how the batch went.
#[allow(clippy::too_many_arguments)]
fn compared(
    r: &mut Remote,
    looks: &mut StatCache,
    (seen, renames): (&[(PathBuf, PathBuf)], &[Rename]),
    work: &Work,
    done: Done,
    named: Vec<PathBuf>,
    stats: &Stats,
    repeat: bool,
) -> Delivery {
    for &i in &done.renamed {
        if let Some(m) = renames.get(i) {
            r.held.release(&m.from);
            r.proof.renamed(&m.from, &m.to);
        }
    }
    let mut suspects = suspects::swapped(r, looks, seen, renames, &done.renamed);
    if done.went == Delivery::Through && comparing(r) {
        suspects.extend(named.into_iter().filter(|p| !done.copied.contains(p)));
        let source = looks.source();
        suspects.extend(suspects::in_trees(r, source, &work.trees, &done.copied));
        suspects.sort();
        suspects.dedup();
    }
    let went = match done.went {
        Delivery::Lost => Delivery::Lost,
        // A dry run changed nothing: comparing again would only say the same again.
        went if suspects.is_empty() || r.settings.dry_run => went,
        went => {
            let source = looks.source();
            went.worse(compare(r, source, &suspects, stats, repeat, work.touch))
        }
    };
    if went == Delivery::Through && comparing(r) {
        r.proof.proven(&work.trees);
    }
    went
}

/// The batch's paths sorted into entries and trees, without what the mirror leaves out; a path
/// whose parent is no longer a directory stands for that parent.
fn sort(r: &Remote, looks: &mut StatCache, paths: Vec<(PathBuf, Look)>) -> Work {
    let mut work = Work::default();
    for (rel, look) in paths {
        let kind = looks.kind(&rel);
        let (rel, lifted) = if kind.is_none() {
            let up = nearest_kept(looks, rel.clone());
            let lifted = up != rel;
            (up, lifted)
        } else {
            (rel, false)
        };
        let is_dir = kind.is_some_and(|k| k == Kind::Dir);
        if !wanted(r, &rel, is_dir) {
            continue;
        }
        if look.moved && !lifted {
            work.moved.insert(rel.clone());
        }
        if look.verify && !lifted {
            work.verify.insert(rel.clone());
        }
        if look.tree && is_dir && !rel.as_os_str().is_empty() {
            work.trees.push(rel);
        } else {
            work.entries.push(rel);
        }
    }
    // A missing path inside another missing path that is listed goes with it (rsync would
    // find its parent gone, and call that a vanished file).
    work.gone = work
        .entries
        .iter()
        .filter(|p| looks.kind(p).is_none())
        .cloned()
        .collect();
    let gone = &work.gone;
    work.entries
        .retain(|p| !p.ancestors().skip(1).any(|a| gone.contains(a)));
    work
}

/// A directory made a moment ago may be about to be filled by a move (`mkdir new && mv big
/// new/`), whose events come in a later batch: sent whole now, what is moved in would be
/// copied rather than renamed. It waits to settle (once), then goes whole.
fn settle(r: &mut Remote, looks: &mut StatCache, trees: &mut Vec<PathBuf>) {
    let now = std::time::SystemTime::now();
    let settle = r.settings.timing.settle();
    trees.retain(|t| {
        let fresh = looks.meta(t).is_some_and(|m| {
            let changed =
                std::time::UNIX_EPOCH + Duration::new(m.ctime.sec.max(0) as u64, m.ctime.nsec);
            now.duration_since(changed).is_ok_and(|age| age < settle)
        });
        if fresh && !r.settling.iter().any(|(p, _)| p == t) {
            r.settling.push((t.clone(), Instant::now() + settle));
        }
        !fresh
    });
}

/// What SOURCE moved away (and no rename of this batch takes) is held, in case the other half
/// of the rename comes in a later batch; a path held already stays held. Whatever else SOURCE
/// lacks stays in the list, and is removed now.
fn hold_moved(r: &mut Remote, work: &mut Work, renames: &[Rename]) {
    let renamed: HashSet<&Path> = renames.iter().map(|m| m.from.as_path()).collect();
    let (held, kept): (Vec<PathBuf>, Vec<PathBuf>) = std::mem::take(&mut work.entries)
        .into_iter()
        .partition(|p| {
            !renamed.contains(p.as_path())
                && work.gone.contains(p)
                && (work.moved.contains(p) || r.held.holds(p))
        });
    work.entries = kept;
    for p in held {
        r.held.hold(p);
    }
}

/// The paths of the batch that might be what is held, under another name: its entries, its
/// new directories and what these hold near their top (`mkdir new; mv old new/`).
fn newcomers(r: &Remote, source: &Root, looks: &mut StatCache, work: &Work) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = work.entries.iter().chain(&work.trees).cloned().collect();
    for tree in &work.trees {
        out.extend(
            inside(source, tree, NEWCOMER_DEPTH)
                .into_iter()
                .filter(|p| wanted(r, p, looks.kind(p) == Some(Kind::Dir))),
        );
    }
    out
}

/// What the run loop is to do after a batch that went as `went`.
fn outcome(r: &mut Remote, looks: &mut StatCache, went: Delivery, work: Work) -> Outcome {
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
                if let Some(m) = looks.meta(p).filter(|m| m.kind != Kind::Dir) {
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
