//! What a remote batch asks of SOURCE: what is at its paths now (through the directories held
//! open), gathered before its plan is decided, and the reads the plan asks for on the way (a
//! file's digest, the entries inside a new directory, what a held entry must be, the root's
//! attributes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::digest::Prover;
use super::plan;
use super::work::RootLook;
use super::Remote;
use crate::dir::{xattr, Kind, Meta, Stamp};
use crate::replica::Batch;
use crate::root::Root;

/// How many entries inside new directories are offered at most.
const MAX_INSIDE: usize = 64;

/// Entries inside SOURCE's directory `rel`, breadth first, at most `depth` levels down and
/// [`MAX_INSIDE`] in all.
pub fn inside(source: &Root, rel: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut level = vec![rel.to_path_buf()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(d) = source.dir.open_beneath(dir) else {
                continue;
            };
            // Read no further than needed: a new directory may hold many thousands.
            let _ = d.any(|name, kind| {
                if out.len() >= MAX_INSIDE {
                    return true;
                }
                let path = dir.join(name);
                if kind == Kind::Dir {
                    next.push(path.clone());
                }
                out.push(path);
                false
            });
            if out.len() >= MAX_INSIDE {
                return out;
            }
        }
        level = next;
    }
    out
}

/// What SOURCE holds at the paths one batch names, each looked at once: a batch of 20,000
/// removals asks about the same paths and parents several times over.
pub struct StatCache<'a> {
    source: &'a Root,
    seen: HashMap<PathBuf, Option<Meta>>,
}

impl<'a> StatCache<'a> {
    pub fn new(source: &'a Root) -> StatCache<'a> {
        StatCache {
            source,
            seen: HashMap::new(),
        }
    }

    pub fn meta(&mut self, rel: &Path) -> Option<Meta> {
        if let Some(meta) = self.seen.get(rel) {
            return *meta;
        }
        let meta = meta_in(self.source, rel);
        self.seen.insert(rel.to_path_buf(), meta);
        meta
    }

    pub fn kind(&mut self, rel: &Path) -> Option<Kind> {
        self.meta(rel).map(|m| m.kind)
    }
}

/// What SOURCE has at `rel` now, with its metadata; the root itself for an empty `rel`.
pub fn meta_in(source: &Root, rel: &Path) -> Option<Meta> {
    if rel.as_os_str().is_empty() {
        return crate::dir::meta_of(&source.dir).ok();
    }
    let (parent, name) = (rel.parent()?, rel.file_name()?);
    source.dir.open_beneath(parent).ok()?.stat_at(name).ok()?
}

/// What SOURCE holds at the paths `batch` names, at the parents that stand for those whose
/// parent is no longer a directory (see [`plan::nearest_kept`]), and at both names of the
/// renames it saw: the facts its plan is decided from.
pub fn gather(source: &Root, batch: &Batch) -> plan::Source {
    let mut looks = StatCache::new(source);
    for (rel, _) in &batch.paths {
        if looks.kind(rel).is_none() {
            plan::nearest_kept(|up| looks.kind(up), rel);
        }
    }
    for (from, to) in &batch.renames {
        looks.meta(from);
        looks.meta(to);
    }
    plan::Source {
        metas: (looks.seen.into_iter())
            .filter_map(|(rel, meta)| Some((rel, meta?)))
            .collect(),
    }
}

/// The reads a batch's plan asks for on the way (see [`plan::Reads`]): digests within one
/// batch's budget, entries inside new directories, the root's attributes.
pub struct SourceReads<'a> {
    r: &'a Remote,
    source: &'a Root,
    prover: Prover,
}

impl<'a> SourceReads<'a> {
    pub fn new(r: &'a Remote, source: &'a Root) -> SourceReads<'a> {
        let prover = Prover::new(r.stop.clone(), r.digests);
        SourceReads { r, source, prover }
    }
}

impl plan::Reads for SourceReads<'_> {
    fn proof(&mut self, rel: &Path) -> Option<String> {
        self.prover.file(self.source, rel)
    }

    fn inside(&mut self, tree: &Path) -> Vec<(PathBuf, bool)> {
        let inside = inside(self.source, tree, plan::NEWCOMER_DEPTH).into_iter();
        inside
            .map(|p| {
                let is_dir = meta_in(self.source, &p).is_some_and(|m| m.kind == Kind::Dir);
                (p, is_dir)
            })
            .collect()
    }

    fn fingerprint(&mut self, rel: &Path) -> Option<String> {
        fingerprint(self.source, rel, &mut self.prover)
    }

    fn root(&mut self) -> (Option<RootLook>, Option<Stamp>) {
        let look = root_look(self.r, self.source);
        (look, self.source.dir.stat().ok().map(|m| m.mtime))
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

/// What of SOURCE's root a run that lists it would send now; `None` if it cannot be read.
pub fn root_look(r: &Remote, source: &Root) -> Option<RootLook> {
    let meta = source.dir.stat().ok()?;
    let xattrs = if r.settings.xattrs {
        Some(xattr::read(&xattr::At::Dir(&source.dir)).ok()?)
    } else {
        None
    };
    Some(RootLook {
        perm: meta.perm,
        owner: r.settings.owner.then_some((meta.uid, meta.gid)),
        xattrs,
    })
}
