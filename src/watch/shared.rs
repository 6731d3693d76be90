//! One watcher shared by the pairs of one SOURCE (a `--config` mirror with several replicas):
//! a thread owns it and hands each of its messages to every pair through a bounded channel of
//! the pair's own ([`Outbox`]), so a pair that falls behind loses hints alone (said to it alone
//! as `Lost`, for its own rescan pass) and never holds up the watcher or the other pairs. The
//! owner renews the watch itself, and is the only one to: after a loss the watcher reports (the
//! kernel's queue overflowed, the watcher failed) the new watch is made first and then every
//! pair is told `Lost`; after a change of the mount table below SOURCE; and when a pair asks
//! (SOURCE back, a file system back inside it). Renewals after losses are at most one a second.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{after, never, select, Receiver, Sender};

use super::outbox::{self, Outbox};
use super::{Hint, Scope, WatchMsg, Watcher};
use crate::config::mounts::{below, Below};
use crate::timing::Timing;

/// The least time between two renewals of the watch after losses.
const RENEW_GAP: Duration = Duration::from_secs(1);

/// What a pair (or whoever starts pairs) asks of the owner.
enum Control {
    /// A new pair: its channel, and who waits until it is in the list.
    Tap(Sender<WatchMsg>, Sender<()>),
    /// Make the watch anew, unless it was made after this moment.
    Renew(Instant),
}

/// The handle that starts pairs on a shared watcher. The owner's thread ends once this handle
/// and every [`Tap`] are dropped.
pub struct Shared {
    control: Sender<Control>,
}

/// One pair's end: its messages, and a way to ask for a new watch.
pub struct Tap {
    messages: Receiver<WatchMsg>,
    control: Sender<Control>,
}

impl Tap {
    /// The pair's messages (the watcher's, and `Lost` when the pair fell behind).
    pub fn messages(&self) -> &Receiver<WatchMsg> {
        &self.messages
    }

    /// Asks for the watch to be made anew (SOURCE came back, or a file system inside it).
    pub fn renew(&self) {
        let _ = self.control.send(Control::Renew(Instant::now()));
    }

    /// Drops what waits (while the pair did not watch, say).
    pub fn drain(&self) {
        for _ in self.messages.try_iter() {}
    }
}

impl Shared {
    /// Watches SOURCE (as [`Watcher::start`] does, on the calling thread, so the watch is in
    /// place when this returns) and starts the owner's thread; its log lines say `label`.
    pub fn start(
        scope: Scope,
        timing: Timing,
        gather_removals: bool,
        label: Arc<str>,
    ) -> std::io::Result<Shared> {
        let mut owner = Owner {
            mounts: below(&scope.root),
            scope,
            timing,
            gather_removals,
            watcher: None,
            failed: None,
            taps: Vec::new(),
            renewed: Instant::now(),
            renew_due: None,
        };
        let before = crate::label::current();
        crate::label::set(Some(label.clone()));
        owner.renew();
        crate::label::set(before);
        let (control, control_rx) = crossbeam_channel::unbounded();
        thread::Builder::new()
            .name("watch-shared".into())
            .spawn(move || {
                crate::label::set(Some(label));
                owner.run(&control_rx);
            })?;
        Ok(Shared { control })
    }

    /// A new pair's end of the watch, in the owner's list when this returns: every message after
    /// it reaches the pair (its first pass, which starts after, covers what came before).
    pub fn tap(&self) -> Tap {
        let (tx, messages) = crossbeam_channel::bounded(outbox::CAPACITY);
        let (ack, added) = crossbeam_channel::bounded(1);
        if self.control.send(Control::Tap(tx, ack)).is_ok() {
            // The owner's thread gone: the pair's messages end, and it says so itself.
            let _ = added.recv();
        }
        Tap {
            messages,
            control: self.control.clone(),
        }
    }
}

/// The owner's thread's state.
struct Owner {
    scope: Scope,
    timing: Timing,
    gather_removals: bool,
    watcher: Option<Watcher>,
    /// Why there is no watcher, said to every pair (and to those that come later).
    failed: Option<WatchMsg>,
    taps: Vec<Outbox>,
    /// When the watch was last made.
    renewed: Instant,
    /// A renewal after a loss that waits for [`RENEW_GAP`], and the loss it is for.
    renew_due: Option<(Instant, String)>,
    /// The file systems mounted inside SOURCE, as last seen.
    mounts: Vec<Below>,
}

impl Owner {
    fn run(mut self, control: &Receiver<Control>) {
        loop {
            let messages = self
                .watcher
                .as_ref()
                .map_or_else(never, |w| w.messages().clone());
            let owed = self.taps.iter().any(Outbox::owes);
            let due = [
                self.renew_due.as_ref().map(|(at, _)| *at),
                owed.then(|| Instant::now() + self.timing.settle()),
            ]
            .into_iter()
            .flatten()
            .min();
            let timer = due.map_or_else(never, |d| {
                after(d.saturating_duration_since(Instant::now()))
            });
            select! {
                recv(control) -> c => match c {
                    Ok(Control::Tap(tx, ack)) => {
                        let mut out = Outbox::new(tx);
                        if let Some(msg) = &self.failed {
                            out.send(msg.clone());
                        }
                        self.taps.push(out);
                        let _ = ack.send(());
                    }
                    Ok(Control::Renew(asked)) => {
                        if self.renewed < asked {
                            self.renew();
                        }
                    }
                    // Every pair and the handle are gone.
                    Err(_) => return,
                },
                recv(messages) -> msg => match msg {
                    Ok(msg) => self.take(msg),
                    Err(_) => self.lost("the watcher stopped".into()),
                },
                recv(timer) -> _ => {
                    self.taps.retain_mut(Outbox::flush);
                    if self.renew_due.as_ref().is_some_and(|(at, _)| Instant::now() >= *at) {
                        if let Some((_, why)) = self.renew_due.take() {
                            self.renew();
                            self.relay(WatchMsg::Lost(why));
                        }
                    }
                }
            }
        }
    }

