//! The live progress line of a long pass, on a terminal only: entries scanned, files and bytes
//! copied, and the rate. It appears once a pass has run for two seconds, and log lines are
//! written around it (see `logging`).

use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

use crate::logging;
use crate::stats::Stats;

/// How long a pass runs before the progress line appears.
const DELAY: Duration = Duration::from_secs(2);
/// How often the line is refreshed.
const REFRESH: Duration = Duration::from_millis(200);

/// Runs `work` (a pass counting into `stats`), showing its progress if it takes a while.
pub fn during<T>(stats: &Stats, work: impl FnOnce() -> T) -> T {
    let Some(multi) = logging::progress() else {
        return work();
    };
    thread::scope(|scope| {
        let (done, finished) = crossbeam_channel::bounded::<()>(0);
        scope.spawn(crate::label::carry(move || {
            let started = Instant::now();
            if finished.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let bar = multi.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            loop {
                bar.set_message(line(stats, started.elapsed()));
                bar.tick();
                if finished.recv_timeout(REFRESH) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
            }
            bar.finish_and_clear();
        }));
        let out = work();
        drop(done);
        out
    })
}

fn line(stats: &Stats, elapsed: Duration) -> String {
    let c = stats.snapshot();
    let moved = stats.moving();
    let secs = elapsed.as_secs_f64().max(0.001);
    format!(
        "pass: {} entries scanned, {} files copied, {} moved, {}/s, {:.0} s",
        c.checked,
        c.copied + c.updated,
        HumanBytes(moved),
        HumanBytes((moved as f64 / secs) as u64),
        secs
    )
}
