//! What to mirror and how to compare: exclude patterns, --delete-excluded, --checksum and
//! --backup-dir, in passes and through the watcher.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::*;

const QUICK: Duration = Duration::from_secs(10);

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

fn excludes_tree(env: &Env) {
    write(env.src.join("a.txt"), "a");
    write(env.src.join("scratch.tmp"), "t");
    write(env.src.join("sub/deep.tmp"), "t");
    write(env.src.join("sub/build/out.o"), "o");
    write(
        env.src.join("build"),
        "a file named build is kept: build/ means directories",
    );
    write(env.src.join("top-only"), "x");
    write(
        env.src.join("sub/top-only"),
        "kept: the pattern is anchored",
    );
    write(env.src.join("x/y/cache/c"), "c");
    write(env.src.join("debug.log"), "l");
    write(env.src.join("keep.log"), "kept by the negation");
}

/// What REPLICA holds after mirroring `excludes_tree` with `PATTERNS`.
const MIRRORED: [&str; 7] = [
    "a.txt",
    "build",
    "keep.log",
    "sub",
    "sub/top-only",
    "x",
    "x/y",
];

const PATTERNS: &[&str] = &[
    "*.tmp",
    "build/",
    "/top-only",
    "**/cache",
    "*.log",
    "!keep.log",
];

fn with_patterns(cmd: &mut Command) -> &mut Command {
    for p in PATTERNS {
        cmd.arg("--exclude").arg(p);
    }
    cmd
}

#[test]
fn exclude_patterns_in_gitignore_syntax() {
    let env = Env::new();
    excludes_tree(&env);
    let out = with_patterns(&mut env.cmd())
        .arg("--once")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(names(&env.rep), MIRRORED,);
}

#[test]
fn exclude_from_a_file_with_comments() {
    let env = Env::new();
    excludes_tree(&env);
    let list = env.root.join("excludes.txt");
    write(
        &list,
        format!("# build output\n{}\n\n   \n", PATTERNS.join("\n")),
    );
    let out = env
        .cmd()
        .arg("--exclude-from")
        .arg(&list)
        .arg("--once")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(names(&env.rep), MIRRORED,);
}

#[test]
fn exclude_files_keep_an_escaped_trailing_space_and_drop_plain_ones() {
    let env = Env::new();
    write(env.src.join("sp "), "a name ending in a space");
    write(env.src.join("sp"), "without");
    write(env.src.join("a.tmp"), "t");
    let list = env.root.join("excludes.txt");
    write(&list, "sp\\ \n*.tmp   \r\n");
    let out = env
        .cmd()
        .arg("--exclude-from")
        .arg(&list)
        .arg("--once")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!env.rep.join("sp ").exists() && !env.rep.join("a.tmp").exists());
    assert!(env.rep.join("sp").exists());
}

#[test]
fn invalid_patterns_and_missing_files_are_refused() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    let before = snapshot(&env.root);
    let out = env
        .cmd()
        .args(["--once", "--exclude", "a[b"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("'a[b'"), "{err}");
    let out = env
        .cmd()
        .args(["--once", "--exclude-from", "/nonexistent/list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/list"));
    assert_eq!(before, snapshot(&env.root));
}

