//! The driver of one pass or batch: it walks the paths, then takes the run through its later
//! steps in order, each of which returns the paths it needs looked at rather than walking them
//! itself: a pass's arrivals (renames found by looking), names of hard-linked inodes placed
//! after a search, the follow-ups of removals held back under `--max-delete`, and last the
//! directories' attributes.

use std::path::PathBuf;

use super::round::Round;
use super::walk;
use crate::replica::{Look, Outcome};

/// Makes each of `paths` in REPLICA match SOURCE, and returns what is left for later.
pub fn drive(run: Round, paths: &[(PathBuf, Look)]) -> Outcome {
    walk::sync_paths(&run, paths);
    // A pass's end: the arrivals it kept back take their earlier selves, or are made.
    let arrivals = run.reconcile();
    if !arrivals.is_empty() {
        walk::sync_paths(&run, &arrivals);
    }
    run.reconciled();
    run.remove_left();
    if run.m.opts.hard_links {
        let unplaced = run.unplaced();
        if !unplaced.is_empty() {
            let mut placing = Round::new(run.m, run.source, run.stats, false);
            placing.links_searched = true;
            run.absorb(drive(placing, &unplaced));
        }
        run.finish_links();
    }
    let again = run.removals_held_back();
    if !again.is_empty() && !run.m.stop.is_set() {
        run.absorb(drive(
            Round::new(run.m, run.source, run.stats, false),
            &again,
        ));
    }
    run.settle_dirs();
    run.outcome()
}
