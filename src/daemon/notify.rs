//! Telling systemd how the service is doing (sd_notify(3), through the `sd-notify` crate), when
//! it runs under a unit of `Type=notify` (`NOTIFY_SOCKET` is set; without it every call here
//! does nothing): `READY=1` once the watcher is set up and the first pass has started,
//! `STATUS=` the state, the paths failing now and the last pass's summary, `RELOADING=1` and `READY=1` around SIGHUP's
//! reopening of the log, `STOPPING=1` on the way out, and `WATCHDOG=1` every half of
//! `WatchdogSec=` while the run loop turns or a pass or batch makes progress.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::stats::Stats;
use crate::status::State;

/// `READY=1` was sent: a reload says it again, and only then.
static READY: AtomicBool = AtomicBool::new(false);

/// Sends `states`; a service manager that cannot be told is said once, at debug level (a unit
/// of `Type=notify` then fails to start, which says more).
fn send(states: &[NotifyState]) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if let Err(e) = sd_notify::notify(states) {
        if !SAID.swap(true, Ordering::Relaxed) {
            log::debug!("cannot notify the service manager: {e}");
        }
    }
}

/// The status line of the unit (`systemctl status`): the state, why, and the last pass.
#[derive(Default)]
pub struct Status {
    state: String,
    last_pass: Option<String>,
    /// Paths failing now (tried again until they succeed).
    failing: u64,
    /// What was sent last, so that nothing is sent twice.
    sent: String,
}

impl Status {
    /// The mirror's state changed.
    pub fn state(&mut self, state: State, reason: Option<&str>) {
        let name = serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.state = match reason {
            Some(reason) => format!("{name} ({reason})"),
            None => name,
        };
        self.say(&[]);
    }

    /// A pass ended: `summary` is its outcome and counts.
    pub fn pass(&mut self, summary: String) {
        self.last_pass = Some(summary);
        self.say(&[]);
    }

    /// How many paths are failing now.
    pub fn failing(&mut self, count: u64) {
        self.failing = count;
        self.say(&[]);
    }

    /// A full pass starts: the first says the service is ready.
    pub fn pass_started(&mut self) {
        if !READY.swap(true, Ordering::Relaxed) {
            self.sent.clear();
            self.say(&[NotifyState::Ready]);
        }
    }

    /// The way out: `STOPPING=1`, with the final state.
    pub fn stopping(&mut self, state: State) {
        self.state(state, None);
        send(&[NotifyState::Stopping]);
    }

    /// The status line: the state, the paths failing, the last pass.
    fn line(&self) -> String {
        let mut line = self.state.clone();
        if self.failing > 0 {
            line.push_str(&format!("; {} paths failing", self.failing));
        }
        if let Some(pass) = &self.last_pass {
            line.push_str(&format!("; last pass: {pass}"));
        }
        line
    }

    fn say(&mut self, with: &[NotifyState]) {
        let line = self.line();
        if line == self.sent && with.is_empty() {
            return;
        }
        let mut states = with.to_vec();
        states.push(NotifyState::Status(&line));
        send(&states);
        self.sent = line;
    }
}

/// Around `reload` (SIGHUP's reopening of the log): `RELOADING=1` with the monotonic time
/// (which `Type=notify-reload` requires), then `READY=1` again, unless start-up is not over.
pub fn reloading(reload: impl FnOnce()) {
    let mut states = vec![NotifyState::Reloading];
    states.extend(NotifyState::monotonic_usec_now().ok());
    let ready = READY.load(Ordering::Relaxed);
    if ready {
        send(&states);
    }
    reload();
    if ready {
        send(&[NotifyState::Ready]);
    }
}

/// `WATCHDOG=1`, every half of `WatchdogSec=` (from `WATCHDOG_USEC`, if it names this
/// process): from the run loop between passes, and from a thread of its own during a pass or a
/// batch, as long as its counters move. A pass that moves nothing for `WatchdogSec=` (a hung
/// file system) is left to systemd, which restarts the service.
pub struct Watchdog {
    every: Option<Duration>,
    last: Instant,
}

impl Watchdog {
    pub fn from_env() -> Watchdog {
        Watchdog {
            // sd_watchdog_enabled(3) takes 0 as no watchdog; a ping at least every
            // millisecond keeps a tiny one from spinning the run loop.
            every: sd_notify::watchdog_enabled()
                .filter(|usec| !usec.is_zero())
                .map(|usec| (usec / 2).max(Duration::from_millis(1))),
            last: Instant::now(),
        }
    }

    /// When the next ping is due, if there is a watchdog.
    pub fn due(&self) -> Option<Instant> {
        self.every.map(|every| self.last + every)
    }

    /// Pings if one is due (the run loop turned).
    pub fn keep(&mut self) {
        if self.due().is_some_and(|due| Instant::now() >= due) {
            send(&[NotifyState::Watchdog]);
            self.last = Instant::now();
        }
    }

    /// Runs `work` (a pass or a batch counting into `stats`), pinging meanwhile while the
    /// counters move.
    pub fn during<T>(&mut self, stats: &Stats, work: impl FnOnce() -> T) -> T {
        let Some(every) = self.every else {
            return work();
        };
        self.keep();
        let last = self.last;
        let (out, last) = std::thread::scope(|scope| {
            let (done, finished) = crossbeam_channel::bounded::<()>(0);
            let pinger = scope.spawn(move || {
                let moved = || (stats.snapshot(), stats.moving());
                let (mut last, mut seen) = (last, moved());
                loop {
                    let left = (last + every).saturating_duration_since(Instant::now());
                    match finished.recv_timeout(left) {
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        _ => return last,
                    }
                    let now = moved();
                    if now != seen {
                        seen = now;
                        send(&[NotifyState::Watchdog]);
                        last = Instant::now();
                    } else {
                        // Looked at again after a while: no ping for a pass that stands still.
                        last += every / 4;
                    }
                }
            });
            let out = work();
            drop(done);
            (out, pinger.join().unwrap_or(last))
        });
        self.last = last;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_the_state_the_failing_paths_and_the_last_pass() {
        let mut status = Status::default();
        status.state(State::Passing, None);
        assert_eq!(status.line(), "passing");
        status.state(State::ReplicaMissing, Some("REPLICA /m is gone"));
        status.failing(2);
        status.pass("ok, 3 checked".into());
        assert_eq!(
            status.line(),
            "replica-missing (REPLICA /m is gone); 2 paths failing; last pass: ok, 3 checked"
        );
        status.failing(0);
        status.state(State::Watching, None);
        assert_eq!(status.line(), "watching; last pass: ok, 3 checked");
    }
}