#[test]
fn excluded_paths_in_replica_are_left_alone_unless_delete_excluded() {
    let env = Env::new();
    write(env.src.join("keep"), "k");
    write(env.rep.join("node_modules/pkg/index.js"), "replica only");
    write(env.rep.join("notes.tmp"), "replica only");
    let out = env
        .cmd()
        .args(["--once", "--exclude", "node_modules/", "--exclude", "*.tmp"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(env.rep.join("node_modules/pkg/index.js").is_file());
    assert!(env.rep.join("notes.tmp").is_file());
    let out = env
        .cmd()
        .args([
            "--once",
            "--exclude",
            "node_modules/",
            "--exclude",
            "*.tmp",
            "--delete-excluded",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!env.rep.join("node_modules").exists());
    assert!(!env.rep.join("notes.tmp").exists());
    assert!(env.rep.join("keep").is_file());
}

/// An excluded directory is never even listed: one that cannot be read causes no error.
#[test]
fn excluded_directories_are_not_descended() {
    let env = Env::new();
    write(env.src.join("ok"), "x");
    write(env.src.join("huge/inner/f"), "x");
    write(env.rep.join("huge/replica-side/g"), "x");
    let mut cmd = unprivileged(&env);
    chmod(env.src.join("huge"), 0o000);
    chmod(env.rep.join("huge"), 0o000);
    let out = cmd.args(["--once", "--exclude", "huge/"]).output().unwrap();
    chmod(env.src.join("huge"), 0o755);
    chmod(env.rep.join("huge"), 0o755);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("huge"), "{err}");
}

#[test]
fn the_watcher_never_copies_an_excluded_file() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let mut run = env.spawn(&["-i", "1h", "--exclude", "*.swp", "--exclude", "cache/"]);
    env.wait_log("pass finished", 1, QUICK);
    write(env.src.join(".a.swp"), "editor swap");
    write(env.src.join("cache/blob"), "cached");
    write(env.src.join("cache/more/blob2"), "cached");
    write(env.src.join("after"), "a later, included file");
    wait_for(QUICK, "the included file", || {
        env.rep.join("after").is_file()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!env.rep.join(".a.swp").exists());
    assert!(!env.rep.join("cache").exists());
    run.stop();
}

// ---------- --checksum ----------

#[test]
fn checksum_catches_same_size_and_mtime_with_other_bytes() {
    let env = Env::new();
    write(env.src.join("f"), "AAAA");
    env.once_ok();
    // Same size and mtime, other bytes, changed in REPLICA after SOURCE's last change (its
    // ctime later, on the kernel's coarse clock): invisible without --checksum.
    let mtime = fs::metadata(env.src.join("f")).unwrap().mtime();
    set_mtime(env.src.join("f"), mtime as u64);
    let src_ctime = || {
        let m = fs::metadata(env.src.join("f")).unwrap();
        (m.ctime(), m.ctime_nsec())
    };
    let probe = env.root.join("clock-probe");
    wait_for(Duration::from_secs(5), "the ctime clock to tick", || {
        write(&probe, "tick");
        let m = fs::metadata(&probe).unwrap();
        (m.ctime(), m.ctime_nsec()) > src_ctime()
    });
    write(env.rep.join("f"), "BBBB");
    set_mtime(env.rep.join("f"), mtime as u64);
    env.once_ok();
    assert_eq!(fs::read(env.rep.join("f")).unwrap(), b"BBBB");
    let out = env.cmd().args(["--once", "--checksum"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(fs::read(env.rep.join("f")).unwrap(), b"AAAA");
    env.assert_mirrored();
}

#[test]
fn checksum_fixes_the_mtime_of_equal_files_without_copying() {
    let env = Env::new();
    write(env.src.join("f"), bytes(100_000, 1));
    env.once_ok();
    set_mtime(env.rep.join("f"), 1_000_000_000);
    let inode = fs::metadata(env.rep.join("f")).unwrap().ino();
    fs::remove_file(&env.log).unwrap();
    let out = env.cmd().args(["--once", "-c"]).output().unwrap();
    assert!(out.status.success());
    env.assert_mirrored();
    assert_eq!(
        inode,
        fs::metadata(env.rep.join("f")).unwrap().ino(),
        "copied instead"
    );
    assert!(
        env.log_text().contains("0 copied, 1 updated"),
        "{}",
        env.log_text()
    );
}

// ---------- --backup-dir ----------

fn backups(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().to_path_buf())
        .collect()
}

fn only_backup_of(dir: &Path, rel: &str) -> Vec<u8> {
    let found: Vec<PathBuf> = backups(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().starts_with(&format!("{rel}.")))
        .collect();
    assert_eq!(found.len(), 1, "backups of {rel}: {found:?}");
    fs::read(dir.join(&found[0])).unwrap()
}

#[test]
fn backup_dir_keeps_what_a_pass_removes_or_overwrites() {
    let env = Env::new();
    let bak = env.root.join("bak");
    write(env.src.join("doc.txt"), "version 1");
    write(env.src.join("gone.txt"), "to be deleted");
    write(env.src.join("dir/inner"), "in a removed dir");
    env.once_ok();
    write(env.src.join("doc.txt"), "version 2, longer");
    fs::remove_file(env.src.join("gone.txt")).unwrap();
    fs::remove_dir_all(env.src.join("dir")).unwrap();
    env.once_ok_with(&[OsStr::new("--backup-dir"), bak.as_os_str()]);
    env.assert_mirrored();
    assert_eq!(only_backup_of(&bak, "doc.txt"), b"version 1");
    assert_eq!(only_backup_of(&bak, "gone.txt"), b"to be deleted");
    let dir_backup = fs::read_dir(&bak)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("dir."))
        .expect("the removed directory is kept");
    assert_eq!(
        fs::read(dir_backup.path().join("inner")).unwrap(),
        b"in a removed dir"
    );
    assert!(env.log_text().contains("kept as"), "{}", env.log_text());
}

#[test]
fn backup_dir_inside_replica_is_left_out_and_inside_source_is_refused() {
    let env = Env::new();
    write(env.src.join("f"), "1");
    env.once_ok();
    write(env.src.join("f"), "2 two");
    let bak = env.rep.join(".backups");
    for _ in 0..2 {
        env.once_ok_with(&[OsStr::new("--backup-dir"), bak.as_os_str()]);
    }
    assert_eq!(
        only_backup_of(&bak, "f"),
        b"1",
        "the mirror must not remove its own backups"
    );

    let before = snapshot(&env.root);
    let out = env
        .cmd()
        .arg("--once")
        .arg("--backup-dir")
        .arg(env.src.join("bak"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside SOURCE"));
    assert_eq!(before, snapshot(&env.root));
}

#[test]
fn a_file_overwritten_through_the_watcher_lands_in_the_backup() {
    let env = Env::new();
    let bak = env.root.join("bak");
    write(env.src.join("note.txt"), "first");
    let mut run = env.spawn(&["-i", "1h", "--backup-dir", bak.to_str().unwrap()]);
    env.wait_log("pass finished", 1, QUICK);
    write(env.src.join("note.txt"), "second, longer");
    wait_for(QUICK, "the update", || {
        fs::read(env.rep.join("note.txt")).unwrap_or_default() == b"second, longer"
    });
    assert_eq!(only_backup_of(&bak, "note.txt"), b"first");
    run.stop();
}

#[test]
fn backup_across_file_systems_copies_then_removes() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs for the backup directory needs root");
        return;
    }
    let env = Env::new();
    let bak = env.root.join("bak");
    let _mount = Mount::tmpfs(&bak, "8m");
    write(env.src.join("a"), "old a");
    write(env.src.join("d/b"), "old b");
    env.once_ok();
    write(env.src.join("a"), "new a!");
    fs::remove_dir_all(env.src.join("d")).unwrap();
    env.once_ok_with(&[OsStr::new("--backup-dir"), bak.as_os_str()]);
    env.assert_mirrored();
    assert_eq!(only_backup_of(&bak, "a"), b"old a");
    let kept: Vec<PathBuf> = backups(&bak);
    assert!(kept.iter().any(|p| p.ends_with("b")), "{kept:?}");
}
