//! Whether the remote replica may be written: a lost connection or a replaced root makes it
//! unusable until a check finds it back (reconnecting with a growing wait), and then a full
//! pass runs; and the [`Replica`] the run loop sees.

use std::path::{Path, PathBuf};
use std::time::Instant;

use log::{debug, info};

use super::probe::{self, Make};
use super::rsync::Ended;
use super::run::raced;
use super::send::Delivery;
use super::Remote;
use crate::replica::{Batch, Look, Outcome, Replica, RootError, RootState};
use crate::root::Root;
use crate::stats::{Count, Stats};
use crate::timing::{REMOTE_BACKOFF_FIRST, REMOTE_BACKOFF_LONGEST};

impl Remote {
    /// The replica cannot be used until [`Replica::check`] finds it back.
    pub(super) fn lose(&mut self, problem: String) {
        self.ssh.disconnect();
        self.problem = Some(problem);
        self.next_try = Instant::now() + self.backoff;
    }

    /// Reconnects and checks the root, at the path resolved at start-up and through no
    /// symlink. A root that is gone is made again, alone, only where its parent is the very
    /// directory it was (not below an unmounted disk's mount point, not through a symlink
    /// swapped in above it) and the root was on its parent's device (not a mount point itself);
    /// any other directory in its place (one made anew by someone, a mount over it, a symlink)
    /// is refused, never adopted.
    pub(super) fn recover(&mut self) -> Result<RootState, String> {
        if !self.ssh.alive() {
            self.ssh.connect()?;
        }
        // A root on another device than its parent was a mount point: gone, it is a disk
        // unmounted, never a directory to make again on the parent's file system.
        let device = |id: &Option<String>| {
            id.as_deref()
                .and_then(|i| i.split_once(':'))
                .map(|d| d.0.to_string())
        };
        let mount_root = self.mount_root || device(&self.root_id) != device(&self.parent_id);
        let make = match &self.parent_id {
            Some(parent) if !self.settings.dry_run && !mount_root => Make::In(parent),
            _ => Make::No,
        };
        let (ssh, host) = (&self.ssh, &self.spec.host);
        let probe = probe::run(ssh, host, &self.root_path, make, None, true)?;
        self.digests = super::digest::Alg::of(&probe);
        if let Some(why) = probe.refused {
            return Err(format!("REPLICA {}: the remote path {why}", self.spec));
        }
        if probe.missing {
            let elsewhere = self.parent_id.is_some() && probe.parent != self.parent_id;
            return Err(format!(
                "REPLICA {} is gone{}",
                self.spec,
                if elsewhere {
                    ", and its parent is not the directory it was (was a disk unmounted?)"
                } else {
                    ""
                }
            ));
        }
        let moved = probe.place.as_deref() != Some(Path::new(&self.root_path));
        match (&self.root_id, &probe.id) {
            (Some(old), Some(new)) if old == new && !moved => Ok(RootState::Same),
            (Some(_), Some(new)) if probe.made && !moved => {
                info!(
                    "REPLICA {} was made again: it is filled by a full pass",
                    self.spec
                );
                self.root_id = Some(new.clone());
                self.root_born = probe.born;
                Ok(RootState::Renewed)
            }
            (Some(_), _) => Err(format!(
                "REPLICA {} is not the directory foldersync started with (replaced, mounted \
                 over, or its disk unmounted): nothing is written there until foldersync is \
                 restarted",
                self.spec
            )),
            (None, new) => {
                // A dry run's REPLICA, still to be made at start-up.
                self.root_id = new.clone();
                self.root_born = probe.born;
                self.parent_id = probe.parent;
                Ok(RootState::Renewed)
            }
        }
    }
}

impl Replica for Remote {
    fn describe(&self) -> String {
        self.spec.to_string()
    }

