//! A full pass that must not remove what it would (`--max-delete` refuses the count). rsync
//! replaces an entry whose kind changed in SOURCE (a file where SOURCE now has a directory, a
//! directory where it has a file) with or without `--delete`, and its dry run itemizes that as
//! a new entry, never as a removal. So the dry runs that count removals ask rsync to say what it
//! makes room for as well (`--debug=del2` given to the remote rsync, the receiver: it says
//! `delete_item(NAME) mode=MODE flags=FLAGS`, whose flags say why, and the name comes escaped
//! as itemized ones are), and a pass whose
//! removals are refused leaves those entries out by filter rules, without `--delete`,
//! `--delete-excluded` or `--force`. It also leaves REPLICA's root as it is: it names SOURCE's
//! top-level entries in a `--files-from` list instead of sending the root itself, so a
//! directory foldersync has not mirrored into is not opened to SOURCE's root's mode by a pass
//! that did not go through.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use log::{error, warn};

use super::filters::literal;
use super::itemize;
use super::replaced::SAY_DELETIONS;
use super::rsync::{nul_list, Event, Report};
use super::Remote;
use crate::root::Root;
use crate::stats::{Count, Stats};

/// What a run would remove: how many entries, and which ones it would replace by an entry of
/// another kind.
#[derive(Debug, Default)]
pub struct Removals {
    pub count: u64,
    pub replaced: BTreeSet<PathBuf>,
}

impl Remote {
    /// What a run would remove (a dry run of it): entries it removes, and entries it replaces
    /// by one of another kind.
    pub(super) fn removals(
        &self,
        extra: &[&str],
        rules: &[OsString],
        stdin: Option<Vec<u8>>,
        renamed: &[&Path],
    ) -> Removals {
        let mut args = self.run_args(extra, rules);
        args.push(OsString::from("--dry-run"));
        if self.says_deletions {
            args.push(OsString::from(SAY_DELETIONS));
        }
        // Each path once (a missing directory is listed, and so is each entry inside it), and
        // not what the batch's renames move away first.
        let mut seen = std::collections::HashSet::new();
        let mut replaced = std::collections::BTreeSet::new();
        let split = |_: &Path, _: &Path, _: bool| false;
        let moved = |rel: &Path| renamed.iter().any(|from| rel.starts_with(from));
        self.invocation(args, stdin, &[], None, &split)
            .go(&self.stop, |event| match event {
                Event::Change(itemize::Change::Removed { rel, .. }) if !moved(&rel) => {
                    seen.insert(rel);
                }
                Event::MadeRoom(rel) if !moved(&rel) => {
                    seen.insert(rel.clone());
                    replaced.insert(rel);
                }
                _ => {}
            });
        Removals {
            count: seen.len() as u64,
            replaced,
        }
    }

    /// Whether `--max-delete` lets a run with `extra` remove what it would; says so if not.
    pub(super) fn removals_allowed(
        &self,
        extra: &[&str],
        rules: &[OsString],
        stdin: Option<Vec<u8>>,
        renamed: &[&Path],
        stats: &Stats,
    ) -> bool {
        if self.settings.max_delete.is_none() {
            return true;
        }
        let n = self.removals(extra, rules, stdin, renamed).count;
        self.removals_fit(n, stats)
    }

    /// Whether `--max-delete` lets a run remove `n` entries; says so if not.
    pub(super) fn removals_fit(&self, n: u64, stats: &Stats) -> bool {
        let Some(max) = self.settings.max_delete else {
            return true;
        };
        if n > max {
            error!(
                "refusing to remove {n} entries from REPLICA, more than --max-delete {max}: \
                 nothing was removed"
            );
            stats.add(Count::Error);
            return false;
        }
        true
    }

    /// A full pass: `rsync -r --delete`, unless `--max-delete` refuses what it would remove;
    /// then one that removes and replaces nothing and leaves the root alone (see above).
    /// Returns the run's report, and whether its removals were refused.
    pub(super) fn whole_run(&self, source: &Root, stats: &Stats) -> (Report, bool) {
        let mut extra = vec!["-r", "--force", "--stats", "--delete"];
        let Some(found) = self
            .settings
            .max_delete
            .map(|_| self.removals(&["-r", "--delete"], &[], None, &[]))
        else {
            return (self.run(source, &extra, &[], None, &[], stats), false);
        };
        if self.removals_fit(found.count, stats) {
            return (self.run(source, &extra, &[], None, &[], stats), false);
        }
        extra = vec!["-r", "--stats", "--files-from=-", "--from0"];
        let rules = leave_out(&found.replaced);
        if !rules.is_empty() {
            let some: Vec<String> = found
                .replaced
                .iter()
                .take(8)
                .map(|p| crate::escape::rel(p).to_string())
                .collect();
            warn!(
                "{} entries of REPLICA that SOURCE has as another kind ({}{}) are left as they \
                 are, and SOURCE's are not sent, until the removals are allowed",
                found.replaced.len(),
                some.join(", "),
                if found.replaced.len() > some.len() {
                    ", ..."
                } else {
                    ""
                }
            );
        }
        let mut args = self.run_args(&extra, &rules);
        args.retain(|a| a != "--delete-excluded");
        let names: Vec<PathBuf> = match source.dir.list() {
            // A name the list gives passes the filter rules by: kept mount points stay out.
            Ok(names) => names
                .into_iter()
                .map(|(n, _)| PathBuf::from(n))
                .filter(|n| !self.mounts.keeps(n))
                .collect(),
            Err(e) => {
                error!("cannot list SOURCE {}: {e}", source);
                stats.add(Count::Error);
                Vec::new()
            }
        };
        let report = self.run_with(source, args, Some(nul_list(&names)), &[], stats);
        (report, true)
    }
}

/// Filter rules that leave out each of `paths` (the outermost: what is below one goes with it).
fn leave_out(paths: &BTreeSet<PathBuf>) -> Vec<OsString> {
    paths
        .iter()
        .filter(|p| !p.ancestors().skip(1).any(|a| paths.contains(a)))
        .map(|p| {
            let mut rule = OsString::from("--filter=- /");
            rule.push(OsStr::from_bytes(&literal(Path::new(p))));
            rule
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_replaced_is_left_out() {
        let paths: BTreeSet<PathBuf> = ["a", "a/b", "c*"].into_iter().map(PathBuf::from).collect();
        let rules: Vec<String> = leave_out(&paths)
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect();
        assert_eq!(rules, ["--filter=- /a", "--filter=- /c\\*"]);
    }
}
