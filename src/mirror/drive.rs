//! The driver of one pass or batch: it walks the paths, then takes the run through its later
//! steps in order, each of which returns the paths it needs looked at rather than walking them
//! itself: a pass's arrivals (renames found by looking), names of hard-linked inodes placed
//! after a search, the follow-ups of removals held back under `--max-delete`, and last the
//! directories' attributes.

use super::round::Round;
use std::path::PathBuf;
use std::thread;

use super::hinted;
use super::stack::Stack;
use super::walk::{CopyJob, Walk};
use crate::replica::{Look, Outcome};

/// Makes each of `paths` in REPLICA match SOURCE, and returns what is left for later.
pub fn drive(run: Round, paths: &[(PathBuf, Look)]) -> Outcome {
    sync_paths(&run, paths);
    // A pass's end: the arrivals it kept back take their earlier selves, or are made.
    let arrivals = run.reconcile();
    if !arrivals.is_empty() {
        sync_paths(&run, &arrivals);
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

/// How many copies may wait for a worker; bounds memory while the walkers run ahead.
const QUEUE: usize = 256;
/// Batches of at most this many paths, none to be looked at as a tree, run on the calling
/// thread alone.
const ALONE: usize = 4;

/// Makes each REPLICA path (relative to the roots) match SOURCE: the same primitive serves the
/// full pass (the root, [`Look::TREE`]) and the watcher (single paths).
pub fn sync_paths<'r>(run: &'r Round<'r>, paths: &[(PathBuf, Look)]) {
    if paths.is_empty() {
        return;
    }
    let work = Stack::default();
    // A few single paths (the watcher's usual batch) cost less than threads to start.
    if paths.len() <= ALONE && paths.iter().all(|(_, look)| !look.tree) {
        let walk = Walk::new(run, &work, None);
        hinted::start(&walk, paths);
        walk.run_stack();
        run.order.flush();
        return;
    }
    let workers = run.m.workers;
    thread::scope(|scope| {
        let (tx, rx) = crossbeam_channel::bounded::<CopyJob<'r>>(QUEUE);
        for _ in 0..workers {
            let rx = rx.clone();
            scope.spawn(crate::label::carry(move || {
                for job in rx {
                    job.run_queued(run);
                }
            }));
        }
        let walk = Walk::new(run, &work, Some(tx));
        for _ in 1..workers {
            let walker = walk.clone();
            scope.spawn(crate::label::carry(move || walker.help()));
        }
        // Nothing is said before every path is started: their lines come in path order.
        let gate = PathBuf::new();
        run.order.open(&gate);
        hinted::start(&walk, paths);
        run.order.close(&gate);
        walk.run_stack();
    });
    run.order.flush();
}
