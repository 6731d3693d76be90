//! Opening beneath a root and listing, on real directories.

use super::*;
use std::fs;

#[test]
fn opens_beneath_without_symlinks_or_dotdot() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("a/b")).unwrap();
    std::os::unix::fs::symlink("a", tmp.path().join("link")).unwrap();
    let root = Dir::open(tmp.path()).unwrap();
    assert!(root.open_beneath(Path::new("a/b")).is_ok());
    let e = root.open_beneath(Path::new("link/b")).unwrap_err();
    assert!(is_not_a_dir(&e), "{e}");
    assert!(root.open_beneath(Path::new("a/../a")).is_err());
    assert!(root.open_beneath(Path::new("/etc")).is_err());
    assert!(
        Dir::open(&tmp.path().join("link")).is_err(),
        "a root that is a symlink"
    );
}

#[test]
fn lists_sorted_with_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("b"), b"x").unwrap();
    fs::create_dir(tmp.path().join("a")).unwrap();
    std::os::unix::fs::symlink("nowhere", tmp.path().join("c")).unwrap();
    let root = Dir::open(tmp.path()).unwrap();
    let names: Vec<_> = root.list().unwrap();
    assert_eq!(
        names,
        vec![
            ("a".into(), Kind::Dir),
            ("b".into(), Kind::File),
            ("c".into(), Kind::Symlink)
        ]
    );
    assert_eq!(
        root.list().unwrap().len(),
        3,
        "a second listing starts over"
    );
    assert_eq!(
        root.read_link(OsStr::new("c")).unwrap(),
        PathBuf::from("nowhere")
    );
    assert!(root.stat_at(OsStr::new("missing")).unwrap().is_none());
}
