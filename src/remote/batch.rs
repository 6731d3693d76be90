//! A batch of watcher hints on a remote replica. The paths go to rsync as a `--files-from`
//! list: those to look at alone in a run without recursion, those to look at whole (new and
//! moved-in directories) in a recursive run with `--delete`; `--delete-missing-args` removes
//! what SOURCE lacks. Where that pair of options does not work, one recursive run with include
//! filters (each path, its parents, `dir/***` for a whole directory, then `- *`) does the same,
//! as lsyncd does. Renames seen in SOURCE are made on the remote side first, in the same ssh
//! session, when what REPLICA holds at the old name is what SOURCE now has at the new one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::{error, info};

use super::filters::include_rules;
use super::rsync::nul_list;
use super::script::Rename;
use super::source::{inside, lift, list_name, rename, Looks};
use super::{Remote, BATCH_TRIES};
use crate::dir::Kind;
use crate::replica::{Batch, Outcome};
use crate::root::Root;
use crate::stats::{Count, Stats};

/// At most this many renames ride on one batch's remote command line.
const MAX_RENAMES: usize = 256;
/// How deep inside a new directory entries are offered to what is held.
const NEWCOMER_DEPTH: usize = 2;

/// Applies a batch; with `hold`, what SOURCE lacks is held back a moment (see [`super::held`]).
pub fn apply(r: &mut Remote, source: &Root, batch: Batch, stats: &Stats, hold: bool) -> Outcome {
    let mut looks = Looks::new(source);
    let mut entries: Vec<PathBuf> = Vec::new();
    let mut trees: Vec<PathBuf> = Vec::new();
    for (rel, look) in batch.paths {
        let kind = looks.kind(&rel);
        let rel = if kind.is_none() {
            lift(&mut looks, rel)
        } else {
            rel
        };
        let is_dir = kind.is_some_and(|k| k == Kind::Dir);
        if !wanted(r, &rel, is_dir) {
            continue;
        }
        if look.tree && is_dir && !rel.as_os_str().is_empty() {
            trees.push(rel);
        } else {
            entries.push(rel);
        }
    }
    // A missing path inside another missing path that is listed goes with it (rsync would
    // find its parent gone, and call that a vanished file).
    let gone: HashSet<PathBuf> = entries
        .iter()
        .filter(|p| looks.kind(p).is_none())
        .cloned()
        .collect();
    entries.retain(|p| !p.ancestors().skip(1).any(|a| gone.contains(a)));
    // rsync's -H links only the names in one run's list: another name of a changed file is
    // left as it was until a full pass.
    let other_names = r.settings.hard_links
        && entries.iter().any(|p| {
            looks
                .meta(p)
                .is_some_and(|m| m.kind == Kind::File && m.nlink > 1)
        });
    let mut renames: Vec<Rename> = if r.settings.dry_run {
        Vec::new()
    } else {
        batch
            .renames
            .iter()
            .filter_map(|(from, to)| rename(source, from, to))
            // Never to or from a name the mirror leaves out.
            .filter(|m| {
                let is_dir = m.what.starts_with('d');
                wanted(r, &m.from, is_dir) && wanted(r, &m.to, is_dir)
            })
            .take(MAX_RENAMES)
            .collect()
    };
    if hold && !r.settings.dry_run {
        // A directory made a moment ago may be about to be filled by a move (`mkdir new && mv
        // big new/`), whose events come in a later batch: sent whole now, what is moved in
        // would be copied rather than renamed. It waits to settle (once), then goes whole.
        let now = std::time::SystemTime::now();
        let settle = r.settings.settle;
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
        let renamed: HashSet<&Path> = renames.iter().map(|m| m.from.as_path()).collect();
        let (missing, kept): (Vec<PathBuf>, Vec<PathBuf>) = entries
            .into_iter()
            .partition(|p| !renamed.contains(p.as_path()) && gone.contains(p));
        entries = kept;
        for p in missing {
            r.held.hold(p);
        }
        if r.held.any() {
            let mut newcomers: Vec<PathBuf> = entries.iter().chain(&trees).cloned().collect();
            // What a new directory holds may have been moved into it (`mkdir new; mv old new/`).
            for tree in &trees {
                newcomers.extend(
                    inside(source, tree, NEWCOMER_DEPTH)
                        .into_iter()
                        .filter(|p| wanted(r, p, looks.kind(p) == Some(Kind::Dir))),
                );
            }
            renames.extend(r.held.claims(source, &newcomers));
        }
    }
    // A change directly in the root changes the root's times, which rsync sets only for a
    // directory in its list (parents deeper down are implied).
    let in_root = |p: &PathBuf| p.parent().is_some_and(|d| d.as_os_str().is_empty());
    if entries.iter().chain(&trees).any(in_root)
        && !entries.iter().any(|p| p.as_os_str().is_empty())
    {
        entries.push(PathBuf::new());
    }
    if entries.is_empty() && trees.is_empty() && renames.is_empty() {
        return Outcome::default();
    }
    stats.add_n(Count::Checked, (entries.len() + trees.len()) as u64);
    let (went, renamed) = if r.files_from {
        by_list(r, source, &entries, &trees, &renames, stats)
    } else {
        by_filters(r, source, &entries, &trees, &renames, stats)
    };
    for &i in &renamed {
        if let Some(done) = renames.get(i) {
            r.held.release(&done.from);
        }
    }
    // Files that took another's name by a rename the remote side did not make (two files
    // swapped, say) may have the size and mtime of what REPLICA holds there, which rsync's
    // quick check takes as the same file: they are compared by content.
    let moved: Vec<&Path> = renamed
        .iter()
        .filter_map(|&i| renames.get(i))
        .map(|m| m.to.as_path())
        .collect();
    let mut suspects: Vec<PathBuf> = batch
        .renames
        .iter()
        .flat_map(|(from, to)| [from, to])
        .filter(|p| !moved.contains(&p.as_path()))
        .filter(|p| looks.kind(p) == Some(Kind::File) && wanted(r, p, false))
        .cloned()
        .collect();
    suspects.sort();
    suspects.dedup();
    let went = match went {
        Went::Lost => Went::Lost,
        // A dry run changed nothing: comparing again would only say the same again.
        _ if suspects.is_empty() || r.settings.dry_run => went,
        Went::Through => compare(r, source, &suspects, stats),
        Went::Partly { .. } => went.worse(compare(r, source, &suspects, stats)),
    };
    let all = entries.into_iter().chain(trees);
    let mut outcome = Outcome {
        pass: other_names,
        ..Outcome::default()
    };
    match went {
        Went::Through => {
            for rel in all {
                r.tries.remove(&rel);
            }
        }
        Went::Lost => {}
        // A dry run is not retried: nothing it said would be different.
        Went::Partly { .. } if r.settings.dry_run => {}
        Went::Partly { raced } => {
            // Tried again a little later, then left to the next full pass, which covers them.
            for rel in all {
                let tries = r.tries.entry(rel.clone()).or_insert(0);
                *tries += 1;
                if *tries <= BATCH_TRIES {
                    let wait = Duration::from_secs(1 << *tries);
                    outcome.later.push((rel, Instant::now() + wait));
                } else {
                    r.tries.remove(&rel);
                    let rel = crate::escape::rel(&rel);
                    if raced {
                        info!("{rel} changes too fast to mirror now: left to the next full pass");
                    } else {
                        error!(
                            "{rel} could not be mirrored after {BATCH_TRIES} tries: left to the \
                             next full pass"
                        );
                    }
                }
            }
        }
    }
    outcome
}

