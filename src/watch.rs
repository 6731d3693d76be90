//! The filesystem watcher: notify's recursive inotify watch behind notify-debouncer-full, feeding
//! debounced batches over a crossbeam channel, and the translation of events into hints. Events
//! only say where to look, never what to do: the worker lstats every path it is given.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{Event, EventHandler, RecommendedWatcher, RecursiveMode, WatcherKind};
use notify_debouncer_full::{
    new_debouncer_opt, DebounceEventResult, DebouncedEvent, Debouncer, RecommendedCache,
};

use crate::mirror::Look;

/// A running watch on SOURCE: notify's inotify watcher, relaying events to a debouncer that
/// sleeps when nothing happens. notify-debouncer-full's thread wakes every quarter of the
/// debounce time for as long as it exists; stopping it after a quiet spell makes an idle mirror
/// cost nothing. Events that arrive while it sleeps are buffered and wake a new one.
pub struct Watcher {
    /// Owns the inotify watches; its thread blocks until the kernel has events.
    _inotify: RecommendedWatcher,
    relay: Arc<Mutex<Relay>>,
    debouncer: Option<Debouncer<RelayWatcher, RecommendedCache>>,
    root: PathBuf,
    debounce: Duration,
    events_tx: Sender<DebounceEventResult>,
    /// Debounced batches.
    pub events: Receiver<DebounceEventResult>,
    /// Paths that raw events named and the debounced batches may not: see [`raw_hints`].
    pub raw: Receiver<RawHint>,
    /// A message when events arrive while the debouncer sleeps: call [`Watcher::wake`].
    pub wake: Receiver<()>,
}

/// What the inotify thread and the run loop share.
#[derive(Default)]
struct Relay {
    /// The awake debouncer's event handler; `None` while it sleeps.
    handler: Option<Box<dyn EventHandler>>,
    /// Events that arrived while it slept.
    buffered: Vec<notify::Result<Event>>,
    last_event: Option<Instant>,
}

impl Watcher {
    /// Watches `root` recursively without following symlinks. The watcher is returned even when
    /// the recursive watch could only be set up in part (the inotify watch limit, an unreadable
    /// directory): the error comes with it, and the periodic passes carry what is not watched.
    pub fn start(
        root: &Path,
        debounce: Duration,
    ) -> Result<(Watcher, Option<notify::Error>), notify::Error> {
        let (events_tx, events) = crossbeam_channel::unbounded();
        let (raw_tx, raw) = crossbeam_channel::unbounded();
        let (wake_tx, wake) = crossbeam_channel::bounded(1);
        let relay = Arc::new(Mutex::new(Relay::default()));
        let shared = Arc::clone(&relay);
        let mut inotify = <RecommendedWatcher as notify::Watcher>::new(
            move |event: notify::Result<Event>| relay_event(&shared, &raw_tx, &wake_tx, event),
            notify::Config::default().with_follow_symlinks(false),
        )?;
        let partial = notify::Watcher::watch(&mut inotify, root, RecursiveMode::Recursive).err();
        let watcher = Watcher {
            _inotify: inotify,
            relay,
            debouncer: None,
            root: root.to_path_buf(),
            debounce,
            events_tx,
            events,
            raw,
            wake,
        };
        Ok((watcher, partial))
    }

    /// Starts a debouncer if none is awake, handing it the buffered events.
    pub fn wake(&mut self) -> Result<(), notify::Error> {
        if self.debouncer.is_some() {
            return Ok(());
        }
        // RelayWatcher::new runs inside new_debouncer_opt, on this thread.
        RELAY.with(|r| *r.borrow_mut() = Some(Arc::clone(&self.relay)));
        let debouncer = new_debouncer_opt::<_, RelayWatcher, RecommendedCache>(
            self.debounce,
            None,
            self.events_tx.clone(),
            RecommendedCache::new(),
            notify::Config::default(),
        );
        RELAY.with(|r| r.borrow_mut().take());
        let mut debouncer = debouncer?;
        // Registers the root with the debouncer; RelayWatcher itself watches nothing.
        debouncer.watch(&self.root, RecursiveMode::Recursive)?;
        self.debouncer = Some(debouncer);
        Ok(())
    }

    /// When the awake debouncer may be put to sleep: once no event came for three debounce
    /// periods (by then it has emitted everything it held).
    pub fn sleep_due(&self) -> Option<Instant> {
        self.debouncer.as_ref()?;
        let last = self.relay.lock().ok()?.last_event?;
        Some(last + self.quiet())
    }

    fn quiet(&self) -> Duration {
        (self.debounce * 3).max(Duration::from_millis(500))
    }

