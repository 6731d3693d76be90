//! The rsync runs of one batch: a `--files-from` list run without recursion for the entries
//! and a recursive one with `--delete` for the trees; or, where `--delete-missing-args` does
//! not work, one recursive run with include filters (each path, its parents, `dir/***` for a
//! whole directory, then `- *`), as lsyncd does. A batch sends only what it names: a change in
//! the root changes the root's times, which rsync sets only for a directory in its list, but
//! rsync's `-d` sends every entry of a root it lists (reading them all: 20,000 root files made
//! each batch 3 to 4 times slower). So the root is not listed while its other attributes are
//! what was sent before: the guard sets its mtime once rsync is done (decided with the batch's
//! plan, see [`super::plan`]). Where it is listed, filter
//! rules let through only the root's entries the list names.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::filters::{include_rules, literal};
use super::rsync::{nul_list, Report};
use super::script::Rename;
use super::work::Work;
use super::Remote;
use crate::root::Root;
use crate::stats::Stats;

/// Past this many root entries in one list, the root's entries are not named one by one: the
/// run sends them all (as many changed, that costs little more).
const MAX_ROOT_RULES: usize = 1000;

/// How a batch went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Through,
    /// In part (some paths failed): they are tried again. `raced`: only because SOURCE
    /// changed under rsync.
    Partly {
        raced: bool,
    },
    /// Not at all: the replica is unusable until it is found back (then a full pass runs).
    Lost,
}

impl Delivery {
    /// The worse of two: lost, then failed, then failed only because SOURCE changed.
    pub fn worse(self, other: Delivery) -> Delivery {
        match (self, other) {
            (Delivery::Lost, _) | (_, Delivery::Lost) => Delivery::Lost,
            (Delivery::Partly { raced: a }, Delivery::Partly { raced: b }) => {
                Delivery::Partly { raced: a && b }
            }
            (Delivery::Partly { raced }, Delivery::Through)
            | (Delivery::Through, Delivery::Partly { raced }) => Delivery::Partly { raced },
            (Delivery::Through, Delivery::Through) => Delivery::Through,
        }
    }
}

/// How one rsync run went; `repeat`: its failures were said before.
fn went(r: &mut Remote, report: &Report, stats: &Stats, repeat: bool) -> Delivery {
    if r.ended(report, stats, repeat) {
        Delivery::Through
    } else if r.problem.is_some() {
        Delivery::Lost
    } else {
        Delivery::Partly {
            raced: super::run::raced(report),
        }
    }
}

/// What the runs of a batch did.
#[derive(Debug)]
pub struct Done {
    pub went: Delivery,
    /// The renames the remote side made (their numbers).
    pub renamed: Vec<usize>,
    /// The files whose data rsync sent.
    pub copied: HashSet<PathBuf>,
}

/// Sends a batch's work, with its renames made first.
pub fn send(
    r: &mut Remote,
    source: &Root,
    work: &Work,
    renames: &[Rename],
    stats: &Stats,
    repeat: bool,
) -> Done {
    if r.files_from {
        by_list(r, source, work, renames, stats, repeat)
    } else {
        by_filters(r, source, work, renames, stats, repeat)
    }
}

/// Files compared by content (`--checksum`) rather than by size and mtime. What this run
/// writes in the root changes the root's times: `touch` (the batch's) sets them again, or the
/// remote `touch` does with SOURCE's, or else the root is listed.
pub fn compare(
    r: &mut Remote,
    source: &Root,
    files: &[PathBuf],
    stats: &Stats,
    repeat: bool,
    touch: Option<crate::dir::Stamp>,
) -> Delivery {
    let in_root = files
        .iter()
        .any(|p| p.parent().is_some_and(|d| d.as_os_str().is_empty()));
    let touch = match touch {
        None if in_root && r.touch && !r.settings.dry_run => {
            source.dir.stat().ok().map(|m| m.mtime)
        }
        touch => touch,
    };
    let mut files = files.to_vec();
    if in_root && touch.is_none() && !files.iter().any(|p| p.as_os_str().is_empty()) {
        files.push(PathBuf::new());
    }
    let list = files_from(&files);
    let extra = [
        "-d",
        "--checksum",
        "--files-from=-",
        "--from0",
        "--ignore-missing-args",
    ];
    let rules = root_rules(&files);
    r.touch_after.set(touch);
    let report = r.run(source, &extra, &rules, Some(list), &[], stats);
    went(r, &report, stats, repeat)
}

