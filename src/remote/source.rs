//! What a remote batch asks of SOURCE: what is at a path now (through the directories held
//! open), the entries inside a new directory, the path that stands for one whose parent is no
//! longer a directory, and the renames SOURCE bears out.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::digest::Prover;
use super::script::Rename;
use crate::dir::{Kind, Meta};
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

    pub fn source(&self) -> &'a Root {
        self.source
    }

    pub fn kind(&mut self, rel: &Path) -> Option<Kind> {
        self.meta(rel).map(|m| m.kind)
    }
}

/// A path SOURCE lacks because one of its parents is no longer a directory stands for that
/// parent (rsync would fail to look at it, rather than take it as missing).
pub fn nearest_kept(looks: &mut StatCache, rel: PathBuf) -> PathBuf {
    let mut lifted = None;
    for up in rel.ancestors().skip(1) {
        match looks.kind(up) {
            _ if up.as_os_str().is_empty() => break,
            Some(Kind::Dir) => break,
            Some(_) => lifted = Some(up.to_path_buf()),
            None => {}
        }
    }
    lifted.unwrap_or(rel)
}

/// A path as `--files-from` takes it: the root is `.`.
pub fn list_name(rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel.to_path_buf()
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

/// A rename to make on the remote side: SOURCE no longer has `from` and now has `to`, a
/// directory, or a file whose bytes the remote side is to find at `from` before it renames
/// (see [`super::digest`]).
pub fn rename(source: &Root, from: &Path, to: &Path, prover: &mut Prover) -> Option<Rename> {
    if meta_in(source, from).is_some() || from.as_os_str().as_bytes().is_empty() {
        return None;
    }
    let meta = meta_in(source, to)?;
    let what = match meta.kind {
        Kind::File => prover.file(source, to)?,
        Kind::Dir => "d".to_string(),
        _ => return None,
    };
    Some(Rename {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        what,
    })
}
