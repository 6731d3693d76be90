//! The run loop's side of the watcher: starting it, taking in its messages (also while a full
//! pass runs, on a thread of their own, so the bounded channel does not fill during a long
//! pass), and what lost events and changes of the mount table call for.

use std::path::{Path, PathBuf};

use crossbeam_channel::{select, Receiver};
use log::{info, warn};

use super::pending::Pending;
use super::{Daemon, MAX_PENDING};
use crate::config::mounts::Below;
use crate::replica::Look;
use crate::status::State;
use crate::watch::{Hint, WatchMsg, Watcher};

/// The other paths of `path` inside SOURCE: a directory bind-mounted inside SOURCE is one
/// directory at two paths, and its events name one of them.
fn aliases(mounts: &[Below], path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for below in mounts {
        let Some(original) = &below.alias_of else {
            continue;
        };
        if let Ok(rest) = path.strip_prefix(original) {
            out.push(below.rel.join(rest));
        }
        if let Ok(rest) = path.strip_prefix(&below.rel) {
            out.push(original.join(rest));
        }
    }
    out
}

/// Queues the paths and renames of `hints` in `pending`, each with its other paths under a
/// bind mount; returns the hints only the run loop can act on (a rescan, the root gone).
fn queue(pending: &mut Pending, mounts: &[Below], hints: Vec<Hint>) -> Vec<Hint> {
    let mut rest = Vec::new();
    for hint in hints {
        match hint {
            Hint::Path(path, look) => {
                for alias in aliases(mounts, &path) {
                    pending.add(alias, look);
                }
                pending.add(path, look);
            }
            Hint::Rename(from, to) => {
                for alias in aliases(mounts, &from)
                    .into_iter()
                    .chain(aliases(mounts, &to))
                {
                    pending.add(alias, Look::TREE);
                }
                pending.rename(from, to);
            }
            Hint::Rescan | Hint::RootGone => rest.push(hint),
        }
    }
    rest
}

/// What came from the watcher while a full pass ran, besides the hints queued at once.
#[derive(Default)]
pub(super) struct Meanwhile {
    /// Messages for the run loop itself, in their order.
    later: Vec<WatchMsg>,
    /// More than [`MAX_PENDING`] paths came: those queued were dropped, for a full pass.
    too_many: bool,
}

impl Meanwhile {
    /// Whether events were said lost: the pass that ran meanwhile cannot have caught up.
    pub(super) fn lost(&self) -> bool {
        self.later.iter().any(|msg| match msg {
            WatchMsg::Lost(_) => true,
            WatchMsg::Hints(hints) => hints.iter().any(|h| matches!(h, Hint::Rescan)),
            _ => false,
        })
    }
}

/// How many messages for the run loop itself are kept while a pass runs; past it, the rest wait
/// in the channel (whose overflow is said as lost events).
const LATER_MAX: usize = 1024;

/// Runs `pass` (a full pass) while a thread takes in the watcher's `messages`: hints are queued
/// in `pending` as they come (coalesced, so memory stays bounded), so that a long pass neither
/// fills the channel nor loses hints; the other messages are returned for the run loop.
pub(super) fn meanwhile<T>(
    messages: Option<Receiver<WatchMsg>>,
    pending: &mut Pending,
    mounts: &[Below],
    pass: impl FnOnce() -> T,
) -> (T, Meanwhile) {
    let Some(messages) = messages else {
        return (pass(), Meanwhile::default());
    };
    std::thread::scope(|scope| {
        let (done, finished) = crossbeam_channel::bounded::<()>(0);
        let taker = std::thread::Builder::new()
            .name("hints".into())
            .spawn_scoped(
                scope,
                crate::label::carry(move || {
                    let mut got = Meanwhile::default();
                    while got.later.len() < LATER_MAX {
                        let msg = select! {
                            recv(finished) -> _ => break,
                            recv(messages) -> msg => match msg {
                                Ok(msg) => msg,
                                // The watch ended: the run loop finds the channel closed.
                                Err(_) => break,
                            },
                        };
                        match msg {
                            WatchMsg::Hints(_) if got.too_many => {}
                            WatchMsg::Hints(hints) => {
                                let rest = queue(pending, mounts, hints);
                                if !rest.is_empty() {
                                    got.later.push(WatchMsg::Hints(rest));
                                }
                                if pending.len() > MAX_PENDING {
                                    pending.clear();
                                    got.too_many = true;
                                }
                            }
                            other => got.later.push(other),
                        }
                    }
                    got
                }),
            );
        let out = pass();
        drop(done);
        let got = match taker {
            Ok(taker) => taker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread: the messages wait in the channel, as they did before there was one.
            Err(_) => Meanwhile::default(),
        };
        (out, got)
    })
}

