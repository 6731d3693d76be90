//! The filesystem watcher. It owns its threads (notify's inotify thread and its own), and hands
//! the run loop one channel of typed messages: hints, "a full pass is needed", and problems with
//! advice. Inside, raw events go to a debouncer that sleeps while nothing happens
//! ([`relay`]), and the paths the debouncer loses are kept aside and sent later ([`hints`]).

pub mod hints;
pub mod mounts;
mod outbox;
pub mod relay;
pub mod shared;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::timing::Timing;

use crossbeam_channel::{after, never, select, Receiver, Sender, TrySendError};
use notify::event::EventKind;
use notify::{Event, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::DebounceEventResult;

use hints::{is_closed_after_write, is_read, RawHint};
pub use hints::{Hint, Scope};
use outbox::Outbox;
use relay::OnDemandDebouncer;

/// What the watcher tells the run loop.
#[derive(Debug, Clone)]
pub enum WatchMsg {
    /// Paths to look at, renames, the root gone.
    Hints(Vec<Hint>),
    /// Events were lost (the kernel's queue overflowed, or the watcher failed), and with them
    /// possibly the watches of directories made meanwhile: the watch is to be made anew and a
    /// full pass run. Says why.
    Lost(String),
    /// A problem with the watch, to be logged as a warning. `degraded` says what part of the
    /// work now falls to the periodic passes.
    Trouble {
        message: String,
        degraded: Option<String>,
    },
    /// The mount table changed: a file system may have come or gone inside SOURCE.
    Mounts,
}

/// Advice for the inotify watch limit, the error notify reports as `MaxFilesWatch`.
pub const WATCH_LIMIT_ADVICE: &str = "the inotify watch limit is reached, so part of SOURCE is \
not watched and changes there wait for the next full pass; raise it with \
`sysctl fs.inotify.max_user_watches=1048576` (and persist it in /etc/sysctl.d/)";

/// A running watch on SOURCE.
pub struct Watcher {
    messages: Receiver<WatchMsg>,
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
    /// The mount table's watch, where there is one.
    _mounts: Option<mounts::MountWatch>,
}

impl Watcher {
    /// Watches SOURCE recursively, without following symlinks. The watch is in place when this
    /// returns; if it could only be set up in part (the watch limit, an unreadable directory),
    /// the first message says so and the periodic passes carry what is not watched.
    /// Deletions are sent on at once, unless `gather_removals` (with `--max-delete`, whose limit
    /// counts what one burst removes, they are debounced like everything else).
    pub fn start(scope: Scope, timing: Timing, gather_removals: bool) -> notify::Result<Watcher> {
        // Bounded too: past it, events are dropped and the loss is said (see [`outbox`]).
        let (raw_tx, raw_rx) = crossbeam_channel::bounded(RAW_CAPACITY);
        let raw_dropped = Arc::new(AtomicBool::new(false));
        let dropped = raw_dropped.clone();
        let mut inotify = <RecommendedWatcher as notify::Watcher>::new(
            move |event: notify::Result<Event>| {
                // Reads (the mirror's own among them, and any reader of SOURCE) change nothing:
                // dropped on notify's thread, so a busy reader cannot fill the channel.
                if event.as_ref().is_ok_and(is_read) {
                    return;
                }
                if let Err(TrySendError::Full(_)) = raw_tx.try_send(event) {
                    dropped.store(true, Ordering::Relaxed);
                }
            },
            notify::Config::default().with_follow_symlinks(false),
        )?;
        let partial =
            notify::Watcher::watch(&mut inotify, &scope.root, RecursiveMode::Recursive).err();
        let (out, messages) = crossbeam_channel::bounded(outbox::CAPACITY);
        if let Some(e) = partial {
            let _ = out.send(trouble(&e, false));
        }
        let mount_watch = mounts::MountWatch::start(out.clone());
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
        let (debounced_tx, debounced) = crossbeam_channel::unbounded();
        let worker = Worker {
            sleepy: OnDemandDebouncer::new(&scope.root, timing, debounced_tx),
            scope,
            timing,
            out: Outbox::new(out),
            raw_dropped,
            raw: VecDeque::new(),
            inotify,
            swapped: false,
            gather_removals,
        };
        let thread = thread::Builder::new()
            .name("watch".into())
            .spawn(crate::label::carry(move || {
                worker.run(&raw_rx, &debounced, &stop_rx)
            }))
            .map_err(notify::Error::io)?;
        Ok(Watcher {
            messages,
            stop,
            thread: Some(thread),
            _mounts: mount_watch,
        })
    }

    /// The watcher's messages. When the channel closes, the watch has ended.
    pub fn messages(&self) -> &Receiver<WatchMsg> {
        &self.messages
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A watcher error as a message: the watch limit leaves part of SOURCE to the passes; any other
/// error (at start-up, a directory that could not be watched) is said, and while running means
/// events may have been lost.
fn trouble(e: &notify::Error, running: bool) -> WatchMsg {
    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
        WatchMsg::Trouble {
            message: WATCH_LIMIT_ADVICE.into(),
            degraded: Some(
                "inotify watch limit reached: part of SOURCE is carried by passes only".into(),
            ),
        }
    } else if running {
        WatchMsg::Lost(format!(
            "the watcher failed: {}",
            crate::escape::text(&e.to_string())
        ))
    } else {
        WatchMsg::Trouble {
            message: format!("watcher: {}", crate::escape::text(&e.to_string())),
            degraded: None,
        }
    }
}

/// How many events from notify's thread wait for the watch thread at most.
const RAW_CAPACITY: usize = 65_536;

/// How many waiting events the watch thread takes in one go before it looks at its timer.
const RAW_BURST: usize = 1024;

/// What the watcher says when the kernel's event queue overflowed.
const OVERFLOW: &str = "the kernel's event queue overflowed (raise fs.inotify.max_queued_events \
                        if it happens often)";

/// The watch thread's state.
struct Worker {
    scope: Scope,
    timing: Timing,
    sleepy: OnDemandDebouncer,
    out: Outbox,
    /// notify's thread dropped events: the channel from it was full.
    raw_dropped: Arc<AtomicBool>,
    /// Raw hints, held until the debounced events of their moment have been sent.
    raw: VecDeque<RawHint>,
    /// The inotify watcher: it lives, and its watches with it, as long as this thread.
    inotify: RecommendedWatcher,
    /// A directory swapped for a symlink has been met (said once).
    swapped: bool,
    /// Deletions go through the debouncer, so that a burst comes as one batch.
    gather_removals: bool,
}

impl Worker {
    fn run(
        mut self,
        raw: &Receiver<notify::Result<Event>>,
        debounced: &Receiver<DebounceEventResult>,
        stop: &Receiver<()>,
    ) {
        loop {
            let due = [
                self.raw.front().map(|h| h.seen + self.raw_delay()),
                self.sleepy.sleep_due(),
                self.out.owes().then(|| Instant::now() + self.raw_delay()),
            ]
            .into_iter()
            .flatten()
            .min();
            let timer = due.map_or_else(never, |d| {
                after(d.saturating_duration_since(Instant::now()))
            });
            let sent = select! {
                recv(stop) -> _ => return,
                recv(raw) -> msg => match msg {
                    Ok(event) => {
                        let mut ok = self.raw_event(event);
                        // At most a burst at a time: events that keep coming must not keep the
                        // timer (raw hints, a loss to say, the debouncer's sleep) from its turn.
                        for event in raw.try_iter().take(RAW_BURST) {
                            ok &= self.raw_event(event);
                        }
                        if self.raw_dropped.swap(false, Ordering::Relaxed) {
                            ok &= self.out.send(WatchMsg::Lost(outbox::FELL_BEHIND.into()));
                        }
                        ok
                    }
                    Err(_) => {
                        self.out.send(WatchMsg::Lost("the watcher stopped".into()));
                        return;
                    }
                },
                recv(debounced) -> msg => match msg {
                    Ok(batch) => self.debounced(batch),
                    Err(_) => true,
                },
                recv(timer) -> _ => {
                    self.sleepy.try_sleep();
                    self.out.flush() && self.mature()
                }
            };
            if !sent {
                // The run loop is gone.
                return;
            }
        }
    }

    /// How long raw hints wait: past the debounce time and the debouncer's tick, so the
    /// debounced events of the same moment (a rename pair, above all) are applied first.
    fn raw_delay(&self) -> Duration {
        self.timing.settle()
    }

    fn raw_event(&mut self, event: notify::Result<Event>) -> bool {
        match event {
            // Events were dropped by the kernel: only a new watch and a full pass can tell
            // what changed. Said at once, not debounced.
            Ok(e) if e.need_rescan() => self.out.send(WatchMsg::Lost(OVERFLOW.into())),
            // A file its writer has closed is looked at at once: its bytes are final for now,
            // and waiting for the debounce would only add latency. The debounced events for it
            // come later and find nothing left to do.
            Ok(e) if is_closed_after_write(&e) && !self.scope.is_own(&e) => {
                let found: Vec<Hint> = e
                    .paths
                    .iter()
                    .filter_map(|p| self.scope.relative(p))
                    .map(|rel| Hint::Path(rel, crate::replica::Look::ENTRY))
                    .collect();
                found.is_empty() || self.out.send(WatchMsg::Hints(found))
            }
            // Reads (dropped on notify's thread already) change nothing, and foldersync's own files
            // (the log, the status file and its temporary files) must not feed the mirror,
            // not even through their directory.
            Ok(e) if matches!(e.kind, EventKind::Access(_)) || self.scope.is_own(&e) => true,
            Ok(e) => {
                // A rename the kernel paired is sent on at once, so that it comes before any
                // look at the new name's contents (a writer's close right after it is sent at
                // once too): otherwise that look would make the new name anew in REPLICA. The
                // debounced rename that follows finds it done.
                let paired = matches!(
                    e.kind,
                    EventKind::Modify(notify::event::ModifyKind::Name(
                        notify::event::RenameMode::Both
                    ))
                );
                if let Some(hint) = hints::rename(&e, &self.scope).filter(|_| paired) {
                    if !self.out.send(WatchMsg::Hints(vec![hint])) {
                        return false;
                    }
                }
                // A deletion is final (never half of a rename): looked at at once too. The
                // debounced events that follow (its directory's times) find it done.
                if matches!(e.kind, EventKind::Remove(_)) && !self.gather_removals {
                    let gone: Vec<Hint> = e
                        .paths
                        .iter()
                        .filter_map(|p| self.scope.relative(p))
                        .map(|rel| Hint::Path(rel, crate::replica::Look::REMOVED))
                        .collect();
                    if !gone.is_empty() && !self.out.send(WatchMsg::Hints(gone)) {
                        return false;
                    }
                }
                self.unwatch_swapped(&e);
                if !self.watch_new_directory(&e) {
                    return false;
                }
                self.raw.extend(hints::raw_hints(&e, Instant::now()));
                match self.sleepy.feed(Ok(e)) {
                    Ok(()) => true,
                    Err(e) => self.out.send(trouble(&e, true)),
                }
            }
            Err(e) => self.out.send(trouble(&e, true)),
        }
    }

    /// A directory made or moved in: notify passes its event on at once but watches it only
    /// once it has read every queued event, so what is made in it meanwhile raises no event and
    /// a walk made on the event alone could miss it. So the directory is watched here first (a
    /// request to notify's own thread, answered once that thread has done what it was at, its
    /// own watch of the directory included), and then looked at as a whole: whatever the walk
    /// misses comes after the watch, and raises events. Returns false if the run loop is gone.
    fn watch_new_directory(&mut self, event: &Event) -> bool {
        use notify::event::{CreateKind, ModifyKind, RenameMode};
        let path = match (&event.kind, event.paths.as_slice()) {
            (EventKind::Create(CreateKind::Folder), [path]) => path,
            (EventKind::Modify(ModifyKind::Name(RenameMode::To)), [path]) => path,
            (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), [_, path]) => path,
            _ => return true,
        };
        if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            return true;
        }
        let Some(rel) = self.scope.relative(path) else {
            return true;
        };
        if let Err(e) = notify::Watcher::watch(&mut self.inotify, path, RecursiveMode::Recursive) {
            if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                return self.out.send(trouble(&e, true));
            }
        }
        // The second half of a rename comes first as a name moved in, then, if the kernel
        // paired it, as the rename itself (notify sends both): a look at the new name now would
        // make it anew in REPLICA before the rename could move it there. The watch is enough:
        // the raw hint (held past the debounce) looks at it as moved in if no rename claims it.
        if matches!(
            event.kind,
            EventKind::Modify(ModifyKind::Name(RenameMode::To))
        ) {
            return true;
        }
        self.out.send(WatchMsg::Hints(vec![Hint::Path(
            rel,
            crate::replica::Look::TREE,
        )]))
    }

    /// notify adds watches for a new directory by walking it, and follows it if a symlink has
    /// taken its place by then: the walk reaches outside SOURCE (listings only; the mirror reads
    /// nothing through a symlink) and spends watches. When a new name turns out to be a symlink,
    /// the watches notify added for it are removed.
    fn unwatch_swapped(&mut self, event: &Event) {
        let new = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(notify::event::ModifyKind::Name(_))
        );
        if !new {
            return;
        }
        for path in &event.paths {
            let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if is_link && notify::Watcher::unwatch(&mut self.inotify, path).is_ok() && !self.swapped
            {
                self.swapped = true;
                log::warn!(
                    "{}: a directory in SOURCE became a symlink while it was being watched; the \
                     watches made through it were removed",
                    crate::escape::esc(path)
                );
            }
        }
    }

    fn debounced(&mut self, batch: DebounceEventResult) -> bool {
        match batch {
            Ok(events) => {
                let found = hints::hints(&events, &self.scope);
                found.is_empty() || self.out.send(WatchMsg::Hints(found))
            }
            Err(errors) => errors.iter().all(|e| self.out.send(trouble(e, true))),
        }
    }

    /// Sends the raw hints that have waited long enough.
    fn mature(&mut self) -> bool {
        let now = Instant::now();
        let delay = self.raw_delay();
        let mut found = Vec::new();
        while self.raw.front().is_some_and(|h| now >= h.seen + delay) {
            if let Some(hint) = self.raw.pop_front() {
                if let Some(rel) = self.scope.relative(&hint.path) {
                    found.push(Hint::Path(rel, hint.look));
                }
            }
        }
        found.is_empty() || self.out.send(WatchMsg::Hints(found))
    }
}
