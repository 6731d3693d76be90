//! A dry run's view of REPLICA. In watch mode a dry run changes nothing, yet later events must
//! be judged against what it reported, or a rename it reported would be reported again as a
//! removal and a copy. So every reported change is recorded here, and the single-path code
//! reads REPLICA through [`stat`] and [`list`], which lay these records over the disk. A full
//! pass starts afresh: it reports every difference from the real REPLICA.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use std::sync::Mutex;

use super::change::{self, Change, Would};
use super::plan::Entry;
use crate::dir::{self, Dir, Kind};

/// The changes a dry run reported, by path.
#[derive(Debug, Default)]
pub struct DryView {
    map: BTreeMap<PathBuf, Would>,
}

impl DryView {
    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn record(&mut self, done: &Change) {
        for (rel, sim) in change::simulated(done) {
            self.set(rel, sim);
        }
    }

    pub fn set(&mut self, rel: PathBuf, sim: Would) {
        if matches!(sim, Would::Gone) {
            self.map.retain(|p, _| !p.starts_with(&rel) || p == &rel);
        }
        self.map.insert(rel, sim);
    }

    /// What the dry run left at `rel`, if it touched it or an ancestor.
    pub fn find(&self, rel: &Path) -> Option<Would> {
        if let Some(sim) = self.map.get(rel) {
            return Some(sim.clone());
        }
        rel.ancestors()
            .skip(1)
            .any(|a| matches!(self.map.get(a), Some(Would::Gone)))
            .then_some(Would::Gone)
    }

    fn children(&self, rel: &Path) -> Vec<(OsString, Would)> {
        self.map
            .iter()
            .filter(|(p, _)| p.parent() == Some(rel) && !p.as_os_str().is_empty())
            .filter_map(|(p, s)| Some((p.file_name()?.to_os_string(), s.clone())))
            .collect()
    }
}

/// What REPLICA holds at `name` in `dir` (the path `rel`), as far as a dry run knows.
pub fn stat(
    view: Option<&Mutex<DryView>>,
    dir: Option<&Dir>,
    name: &std::ffi::OsStr,
    rel: &Path,
) -> io::Result<Option<Entry>> {
    if let Some(view) = view {
        match crate::lock(view).find(rel) {
            Some(Would::Gone) => return Ok(None),
            Some(Would::Is(entry)) => return Ok(Some(entry)),
            None => {}
        }
    }
    match dir {
        Some(d) => look(d, name),
        None => Ok(None),
    }
}

/// REPLICA's listing of `dir` (the directory `rel`), as far as a dry run knows.
pub fn list(
    view: Option<&Mutex<DryView>>,
    dir: Option<&Dir>,
    rel: &Path,
) -> io::Result<Vec<(OsString, Kind)>> {
    let mut list = match dir {
        Some(d) => d.list()?,
        None => Vec::new(),
    };
    if let Some(view) = view {
        let view = crate::lock(view);
        if matches!(view.find(rel), Some(Would::Gone)) {
            return Ok(Vec::new());
        }
        for (name, sim) in view.children(rel) {
            list.retain(|(n, _)| *n != name);
            if let Would::Is(entry) = sim {
                list.push((name, entry.kind));
            }
        }
        list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(list)
}

/// What `dir` holds at `name`, with metadata and (for a symlink) its target.
pub fn look(dir: &Dir, name: &std::ffi::OsStr) -> io::Result<Option<Entry>> {
    let Some(meta) = dir.stat_at(name)? else {
        return Ok(None);
    };
    let target = if meta.kind == Kind::Symlink {
        match dir.read_link(name) {
            Ok(t) => Some(t),
            Err(e) if dir::is_absent(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    Ok(Some(Entry {
        kind: meta.kind,
        meta: Some(meta),
        target,
    }))
}
