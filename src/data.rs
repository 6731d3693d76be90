//! What counts as data: one definition for every guard that asks whether a directory holds
//! any. A file or a symlink anywhere below it, but for foldersync's own files and excluded
//! entries. A freshly made file system (its empty `lost+found`), empty directories, fifos and
//! sockets are not data: an unmounted or newly formatted disk must not empty REPLICA's copy.

use std::path::{Path, PathBuf};

use crate::dir::{Dir, Kind};
use crate::filter::Filter;
use crate::own::OwnFiles;

/// Whether the SOURCE directory `dir` (at `rel`, relative to SOURCE) holds no data. It reads
/// no further than the first file it finds. A directory below that cannot be read may hold
/// data: it counts as data. `dir` itself unreadable is an error.
pub fn holds_none(dir: &Dir, rel: &Path, own: &OwnFiles, filter: &Filter) -> std::io::Result<bool> {
    let mut todo: Vec<(PathBuf, Dir)> = vec![(rel.to_path_buf(), dir.dup()?)];
    let mut first = true;
    while let Some((at, dir)) = todo.pop() {
        let mut dirs = Vec::new();
        let top = std::mem::take(&mut first);
        let listed = dir.any(|name, kind| {
            let path = at.join(name);
            // mkfs leaves an empty `lost+found` at a file system's root (only root may read it).
            let lost_found = top && name == "lost+found";
            if lost_found || own.in_source(&path) || filter.excludes(&path, kind == Kind::Dir) {
                return false;
            }
            match kind {
                Kind::File | Kind::Symlink => true,
                Kind::Dir => {
                    dirs.push(path);
                    false
                }
                Kind::Special(_) => false,
            }
        });
        match listed {
            Ok(false) => {}
            Ok(true) => return Ok(false),
            Err(e) if top => return Err(e),
            Err(_) => return Ok(false),
        }
        for path in dirs {
            let Some(name) = path.file_name() else {
                continue;
            };
            match dir.open_dir(name) {
                Ok(sub) => todo.push((path.clone(), sub)),
                Err(e) if crate::dir::is_not_a_dir(&e) => {}
                Err(_) => return Ok(false),
            }
        }
    }
    Ok(true)
}
