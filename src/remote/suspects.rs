//! The files a batch or a pass compares by content once its usual runs are done: those rsync's
//! quick check may have passed over although their bytes differ (see [`super::proof`]). Only
//! files rsync did not send are compared, so a file whose size or mtime changed is read once,
//! by its transfer; an unchanged pass compares nothing, and costs one look at each file's
//! metadata here.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::plan::{changed, Source};
use super::script::Rename;
use super::work::{sent_key, wanted, Sent};
use super::Remote;
use crate::dir::{Dir, Kind, Meta};
use crate::root::Root;

/// Files that took another's name by a rename the remote side did not make (two files swapped,
/// say) may have the size and mtime of what REPLICA holds there, which rsync's quick check
/// takes as the same file: they are to be compared by content.
pub fn swapped(
    r: &Remote,
    facts: &Source,
    seen: &[(PathBuf, PathBuf)],
    renames: &[Rename],
    renamed: &[usize],
) -> Vec<PathBuf> {
    let moved: Vec<&Path> = renamed
        .iter()
        .filter_map(|&i| renames.get(i))
        .map(|m| m.to.as_path())
        .collect();
    let mut suspects: Vec<PathBuf> = seen
        .iter()
        .flat_map(|(from, to)| [from, to])
        .filter(|p| !moved.contains(&p.as_path()))
        .filter(|p| facts.kind(p) == Some(Kind::File) && wanted(r, p, false))
        .cloned()
        .collect();
    suspects.sort();
    suspects.dedup();
    suspects
}

/// The files in the batch's `trees` that rsync did not send (`copied`) and may differ: in an
/// unproven directory, or changed since the last pass began.
pub fn in_trees(
    r: &Remote,
    source: &Root,
    trees: &[PathBuf],
    copied: &HashSet<PathBuf>,
) -> Vec<PathBuf> {
    let mark = r.proof.mark;
    let mut out = Vec::new();
    for tree in trees {
        let whole = r.proof.unproven(tree);
        out.extend(files_in(r, source, tree, &mut |p, m| {
            !copied.contains(p) && (whole || r.proof.unproven(p) || changed(m, None, mark))
        }));
    }
    out
}

/// After a pass that went through: the files it did not send (`copied`) and that may differ.
/// Those changed since the last pass's mark (unless a batch sent them as they are now, in
/// `sent`), and those in unproven directories. No walk at all without a mark or anything
/// unproven: a REPLICA with no pass on record is compared as `rsync -a` does.
pub fn after_pass(
    r: &Remote,
    source: &Root,
    sent: &HashMap<PathBuf, Sent>,
    copied: &HashSet<PathBuf>,
) -> Vec<PathBuf> {
    let mark = r.proof.mark;
    if mark.is_none() && !r.proof.any_unproven() {
        return Vec::new();
    }
    files_in(r, source, Path::new(""), &mut |p, m| {
        !copied.contains(p)
            && (r.proof.unproven(p)
                || mark.is_some_and(|mark| m.ctime >= mark)
                    && sent.get(p).is_none_or(|s| *s != sent_key(m)))
    })
}

/// The regular files below SOURCE's directory `top` that the mirror sends (not what it leaves
/// out) and that `pick` chooses, depth first, with one directory open per level. What cannot
/// be read is passed over (rsync says so itself); a stop ends the walk.
pub fn files_in(
    r: &Remote,
    source: &Root,
    top: &Path,
    pick: &mut dyn FnMut(&Path, &Meta) -> bool,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(dir) = source.dir.open_beneath(top) else {
        return out;
    };
    let subdirs = scan(r, &dir, top, pick, &mut out);
    let mut stack: Vec<(Dir, PathBuf, Vec<OsString>)> = vec![(dir, top.to_path_buf(), subdirs)];
    while !r.stop.is_set() {
        let Some((dir, rel, subdirs)) = stack.last_mut() else {
            break;
        };
        let Some(name) = subdirs.pop() else {
            stack.pop();
            continue;
        };
        let path = rel.join(&name);
        let Ok(sub) = dir.open_dir(&name) else {
            continue;
        };
        let subdirs = scan(r, &sub, &path, pick, &mut out);
        stack.push((sub, path, subdirs));
    }
    out
}

/// One directory of [`files_in`]: its files chosen into `out`; returns its subdirectories to
/// walk.
fn scan(
    r: &Remote,
    dir: &Dir,
    rel: &Path,
    pick: &mut dyn FnMut(&Path, &Meta) -> bool,
    out: &mut Vec<PathBuf>,
) -> Vec<OsString> {
    let mut subdirs = Vec::new();
    let Ok(entries) = dir.list() else {
        return subdirs;
    };
    for (name, kind) in entries {
        let path = rel.join(&name);
        match kind {
            Kind::Dir if wanted(r, &path, true) => subdirs.push(name),
            Kind::File if wanted(r, &path, false) => {
                let meta = dir.stat_at(&name).ok().flatten();
                if meta.is_some_and(|m| m.kind == Kind::File && pick(&path, &m)) {
                    out.push(path);
                }
            }
            _ => {}
        }
    }
    subdirs
}
