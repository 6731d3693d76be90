//! The filesystem watcher: notify's recursive inotify watch behind notify-debouncer-full, feeding
//! debounced batches over a crossbeam channel, and the translation of events into hints. Events
//! only say where to look, never what to do: the worker lstats every path it is given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::Receiver;
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{
    new_debouncer_opt, DebounceEventResult, DebouncedEvent, Debouncer, RecommendedCache,
};

use crate::mirror::Depth;

/// A running watch on SOURCE. Dropping it stops the watch.
pub struct Watcher {
    debouncer: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
    pub events: Receiver<DebounceEventResult>,
}

impl Watcher {
    /// Watches `root` recursively without following symlinks. The watcher is returned even when
    /// the recursive watch could only be set up in part (the inotify watch limit, an unreadable
    /// directory): the error comes with it, and the periodic passes carry what is not watched.
    pub fn start(
        root: &Path,
        debounce: Duration,
    ) -> Result<(Watcher, Option<notify::Error>), notify::Error> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut debouncer = new_debouncer_opt::<_, RecommendedWatcher, RecommendedCache>(
            debounce,
            None,
            tx,
            RecommendedCache::new(),
            config,
        )?;
        let partial = debouncer.watch(root, RecursiveMode::Recursive).err();
        Ok((
            Watcher {
                debouncer: Some(debouncer),
                events: rx,
            },
            partial,
        ))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(debouncer) = self.debouncer.take() {
            // Flags the debouncer's thread and returns; it exits at its next tick.
            debouncer.stop_nonblocking();
        }
    }
}

/// What one event tells the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Look at this path (relative to SOURCE), this deep.
    Path(PathBuf, Depth),
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
        let rel = |p: &PathBuf| -> Option<PathBuf> {
            let rel = p.strip_prefix(root).ok()?;
            if ignored.is_some_and(|ig| ig == rel) {
                return None;
            }
            Some(rel.to_path_buf())
        };
        let touches_root = event.paths.iter().any(|p| p == root);
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
                    (Some(from), None) => out.push(Hint::Path(from, Depth::Entry)),
                    (None, Some(to)) => out.push(Hint::Path(to, Depth::Tree)),
                    (None, None) => {}
                }
            }
            // Moved out: a removal as far as the mirror is concerned.
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => out.extend(
                event
                    .paths
                    .iter()
                    .filter_map(rel)
                    .map(|p| Hint::Path(p, Depth::Entry)),
            ),
            // New or moved-in entries are looked at as a whole: nothing was reported for the
            // contents of a moved-in directory, nor for files made in a new one before its watch.
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)) | EventKind::Any => out
                .extend(
                    event
                        .paths
                        .iter()
                        .filter_map(rel)
                        .map(|p| Hint::Path(p, Depth::Tree)),
                ),
            EventKind::Modify(_) | EventKind::Remove(_) => out.extend(
                event
                    .paths
                    .iter()
                    .filter_map(rel)
                    .map(|p| Hint::Path(p, Depth::Entry)),
            ),
        }
    }
    out
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

    fn p(rel: &str, depth: Depth) -> Hint {
        Hint::Path(PathBuf::from(rel), depth)
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
                p("new", Depth::Tree),
                p("f", Depth::Entry),
                p("gone", Depth::Entry),
                Hint::Rename("a".into(), "b".into()),
                p("in", Depth::Tree),
                p("out", Depth::Entry),
                p("x", Depth::Entry),
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
