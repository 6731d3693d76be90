//! Finding the names of some SOURCE inodes: a walk of SOURCE's directory listings, which give
//! every entry's inode number without a `statx` (one is made only for a match, to check its
//! device). It costs about a tenth of a pass, and runs once per batch that met new names of
//! inodes whose other names were not known (`ln a/f b/g`, `cp -al` while watching).

use std::collections::HashSet;
use std::path::PathBuf;

use crate::dir::{Id, Kind};
use crate::root::Root;

/// Every name in SOURCE of the inodes `wanted`; gives up (with what it found) on a stop.
pub fn names_of(
    source: &Root,
    wanted: &HashSet<Id>,
    stop: &dyn Fn() -> bool,
) -> Vec<(Id, PathBuf)> {
    let inodes: HashSet<u64> = wanted.iter().map(|id| id.ino).collect();
    let mut found = Vec::new();
    // Directories still to list, as paths: none is held open while it waits.
    let mut todo: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        if stop() {
            break;
        }
        let Ok(dir) = source.dir.open_beneath(&rel) else {
            continue;
        };
        let Ok(entries) = dir.list_inodes() else {
            continue;
        };
        for (name, kind, ino) in entries {
            match kind {
                Kind::Dir => todo.push(rel.join(&name)),
                Kind::File if inodes.contains(&ino) => {
                    if let Ok(Some(meta)) = dir.stat_at(&name) {
                        if wanted.contains(&meta.id) {
                            found.push((meta.id, rel.join(&name)));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_name_of_an_inode() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        std::fs::create_dir_all(base.join("a/b")).unwrap();
        std::fs::create_dir_all(base.join("c")).unwrap();
        std::fs::write(base.join("a/f"), b"x").unwrap();
        std::fs::write(base.join("c/other"), b"y").unwrap();
        std::fs::hard_link(base.join("a/f"), base.join("a/b/g")).unwrap();
        std::fs::hard_link(base.join("a/f"), base.join("c/h")).unwrap();
        let root = Root::open(&std::fs::canonicalize(base).unwrap()).unwrap();
        let id = root
            .dir
            .open_beneath("a".as_ref())
            .unwrap()
            .stat_at("f".as_ref())
            .unwrap()
            .unwrap()
            .id;
        let mut names: Vec<PathBuf> = names_of(&root, &HashSet::from([id]), &|| false)
            .into_iter()
            .map(|(i, p)| {
                assert_eq!(i, id);
                p
            })
            .collect();
        names.sort();
        assert_eq!(names, [PathBuf::from("a/b/g"), "a/f".into(), "c/h".into()]);
    }
}
