//! The run loop: full passes at start-up, every interval and on demand, and in between the
//! watcher's hints applied as targeted single-path operations. One `select!` waits on the stop
//! channel, the watcher's channel and the next deadline.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{after, never, select, Receiver};
use log::{debug, error, info, warn};
use notify_debouncer_full::DebounceEventResult;

use crate::config::{self, Config};
use crate::exit;
use crate::mirror::{Look, Mirror};
use crate::progress;
use crate::stats::Stats;
use crate::status::{self, State, Status, StatusFile};
use crate::stop::Stop;
use crate::watch::{self, Hint, RawHint, Watcher};

/// How often SOURCE's identity is checked while watching and it is there. Its removal or move
/// is reported by the watch at once, and every pass and batch checks it before acting; this
/// catches what sends no event (an unmount, a directory swapped in).
const ROOT_CHECK: Duration = Duration::from_secs(5);
/// How often SOURCE is looked for while it is missing.
const ROOT_RETRY: Duration = Duration::from_secs(1);

/// SOURCE's identity: a different device means an unmounted file system, a different inode a
/// directory recreated in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootId {
    dev: u64,
    ino: u64,
}

/// Looks at SOURCE: a directory (readable, when `readable` is asked: that opens it, which the
/// watch reports, so the once-a-second check does without), and its identity.
pub fn root_id(source: &Path, readable: bool) -> Result<RootId, String> {
    let meta = fs::metadata(source)
        .map_err(|e| format!("SOURCE {} is unavailable: {e}", source.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "SOURCE {} is no longer a directory",
            source.display()
        ));
    }
    if readable {
        fs::read_dir(source)
            .map_err(|e| format!("SOURCE {} is not readable: {e}", source.display()))?;
    }
    Ok(RootId {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// A rename seen in SOURCE: from, to (both relative).
type Rename = (PathBuf, PathBuf);

/// Paths to look at, coalesced: the deeper look wins, renames keep their order.
#[derive(Debug, Default)]
struct Pending {
    paths: BTreeMap<PathBuf, Look>,
    renames: Vec<Rename>,
}

impl Pending {
    fn add(&mut self, path: PathBuf, look: Look) {
        let entry = self.paths.entry(path).or_default();
        *entry = entry.merge(look);
    }

    fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.renames.is_empty()
    }

    fn clear(&mut self) {
        self.paths.clear();
        self.renames.clear();
    }

    /// The paths in order, without those that a whole-tree look at an ancestor already covers
    /// (unless their bytes are known to have changed, which a walk would not see).
    fn take(&mut self) -> (Vec<Rename>, Vec<(PathBuf, Look)>) {
        let mut out: Vec<(PathBuf, Look)> = Vec::with_capacity(self.paths.len());
        let mut covering: Option<PathBuf> = None;
        for (path, look) in std::mem::take(&mut self.paths) {
            if !look.content && covering.as_ref().is_some_and(|c| path.starts_with(c)) {
                continue;
            }
            if look.tree && !covering.as_ref().is_some_and(|c| path.starts_with(c)) {
                covering = Some(path.clone());
            }
            out.push((path, look));
        }
        (std::mem::take(&mut self.renames), out)
    }
}

/// The mutable state of a running mirror.
pub struct Runner<'a> {
    config: &'a Config,
    mirror: &'a Mirror,
    stop: &'a Stop,
    stop_rx: Receiver<()>,
    /// The device SOURCE was on at start-up; the inode of the directory being watched.
    root: RootId,
    /// What is wrong with SOURCE, as last logged; `None` while it is usable. A lasting problem is
    /// logged once, and again only if it changes (gone, then back but empty).
    root_problem: Option<String>,
    /// When to check SOURCE's identity next (watch mode only).
    next_root_check: Option<Instant>,
    watcher: Option<Watcher>,
    watch_limit_reported: bool,
    pending: Pending,
    /// Raw hints, held until the debounced events of their moment have been applied.
    raw: VecDeque<RawHint>,
    retries: Vec<PathBuf>,
    retry_due: Option<Instant>,
    /// A full pass is queued, to start no sooner than `pass_not_before`.
    pass_wanted: bool,
    pass_not_before: Instant,
    /// Whether the queued pass was asked for by a rescan (overflow, watcher errors).
    pass_is_rescan: bool,
    next_periodic: Instant,
    /// The least time between the end of a pass and a rescan-driven pass; it doubles while
    /// rescan passes find nothing to do, so a pass's own events cannot keep triggering passes.
    rescan_gap: Duration,
    errors_in_last_pass: u64,
    /// Why the mirror relies on passes more than it should (watch limit, no watcher).
    degraded: Option<String>,
    status: Option<StatusFile>,
}

