//! Before a first pass into a remote directory foldersync has not mirrored into before: how
//! much of it the pass would remove, asked of rsync itself. One dry run of the full pass's
//! `rsync -r --delete`, with every entry itemized (`-ii`, unchanged ones too), so the same
//! filter rules decide what counts as they would decide what goes: excluded entries and
//! foldersync's own files (a backup directory inside REPLICA) are left alone, and do not count.
//! Nothing is written on the remote side, not even the root's times: the run is refused
//! (see [`crate::mirror::survey::refusal`]) before any other starts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::itemize::Seen;
use super::replaced::SAY_DELETIONS;
use super::rsync::{Ended, Event};
use super::run::raced;
use super::Remote;
use crate::mirror::survey::Survey;

/// How many of the paths that would go are named.
const SAMPLE: usize = 8;

/// How many of the paths that would go are kept to choose those from (the rest are counted).
const KEEP: usize = 50_000;

impl Remote {
    /// Counts REPLICA's entries and those a full pass would remove.
    pub(super) fn survey_run(&self) -> Result<Survey, String> {
        let extra = ["-r", "--delete", "--force", "--dry-run", "-ii"];
        let mut args = self.run_args(&extra, &[]);
        // Entries replaced by one of another kind count as removed (see [`super::bound`]).
        if self.says_deletions {
            args.push(SAY_DELETIONS.into());
        }
        // Whether an entry stays is all that counts, not its bytes.
        args.retain(|a| a != "--checksum");
        let split = |_: &Path, _: &Path, _: bool| false;
        let mut removed: BTreeSet<PathBuf> = BTreeSet::new();
        let (mut kept, mut more) = (0u64, 0u64);
        let mut run = self.invocation(args, None, &[], None, &split);
        run.survey = true;
        let report = run.go(&self.stop, |event| match event {
            // rsync names each entry once.
            Event::Listed(rel, Seen::Removed) if removed.len() < KEEP => {
                removed.insert(rel);
            }
            Event::Listed(_, Seen::Removed) => more += 1,
            Event::MadeRoom(rel) if removed.len() < KEEP => {
                removed.insert(rel);
            }
            Event::MadeRoom(_) => more += 1,
            Event::Listed(_, Seen::Kept) => kept += 1,
            _ => {}
        });
        let fine = report.ended == Ended::Ok || (report.ended == Ended::Partial && raced(&report));
        if !fine {
            return Err(format!(
                "cannot tell what a first pass would remove from REPLICA {} (a dry run of it \
                 failed: {}); if REPLICA is to become a copy of SOURCE, start again with \
                 --adopt-replica",
                self.spec,
                crate::escape::text(&report.errors.join("; "))
            ));
        }
        Ok(count(kept, &removed, more))
    }
}

/// The survey of `kept` entries and the `removed` ones (and `more` not kept), named by the
/// outermost of those (a removed directory stands for what it holds).
fn count(kept: u64, removed: &BTreeSet<PathBuf>, more: u64) -> Survey {
    let outermost = removed
        .iter()
        .filter(|p| !p.ancestors().skip(1).any(|a| removed.contains(a)))
        .take(SAMPLE)
        .cloned()
        .collect();
    let n = removed.len() as u64 + more;
    Survey {
        total: kept + n,
        removed: n,
        sample: outermost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_directory_stands_for_what_it_holds() {
        let removed: BTreeSet<PathBuf> = ["d", "d/a", "d/b/c", "d/b", "e", "f/g"]
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let survey = count(4, &removed, 0);
        assert_eq!((survey.total, survey.removed), (10, 6));
        assert_eq!(
            survey.sample,
            [PathBuf::from("d"), "e".into(), "f/g".into()]
        );
    }
}