    /// Stops the debouncer's thread if no event came for a while.
    pub fn try_sleep(&mut self) {
        if self.debouncer.is_none() {
            return;
        }
        let Ok(mut relay) = self.relay.lock() else {
            return;
        };
        if relay
            .last_event
            .is_some_and(|last| last.elapsed() < self.quiet())
        {
            return;
        }
        // Under the lock: any later event is buffered, none goes to the stopping debouncer.
        relay.handler = None;
        drop(relay);
        if let Some(debouncer) = self.debouncer.take() {
            debouncer.stop_nonblocking();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Ok(mut relay) = self.relay.lock() {
            relay.handler = None;
        }
        if let Some(debouncer) = self.debouncer.take() {
            // Flags the debouncer's thread and returns; it exits at its next tick.
            debouncer.stop_nonblocking();
        }
    }
}

/// Runs on the inotify thread for every raw event: access events (the mirror's own reads of
/// SOURCE among them) are dropped, the raw hints are teed off, and the event goes to the awake
/// debouncer, or into the buffer with a wake-up call.
fn relay_event(
    relay: &Mutex<Relay>,
    raw: &Sender<RawHint>,
    wake: &Sender<()>,
    event: notify::Result<Event>,
) {
    if let Ok(e) = &event {
        if matches!(e.kind, EventKind::Access(_)) {
            return;
        }
        for hint in raw_hints(e) {
            let _ = raw.send(hint);
        }
    }
    let Ok(mut relay) = relay.lock() else {
        return;
    };
    relay.last_event = Some(Instant::now());
    match relay.handler.as_mut() {
        Some(handler) => handler.handle_event(event),
        None => {
            relay.buffered.push(event);
            let _ = wake.try_send(());
        }
    }
}

thread_local! {
    /// Hands the relay to [`RelayWatcher::new`], which notify's `Watcher` trait gives no other
    /// way to reach.
    static RELAY: RefCell<Option<Arc<Mutex<Relay>>>> = const { RefCell::new(None) };
}

/// The watcher type the debouncer is built with: it watches nothing itself, it only takes the
/// debouncer's event handler and plugs it into the relay, after feeding it the buffered events.
pub struct RelayWatcher;

impl notify::Watcher for RelayWatcher {
    fn new<F: EventHandler>(mut handler: F, _config: notify::Config) -> notify::Result<Self> {
        let relay = RELAY
            .with(|r| r.borrow_mut().take())
            .ok_or_else(|| notify::Error::generic("RelayWatcher made outside Watcher::wake"))?;
        let mut relay = relay
            .lock()
            .map_err(|_| notify::Error::generic("watcher relay poisoned"))?;
        for event in relay.buffered.drain(..) {
            handler.handle_event(event);
        }
        relay.handler = Some(Box::new(handler));
        Ok(RelayWatcher)
    }

    fn watch(&mut self, _path: &Path, _recursive_mode: RecursiveMode) -> notify::Result<()> {
        Ok(())
    }

    fn unwatch(&mut self, _path: &Path) -> notify::Result<()> {
        Ok(())
    }

    fn kind() -> WatcherKind {
        <RecommendedWatcher as notify::Watcher>::kind()
    }
}

/// A path named by a raw (not yet debounced) event, with when it was seen.
#[derive(Debug, Clone)]
pub struct RawHint {
    pub seen: Instant,
    pub path: PathBuf,
    pub look: Look,
}

/// The raw hints of one undebounced event. The debouncer drops information the mirror needs: a
/// rename chain `a -> b -> a` over an existing `b` collapses to `a -> a` and `b` is never named
/// again, and a file created and removed within one window produces no event although its
/// directory's mtime changed. So every rename's paths and the parent directory of every create,
/// remove and rename also go, undebounced, to the worker, which looks at them once the debounced
/// events of the same moment have been applied.
fn raw_hints(event: &Event) -> Vec<RawHint> {
    let seen = Instant::now();
    let mut out = Vec::new();
    let parents = |out: &mut Vec<RawHint>| {
        for path in &event.paths {
            if let Some(parent) = path.parent() {
                out.push(RawHint {
                    seen,
                    path: parent.to_path_buf(),
                    look: Look::ENTRY,
                });
            }
        }
    };
    match event.kind {
        EventKind::Modify(ModifyKind::Name(mode)) => {
            for (i, path) in event.paths.iter().enumerate() {
                let moved_in = mode == RenameMode::To || (mode == RenameMode::Both && i == 1);
                out.push(RawHint {
                    seen,
                    path: path.clone(),
                    look: if moved_in { Look::TREE } else { Look::ENTRY },
                });
            }
            parents(&mut out);
        }
        EventKind::Create(_) | EventKind::Remove(_) => parents(&mut out),
        _ => {}
    }
    out
}

/// What one event tells the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Look at this path (relative to SOURCE), this closely.
    Path(PathBuf, Look),
    /// Something was renamed from the first path to the second (both relative to SOURCE).
    Rename(PathBuf, PathBuf),
    /// Events were lost (queue overflow): only a full pass can tell what changed.
    Rescan,
    /// SOURCE itself was removed or moved away.
    RootGone,
}