/// Whether a batch's path is mirrored at all: not one of foldersync's own, not excluded.
fn wanted(r: &Remote, rel: &Path, is_dir: bool) -> bool {
    let own = &r.settings.own;
    !own.in_source(rel)
        && !own.in_replica(rel)
        && !r.backup_in.as_ref().is_some_and(|b| rel.starts_with(b))
        && !r.settings.filter.excludes_path(rel, is_dir)
}

/// Files compared by content (`--checksum`) rather than by size and mtime.
fn compare(r: &mut Remote, source: &Root, files: &[PathBuf], stats: &Stats) -> Went {
    let list = nul_list(
        files
            .iter()
            .map(|p| list_name(p))
            .collect::<Vec<_>>()
            .iter(),
    );
    let extra = [
        "-d",
        "--checksum",
        "--files-from=-",
        "--from0",
        "--ignore-missing-args",
    ];
    let report = r.run(source, &extra, Some(list), &[], stats);
    went(r, &report, stats)
}

impl Went {
    /// The worse of two: lost, then failed, then failed only because SOURCE changed.
    fn worse(self, other: Went) -> Went {
        match (self, other) {
            (Went::Lost, _) | (_, Went::Lost) => Went::Lost,
            (Went::Partly { raced: a }, Went::Partly { raced: b }) => {
                Went::Partly { raced: a && b }
            }
            (Went::Partly { raced }, Went::Through) | (Went::Through, Went::Partly { raced }) => {
                Went::Partly { raced }
            }
            (Went::Through, Went::Through) => Went::Through,
        }
    }
}