    /// One message of the watcher: a loss renews the watch first, a change of the mount table
    /// below SOURCE too; everything is relayed to every pair.
    fn take(&mut self, msg: WatchMsg) {
        match msg {
            WatchMsg::Lost(why) => self.lost(why),
            WatchMsg::Hints(mut hints) if hints.contains(&Hint::Rescan) => {
                hints.retain(|h| *h != Hint::Rescan);
                if !hints.is_empty() {
                    self.relay(WatchMsg::Hints(hints));
                }
                self.lost("the watcher asked for a rescan".into());
            }
            WatchMsg::Mounts => {
                let now = below(&self.scope.root);
                if now != self.mounts {
                    self.mounts = now;
                    self.renew();
                }
                self.relay(WatchMsg::Mounts);
            }
            other => self.relay(other),
        }
    }

    /// Events were lost: the watch is made anew (now, or once [`RENEW_GAP`] has passed since
    /// the last time), then every pair is told.
    fn lost(&mut self, why: String) {
        if self.renew_due.is_some() {
            return;
        }
        if self.renewed.elapsed() < RENEW_GAP {
            self.renew_due = Some((self.renewed + RENEW_GAP, why));
            return;
        }
        self.renew();
        self.relay(WatchMsg::Lost(why));
    }

    /// Makes the watch anew: the new one is in place before the old one goes, so nothing is
    /// missed in between (what both see comes twice, and a hint twice is harmless).
    fn renew(&mut self) {
        self.renewed = Instant::now();
        match Watcher::start(self.scope.clone(), self.timing, self.gather_removals) {
            Ok(watcher) => {
                self.failed = None;
                // What the old watch still held is passed on, not dropped with it.
                if let Some(old) = self.watcher.replace(watcher) {
                    let held: Vec<WatchMsg> = old.messages().try_iter().collect();
                    drop(old);
                    for msg in held {
                        self.take(msg);
                    }
                }
            }
            Err(e) => {
                self.watcher = None;
                let e = crate::escape::text(&e.to_string()).to_string();
                let msg = WatchMsg::Trouble {
                    message: format!(
                        "watching SOURCE failed ({e}); mirroring by periodic passes only"
                    ),
                    degraded: Some(format!("no watcher ({e}): periodic passes only")),
                };
                self.relay(msg.clone());
                self.failed = Some(msg);
            }
        }
    }

    /// Hands `msg` to every pair; a pair that is gone is forgotten.
    fn relay(&mut self, msg: WatchMsg) {
        self.taps.retain_mut(|out| out.send(msg.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(root: &std::path::Path) -> Scope {
        let own = crate::own::OwnFiles::default();
        Scope {
            root: root.to_path_buf(),
            own: Arc::new(own),
            filter: crate::filter::Filter::default(),
        }
    }

    fn wait_for(tap: &Tap, name: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(msg) = tap.messages().recv_deadline(deadline) {
            if let WatchMsg::Hints(hints) = msg {
                if hints
                    .iter()
                    .any(|h| matches!(h, Hint::Path(p, _) if p == std::path::Path::new(name)))
                {
                    return true;
                }
            }
        }
        false
    }

    /// Two pairs on one watch both hear of a write; a pair that never reads loses its hints
    /// alone (a `Lost` waits for it) while the other goes on hearing.
    #[test]
    fn every_pair_hears_and_one_behind_loses_alone() {
        let dir = tempfile::tempdir().unwrap();
        let timing = Timing::new(Duration::from_millis(20), Duration::from_secs(3600));
        let shared = Shared::start(scope(dir.path()), timing, false, Arc::from("t")).unwrap();
        let (a, b) = (shared.tap(), shared.tap());
        std::fs::write(dir.path().join("one"), b"1").unwrap();
        assert!(wait_for(&a, "one") && wait_for(&b, "one"));
        // b stops reading; a keeps up while far more than b's channel holds is sent.
        for i in 0..(outbox::CAPACITY + 100) {
            std::fs::write(dir.path().join(format!("f{}", i % 50)), b"x").unwrap();
            if i % 500 == 0 {
                a.drain();
            }
        }
        std::fs::write(dir.path().join("last"), b"1").unwrap();
        assert!(wait_for(&a, "last"));
        let mut lost = false;
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(msg) = b.messages().recv_deadline(deadline) {
            if matches!(msg, WatchMsg::Lost(why) if why == outbox::FELL_BEHIND) {
                lost = true;
                break;
            }
        }
        assert!(lost, "the pair behind is told it lost hints");
    }
}
