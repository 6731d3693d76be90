//! The live progress line of a long pass, on a terminal only: entries scanned, changes made,
//! files and bytes copied, and the rate. It appears once a pass has run for two seconds, log
//! lines are written around it (see `logging`), and it is cleared at the pass's end or at once
//! on a stop (Ctrl+C, SIGTERM). A remote pass feeds it from what rsync reports as it runs (its
//! changes, and each file's bytes once the remote side wrote it); rsync's count of the entries
//! it scanned comes only at its end, so the line leaves them out until there are some.

use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

use crate::logging;
use crate::stats::{Counts, Stats};
use crate::stop::Stop;

/// How long a pass runs before the progress line appears.
const DELAY: Duration = Duration::from_secs(2);
/// How often the line is refreshed.
const REFRESH: Duration = Duration::from_millis(200);

/// Runs `work` (a pass counting into `stats`), showing its progress if it takes a while; a
/// `stop` clears the line at once.
pub fn during<T>(stats: &Stats, stop: &Stop, work: impl FnOnce() -> T) -> T {
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
            while !stop.is_set() {
                bar.set_message(line(&stats.snapshot(), started.elapsed()));
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

/// The line: what `c` counted so far, in `elapsed`. Bytes are those written into REPLICA
/// (a dry run's: those it would write).
fn line(c: &Counts, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let scanned = match c.checked {
        0 => String::new(),
        n => format!("{n} entries scanned, "),
    };
    let changed = c.copied + c.updated + c.created + c.removed + c.renamed + c.linked;
    format!(
        "pass: {scanned}{changed} changed, {} files copied, {} moved, {}/s, {:.0} s",
        c.copied + c.updated,
        HumanBytes(c.bytes),
        HumanBytes((c.bytes as f64 / secs) as u64),
        secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Change;

    #[test]
    fn the_line_counts_what_a_remote_pass_moved_as_it_goes() {
        let stats = Stats::new();
        let start = line(&stats.snapshot(), Duration::from_secs(1));
        assert_eq!(
            start,
            "pass: 0 changed, 0 files copied, 0 B moved, 0 B/s, 1 s"
        );
        // What rsync reports as it runs (see `remote::run`): each change said and counted,
        // each file's bytes once the remote side wrote it.
        for (i, size) in [(0, 600u64 << 20), (1, 210 << 20)] {
            let change = Change::Copied {
                rel: format!("f{i}").into(),
                bytes: size,
                update: false,
                kept: None,
                meta: None,
                open: false,
                appended: false,
            };
            change.tally(&stats);
            stats.add_bytes(size);
        }
        Change::MadeDir { rel: "d".into() }.tally(&stats);
        let now = line(&stats.snapshot(), Duration::from_secs(10));
        assert_eq!(
            now,
            "pass: 3 changed, 2 files copied, 810.00 MiB moved, 81.00 MiB/s, 10 s"
        );
        // A local pass counts the entries it looked at, and bytes as they are written.
        let local = Stats::new();
        local.add_n(crate::stats::Count::Checked, 20);
        local.add_moving(2048);
        let now = line(&local.snapshot(), Duration::from_secs(2));
        assert_eq!(
            now,
            "pass: 20 entries scanned, 0 changed, 0 files copied, 2.00 KiB moved, 1.00 KiB/s, 2 s"
        );
    }
}