/// How one rsync run went.
fn went(r: &mut Remote, report: &super::rsync::Report, stats: &Stats) -> Went {
    if r.ended(report, stats) {
        Went::Through
    } else if r.problem.is_some() {
        Went::Lost
    } else {
        Went::Partly {
            raced: super::run::raced(report),
        }
    }
}

/// How a batch went.
#[derive(Clone, Copy)]
enum Went {
    Through,
    /// In part (some paths failed): they are tried again. `raced`: only because SOURCE
    /// changed under rsync.
    Partly {
        raced: bool,
    },
    /// Not at all: the replica is unusable until it is found back (then a full pass runs).
    Lost,
}

fn by_list(
    r: &mut Remote,
    source: &Root,
    entries: &[PathBuf],
    trees: &[PathBuf],
    renames: &[Rename],
    stats: &Stats,
) -> (Went, Vec<usize>) {
    let mut renames = renames;
    let mut went = Went::Through;
    let mut renamed = Vec::new();
    let runs: [(&[PathBuf], &[&str]); 2] = [(entries, &["-d"]), (trees, &["-r", "--delete"])];
    for (paths, how) in runs {
        if paths.is_empty() && (renames.is_empty() || !trees.is_empty() && how[0] == "-d") {
            continue;
        }
        let list = nul_list(
            paths
                .iter()
                .map(|p| list_name(p))
                .collect::<Vec<_>>()
                .iter(),
        );
        let mut extra: Vec<&str> = how.to_vec();
        extra.extend(["--force", "--files-from=-", "--from0"]);
        let mut removing = extra.clone();
        removing.push("--delete-missing-args");
        let moved: Vec<&Path> = renames.iter().map(|m| m.from.as_path()).collect();
        if r.removals_allowed(&removing, Some(list.clone()), &moved, stats) {
            extra = removing;
        } else {
            extra.retain(|a| *a != "--delete");
            extra.push("--ignore-missing-args");
        }
        let report = r.run(source, &extra, Some(list), renames, stats);
        renamed.extend(report.renamed.iter().copied());
        renames = &[];
        went = went.worse(self::went(r, &report, stats));
        if let Went::Lost = went {
            return (went, renamed);
        }
    }
    (went, renamed)
}

fn by_filters(
    r: &mut Remote,
    source: &Root,
    entries: &[PathBuf],
    trees: &[PathBuf],
    renames: &[Rename],
    stats: &Stats,
) -> (Went, Vec<usize>) {
    let rules = include_rules(entries, trees);
    let mut extra = vec!["-r", "--force", "--from0", "--include-from=-"];
    let moved: Vec<&Path> = renames.iter().map(|m| m.from.as_path()).collect();
    if r.removals_allowed(
        &[extra.as_slice(), &["--delete"]].concat(),
        Some(rules.clone()),
        &moved,
        stats,
    ) {
        extra.push("--delete");
    }
    let report = r.run(source, &extra, Some(rules), renames, stats);
    let went = went(r, &report, stats);
    (went, report.renamed)
}
