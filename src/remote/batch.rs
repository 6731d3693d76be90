//! A batch of watcher hints on a remote replica. The paths go to rsync as a `--files-from`
//! list: those to look at alone in a run without recursion, those to look at whole (new and
//! moved-in directories) in a recursive run with `--delete`; `--delete-missing-args` removes
//! what SOURCE lacks. Where that pair of options does not work, one recursive run with include
//! filters (each path, its parents, `dir/***` for a whole directory, then `- *`) does the same,
//! as lsyncd does. Renames seen in SOURCE are made on the remote side first, in the same ssh
//! session, when what REPLICA holds at the old name is what SOURCE now has at the new one.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::error;

use super::rsync::nul_list;
use super::script::Rename;
use super::{filters, Remote, BATCH_TRIES};
use crate::dir::Kind;
use crate::replica::{Batch, Outcome};
use crate::root::Root;
use crate::stats::{Count, Stats};

/// At most this many renames ride on one batch's remote command line.
const MAX_RENAMES: usize = 256;
/// How deep inside a new directory entries are offered to what is held.
const NEWCOMER_DEPTH: usize = 2;
/// How many entries inside new directories are offered at most.
const MAX_INSIDE: usize = 64;

/// Applies a batch; with `hold`, what SOURCE lacks is held back a moment (see [`super::held`]).
pub fn apply(r: &mut Remote, source: &Root, batch: Batch, stats: &Stats, hold: bool) -> Outcome {
    let mut entries: Vec<PathBuf> = Vec::new();
    let mut trees: Vec<PathBuf> = Vec::new();
    for (rel, look) in batch.paths {
        let kind = kind_in(source, &rel);
        let rel = if kind.is_none() {
            lift(source, rel)
        } else {
            rel
        };
        let is_dir = kind.is_some_and(|k| k == Kind::Dir);
        if !wanted(r, &rel, is_dir) {
            continue;
        }
        if look.tree && is_dir {
            trees.push(rel);
        } else {
            entries.push(rel);
        }
    }
    let mut renames: Vec<Rename> = if r.settings.dry_run {
        Vec::new()
    } else {
        batch
            .renames
            .iter()
            .filter_map(|(from, to)| rename(source, from, to))
            .take(MAX_RENAMES)
            .collect()
    };
    if hold && !r.settings.dry_run {
        let renamed = |p: &PathBuf| renames.iter().any(|r| r.from == *p);
        let (gone, kept): (Vec<PathBuf>, Vec<PathBuf>) = entries.into_iter().partition(|p| {
            !renamed(p) && kind_in(source, p).is_none() && !p.as_os_str().is_empty()
        });
        entries = kept;
        for p in gone {
            r.held.hold(p);
        }
        if r.held.any() {
            let mut newcomers: Vec<PathBuf> = entries.iter().chain(&trees).cloned().collect();
            // What a new directory holds may have been moved into it (`mkdir new; mv old new/`).
            for tree in &trees {
                newcomers.extend(inside(source, tree, NEWCOMER_DEPTH));
            }
            renames.extend(r.held.claims(source, &newcomers));
        }
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
        .filter(|p| kind_in(source, p) == Some(Kind::File) && wanted(r, p, false))
        .cloned()
        .collect();
    suspects.sort();
    suspects.dedup();
    let went = match went {
        Went::Lost => Went::Lost,
        _ if suspects.is_empty() => went,
        Went::Through => compare(r, source, &suspects, stats),
        Went::Partly => {
            compare(r, source, &suspects, stats);
            Went::Partly
        }
    };
    let all = entries.into_iter().chain(trees);
    let mut outcome = Outcome::default();
    match went {
        Went::Through => {
            for rel in all {
                r.tries.remove(&rel);
            }
        }
        Went::Lost => {}
        Went::Partly => {
            // Tried again a little later, then left to the next full pass, which covers them.
            for rel in all {
                let tries = r.tries.entry(rel.clone()).or_insert(0);
                *tries += 1;
                if *tries <= BATCH_TRIES {
                    let wait = Duration::from_secs(1 << *tries);
                    outcome.later.push((rel, Instant::now() + wait));
                } else {
                    r.tries.remove(&rel);
                    error!(
                        "{} could not be mirrored after {BATCH_TRIES} tries: left to the next full pass",
                        crate::escape::rel(&rel)
                    );
                }
            }
        }
    }
    outcome
}

/// Whether a batch's path is mirrored at all: not one of foldersync's own, not excluded.
fn wanted(r: &Remote, rel: &Path, is_dir: bool) -> bool {
    let own = &r.settings.own;
    !own.in_source(rel) && !own.in_replica(rel) && !r.settings.filter.excludes_path(rel, is_dir)
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
    if r.ended(&report, stats) {
        Went::Through
    } else if r.problem.is_some() {
        Went::Lost
    } else {
        Went::Partly
    }
}

/// How a batch went.
enum Went {
    Through,
    /// In part (some paths failed): they are tried again.
    Partly,
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
        if r.removals_allowed(&removing, Some(list.clone()), stats) {
            extra = removing;
        } else {
            extra.retain(|a| *a != "--delete");
            extra.push("--ignore-missing-args");
        }
        let report = r.run(source, &extra, Some(list), renames, stats);
        renamed.extend(report.renamed.iter().copied());
        renames = &[];
        if !r.ended(&report, stats) {
            if r.problem.is_some() {
                return (Went::Lost, renamed);
            }
            went = Went::Partly;
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
    if r.removals_allowed(
        &[extra.as_slice(), &["--delete"]].concat(),
        Some(rules.clone()),
        stats,
    ) {
        extra.push("--delete");
    }
    let report = r.run(source, &extra, Some(rules), renames, stats);
    let went = if r.ended(&report, stats) {
        Went::Through
    } else if r.problem.is_some() {
        Went::Lost
    } else {
        Went::Partly
    };
    (went, report.renamed)
}

/// The include rules for a batch: each path and its parents, a whole directory with `***`,
/// everything else left out. NUL-terminated, for `--from0`.
fn include_rules(entries: &[PathBuf], trees: &[PathBuf]) -> Vec<u8> {
    let mut parents: BTreeSet<PathBuf> = BTreeSet::new();
    for p in entries.iter().chain(trees) {
        let mut a = p.parent();
        while let Some(dir) = a.filter(|d| !d.as_os_str().is_empty()) {
            parents.insert(dir.to_path_buf());
            a = dir.parent();
        }
    }
    let mut out = Vec::new();
    let mut push = |prefix: &str, rel: &Path, suffix: &str| {
        out.extend_from_slice(prefix.as_bytes());
        out.extend(filters::literal(rel));
        out.extend_from_slice(suffix.as_bytes());
        out.push(0);
    };
    for dir in &parents {
        push("+ /", dir, "/");
    }
    for p in entries.iter().chain(trees) {
        if !p.as_os_str().is_empty() {
            push("+ /", p, "");
        }
    }
    for p in trees {
        if p.as_os_str().is_empty() {
            push("+ /", p, "***");
        } else {
            push("+ /", p, "/***");
        }
    }
    push("- ", Path::new(""), "*");
    out
}

/// Entries inside SOURCE's directory `rel`, breadth first, at most `depth` levels down and
/// [`MAX_INSIDE`] in all.
fn inside(source: &Root, rel: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut level = vec![rel.to_path_buf()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(d) = source.dir.open_beneath(dir) else {
                continue;
            };
            for (name, kind) in d.list().unwrap_or_default() {
                if out.len() >= MAX_INSIDE {
                    return out;
                }
                let path = dir.join(&name);
                if kind == Kind::Dir {
                    next.push(path.clone());
                }
                out.push(path);
            }
        }
        level = next;
    }
    out
}

/// A path SOURCE lacks because one of its parents is no longer a directory stands for that
/// parent (rsync would fail to look at it, rather than take it as missing).
fn lift(source: &Root, rel: PathBuf) -> PathBuf {
    let mut lifted = None;
    for up in rel.ancestors().skip(1) {
        match kind_in(source, up) {
            _ if up.as_os_str().is_empty() => break,
            Some(Kind::Dir) => break,
            Some(_) => lifted = Some(up.to_path_buf()),
            None => {}
        }
    }
    lifted.unwrap_or(rel)
}

/// A path as `--files-from` takes it: the root is `.`.
fn list_name(rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel.to_path_buf()
    }
}