impl<'a> Runner<'a> {
    pub fn new(
        config: &'a Config,
        mirror: &'a Mirror,
        stop: &'a Stop,
        stop_rx: Receiver<()>,
        root: RootId,
    ) -> Self {
        let now = Instant::now();
        Runner {
            config,
            mirror,
            stop,
            stop_rx,
            root,
            root_problem: None,
            next_root_check: config.watch.then(|| now + ROOT_CHECK),
            watcher: None,
            watch_limit_reported: false,
            pending: Pending::default(),
            raw: VecDeque::new(),
            retries: Vec::new(),
            retry_due: None,
            pass_wanted: true,
            pass_not_before: now,
            pass_is_rescan: false,
            next_periodic: now + config.interval,
            rescan_gap: Duration::from_secs(1),
            errors_in_last_pass: 0,
            degraded: None,
            status: config.status_file.clone().map(|path| {
                StatusFile::new(
                    path,
                    Status::new(
                        mirror.source(),
                        mirror.replica(),
                        config.interval,
                        State::Passing,
                    ),
                )
            }),
        }
    }

    /// Runs until stopped (or after one pass with `--once`) and returns the exit status.
    pub fn run(mut self) -> u8 {
        if let Some(status) = self.status.as_mut() {
            status.write();
        }
        if self.config.watch {
            // The watch is in place before the first pass, so nothing changed during it is lost.
            self.start_watcher();
        }
        loop {
            if self.stop.is_set() {
                return self.stopped();
            }
            let now = Instant::now();
            if self.pass_wanted && now >= self.pass_not_before {
                self.full_pass();
                if self.config.once && !self.stop.is_set() {
                    return if self.errors_in_last_pass > 0 {
                        exit::PASS_ERRORS
                    } else {
                        exit::SUCCESS
                    };
                }
                continue;
            }
            if !self.pending.is_empty() {
                self.apply_pending();
                continue;
            }

            let mut deadline = self.next_periodic;
            if self.pass_wanted {
                deadline = deadline.min(self.pass_not_before);
            }
            if let Some(due) = self.retry_due {
                deadline = deadline.min(due);
            }
            if let Some(first) = self.raw.front() {
                deadline = deadline.min(first.seen + self.raw_delay());
            }
            if let Some(due) = self.watcher.as_ref().and_then(Watcher::sleep_due) {
                deadline = deadline.min(due);
            }
            if let Some(due) = self.next_root_check {
                deadline = deadline.min(due);
            }
            if let Some(due) = self.status.as_ref().and_then(StatusFile::due) {
                deadline = deadline.min(due);
            }
            let (events, raw, wake) = match &self.watcher {
                Some(w) => (w.events.clone(), w.raw.clone(), w.wake.clone()),
                None => (never(), never(), never()),
            };
            select! {
                recv(self.stop_rx) -> _ => return self.stopped(),
                recv(events) -> msg => match msg {
                    Ok(batch) => {
                        self.absorb(batch);
                        // Coalesce whatever else is already waiting.
                        while let Ok(batch) = events.try_recv() {
                            self.absorb(batch);
                        }
                        self.note_pending();
                    }
                    Err(_) => {
                        warn!("the watcher stopped; restarting it and running a full pass");
                        self.watcher = None;
                        self.start_watcher();
                        self.want_pass(true);
                    }
                },
                recv(raw) -> msg => {
                    if let Ok(hint) = msg {
                        self.raw.push_back(hint);
                        self.raw.extend(raw.try_iter());
                    }
                    self.mature_raw();
                }
                recv(wake) -> _ => self.wake_debouncer(),
                recv(after(deadline.saturating_duration_since(Instant::now()))) -> _ => {
                    let now = Instant::now();
                    if now >= self.next_periodic {
                        self.want_pass(false);
                    }
                    self.mature_raw();
                    if self.next_root_check.is_some_and(|due| now >= due) {
                        self.check_root(false);
                        let every = if self.root_problem.is_none() {
                            ROOT_CHECK
                        } else {
                            ROOT_RETRY
                        };
                        self.next_root_check = Some(now + every);
                    }
                    if let Some(watcher) = self.watcher.as_mut() {
                        watcher.try_sleep();
                    }
                    if self.retry_due.is_some_and(|due| now >= due) {
                        self.retry_due = None;
                        for path in std::mem::take(&mut self.retries) {
                            self.pending.add(path, Look::CONTENT);
                        }
                    }
                    if let Some(status) = self.status.as_mut() {
                        status.write_if_due();
                    }
                }
            }
        }
    }