impl Daemon<'_> {
    /// The mount table changed: where a file system came or went inside SOURCE is looked at
    /// as a whole (one gone is an error there, see `mirror::mounts`), and SOURCE is watched
    /// anew (the new one's directories had no watch).
    pub(super) fn mounts_changed(&mut self) {
        let now = crate::config::mounts::below(&self.source.root.path);
        if now == self.mounts {
            return;
        }
        let changed: Vec<PathBuf> = now
            .iter()
            .filter(|b| !self.mounts.contains(b))
            .chain(self.mounts.iter().filter(|b| !now.contains(b)))
            .map(|b| b.rel.clone())
            .collect();
        info!(
            "file systems were mounted or unmounted inside SOURCE: {}",
            changed
                .iter()
                .map(|p| crate::escape::rel(p).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for rel in changed {
            self.pending.add(rel, Look::TREE);
        }
        self.mounts = now;
        if self.feed.is_on() {
            self.renew_watcher(super::Renew::Mounts);
        }
    }

    /// Makes the watch anew (`why` it is wanted): an own watcher is dropped and started again;
    /// a shared one's owner does it (see [`super::feed::Feed::listen`]).
    pub(super) fn renew_watcher(&mut self, why: super::Renew) {
        if !self.feed.listen(Some(why)) {
            self.feed.stop();
            self.start_watcher();
        }
    }

    pub(super) fn start_watcher(&mut self) {
        self.mounts = crate::config::mounts::below(&self.source.root.path);
        if self.feed.listen(None) {
            return;
        }
        let gather_removals = self.config.max_delete.is_some();
        match Watcher::start(self.scope.clone(), self.config.timing, gather_removals) {
            Ok(watcher) => self.feed = super::feed::Feed::Own(Some(watcher)),
            Err(e) => {
                warn!(
                    "watching SOURCE failed ({}); mirroring by periodic passes only",
                    crate::escape::text(&e.to_string())
                );
                self.report
                    .degrade(format!("no watcher ({e}): periodic passes only"));
            }
        }
    }

    pub(super) fn absorb(&mut self, msg: WatchMsg) {
        match msg {
            WatchMsg::Hints(hints) => {
                for hint in queue(&mut self.pending, &self.mounts, hints) {
                    match hint {
                        Hint::Rescan => self.lost("the watcher asked for a rescan".into()),
                        Hint::RootGone => {
                            self.check(false);
                        }
                        Hint::Path(..) | Hint::Rename(..) => {}
                    }
                }
                if self.pending.len() > MAX_PENDING {
                    self.pending.clear();
                    self.too_many_pending();
                }
            }
            WatchMsg::Lost(why) => self.lost(why),
            WatchMsg::Mounts => self.mounts_changed(),
            WatchMsg::Trouble { message, degraded } => {
                warn!("{message}");
                if let Some(why) = degraded {
                    self.report.degrade(why);
                    self.report.rest();
                }
            }
        }
    }

    /// More than [`MAX_PENDING`] paths waited (and were dropped): a full pass takes them over.
    fn too_many_pending(&mut self) {
        info!("more than {MAX_PENDING} paths waiting: a full pass takes them over");
        self.schedule.want_pass(false);
    }

    /// Takes in what came from the watcher while a full pass ran (see [`meanwhile`]).
    pub(super) fn take_in(&mut self, got: Meanwhile) {
        if got.too_many {
            self.too_many_pending();
        }
        for msg in got.later {
            self.absorb(msg);
        }
        self.note_pending();
    }

    /// Events were lost: the watch is made anew before the next full pass, which comes as soon
    /// as the rescan spacing allows, and until it ends the status says the mirror is catching up.
    pub(super) fn lost(&mut self, why: String) {
        if self.lost.is_none() {
            warn!("events were lost ({why}): SOURCE is watched anew and a full pass catches up");
        }
        self.lost_count += 1;
        self.report.lost();
        self.lost = Some(why);
        self.schedule.want_pass(true);
        self.report.state(State::Degraded, self.catching_up());
    }

    /// The reason the status gives while a pass catches up after lost events.
    pub(super) fn catching_up(&self) -> Option<String> {
        self.lost
            .as_ref()
            .map(|why| format!("events were lost ({why}); a full pass is catching up"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn path(i: usize) -> WatchMsg {
        WatchMsg::Hints(vec![Hint::Path(format!("f{i}").into(), Look::ENTRY)])
    }

    /// A pass that runs while many more messages come than the channel holds: the hints are
    /// queued as they come (no send blocks, none is lost), the rest kept for the run loop.
    #[test]
    fn hints_are_taken_in_while_a_pass_runs() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let mut pending = Pending::new(Duration::ZERO);
        let ((), got) = meanwhile(Some(rx.clone()), &mut pending, &[], || {
            for i in 0..1000 {
                tx.send(path(i)).unwrap();
            }
            tx.send(WatchMsg::Lost("overflow".into())).unwrap();
            tx.send(WatchMsg::Hints(vec![Hint::RootGone])).unwrap();
            while !tx.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        assert_eq!(pending.len(), 1000);
        assert_eq!(got.later.len(), 2);
        assert!(got.lost() && !got.too_many);
        // After the pass, the channel is the run loop's again.
        tx.send(path(0)).unwrap();
        assert!(matches!(rx.try_recv(), Ok(WatchMsg::Hints(_))));
    }

    #[test]
    fn too_many_hints_during_a_pass_call_for_a_pass() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let mut pending = Pending::new(Duration::ZERO);
        let ((), got) = meanwhile(Some(rx), &mut pending, &[], || {
            let many = (0..=MAX_PENDING)
                .map(|i| Hint::Path(format!("f{i}").into(), Look::ENTRY))
                .collect();
            tx.send(WatchMsg::Hints(many)).unwrap();
            tx.send(path(0)).unwrap();
            while !tx.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        assert!(got.too_many && !got.lost());
        assert_eq!(pending.len(), 0);
    }
}