/// What SOURCE has at `rel` now (its kind), through the directories held open.
fn kind_in(source: &Root, rel: &Path) -> Option<Kind> {
    meta_in(source, rel).map(|m| m.kind)
}

fn meta_in(source: &Root, rel: &Path) -> Option<crate::dir::Meta> {
    let (parent, name) = (rel.parent()?, rel.file_name()?);
    source.dir.open_beneath(parent).ok()?.stat_at(name).ok()?
}

/// A rename to make on the remote side: SOURCE no longer has `from` and now has `to`, a file
/// (matched there by size and mtime) or a directory.
fn rename(source: &Root, from: &Path, to: &Path) -> Option<Rename> {
    if meta_in(source, from).is_some() || from.as_os_str().as_bytes().is_empty() {
        return None;
    }
    let meta = meta_in(source, to)?;
    let what = match meta.kind {
        Kind::File => format!("{}:{}", meta.size, meta.mtime.sec),
        Kind::Dir => "d".to_string(),
        _ => return None,
    };
    Some(Rename {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_rules_name_parents_and_whole_directories() {
        let rules = include_rules(&[PathBuf::from("a/b/c")], &[PathBuf::from("x/new[1]")]);
        let rules: Vec<String> = rules
            .split(|b| *b == 0)
            .filter(|r| !r.is_empty())
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect();
        assert_eq!(
            rules,
            [
                "+ /a/",
                "+ /a/b/",
                "+ /x/",
                "+ /a/b/c",
                "+ /x/new\\[1]",
                "+ /x/new\\[1]/***",
                "- *"
            ]
        );
    }
}
