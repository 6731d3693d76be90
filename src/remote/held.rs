//! Removals held back a moment, so that a rename whose halves come in different batches (the
//! new name in a directory not yet watched, say) is still a rename on the remote side: a path
//! SOURCE moved away (and only such a path: a plain removal goes at once) stays on the remote
//! machine for a second; a path that then appears in SOURCE may take it, renamed there, if it
//! holds the same bytes (proven by the remote side, see [`super::digest`]) or is a directory
//! with as many entries. What nothing takes is removed when its time is up. The transfer that
//! follows reconciles what was taken.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::digest::Prover;
use super::script::Rename;
use crate::dir::Kind;
use crate::root::Root;

/// At most this many candidate renames per batch.
const MAX_CLAIMS: usize = 128;

/// The held paths, each with when it is removed.
#[derive(Debug, Default)]
pub struct Held {
    entries: Vec<(PathBuf, Instant)>,
    hold: Duration,
}

impl Held {
    pub fn new(hold: Duration) -> Held {
        Held {
            entries: Vec::new(),
            hold,
        }
    }

    pub fn hold(&mut self, rel: PathBuf) {
        let until = Instant::now() + self.hold;
        match self.entries.iter_mut().find(|(p, _)| *p == rel) {
            Some(entry) => entry.1 = until,
            None => self.entries.push((rel, until)),
        }
    }

    pub fn holds(&self, rel: &Path) -> bool {
        self.entries.iter().any(|(p, _)| p == rel)
    }

    /// `rel` was renamed away, or is looked at by a pass: no longer held.
    pub fn release(&mut self, rel: &Path) {
        self.entries.retain(|(p, _)| p != rel);
    }

    pub fn any(&self) -> bool {
        !self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The held paths whose time is up, no longer held.
    pub fn due(&mut self, now: Instant) -> Vec<PathBuf> {
        let (due, keep): (Vec<_>, Vec<_>) = self.entries.drain(..).partition(|(_, t)| *t <= now);
        self.entries = keep;
        due.into_iter().map(|(p, _)| p).collect()
    }

    pub fn next(&self) -> Option<Instant> {
        self.entries.iter().map(|(_, t)| *t).min()
    }

    /// Renames for the remote side to try: each held path to each of `newcomers` that could be
    /// it. The remote side makes only those whose old name still holds such an entry (the same
    /// bytes, for a file) and whose new name is free. Sorted by held path, so that the remote
    /// side hashes each candidate once.
    pub fn claims(&self, source: &Root, newcomers: &[PathBuf], prover: &mut Prover) -> Vec<Rename> {
        if self.entries.is_empty() {
            return Vec::new();
        }
        let wanted: Vec<(&PathBuf, String)> = newcomers
            .iter()
            .filter_map(|to| Some((to, fingerprint(source, to, prover)?)))
            .collect();
        let mut out = Vec::new();
        for (from, _) in &self.entries {
            for (to, what) in &wanted {
                if out.len() >= MAX_CLAIMS {
                    return out;
                }
                if from != *to && !to.starts_with(from) {
                    out.push(Rename {
                        from: from.clone(),
                        to: (*to).clone(),
                        what: what.clone(),
                    });
                }
            }
        }
        out
    }
}

/// What a held entry must be to be taken for SOURCE's `rel`: the bytes of a file of some size
/// (see [`super::digest`]), `d:N` for a directory of N entries; `None` for what is not worth a
/// search.
fn fingerprint(source: &Root, rel: &Path, prover: &mut Prover) -> Option<String> {
    let (parent, name) = (rel.parent()?, rel.file_name()?);
    let dir = source.dir.open_beneath(parent).ok()?;
    let meta = dir.stat_at(name).ok()??;
    match meta.kind {
        Kind::File if meta.size >= crate::rules::RENAME_MIN => prover.file(source, rel),
        Kind::Dir => {
            let mut entries = 0;
            dir.open_dir(name)
                .ok()?
                .any(|_, _| {
                    entries += 1;
                    false
                })
                .ok()?;
            (entries > 0).then(|| format!("d:{entries}"))
        }
        _ => None,
    }
}
