//! What the run loop keeps of this mirror in the state record (see [`crate::state`]): the
//! token of this run before anything is written, and after each pass (and whenever the file
//! systems mounted inside SOURCE change, and on the way out) that REPLICA was mirrored into,
//! what SOURCE and REPLICA are, and where file systems are mounted inside SOURCE.

use std::fs::File;

use log::warn;

use crate::config::Config;
use crate::replica::Replica;
use crate::root::Root;
use crate::state::{Record, State};

/// The record, where it is kept, and the pair's lock.
#[derive(Default)]
pub struct Memory {
    state: Option<State>,
    recorded: Option<Record>,
    /// Held for as long as the mirror runs: another foldersync on the same pair is refused.
    _lock: Vec<File>,
    /// The record could not be written (said once).
    problem: bool,
}

impl Memory {
    pub fn new(state: Option<State>, recorded: Option<Record>, lock: Vec<File>) -> Memory {
        Memory {
            state,
            recorded,
            _lock: lock,
            problem: false,
        }
    }

    /// Records this run's token before the first pass writes anything: a temporary file it
    /// leaves if it is killed is then known for a leftover by the next run, never kept as data.
    pub fn token(&mut self, config: &Config) {
        let Some(state) = self.state.as_ref().filter(|_| !config.dry_run) else {
            return;
        };
        let mut next = self.recorded.clone().unwrap_or_else(|| state.fresh());
        next.add_token(config.own.temps().token());
        self.save(next);
    }

    /// Records what is known now: with `pass_done`, that a pass completed into REPLICA (and
    /// what SOURCE and REPLICA were then); in any case where file systems are mounted inside
    /// SOURCE. Written only when it says something new.
    pub fn remember(
        &mut self,
        config: &Config,
        source: &Root,
        replica: &dyn Replica,
        pass_done: bool,
    ) {
        let Some(state) = self.state.as_ref().filter(|_| !config.dry_run) else {
            return;
        };
        let mut next = self.recorded.clone().unwrap_or_else(|| state.fresh());
        if pass_done {
            next.mirrored = true;
            next.replica_id = replica.identity();
            next.replica_mount = replica.mount_root();
            next.replica_place = config.remote.is_none().then(|| config.replica.clone());
            next.source_id = Some(source.fingerprint());
            next.source_mount = source.mount_root;
        }
        next.source_mounts = replica.source_mounts();
        next.proof = replica.proof();
        self.save(next);
    }

    fn save(&mut self, next: Record) {
        let Some(state) = &self.state else { return };
        if self.recorded.as_ref() == Some(&next) {
            return;
        }
        match state.save(&next) {
            Ok(()) => {
                self.recorded = Some(next);
                self.problem = false;
            }
            Err(e) => {
                if !self.problem {
                    self.problem = true;
                    warn!(
                        "cannot keep foldersync's record of this mirror at {}: {e} (set \
                         --state-dir): the next start cannot tell this REPLICA was mirrored \
                         into, nor where file systems are mounted inside SOURCE",
                        crate::escape::esc(state.path())
                    );
                }
            }
        }
    }
}
