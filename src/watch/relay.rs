//! The sleeping debouncer. notify-debouncer-full's thread wakes every quarter of the debounce
//! time for as long as the debouncer exists, so an idle mirror would never be idle. Here the
//! real inotify watcher lives as long as the watch, and a debouncer is built only while events
//! flow: it is fed by hand, and stopped after a quiet spell. The next event builds a new one.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use notify::{Event, EventHandler, RecursiveMode, WatcherKind};
use notify_debouncer_full::{new_debouncer_opt, DebounceEventResult, Debouncer, RecommendedCache};

use crate::timing::Timing;

/// A debouncer that is awake only while events come.
pub struct OnDemandDebouncer {
    root: PathBuf,
    timing: Timing,
    out: Sender<DebounceEventResult>,
    awake: Option<Awake>,
    last_event: Option<Instant>,
}

struct Awake {
    debouncer: Debouncer<HandFedWatcher, RecommendedCache>,
    /// The debouncer's own event handler: events are handed to it here.
    feed: Box<dyn EventHandler>,
}

impl OnDemandDebouncer {
    pub fn new(root: &Path, timing: Timing, out: Sender<DebounceEventResult>) -> OnDemandDebouncer {
        OnDemandDebouncer {
            root: root.to_path_buf(),
            timing,
            out,
            awake: None,
            last_event: None,
        }
    }

    /// Hands an event to the debouncer, waking it first if it sleeps.
    pub fn feed(&mut self, event: notify::Result<Event>) -> notify::Result<()> {
        self.last_event = Some(Instant::now());
        if self.awake.is_none() {
            self.awake = Some(self.wake()?);
        }
        if let Some(awake) = self.awake.as_mut() {
            awake.feed.handle_event(event);
        }
        Ok(())
    }

    fn wake(&self) -> notify::Result<Awake> {
        let mut debouncer = new_debouncer_opt::<_, HandFedWatcher, RecommendedCache>(
            self.timing.debounce,
            Some(self.timing.debouncer_tick()),
            self.out.clone(),
            RecommendedCache::new(),
            notify::Config::default(),
        )?;
        let feed = HANDED
            .with(|h| h.borrow_mut().take())
            .ok_or_else(|| notify::Error::generic("the debouncer did not build its watcher"))?;
        // Registers the root with the debouncer; HandFedWatcher itself watches nothing.
        debouncer.watch(&self.root, RecursiveMode::Recursive)?;
        Ok(Awake { debouncer, feed })
    }

    /// When the awake debouncer may be put to sleep: once no event came for three debounce
    /// periods (by then it has emitted everything it held).
    pub fn sleep_due(&self) -> Option<Instant> {
        self.awake.as_ref()?;
        Some(self.last_event? + self.quiet())
    }

    fn quiet(&self) -> Duration {
        self.timing.debouncer_quiet()
    }

    /// Stops the debouncer's thread if no event came for a while.
    pub fn try_sleep(&mut self) {
        if self
            .last_event
            .is_some_and(|last| last.elapsed() < self.quiet())
        {
            return;
        }
        if let Some(awake) = self.awake.take() {
            // Flags the debouncer's thread, which exits at its next tick.
            awake.debouncer.stop_nonblocking();
        }
    }
}

thread_local! {
    /// notify's `Watcher::new` is the only place the debouncer shows its event handler, and it
    /// takes no context: [`HandFedWatcher::new`] leaves the handler here, and [`OnDemandDebouncer::wake`], on the
    /// same thread and in the same call, takes it.
    static HANDED: RefCell<Option<Box<dyn EventHandler>>> = const { RefCell::new(None) };
}

/// The watcher type the debouncer is built with: it watches nothing; it only hands over the
/// debouncer's event handler so that events can be fed to it.
pub struct HandFedWatcher;

impl notify::Watcher for HandFedWatcher {
    fn new<F: EventHandler>(handler: F, _config: notify::Config) -> notify::Result<Self> {
        HANDED.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
        Ok(HandFedWatcher)
    }

    fn watch(&mut self, _path: &Path, _recursive_mode: RecursiveMode) -> notify::Result<()> {
        Ok(())
    }

    fn unwatch(&mut self, _path: &Path) -> notify::Result<()> {
        Ok(())
    }

    fn kind() -> WatcherKind {
        <notify::RecommendedWatcher as notify::Watcher>::kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, EventKind};

    /// What the sleeping debouncer relies on in notify-debouncer-full (pinned in Cargo.toml):
    /// `new_debouncer_opt` hands its event handler to `HandFedWatcher::new` on this thread before it
    /// returns, and events fed to that handler come out debounced; a second wake builds anew.
    #[test]
    fn events_fed_by_hand_come_out_debounced() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut sleepy = OnDemandDebouncer::new(
            dir.path(),
            Timing::new(Duration::from_millis(20), Duration::MAX),
            tx,
        );
        for round in 0..2 {
            let path = dir.path().join(format!("f{round}"));
            std::fs::write(&path, "x").unwrap();
            let event = Event::new(EventKind::Create(CreateKind::File)).add_path(path.clone());
            sleepy.feed(Ok(event)).unwrap();
            let got = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
            assert!(got.iter().any(|e| e.paths.contains(&path)), "{got:?}");
            // Asleep again once quiet: the next event wakes a new debouncer.
            sleepy.last_event = Some(Instant::now() - sleepy.quiet());
            sleepy.try_sleep();
            assert!(sleepy.awake.is_none());
        }
    }

    /// What `watch::hints` relies on besides: the two halves of a rename the kernel paired,
    /// fed by hand with one tracker (inotify's cookie), come out as one `Name(Both)` event with
    /// both paths, the name moved from first.
    #[test]
    fn a_rename_fed_in_halves_comes_out_as_one() {
        use notify::event::{ModifyKind, RenameMode};
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut sleepy = OnDemandDebouncer::new(
            dir.path(),
            Timing::new(Duration::from_millis(20), Duration::MAX),
            tx,
        );
        let (from, to) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&to, "x").unwrap();
        let half = |mode, path: &Path| {
            Event::new(EventKind::Modify(ModifyKind::Name(mode)))
                .add_path(path.to_path_buf())
                .set_tracker(7)
        };
        sleepy.feed(Ok(half(RenameMode::From, &from))).unwrap();
        sleepy.feed(Ok(half(RenameMode::To, &to))).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert!(
            got.iter()
                .any(|e| e.kind == both && e.paths == [from.clone(), to.clone()]),
            "{got:?}"
        );
    }
}
