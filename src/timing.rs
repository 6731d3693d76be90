//! Every delay foldersync waits, in one place. [`Timing`] is built once, by `config`, from the
//! two options that set delays: `--debounce` (50 ms by default, written `d` below) and
//! `--interval` (`I`); it is handed down to the run loop, the watcher and both replicas, which
//! take their delays from it. The delays that depend on neither are the constants below. How
//! they relate:
//!
//! | delay | value | why |
//! |---|---|---|
//! | [`Timing::debounce`] | `d` | notify-debouncer-full gathers a path's events for `d` before it emits them; it ticks every `d/4` ([`Timing::debouncer_tick`]) |
//! | [`Timing::look_gap`] | `d` | a path is looked at no more often than this, so a file rewritten without pause is copied at a bounded rate |
//! | [`Timing::retry_changed`] | `d` | a copy dropped because its file changed under it is tried again this much later |
//! | [`Timing::settle`] | `2d` | past the debounce and its tick (`d + d/4`), so the debounced events of a moment (a rename's two halves) come before the raw hints of the same moment; a new remote directory waits as long before it is sent whole |
//! | [`Timing::debouncer_quiet`] | `max(3d, 0.5 s)` | the debouncer has emitted all it held; it is put to sleep so an idle mirror wakes no thread |
//! | [`Timing::hold_moved`] | [`HOLD`] + `2d` = 1 s + `2d` | an entry SOURCE moved away is kept this long (local and remote) for the other half of its rename, which may come in a later batch |
//! | [`Timing::hold_brief`] | [`HOLD_BRIEF`] + `2d` = 0.1 s + `2d` | an entry found missing for no reason the watcher gave: the event that explains it (its directory renamed) is on its way |
//! | [`Timing::interval`] | `I` | from the end of one full pass to the start of the next |
//! | [`Timing::rescan_gap`] | the pass's length, at least [`RESCAN_GAP_LEAST`] (1 s) | the least time from the end of a pass to a rescan-driven one; it doubles, up to `I`, while such passes find nothing, so a pass's own events cannot keep the mirror in passes |
//! | [`PROOF_POLL`] | 0.1 s | an arrival whose proof runs aside is looked at again this often |
//! | [`OPEN_GRACE`] | 1 s | a file open for writing waits for its writer's close this long, then is copied anyway (and again after `max(1 s, 9 ×` its last copy's time`)`, in `mirror::copy`) |
//! | [`RETRY_FIRST`] .. [`RETRY_LONGEST`] | 1 s, doubling to 8 s | a path that failed is tried again |
//! | [`RETRY_HANDED_OUT`] | `4 ×` [`RETRY_LONGEST`] = 32 s | a failed path handed to a batch is not handed out again before the batch says how it went, nor sooner than this |
//! | [`SOURCE_CHECK`], [`SOURCE_RETRY`] | 5 s, 1 s | SOURCE's root is checked (more often while it is unusable) |
//! | [`REMOTE_BACKOFF_FIRST`] .. [`REMOTE_BACKOFF_LONGEST`] | 1 s, doubling to 60 s | a lost remote replica is tried again |
//! | [`STATUS_GAP`] | 0.25 s | the status file is written at most this often |
//! | [`LOG_FLUSH`] | 0.1 s | log lines are gathered at most this long before they are written (warnings and errors at once) |
//! | [`LOG_DELETED_CHECK`] | 1 s | the log file is checked this often for having been deleted under foldersync (then it is made again) |
//! | [`SAME_REQUEST`] | 0.5 s | a second SIGTERM or Ctrl+C this soon after the first is the same request (one signal sent to a process and its group), not a second one |
//!
//! Not delays foldersync waits, so not here: `rules::RENAME_MIN` (a size),
//! `remote::proof::MARGIN` (how far a clock may be off), the rule by which `foldersync status`
//! calls a status file stale (`status::show`: two intervals and a minute, read from the file),
//! the progress line's own pace (`progress`), and the timeouts and short polls that wait for
//! ssh and rsync to come up or end (`remote::ssh`, `remote::rsync`).

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
/// A failed path handed to a batch is not handed out again sooner, unless the batch settles it.
pub const RETRY_HANDED_OUT: Duration = RETRY_LONGEST.saturating_mul(4);
/// How often SOURCE's root is checked, and how often while it is unusable.
pub const SOURCE_CHECK: Duration = Duration::from_secs(5);
pub const SOURCE_RETRY: Duration = Duration::from_secs(1);
/// The least time between the end of a pass and a rescan-driven one (see [`Timing::rescan_gap`]).
pub const RESCAN_GAP_LEAST: Duration = Duration::from_secs(1);
/// The first wait before a lost remote replica is tried again; it doubles up to
/// [`REMOTE_BACKOFF_LONGEST`].
pub const REMOTE_BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const REMOTE_BACKOFF_LONGEST: Duration = Duration::from_secs(60);
/// The status file is written at most this often.
pub const STATUS_GAP: Duration = Duration::from_millis(250);
/// Log lines wait at most this long to be written (warnings and errors do not wait).
pub const LOG_FLUSH: Duration = Duration::from_millis(100);
/// How often the log file is checked for having been deleted under foldersync.
pub const LOG_DELETED_CHECK: Duration = Duration::from_secs(1);
/// Two stop signals this close are one request.
pub const SAME_REQUEST: Duration = Duration::from_millis(500);