/// `paths` as a `--files-from` list (NUL-separated, the root as `.`).
fn files_from(paths: &[PathBuf]) -> Vec<u8> {
    let names: Vec<PathBuf> = paths.iter().map(|p| list_name(p)).collect();
    nul_list(&names)
}

/// A path as `--files-from` takes it: the root is `.`.
fn list_name(rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel.to_path_buf()
    }
}

/// With the root in `paths` (named for its own times): rules that let through only the root's
/// entries that `paths` name or lie in, so that `-d` does not send all the others. Empty
/// without the root, or with too many root entries named.
pub fn root_rules(paths: &[PathBuf]) -> Vec<OsString> {
    if !paths.iter().any(|p| p.as_os_str().is_empty()) {
        return Vec::new();
    }
    let mut firsts: Vec<&OsStr> = paths
        .iter()
        .filter_map(|p| p.components().next())
        .map(|c| c.as_os_str())
        .collect();
    firsts.sort();
    firsts.dedup();
    if firsts.len() > MAX_ROOT_RULES {
        return Vec::new();
    }
    let mut rules: Vec<OsString> = firsts
        .into_iter()
        .map(|name| {
            let mut rule = OsString::from("--filter=+ /");
            rule.push(OsStr::from_bytes(&literal(Path::new(name))));
            rule
        })
        .collect();
    rules.push(OsString::from("--filter=- /*"));
    rules
}

fn by_list(
    r: &mut Remote,
    source: &Root,
    work: &Work,
    renames: &[Rename],
    stats: &Stats,
    repeat: bool,
) -> Done {
    let mut renames = renames;
    let mut done = Done {
        went: Delivery::Through,
        renamed: Vec::new(),
        copied: HashSet::new(),
    };
    // The trees first: a directory made by the run with recursion changes its parent's times,
    // which the run without recursion, listing the parent, then sets.
    let runs: [(&[PathBuf], &[&str]); 2] =
        [(&work.trees, &["-r", "--delete"]), (&work.entries, &["-d"])];
    for (paths, how) in runs {
        let last = how[0] == "-d";
        // An empty list runs only to carry the renames (made before the first run), or to set
        // the root's times (after the last).
        if paths.is_empty() && (!last || renames.is_empty() && work.touch.is_none()) {
            continue;
        }
        if last {
            r.touch_after.set(work.touch);
        }
        let list = files_from(paths);
        let rules = root_rules(paths);
        let mut extra: Vec<&str> = how.to_vec();
        extra.extend(["--force", "--files-from=-", "--from0"]);
        let mut removing = extra.clone();
        removing.push("--delete-missing-args");
        let moved: Vec<&Path> = renames.iter().map(|m| m.from.as_path()).collect();
        if r.removals_allowed(&removing, &rules, Some(list.clone()), &moved, stats) {
            extra = removing;
        } else {
            extra.retain(|a| *a != "--delete");
            extra.push("--ignore-missing-args");
        }
        let mut report = r.run(source, &extra, &rules, Some(list), renames, stats);
        done.renamed.extend(report.renamed.iter().copied());
        done.copied.extend(std::mem::take(&mut report.copied));
        renames = &[];
        done.went = done.went.worse(went(r, &report, stats, repeat));
        if let Delivery::Lost = done.went {
            return done;
        }
    }
    done
}

fn by_filters(
    r: &mut Remote,
    source: &Root,
    work: &Work,
    renames: &[Rename],
    stats: &Stats,
    repeat: bool,
) -> Done {
    let rules = include_rules(&work.entries, &work.trees);
    let mut extra = vec!["-r", "--force", "--from0", "--include-from=-"];
    let moved: Vec<&Path> = renames.iter().map(|m| m.from.as_path()).collect();
    if r.removals_allowed(
        &[extra.as_slice(), &["--delete"]].concat(),
        &[],
        Some(rules.clone()),
        &moved,
        stats,
    ) {
        extra.push("--delete");
    }
    let report = r.run(source, &extra, &[], Some(rules), renames, stats);
    Done {
        went: went(r, &report, stats, repeat),
        renamed: report.renamed,
        copied: report.copied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_lets_through_only_what_is_named() {
        assert!(root_rules(&[PathBuf::from("a")]).is_empty());
        let rules = root_rules(&[
            PathBuf::new(),
            PathBuf::from("new"),
            PathBuf::from("d/deep/f"),
            PathBuf::from("d/g"),
            PathBuf::from("st*r"),
        ]);
        let rules: Vec<String> = rules
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            rules,
            [
                "--filter=+ /d",
                "--filter=+ /new",
                "--filter=+ /st\\*r",
                "--filter=- /*"
            ]
        );
    }
}
