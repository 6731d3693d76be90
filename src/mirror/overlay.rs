//! A dry run's view of REPLICA. In watch mode a dry run changes nothing, yet later events must
//! be judged against what it reported, or a rename it reported would be reported again as a
//! removal and a copy. So every reported change is recorded here, and the single-path code
//! reads REPLICA through [`stat`] and [`list`], which lay these records over the disk. A full
//! pass starts afresh: it reports every difference from the real REPLICA.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use super::apply::Run;
use super::done::{self, Done};
use super::facts;
use super::plan::Entry;
use crate::dir::{Dir, Kind};

/// What a dry run would have left at a path.
#[derive(Debug, Clone)]
pub enum Sim {
    Gone,
    Is(Entry),
}

/// The changes a dry run reported, by path.
#[derive(Debug, Default)]
pub struct Overlay {
    map: BTreeMap<PathBuf, Sim>,
}

impl Overlay {
    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn record(&mut self, done: &Done) {
        for (rel, sim) in done::simulated(done) {
            self.set(rel, sim);
        }
    }

    pub fn set(&mut self, rel: PathBuf, sim: Sim) {
        if matches!(sim, Sim::Gone) {
            self.map.retain(|p, _| !p.starts_with(&rel) || p == &rel);
        }
        self.map.insert(rel, sim);
    }

    /// What the dry run left at `rel`, if it touched it or an ancestor.
    pub fn find(&self, rel: &Path) -> Option<Sim> {
        if let Some(sim) = self.map.get(rel) {
            return Some(sim.clone());
        }
        rel.ancestors()
            .skip(1)
            .any(|a| matches!(self.map.get(a), Some(Sim::Gone)))
            .then_some(Sim::Gone)
    }

    fn children(&self, rel: &Path) -> Vec<(OsString, Sim)> {
        self.map
            .iter()
            .filter(|(p, _)| p.parent() == Some(rel) && !p.as_os_str().is_empty())
            .filter_map(|(p, s)| Some((p.file_name()?.to_os_string(), s.clone())))
            .collect()
    }
}

/// What REPLICA holds at `name` in `dir` (the path `rel`), as far as a dry run knows.
pub fn stat(
    run: &Run,
    dir: Option<&Dir>,
    name: &std::ffi::OsStr,
    rel: &Path,
) -> io::Result<Option<Entry>> {
    if let Some(overlay) = &run.m.overlay {
        match crate::lock(overlay).find(rel) {
            Some(Sim::Gone) => return Ok(None),
            Some(Sim::Is(entry)) => return Ok(Some(entry)),
            None => {}
        }
    }
    match dir {
        Some(d) => facts::look(d, name),
        None => Ok(None),
    }
}

/// REPLICA's listing of `dir` (the directory `rel`), as far as a dry run knows.
pub fn list(run: &Run, dir: Option<&Dir>, rel: &Path) -> io::Result<Vec<(OsString, Kind)>> {
    let mut list = match dir {
        Some(d) => d.list()?,
        None => Vec::new(),
    };
    if let Some(overlay) = &run.m.overlay {
        let overlay = crate::lock(overlay);
        if matches!(overlay.find(rel), Some(Sim::Gone)) {
            return Ok(Vec::new());
        }
        for (name, sim) in overlay.children(rel) {
            list.retain(|(n, _)| *n != name);
            if let Sim::Is(entry) = sim {
                list.push((name, entry.kind));
            }
        }
        list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(list)
}