/// The delays set by the command line, and those derived from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `--debounce`: how long the watcher gathers a path's events.
    pub debounce: Duration,
    /// `--interval`: from the end of one full pass to the start of the next.
    pub interval: Duration,
}

impl Timing {
    pub fn new(debounce: Duration, interval: Duration) -> Timing {
        Timing { debounce, interval }
    }

    /// How often notify-debouncer-full looks for events due (a quarter of the debounce, the
    /// crate's default, given to it explicitly).
    pub fn debouncer_tick(&self) -> Duration {
        self.debounce / 4
    }

    /// The least time between two looks at one path.
    pub fn look_gap(&self) -> Duration {
        self.debounce
    }

    /// How long after a copy was dropped (its file changed under it) it is tried again.
    pub fn retry_changed(&self) -> Duration {
        self.debounce
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

    /// The least time from the end of a pass that took `elapsed` to a rescan-driven one, given
    /// the gap before it (at first [`RESCAN_GAP_LEAST`]) and whether that pass was a rescan that
    /// found nothing (`idle`): the pass's own length (at least [`RESCAN_GAP_LEAST`]), or, while
    /// rescans are idle, double the last gap; an idle one never more than the interval.
    pub fn rescan_gap(&self, last: Duration, elapsed: Duration, idle: bool) -> Duration {
        let base = elapsed.max(RESCAN_GAP_LEAST);
        if idle {
            (last * 2).max(base).min(self.interval)
        } else {
            base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_delays_follow_the_debounce_in_order() {
        let t = Timing::new(ms(50), Duration::from_secs(600));
        assert_eq!(t.settle(), ms(100));
        assert!(t.settle() > t.debounce + t.debouncer_tick());
        assert_eq!(t.look_gap(), t.debounce);
        assert_eq!(t.retry_changed(), t.debounce);
        assert!(t.hold_brief() > t.settle() && t.hold_moved() > t.hold_brief());
        assert_eq!(t.hold_moved(), ms(1100));
        assert_eq!(t.hold_brief(), ms(200));
        assert_eq!(t.debouncer_quiet(), ms(500));
        let slow = Timing::new(Duration::from_secs(1), Duration::from_secs(600));
        assert_eq!(slow.debouncer_quiet(), Duration::from_secs(3));
        assert!(slow.debouncer_quiet() > slow.debounce + slow.debouncer_tick());
    }

    #[test]
    fn the_rescan_gap_follows_the_pass_and_doubles_while_idle_up_to_the_interval() {
        let t = Timing::new(ms(50), Duration::from_secs(10));
        assert_eq!(
            t.rescan_gap(RESCAN_GAP_LEAST, ms(10), false),
            RESCAN_GAP_LEAST
        );
        assert_eq!(t.rescan_gap(ms(1000), ms(10), true), ms(2000));
        assert_eq!(t.rescan_gap(ms(1000), ms(3000), true), ms(3000));
        assert_eq!(t.rescan_gap(ms(8000), ms(10), true), ms(10_000));
        assert_eq!(t.rescan_gap(ms(8000), ms(10), false), RESCAN_GAP_LEAST);
        assert_eq!(t.rescan_gap(ms(8000), ms(12_000), false), ms(12_000));
        assert_eq!(RETRY_HANDED_OUT, Duration::from_secs(32));
    }
}