/// Turns a debounced batch into hints. Access events and meta events change nothing and are
/// dropped; so are paths outside SOURCE and the `ignored` path (the log file), so the mirror never
/// feeds itself.
pub fn hints(events: &[DebouncedEvent], root: &Path, ignored: Option<&Path>) -> Vec<Hint> {
    let mut out = Vec::new();
    for event in events {
        if event.need_rescan() {
            out.push(Hint::Rescan);
            continue;
        }
        let rel = |p: &PathBuf| relative(p, root, ignored);
        let touches_root = event.paths.iter().any(|p| p == root);
        let paths = |look: Look| {
            event
                .paths
                .iter()
                .filter_map(rel)
                .map(move |p| Hint::Path(p, look))
        };
        match event.kind {
            EventKind::Access(_) | EventKind::Other => {}
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
                if touches_root =>
            {
                out.push(Hint::RootGone)
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if event.paths.len() == 2 => {
                match (rel(&event.paths[0]), rel(&event.paths[1])) {
                    (Some(from), Some(to)) => out.push(Hint::Rename(from, to)),
                    (Some(from), None) => out.push(Hint::Path(from, Look::ENTRY)),
                    (None, Some(to)) => out.push(Hint::Path(to, Look::NEW)),
                    (None, None) => {}
                }
            }
            // Moved out: a removal as far as the mirror is concerned.
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                out.extend(paths(Look::ENTRY));
            }
            // New or moved-in entries are looked at as a whole: nothing was reported for the
            // contents of a moved-in directory, nor for files made in a new one before its watch.
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)) | EventKind::Any => {
                out.extend(paths(Look::NEW));
            }
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                out.extend(paths(Look::CONTENT));
            }
            EventKind::Modify(_) | EventKind::Remove(_) => out.extend(paths(Look::ENTRY)),
        }
    }
    out
}

/// `path` relative to `root`, unless it is outside it or is the `ignored` path.
pub fn relative(path: &Path, root: &Path, ignored: Option<&Path>) -> Option<PathBuf> {
    let rel = path.strip_prefix(root).ok()?;
    if ignored.is_some_and(|ig| ig == rel) {
        return None;
    }
    Some(rel.to_path_buf())
}

/// Advice for the inotify watch limit, the error notify reports as `MaxFilesWatch`.
pub const WATCH_LIMIT_ADVICE: &str =
    "the inotify watch limit is reached, so part of SOURCE is not \
watched and changes there wait for the next full pass; raise it with \
`sysctl fs.inotify.max_user_watches=1048576` (and persist it in /etc/sysctl.d/)";

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, DataChange, Event, Flag, RemoveKind};
    use std::time::Instant;

    fn ev(kind: EventKind, paths: &[&str]) -> DebouncedEvent {
        let mut e = Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        DebouncedEvent::new(e, Instant::now())
    }

    fn p(rel: &str, look: Look) -> Hint {
        Hint::Path(PathBuf::from(rel), look)
    }

    #[test]
    fn kinds_become_hints() {
        let root = Path::new("/src");
        let events = [
            ev(EventKind::Create(CreateKind::Folder), &["/src/new"]),
            ev(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &["/src/f"],
            ),
            ev(EventKind::Remove(RemoveKind::File), &["/src/gone"]),
            ev(EventKind::Access(AccessKind::Any), &["/src/read"]),
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &["/src/a", "/src/b"],
            ),
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                &["/src/in"],
            ),
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::From)),
                &["/src/out"],
            ),
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &["/src/x", "/elsewhere/y"],
            ),
            ev(EventKind::Create(CreateKind::File), &["/elsewhere/z"]),
        ];
        assert_eq!(
            hints(&events, root, None),
            vec![
                p("new", Look::NEW),
                p("f", Look::CONTENT),
                p("gone", Look::ENTRY),
                Hint::Rename("a".into(), "b".into()),
                p("in", Look::NEW),
                p("out", Look::ENTRY),
                p("x", Look::ENTRY),
            ]
        );
    }

    #[test]
    fn overflow_and_root_removal() {
        let root = Path::new("/src");
        let rescan = DebouncedEvent::new(
            Event::new(EventKind::Other).set_flag(Flag::Rescan),
            Instant::now(),
        );
        let events = [
            rescan,
            ev(EventKind::Remove(RemoveKind::Folder), &["/src"]),
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::From)),
                &["/src"],
            ),
        ];
        assert_eq!(
            hints(&events, root, None),
            vec![Hint::Rescan, Hint::RootGone, Hint::RootGone]
        );
    }

    #[test]
    fn the_log_file_is_ignored() {
        let root = Path::new("/src");
        let events = [ev(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            &["/src/sync.log"],
        )];
        assert!(hints(&events, root, Some(Path::new("sync.log"))).is_empty());
    }
}