    /// How long raw hints wait: past the debounce time and the debouncer's tick, so the debounced
    /// events of the same moment (a rename pair, above all) are applied first.
    fn raw_delay(&self) -> Duration {
        self.config.debounce * 2
    }

    /// Moves the raw hints that have waited long enough into the pending set.
    fn mature_raw(&mut self) {
        let now = Instant::now();
        let delay = self.raw_delay();
        let ignored = self.config.log_in_source.as_deref();
        while let Some(hint) = self.raw.front() {
            if now < hint.seen + delay {
                break;
            }
            if let Some(hint) = self.raw.pop_front() {
                if let Some(rel) = watch::relative(&hint.path, self.mirror.source(), ignored) {
                    if !self.mirror.ignores_hint(&rel) {
                        self.pending.add(rel, hint.look);
                    }
                }
            }
        }
    }

    fn wake_debouncer(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        if let Err(e) = watcher.wake() {
            warn!("cannot start the event debouncer ({e}); running a full pass instead");
            self.want_pass(true);
        }
    }

    fn stopped(&mut self) -> u8 {
        info!("stopped by user (Ctrl+C or SIGTERM)");
        if let Some(status) = self.status.as_mut() {
            status.doc.state = State::Stopped;
            status.doc.reason = None;
            status.write();
        }
        exit::SUCCESS
    }

    /// The state between passes, when SOURCE is fine.
    fn resting_state(&self) -> (State, Option<String>) {
        if let Some(reason) = &self.degraded {
            (State::Degraded, Some(reason.clone()))
        } else if self.config.watch {
            (State::Watching, None)
        } else {
            (State::PeriodicOnly, None)
        }
    }

    fn set_state(&mut self, state: State, reason: Option<String>) {
        if let Some(status) = self.status.as_mut() {
            if status.doc.state != state || status.doc.reason != reason {
                status.update(|doc| {
                    doc.state = state;
                    doc.reason = reason;
                });
            }
        }
    }

    fn note_pending(&mut self) {
        let pending = (self.pending.paths.len() + self.raw.len() + self.retries.len()) as u64;
        let pass_pending = self.pass_wanted;
        if let Some(status) = self.status.as_mut() {
            if status.doc.pending != pending || status.doc.pass_pending != pass_pending {
                status.update(|doc| {
                    doc.pending = pending;
                    doc.pass_pending = pass_pending;
                });
            }
        }
    }

    fn start_watcher(&mut self) {
        match Watcher::start(self.mirror.source(), self.config.debounce) {
            Ok((watcher, partial)) => {
                if let Some(e) = partial {
                    self.watch_error(&e);
                }
                self.watcher = Some(watcher);
            }
            Err(e) => {
                self.watch_error(&e);
                warn!("watching SOURCE failed ({e}); mirroring by periodic passes only");
                self.degraded = Some(format!("no watcher ({e}): periodic passes only"));
            }
        }
    }