    fn check(&mut self) -> Result<RootState, RootError> {
        if self.problem.is_none() && !self.ssh.alive() {
            self.lose(format!("the connection to {} was lost", self.spec.host));
            self.next_try = Instant::now();
        }
        let Some(problem) = self.problem.clone() else {
            return Ok(RootState::Same);
        };
        if Instant::now() < self.next_try {
            return Err(RootError::Unreachable(problem));
        }
        match self.recover() {
            Ok(_) => {
                self.problem = None;
                self.backoff = REMOTE_BACKOFF_FIRST;
                // What changed meanwhile is not known: a full pass follows.
                Ok(RootState::Renewed)
            }
            Err(why) => {
                debug!("REPLICA {} still unusable: {why}", self.spec);
                self.backoff = (self.backoff * 2).min(REMOTE_BACKOFF_LONGEST);
                self.next_try = Instant::now() + self.backoff;
                Err(RootError::Unreachable(problem))
            }
        }
    }

    fn next_check(&self) -> Option<Instant> {
        self.problem.as_ref().map(|_| self.next_try)
    }

    fn has_content(&self) -> bool {
        self.content
    }

    /// The root's fingerprint (see [`super::identity`]).
    fn identity(&self) -> Option<String> {
        self.fingerprint()
    }

    fn mount_root(&self) -> bool {
        self.is_mount_root()
    }

    fn survey(&self, _source: &Root) -> Option<Result<crate::mirror::survey::Survey, String>> {
        self.root_id.as_ref()?;
        Some(self.survey_run())
    }

    fn source_mounts(&self) -> std::collections::BTreeSet<PathBuf> {
        self.mounts.points.known()
    }

    fn know_source_mounts(&mut self, mounts: std::collections::BTreeSet<PathBuf>) {
        self.mounts.points.know(mounts);
    }

    fn proof(&self) -> crate::state::Proof {
        self.proof.record()
    }

    fn keep_record(
        &mut self,
        state: Option<&crate::state::State>,
        recorded: Option<&crate::state::Record>,
    ) {
        let write = !self.settings.dry_run;
        self.proof.keep(state, recorded, write);
    }

    fn pass(&mut self, source: &Root, stats: &Stats) -> Outcome {
        self.pass_beside_mounts(source, stats)
    }

    fn apply(&mut self, source: &Root, batch: Batch, stats: &Stats) -> Outcome {
        self.content = true;
        self.apply_beside_mounts(source, batch, stats, true)
    }

    fn tick(&mut self, source: &Root, stats: &Stats) -> Option<Instant> {
        if self.problem.is_none() {
            let now = Instant::now();
            let (settled, settling): (Vec<_>, Vec<_>) =
                self.settling.drain(..).partition(|(_, at)| *at <= now);
            self.settling = settling;
            if !settled.is_empty() {
                let batch = Batch {
                    paths: settled.into_iter().map(|(p, _)| (p, Look::TREE)).collect(),
                    ..Batch::default()
                };
                let outcome = self.apply_beside_mounts(source, batch, stats, false);
                self.keep(outcome);
            }
            let due = self.held.due(Instant::now());
            if !due.is_empty() {
                // Their directories too: a removal changes a directory's times.
                let mut paths: Vec<_> = due
                    .iter()
                    .filter_map(|p| p.parent().map(|d| (d.to_path_buf(), Look::ENTRY)))
                    .collect();
                paths.extend(due.into_iter().map(|p| (p, Look::ENTRY)));
                paths.sort_by(|a, b| a.0.cmp(&b.0));
                paths.dedup();
                let batch = Batch {
                    paths,
                    ..Batch::default()
                };
                let outcome = self.apply_beside_mounts(source, batch, stats, false);
                self.keep(outcome);
            }
        }
        let settling = self.settling.iter().map(|(_, at)| *at).min();
        [self.held.next(), settling].into_iter().flatten().min()
    }

    fn leftover(&mut self) -> Outcome {
        std::mem::take(&mut self.leftover)
    }
}

