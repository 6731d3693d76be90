//! Turning events into hints: where to look, and how closely. Events never say what to do; the
//! mirror looks at every path it is given. Paths outside SOURCE, foldersync's own files and
//! paths inside excluded directories are dropped here, so the mirror never feeds itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::Event;
use notify_debouncer_full::DebouncedEvent;

use crate::filter::Filter;
use crate::own::OwnFiles;
use crate::replica::Look;

/// What one event tells the mirror.
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

/// Which paths concern the mirror.
#[derive(Debug, Clone)]
pub struct Scope {
    pub root: PathBuf,
    pub own: Arc<OwnFiles>,
    pub filter: Filter,
}

impl Scope {
    /// `path` relative to SOURCE, unless it is outside it, one of foldersync's own files, or in
    /// an excluded directory (when excluded entries stay in REPLICA, nothing there matters).
    pub fn relative(&self, path: &Path) -> Option<PathBuf> {
        let rel = path.strip_prefix(&self.root).ok()?;
        if self.own.ignores_event(rel) {
            return None;
        }
        if !self.filter.delete_excluded
            && rel
                .parent()
                .is_some_and(|p| self.filter.excludes_path(p, true))
        {
            return None;
        }
        Some(rel.to_path_buf())
    }
}

impl Scope {
    /// Whether an event concerns only foldersync's own files.
    pub fn is_own(&self, event: &Event) -> bool {
        !event.paths.is_empty()
            && event.paths.iter().all(|p| {
                p.strip_prefix(&self.root)
                    .is_ok_and(|rel| self.own.ignores_event(rel))
            })
    }
}

/// Whether an event says a file that was open for writing was closed.
pub fn is_closed_after_write(event: &Event) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(
        event.kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

/// Whether an event only says a file or directory was read (opened, read, closed unchanged).
pub fn is_read(event: &Event) -> bool {
    matches!(event.kind, EventKind::Access(_)) && !is_closed_after_write(event)
}

/// Turns a debounced batch into hints.
pub fn hints(events: &[DebouncedEvent], scope: &Scope) -> Vec<Hint> {
    let mut out = Vec::new();
    for event in events {
        if event.need_rescan() {
            out.push(Hint::Rescan);
            continue;
        }
        let rel = |p: &PathBuf| scope.relative(p);
        let touches_root = event.paths.contains(&scope.root);
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
                out.extend(rename(event, scope));
            }
            // Moved away, and nothing (yet) says where: a removal, unless a later batch brings
            // the other half of a rename; REPLICA's entry waits a moment for it.
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                out.extend(paths(Look::MOVED));
            }
            // Moved in from outside SOURCE (a rename's second half alone): looked at as a whole,
            // and compared (what it holds kept its ctimes from where it was).
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                out.extend(paths(Look::MOVED_IN));
            }
            // New entries are looked at as a whole: nothing was reported for files made in a
            // new directory before its watch.
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)) | EventKind::Any => {
                out.extend(paths(Look::TREE));
            }
            EventKind::Remove(_) => out.extend(paths(Look::REMOVED)),
            EventKind::Modify(_) => out.extend(paths(Look::ENTRY)),
        }
    }
    out
}

/// The hint of a rename the kernel paired (`Both`, its two paths): a rename within SOURCE, or
/// a path to look at where one side is outside it (or foldersync's own, or excluded).
pub fn rename(event: &Event, scope: &Scope) -> Option<Hint> {
    let (from, to) = (event.paths.first()?, event.paths.get(1)?);
    match (scope.relative(from), scope.relative(to)) {
        (Some(from), Some(to)) => Some(Hint::Rename(from, to)),
        (Some(from), None) => Some(Hint::Path(from, Look::ENTRY)),
        (None, Some(to)) => Some(Hint::Path(to, Look::MOVED_IN)),
        (None, None) => None,
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
/// directory's mtime changed (and the file may have been copied already: a close after writing
/// is acted on at once). So every rename's paths, every removed path, and the parent directory
/// of every create, remove and rename are also kept, undebounced, and looked at once the
/// debounced events of the same moment have been applied.
pub fn raw_hints(event: &Event, seen: Instant) -> Vec<RawHint> {
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
                let look = if mode == RenameMode::To {
                    Look::MOVED_IN
                } else if mode == RenameMode::Both && i == 1 {
                    Look::TREE
                } else if mode == RenameMode::From {
                    Look::MOVED
                } else {
                    Look::ENTRY
                };
                out.push(RawHint {
                    seen,
                    path: path.clone(),
                    look,
                });
            }
            parents(&mut out);
        }
        EventKind::Remove(_) => {
            out.extend(event.paths.iter().map(|path| RawHint {
                seen,
                path: path.clone(),
                look: Look::REMOVED,
            }));
            parents(&mut out);
        }
        EventKind::Create(_) => parents(&mut out),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, DataChange, Flag, RemoveKind};

    fn scope() -> Scope {
        Scope {
            root: PathBuf::from("/src"),
            own: Arc::new(OwnFiles::new(vec!["sync.log".into()], vec![])),
            filter: Filter::new(Path::new("/src"), &["cache/".into()], &[], false).unwrap(),
        }
    }

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
            hints(&events, &scope()),
            vec![
                p("new", Look::TREE),
                p("f", Look::ENTRY),
                p("gone", Look::REMOVED),
                Hint::Rename("a".into(), "b".into()),
                p("in", Look::MOVED_IN),
                p("out", Look::MOVED),
                p("x", Look::ENTRY),
            ]
        );
    }

    #[test]
    fn overflow_and_root_removal() {
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
            hints(&events, &scope()),
            vec![Hint::Rescan, Hint::RootGone, Hint::RootGone]
        );
    }

    #[test]
    fn own_files_and_excluded_directories_are_dropped() {
        let events = [
            ev(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &["/src/sync.log"],
            ),
            ev(EventKind::Create(CreateKind::File), &["/src/cache/x"]),
        ];
        assert!(hints(&events, &scope()).is_empty());
    }

    /// Reads are dropped on notify's thread; a close after writing is not a read.
    #[test]
    fn reads_are_told_from_closes_after_writing() {
        use notify::event::{AccessMode, ModifyKind};
        let event = |kind| Event::new(kind).add_path("/src/f".into());
        assert!(is_read(&event(EventKind::Access(AccessKind::Open(
            AccessMode::Any
        )))));
        assert!(is_read(&event(EventKind::Access(AccessKind::Close(
            AccessMode::Read
        )))));
        let closed = event(EventKind::Access(AccessKind::Close(AccessMode::Write)));
        assert!(!is_read(&closed) && is_closed_after_write(&closed));
        assert!(!is_read(&event(EventKind::Create(CreateKind::File))));
        assert!(!is_read(&event(EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        )))));
        let overflow = Event::new(EventKind::Other).set_flag(Flag::Rescan);
        assert!(!is_read(&overflow));
    }
}