    fn watch_error(&mut self, e: &notify::Error) {
        if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
            if !self.watch_limit_reported {
                warn!("{}", watch::WATCH_LIMIT_ADVICE);
                self.watch_limit_reported = true;
                self.degraded = Some(
                    "inotify watch limit reached: part of SOURCE is carried by passes only".into(),
                );
                let (state, reason) = self.resting_state();
                self.set_state(state, reason);
            }
        } else {
            warn!("watcher: {e}");
        }
    }

    /// Queues a full pass (at most one is pending). A rescan-driven one waits for the rescan gap.
    fn want_pass(&mut self, rescan: bool) {
        let now = Instant::now();
        if !self.pass_wanted {
            self.pass_wanted = true;
            self.pass_is_rescan = rescan;
            self.pass_not_before = if rescan { now + self.rescan_gap } else { now };
        } else if !rescan {
            self.pass_is_rescan = false;
            self.pass_not_before = now;
        }
    }

    fn absorb(&mut self, batch: DebounceEventResult) {
        match batch {
            Ok(events) => {
                let ignored = self.config.log_in_source.as_deref();
                for hint in watch::hints(&events, self.mirror.source(), ignored) {
                    match hint {
                        Hint::Path(path, look) => {
                            // Events in excluded directories are dropped here, early.
                            if !self.mirror.ignores_hint(&path) {
                                self.pending.add(path, look);
                            }
                        }
                        Hint::Rename(from, to) => {
                            self.pending.add(from.clone(), Look::ENTRY);
                            self.pending.add(to.clone(), Look::TREE);
                            self.pending.renames.push((from, to));
                        }
                        Hint::Rescan => {
                            debug!("watcher queue overflowed; a full pass is queued");
                            self.want_pass(true);
                        }
                        Hint::RootGone => {
                            self.check_root(false);
                        }
                    }
                }
            }
            Err(errors) => {
                for e in &errors {
                    self.watch_error(e);
                }
                self.want_pass(true);
            }
        }
    }

    /// Checks SOURCE's identity; logs once when it goes, restarts the watch when it is back.
    /// Returns whether SOURCE is usable.
    fn check_root(&mut self, readable: bool) -> bool {
        // While SOURCE is unusable every look is thorough, so it is not declared back too soon.
        let thorough = readable || self.root_problem.is_some();
        let source = self.mirror.source();
        let found = root_id(source, thorough)
            .map_err(|e| format!("{e}; REPLICA is left untouched until SOURCE is back"))
            .and_then(|id| {
                if id.dev != self.root.dev {
                    return Err(format!(
                        "SOURCE {} is now on another device (was its file system unmounted?); \
                     REPLICA is left untouched until SOURCE is back",
                        source.display()
                    ));
                }
                if thorough
                    && !self.config.allow_empty_source
                    && config::is_empty(source, self.config.log_in_source.as_deref())
                    && !config::is_empty(self.mirror.replica(), None)
                {
                    return Err(format!(
                    "SOURCE {} is empty while REPLICA is not: REPLICA is left untouched (restart \
                     with --allow-empty-source to let an empty SOURCE empty REPLICA)",
                    source.display()
                ));
                }
                Ok(id)
            });
        match found {
            Err(problem) => {
                if self.root_problem.as_ref() != Some(&problem) {
                    error!("{problem}");
                    if self.root_problem.is_none() && self.config.watch {
                        self.next_root_check = Some(Instant::now() + ROOT_RETRY);
                    }
                    self.set_state(State::SourceMissing, Some(problem.clone()));
                    self.root_problem = Some(problem);
                }
                // Whatever the watch reported is moot, and the watch itself is dead or stale.
                self.watcher = None;
                self.pending.clear();
                self.raw.clear();
                self.retries.clear();
                false
            }
            Ok(id) => {
                if self.root_problem.take().is_some() {
                    info!("SOURCE {} is back", self.mirror.source().display());
                    let (state, reason) = self.resting_state();
                    self.set_state(state, reason);
                    self.root = id;
                    self.restart_watch();
                } else if id != self.root {
                    warn!(
                        "SOURCE {} was replaced by another directory; watching the new one",
                        self.mirror.source().display()
                    );
                    self.root = id;
                    self.restart_watch();
                }
                true
            }
        }
    }

    fn restart_watch(&mut self) {
        self.pending.clear();
        self.raw.clear();
        if self.config.watch {
            self.watcher = None;
            self.start_watcher();
        }
        self.want_pass(false);
    }

    fn full_pass(&mut self) {
        self.pass_wanted = false;
        let was_rescan = self.pass_is_rescan;
        let started = Instant::now();
        let started_at = SystemTime::now();
        self.next_periodic = started + self.config.interval;
        if !self.check_root(true) {
            self.errors_in_last_pass = 1;
            if let Some(status) = self.status.as_mut() {
                let record =
                    status::pass_record(started_at, Duration::ZERO, &Default::default(), "skipped");
                status.update(|doc| {
                    doc.last_pass = Some(record);
                    doc.pass_pending = false;
                });
            }
            return;
        }
        self.set_state(State::Passing, None);
        // The pass looks at everything, so what was queued before it started is covered.
        self.pending.clear();
        self.raw.retain(|hint| hint.seen > started);
        self.retries.clear();
        self.retry_due = None;
        let stats = Stats::new();
        let mirror = self.mirror;
        progress::during(&stats, || mirror.full_pass(&stats));
        // Whether the stop cut the pass short, not whether it came just after.
        let interrupted = self.stop.is_set();
        let counts = stats.snapshot();
        let elapsed = started.elapsed();
        if interrupted {
            info!("pass interrupted: {}", counts.summary(elapsed));
        } else {
            info!("pass finished: {}", counts.summary(elapsed));
        }
        self.errors_in_last_pass = counts.errors;
        self.note_retries();
        let outcome = if interrupted {
            "interrupted"
        } else if counts.errors > 0 {
            "errors"
        } else {
            "ok"
        };
        let (state, reason) = self.resting_state();
        if let Some(status) = self.status.as_mut() {
            let record = status::pass_record(started_at, elapsed, &counts, outcome);
            status.update(|doc| {
                doc.last_pass = Some(record);
                doc.state = state;
                doc.reason = reason;
                doc.pass_pending = false;
            });
        }
        // The interval runs from the end of a pass, so a long pass never makes passes run back
        // to back.
        self.next_periodic = Instant::now() + self.config.interval;
        let base = elapsed.max(Duration::from_secs(1));
        self.rescan_gap = if was_rescan && !counts.changed() {
            (self.rescan_gap * 2).max(base).min(self.config.interval)
        } else {
            base
        };
    }

    fn apply_pending(&mut self) {
        if !self.check_root(true) {
            return;
        }
        let (renames, paths) = self.pending.take();
        let stats = Stats::new();
        for (from, to) in &renames {
            self.mirror.rename(from, to, &stats);
        }
        self.mirror.sync_paths(&paths, &stats);
        if let Some(status) = self.status.as_mut() {
            let applied = paths.len() as u64;
            status.update(|doc| doc.events_applied += applied);
        }
        self.note_pending();
        self.note_retries();
        let counts = stats.snapshot();
        if counts.changed() || counts.errors > 0 {
            debug!(
                "applied {} hints: {}",
                paths.len(),
                counts.summary(Duration::ZERO)
            );
        }
    }

    /// Files that changed while being copied are looked at again once the writer had time to
    /// go on: after one debounce period.
    fn note_retries(&mut self) {
        let retries = self.mirror.take_retries();
        if !retries.is_empty() {
            self.retries.extend(retries);
            self.retry_due
                .get_or_insert_with(|| Instant::now() + self.config.debounce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_paths_coalesce_under_a_tree_look() {
        let mut p = Pending::default();
        p.add("a/b/c".into(), Look::ENTRY);
        p.add("a".into(), Look::ENTRY);
        p.add("a/b".into(), Look::TREE);
        p.add("a b".into(), Look::ENTRY);
        p.add("a/b/d".into(), Look::ENTRY);
        p.add("a/b/e".into(), Look::CONTENT);
        p.add("a".into(), Look::ENTRY);
        let (_, paths) = p.take();
        assert_eq!(
            paths,
            vec![
                ("a".into(), Look::ENTRY),
                ("a/b".into(), Look::TREE),
                ("a/b/e".into(), Look::CONTENT),
                ("a b".into(), Look::ENTRY),
            ]
        );
        assert!(p.is_empty());
    }

    #[test]
    fn looks_merge() {
        let mut p = Pending::default();
        p.add("x".into(), Look::TREE);
        p.add("x".into(), Look::ENTRY);
        p.add("x".into(), Look::CONTENT);
        assert_eq!(p.take().1, vec![("x".into(), Look::NEW)]);
    }
}