impl Remote {
    /// What a batch run by `tick` leaves for the run loop, until it asks.
    fn keep(&mut self, outcome: Outcome) {
        let left = &mut self.leftover;
        left.failed.extend(outcome.failed);
        left.retry.extend(outcome.retry);
        left.later.extend(outcome.later);
        left.pass |= outcome.pass;
        left.unwatchable |= outcome.unwatchable;
    }

    /// One run over the whole replica (a full pass, or one tried again because it failed):
    /// `rsync -r --delete`, then the files its quick check may have passed over compared by
    /// content (see [`super::suspects::after_pass`]). Everything held or settling goes with it.
    /// A run that failed before its end (a full remote disk stops rsync at the file that did
    /// not fit, and nothing sorted after it is sent) leaves the whole replica to be tried again.
    pub(super) fn whole(&mut self, source: &Root, stats: &Stats, repeat: bool) -> Outcome {
        self.held.clear();
        self.settling.clear();
        let sent = std::mem::take(&mut self.sent);
        let mark = super::proof::mark_at(std::time::SystemTime::now());
        let root = super::source::root_look(self, source);
        let root_mtime = source.dir.stat().ok().map(|m| m.mtime);
        // Its removals refused, the pass did not send the root, nor what it would have
        // replaced (see [`super::bound`]): REPLICA is not yet SOURCE's copy.
        let (report, refused) = self.whole_run(source, stats);
        let held_back = Outcome {
            held_back: refused,
            ..Outcome::default()
        };
        if let Some(n) = report.files {
            stats.add_n(Count::Checked, n);
        }
        if self.ended(&report, stats, repeat) {
            self.content = self.content || report.files.is_some_and(|n| n > 1);
            if self.settings.dry_run {
                return held_back;
            }
            if refused {
                // Comparing would send what the pass left out (rsync makes a compared file's
                // parents, over REPLICA's entries of another kind): the next pass compares.
                return held_back;
            }
            self.root_sent = root;
            self.root_mtime = root_mtime;
            return match self.compare_after_pass(source, &sent, &report.copied, stats, repeat) {
                Delivery::Through => {
                    self.proof.passed(mark);
                    held_back
                }
                // Files changed while they were compared (the watcher brings them), or the
                // replica was lost or the run stopped (a pass follows when it is back): the
                // next pass compares again what this one could not.
                Delivery::Partly { raced: true } | Delivery::Lost => held_back,
                Delivery::Partly { raced: false } => Outcome {
                    held_back: refused,
                    ..Self::failed_pass()
                },
            };
        }
        let retry = match report.ended {
            // Tried again when REPLICA is back (a full pass then), or not at all.
            Ended::Lost | Ended::RootChanged | Ended::Interrupted => false,
            _ if self.settings.dry_run => false,
            // SOURCE changed under rsync, which went on to the end: the watcher brings the
            // rest.
            Ended::Partial if raced(&report) => false,
            _ => true,
        };
        let mut outcome = if retry {
            Self::failed_pass()
        } else {
            Outcome::default()
        };
        outcome.held_back = refused || !matches!(report.ended, Ended::Partial);
        outcome
    }

    /// A pass to be tried again as a whole.
    fn failed_pass() -> Outcome {
        Outcome {
            failed: vec![(PathBuf::new(), Look::TREE)],
            ..Outcome::default()
        }
    }

    /// The pass's comparison by content (none with `--checksum`, which compared everything).
    fn compare_after_pass(
        &mut self,
        source: &Root,
        sent: &std::collections::HashMap<PathBuf, super::work::Sent>,
        copied: &std::collections::HashSet<PathBuf>,
        stats: &Stats,
        repeat: bool,
    ) -> Delivery {
        if self.settings.checksum {
            return Delivery::Through;
        }
        let files = super::suspects::after_pass(self, source, sent, copied);
        if self.stop.is_set() {
            return Delivery::Lost;
        }
        if files.is_empty() {
            return Delivery::Through;
        }
        debug!(
            "the pass compares {} files by content (changed since the last pass, or in \
             directories not proven yet)",
            files.len()
        );
        super::send::compare(self, source, &files, stats, repeat, None)
    }
}
