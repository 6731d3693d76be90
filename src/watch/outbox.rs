//! The watcher's end of its channel to the run loop. The channel is bounded: a run loop that
//! falls behind (a long pass, a slow replica) never makes the watcher's memory grow. When it is
//! full, hints are dropped, and a `Lost` message takes their place as soon as there is room:
//! the run loop then watches anew and runs a full pass, as after the kernel's own overflow.

use crossbeam_channel::{Sender, TrySendError};

use super::WatchMsg;

/// How many messages wait for the run loop at most (each holds a burst of hints).
pub const CAPACITY: usize = 4096;

/// What the run loop is told when hints were dropped.
pub const FELL_BEHIND: &str = "the run loop fell behind the watcher and hints were dropped";

pub struct Outbox {
    tx: Sender<WatchMsg>,
    /// Messages were dropped, and the run loop has not been told yet.
    dropped: bool,
}

impl Outbox {
    pub fn new(tx: Sender<WatchMsg>) -> Outbox {
        Outbox { tx, dropped: false }
    }

    /// Sends `msg`, or drops it if the channel is full (the loss is said when there is room).
    /// Returns `false` once the run loop is gone.
    pub fn send(&mut self, msg: WatchMsg) -> bool {
        if !self.flush() {
            return false;
        }
        if self.dropped {
            return true;
        }
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped = true;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Says a loss not said yet, if there is room. Returns `false` once the run loop is gone.
    pub fn flush(&mut self) -> bool {
        if !self.dropped {
            return true;
        }
        match self.tx.try_send(WatchMsg::Lost(FELL_BEHIND.into())) {
            Ok(()) => {
                self.dropped = false;
                true
            }
            Err(TrySendError::Full(_)) => true,
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Whether a loss waits to be said.
    pub fn owes(&self) -> bool {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_drops_hints_and_says_so_when_there_is_room() {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let mut out = Outbox::new(tx);
        assert!(out.send(WatchMsg::Mounts));
        assert!(out.send(WatchMsg::Mounts));
        assert!(out.send(WatchMsg::Hints(Vec::new())));
        assert!(out.owes());
        // Still full: nothing more goes in.
        assert!(out.send(WatchMsg::Mounts));
        assert!(rx.try_recv().is_ok());
        assert!(out.flush());
        assert!(!out.owes());
        assert!(rx.try_recv().is_ok());
        assert!(matches!(rx.try_recv(), Ok(WatchMsg::Lost(why)) if why == FELL_BEHIND));
        drop(rx);
        assert!(!out.send(WatchMsg::Mounts));
    }
}
