//! The single-path primitive: "make this REPLICA path match SOURCE", for the paths the watcher
//! names (and the root, for a full pass). It opens the parent directory on both sides and then
//! runs the same per-entry code as the walk. Nothing is ever written through something in
//! REPLICA that is not a real directory: if an ancestor is missing or of another kind, that
//! ancestor is mirrored as a whole instead.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dir_pair::DirPair;
use super::dry_view;
use super::walk::Walk;
use crate::dir;
use crate::replica::Look;

/// What the paths of one batch share as they are gone through in order.
#[derive(Default)]
struct Cache<'r> {
    /// The parent directory of the previous path, kept open while the next paths share it
    /// (the watcher's paths come sorted, so a burst in one directory opens it once).
    parent: Option<(PathBuf, Arc<DirPair<'r>>)>,
    /// The directories being mirrored as a whole (a missing ancestor, a tree look): the paths
    /// below them are theirs, and looking at them too would race with their walk.
    whole: Vec<PathBuf>,
}

/// Reconciles each path, pushing the directories to walk onto the walk's stack.
pub fn start<'r>(walk: &Walk<'_, 'r>, paths: &[(PathBuf, Look)]) {
    let mut cache = Cache::default();
    for (rel, look) in paths {
        if walk.run.m.stop.is_set() {
            break;
        }
        if cache.whole.iter().any(|whole| rel.starts_with(whole)) {
            continue;
        }
        sync_path(walk, rel, *look, &mut cache);
    }
    if let Some((_, node)) = cache.parent.take() {
        walk.run.dir_done(&node);
    }
}

fn sync_path<'r>(walk: &Walk<'_, 'r>, rel: &Path, look: Look, cache: &mut Cache<'r>) {
    let run = walk.run;
    let m = run.m;
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return root(walk, look);
    };
    if m.own().in_source(rel) || m.own().in_replica(rel) {
        return;
    }
    let Some(node) = parent_node(walk, parent, cache) else {
        return;
    };
    let src = match &node.src {
        Some(dir) => match dir.stat_at(name) {
            Ok(meta) => meta.map(|m| m.kind),
            Err(e) => return run.fail(run.src_err("stat", rel, e)),
        },
        None => None,
    };
    let dst = match dry_view::stat(run.m.dry_view.as_ref(), node.dst.as_ref(), name, rel) {
        Ok(entry) => entry.map(|e| e.kind),
        Err(e) => return run.fail(run.dst_err("stat", rel, e)),
    };
    // A path inside an excluded directory (the walk never gets there) is checked with its
    // parents; the entry itself is checked by the walk's own code.
    if parent.components().next().is_some() && m.excluded(parent, true) {
        return;
    }
    if look.tree {
        cache.whole.push(rel.to_path_buf());
    }
    walk.entry(&node, name, src, dst, look);
}

/// The root itself: a full walk, or only its attributes.
fn root(walk: &Walk<'_, '_>, look: Look) {
    let run = walk.run;
    let src = match run.source.dir.dup() {
        Ok(d) => d,
        Err(e) => return run.fail(run.src_err("open", "", e).tree()),
    };
    let dst = match run.m.root_dir().map(|d| d.dup()).transpose() {
        Ok(d) => d,
        Err(e) => return run.fail(run.dst_err("open", "", e).tree()),
    };
    let Some(node) = run.pair(PathBuf::new(), Some(src), dst) else {
        return;
    };
    let node = Arc::new(node);
    if look.tree {
        walk.walk(&node);
    }
    run.dir_done(&node);
}

/// Opens the parent directory `rel` on both sides (or takes it from the cache). When SOURCE's
/// or REPLICA's side is not a directory there, the nearest ancestor that needs it is mirrored
/// as a whole instead, and `None` is returned.
fn parent_node<'r>(
    walk: &Walk<'_, 'r>,
    rel: &Path,
    cache: &mut Cache<'r>,
) -> Option<Arc<DirPair<'r>>> {
    if let Some((path, node)) = cache.parent.as_ref() {
        if path == rel {
            return Some(Arc::clone(node));
        }
    }
    let run = walk.run;
    let src = match run.source.dir.open_beneath(rel) {
        Ok(d) => d,
        Err(e) if dir::is_not_a_dir(&e) => {
            // SOURCE's parent changed too: it is mirrored as a whole.
            sync_ancestor(walk, rel, cache);
            return None;
        }
        Err(e) => {
            run.fail(run.src_err("open directory", rel, e).tree());
            return None;
        }
    };
    let dst = match run.m.root_dir() {
        None => None,
        Some(root) => match root.open_beneath(rel) {
            Ok(d) => Some(d),
            Err(e) if dir::is_not_a_dir(&e) => {
                // A dry run's view may hold the directory the disk lacks.
                if run.m.dry_view.is_some() {
                    None
                } else {
                    let ancestor = first_non_dir(root, rel);
                    sync_ancestor(walk, &ancestor, cache);
                    return None;
                }
            }
            Err(e) => {
                run.fail(run.dst_err("open directory", rel, e).tree());
                return None;
            }
        },
    };
    let node = run.usable(run.pair(rel.to_path_buf(), Some(src), dst)?)?;
    let node = Arc::new(node);
    if let Some((_, done)) = cache.parent.replace((rel.to_path_buf(), Arc::clone(&node))) {
        run.dir_done(&done);
    }
    Some(node)
}

fn sync_ancestor<'r>(walk: &Walk<'_, 'r>, rel: &Path, cache: &mut Cache<'r>) {
    if let Some((_, done)) = cache.parent.take() {
        walk.run.dir_done(&done);
    }
    sync_path(walk, rel, Look::TREE, cache);
}

/// The first ancestor-or-self of the REPLICA directory `rel` that is missing or is not a real
/// directory (a symlink, say): nothing may be written below it.
fn first_non_dir(root: &dir::Dir, rel: &Path) -> PathBuf {
    let mut ancestor = PathBuf::new();
    let Ok(mut dir) = root.dup() else {
        return ancestor;
    };
    for part in rel.components() {
        ancestor.push(part);
        let name: &OsStr = part.as_os_str();
        match dir.open_dir(name) {
            Ok(next) => dir = next,
            Err(_) => return ancestor,
        }
    }
    ancestor
}
