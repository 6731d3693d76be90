//! Where the run loop's watch messages come from: a watcher of its own (one pair, as on the
//! command line), or its tap on a watcher shared by the pairs of one SOURCE
//! (`watch::shared`), whose owner alone makes the watch anew.

use crossbeam_channel::Receiver;

use crate::watch::shared::Tap;
use crate::watch::{WatchMsg, Watcher};

/// Why the run loop wants the watch made anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renew {
    /// Before the pass that catches up with lost events.
    Lost,
    /// SOURCE is back (or replaced), or a file system inside it.
    Back,
    /// The mount table below SOURCE changed.
    Mounts,
}

pub enum Feed {
    /// A watcher of its own, while watching.
    Own(Option<Watcher>),
    /// A tap on a shared watcher, and whether the pair listens to it now.
    Shared(Tap, bool),
}

impl Feed {
    /// The messages, while watching.
    pub fn messages(&self) -> Option<Receiver<WatchMsg>> {
        match self {
            Feed::Own(watcher) => watcher.as_ref().map(|w| w.messages().clone()),
            Feed::Shared(tap, true) => Some(tap.messages().clone()),
            Feed::Shared(_, false) => None,
        }
    }

    /// Whether there is a watch.
    pub fn is_on(&self) -> bool {
        match self {
            Feed::Own(watcher) => watcher.is_some(),
            Feed::Shared(_, on) => *on,
        }
    }

    /// Stops listening (SOURCE is unusable): an own watcher is dropped; a shared one goes on
    /// for the other pairs, and what it says meanwhile is dropped when this one listens again.
    pub fn stop(&mut self) {
        match self {
            Feed::Own(watcher) => *watcher = None,
            Feed::Shared(_, on) => *on = false,
        }
    }

    /// Listens to a shared watcher (again), asking for the watch to be made anew for `why`
    /// where the owner does not do so by itself; `false` for an own watcher, which the run loop
    /// makes itself.
    pub fn listen(&mut self, why: Option<Renew>) -> bool {
        let Feed::Shared(tap, on) = self else {
            return false;
        };
        if !*on {
            tap.drain();
            *on = true;
        }
        // After a loss the owner has already made it anew, and it follows the mount table.
        if why == Some(Renew::Back) {
            tap.renew();
        }
        true
    }
}
