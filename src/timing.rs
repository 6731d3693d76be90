//! Every delay foldersync waits, in one place. Those that follow the watcher derive from the
//! debounce (`--debounce`, 50 ms by default, written `d` below); the others are fixed. How they
//! relate:
//!
//! | delay | value | why |
//! |---|---|---|
//! | debounce | `d` | notify-debouncer-full gathers a path's events for `d` before it emits them |
//! | [`Timing::settle`] | `2d` | past the debounce and the debouncer's tick (`d/4`), so the debounced events of a moment (a rename's two halves) come before the raw hints of the same moment; a new remote directory waits as long before it is sent whole |
//! | [`Timing::debouncer_quiet`] | `max(3d, 0.5 s)` | the debouncer has emitted all it held; it is put to sleep so an idle mirror wakes no thread |
//! | [`Timing::hold_moved`] | `1 s + 2d` | an entry SOURCE moved away is kept this long for the other half of its rename, which may come in a later batch |
//! | [`Timing::hold_brief`] | `0.1 s + 2d` | an entry found missing for no reason the watcher gave: the event that explains it (its directory renamed) is on its way |
//! | [`PROOF_POLL`] | 0.1 s | an arrival whose proof runs aside is looked at again this often |
//! | [`OPEN_GRACE`] | 1 s | a file open for writing waits for its writer's close this long, then is copied anyway |
//! | [`RETRY_FIRST`] .. [`RETRY_LONGEST`] | 1 s, doubling to 8 s | a path that failed is tried again |
//! | [`SOURCE_CHECK`], [`SOURCE_RETRY`] | 5 s, 1 s | SOURCE's root is checked (more often while it is unusable) |
//! | [`REMOTE_BACKOFF_LONGEST`] | 60 s | a lost remote replica is tried again with a doubling wait up to this |
//! | [`STATUS_GAP`] | 0.25 s | the status file is written at most this often |

use std::time::Duration;

/// How long an entry SOURCE moved away is held, besides [`Timing::settle`].
pub const HOLD: Duration = Duration::from_secs(1);
/// How long an entry found missing for no reason is held, besides [`Timing::settle`].
pub const HOLD_BRIEF: Duration = Duration::from_millis(100);
/// How often an arrival waiting for its proof aside is looked at again.
pub const PROOF_POLL: Duration = Duration::from_millis(100);
/// How long a file open for writing waits for its writer before it is copied anyway.
pub const OPEN_GRACE: Duration = Duration::from_secs(1);
/// The first wait before a failed path is tried again; it doubles up to [`RETRY_LONGEST`].
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
pub const RETRY_LONGEST: Duration = Duration::from_secs(8);
/// How often SOURCE's root is checked, and how often while it is unusable.
pub const SOURCE_CHECK: Duration = Duration::from_secs(5);
pub const SOURCE_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts to reach a lost remote replica.
pub const REMOTE_BACKOFF_LONGEST: Duration = Duration::from_secs(60);
/// The status file is written at most this often.
pub const STATUS_GAP: Duration = Duration::from_millis(250);

/// The delays that follow the debounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub debounce: Duration,
}

impl Timing {
    pub fn new(debounce: Duration) -> Timing {
        Timing { debounce }
    }

    /// Past the debounce and the debouncer's tick.
    pub fn settle(&self) -> Duration {
        self.debounce * 2
    }

    /// How long the debouncer may go without an event before it is put to sleep.
    pub fn debouncer_quiet(&self) -> Duration {
        (self.debounce * 3).max(Duration::from_millis(500))
    }

    /// How long an entry SOURCE moved away is held for the other half of its rename.
    pub fn hold_moved(&self) -> Duration {
        HOLD + self.settle()
    }

    /// How long an entry found missing for no reason the watcher gave is held.
    pub fn hold_brief(&self) -> Duration {
        HOLD_BRIEF + self.settle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delays_follow_the_debounce_in_order() {
        let t = Timing::new(Duration::from_millis(50));
        assert_eq!(t.settle(), Duration::from_millis(100));
        assert!(t.settle() > t.debounce);
        assert!(t.hold_brief() > t.settle() && t.hold_moved() > t.hold_brief());
        assert_eq!(t.hold_moved(), Duration::from_millis(1100));
        assert_eq!(t.debouncer_quiet(), Duration::from_millis(500));
        assert_eq!(
            Timing::new(Duration::from_secs(1)).debouncer_quiet(),
            Duration::from_secs(3)
        );
    }
}
