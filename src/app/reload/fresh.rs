//! The pairs a reload brings: opened before anything stops (one that cannot open refuses the
//! whole configuration), or, when one takes over the REPLICA of a pair that stops (its keys
//! changed, its mirror renamed, its REPLICA written another way), once that one has let go of
//! REPLICA and the pair's locks; if it then cannot start, the pair it was to replace goes on as
//! it was.

use std::collections::BTreeSet;

use log::{error, info};

use super::{Pair1, Running};
use crate::app::pairs::{open_pair, recheck};
use crate::app::{make, Made, Opened};
use crate::config::file::Pair;
use crate::stop::Stop;

/// A pair a reload brings: opened at once, or (`before`: it takes over from a pair that stops,
/// on the same REPLICA) once that one has let go of REPLICA and the pair's locks.
pub(super) struct Fresh {
    pub(super) pair: Pair,
    opened: Option<Opened>,
    stop: Stop,
    slot: usize,
    /// The pair it takes over from: started again if this one cannot start.
    pub(super) before: Option<Pair>,
}

impl Running {
    /// Opens the new pairs `pairs` but those that take over from one of `gone`; `None` (said
    /// at ERROR, their places on the board given back) if one cannot open.
    pub(super) fn open_fresh(&mut self, pairs: Vec<Pair>, gone: &[Pair1]) -> Option<Vec<Fresh>> {
        let mut fresh = Vec::new();
        for pair in pairs {
            let before = gone
                .iter()
                .find(|r| r.label == pair.label || r.pair.config.replica == pair.config.replica)
                .map(|r| r.pair.clone());
            let (stop, slot) = (Stop::new(), self.next_slot);
            self.next_slot += 1;
            let opened = match before {
                Some(_) => None,
                None => match open_pair(&pair, &stop, self.board.as_ref(), slot) {
                    Ok(one) => Some(one),
                    Err(e) => {
                        self.take_off_board(fresh.iter().map(|f: &Fresh| f.slot).chain([slot]));
                        super::refused(&e);
                        return None;
                    }
                },
            };
            fresh.push(Fresh {
                pair,
                opened,
                stop,
                slot,
                before,
            });
        }
        Some(fresh)
    }

    /// Starts the new pairs (`shares`: the mirrors whose pairs share a watcher); a pair that
    /// cannot start lets the pair it was to replace go on. Returns how many were added,
    /// restarted, and could not start.
    pub(super) fn bring_all(&mut self, fresh: Vec<Fresh>, shares: &BTreeSet<String>) -> [usize; 3] {
        let (mut added, mut restarted, mut failed) = (0, 0, 0);
        for f in fresh {
            if self.stopping.is_set() {
                // Asked to stop meanwhile: nothing more is made or started.
                self.take_off_board([f.slot]);
                info!("not started: {}: foldersync is stopping", f.pair.label);
                continue;
            }
            let shared = shares.contains(&f.pair.mirror);
            let takes_over = f.before.is_some();
            if self.bring_up(f.pair, f.opened, f.stop, f.slot, shared) {
                *(if takes_over {
                    &mut restarted
                } else {
                    &mut added
                }) += 1;
                continue;
            }
            failed += 1;
            // What it was to replace goes on as it was (on a watcher of its own: its mirror's
            // shared one may watch the new SOURCE).
            if let Some(before) = f.before {
                info!("{} goes on as it was", before.label);
                match recheck(&before, self.args_level) {
                    Ok(before) => {
                        let slot = self.next_slot;
                        self.next_slot += 1;
                        self.bring_up(before, None, Stop::new(), slot, false);
                    }
                    Err(e) => error!("not started: {e}"),
                }
            }
        }
        [added, restarted, failed]
    }

    /// Opens (if not yet), makes and starts a pair a reload brought; a failure is logged, and
    /// `false`.
    fn bring_up(
        &mut self,
        pair: Pair,
        one: Option<Opened>,
        stop: Stop,
        slot: usize,
        shared: bool,
    ) -> bool {
        let one = match one {
            Some(one) => Ok(one),
            None => open_pair(&pair, &stop, self.board.as_ref(), slot),
        };
        let mut made = Made::default();
        let started = one.and_then(|mut one| {
            let made_root =
                make(&pair.config, &mut one, &mut made, false).map_err(|e| pair.error(e))?;
            let label = pair.label.clone();
            info!("starting {label}");
            self.start(pair, one, made_root, stop, slot, shared)
        });
        match started {
            Ok(()) => true,
            Err(e) => {
                made.undo();
                self.take_off_board([slot]);
                error!("not started: {e}");
                false
            }
        }
    }
}

pub(super) fn why_stopped(fresh: &[Fresh], pair: &Pair1) -> &'static str {
    let replaced = |f: &Fresh| f.before.as_ref().is_some_and(|b| b.label == pair.label);
    if fresh.iter().any(replaced) {
        "its configuration changed, it restarts"
    } else {
        "removed from the configuration"
    }
}
