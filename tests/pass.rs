//! The reconciliation pass: what is copied, preserved, replaced and removed.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crate::util::*;

/// A tree with the awkward cases: nested and empty directories, empty files, spaces, unicode
/// and non-UTF-8 names, a 5 MiB file, dangling and directory symlinks, modes, old mtimes.
fn awkward_tree(env: &Env) {
    let s = &env.src;
    mkdir(s.join("a/b/c/d"));
    mkdir(s.join("empty dir"));
    write(s.join("a/b/c/d/deep.txt"), "deep");
    write(s.join("empty-file"), "");
    write(s.join("with space.txt"), "spaces");
    write(s.join("ünïcødé/日本語.txt"), "unicode");
    write(s.join(non_utf8("raw-")), "not utf-8");
    mkdir(s.join(non_utf8("dir-")));
    write(s.join(non_utf8("dir-")).join("inside"), "x");
    write(s.join("big.bin"), bytes(5 << 20, 1));
    symlink("does/not/exist", s.join("dangling"));
    symlink("a/b", s.join("dir-link"));
    symlink("../with space.txt", s.join("a/file-link"));
    write(s.join("script.sh"), "#!/bin/sh\n");
    chmod(s.join("script.sh"), 0o755);
    write(s.join("secret"), "private");
    chmod(s.join("secret"), 0o600);
    chmod(s.join("a/b"), 0o750);
    write(s.join("old.txt"), "from 2001");
    set_mtime(s.join("old.txt"), 978_307_200);
    set_mtime(s.join("a/b/c"), 1_000_000_000);
    set_mtime(s.join("empty dir"), 1_100_000_000);
}

#[test]
fn awkward_tree_is_mirrored_exactly() {
    let env = Env::new();
    awkward_tree(&env);
    env.once_ok();
    env.assert_mirrored();
    let link = env.rep.join("dir-link");
    assert!(
        link.symlink_metadata().unwrap().file_type().is_symlink(),
        "link stays a link"
    );
    assert!(temp_files(&env.rep).is_empty());
}

#[test]
fn second_pass_on_an_unchanged_tree_copies_nothing() {
    let env = Env::new();
    awkward_tree(&env);
    env.once_ok();
    let inode = fs::metadata(env.rep.join("big.bin")).unwrap().ino();
    fs::remove_file(&env.log).unwrap();
    env.once_ok();
    let log = env.log_text();
    assert!(
        log.contains(
            "0 copied, 0 updated, 0 created, 0 removed, 0 renamed, 0 linked, 0 B written, 0 errors"
        ),
        "{log}"
    );
    assert_eq!(inode, fs::metadata(env.rep.join("big.bin")).unwrap().ino());
    env.assert_mirrored();
}

#[test]
fn changes_in_source_are_carried_over() {
    let env = Env::new();
    awkward_tree(&env);
    env.once_ok();
    // Same size, new content and mtime.
    write(env.src.join("with space.txt"), "SPACES");
    // Permissions only.
    chmod(env.src.join("secret"), 0o640);
    // Re-pointed symlink, removed file, removed directory tree, new file deep down.
    fs::remove_file(env.src.join("dir-link")).unwrap();
    symlink("ünïcødé", env.src.join("dir-link"));
    fs::remove_file(env.src.join("old.txt")).unwrap();
    fs::remove_dir_all(env.src.join("a/b/c")).unwrap();
    write(env.src.join("a/b/new/deeper/n.txt"), "new");
    env.once_ok();
    env.assert_mirrored();
    let log = env.log_text();
    for line in [
        "updated with space.txt",
        "updated attributes of secret",
        "updated symlink dir-link -> ünïcødé",
        "removed file old.txt",
        "removed directory a/b/c",
        "created directory a/b/new",
        "copied a/b/new/deeper/n.txt",
    ] {
        assert!(log.contains(line), "missing {line:?} in:\n{log}");
    }
}

#[test]
fn extras_and_type_changes_in_replica_are_repaired() {
    let env = Env::new();
    write(env.src.join("file-here"), "file");
    write(env.src.join("dir-here/inner"), "inner");
    symlink("file-here", env.src.join("link-here"));
    write(env.src.join("keep"), "keep");
    // The replica holds the opposite kinds, and extras.
    mkdir(&env.rep);
    write(env.rep.join("file-here/nested"), "was a dir");
    write(env.rep.join("dir-here"), "was a file");
    mkdir(env.rep.join("link-here"));
    write(env.rep.join("extra-file"), "extra");
    write(env.rep.join("extra-dir/a/b"), "extra");
    symlink("/etc", env.rep.join("extra-link"));
    env.once_ok();
    env.assert_mirrored();

    // And back the other way: source kinds change, replica follows.
    fs::remove_file(env.src.join("file-here")).unwrap();
    mkdir(env.src.join("file-here"));
    fs::remove_dir_all(env.src.join("dir-here")).unwrap();
    symlink("keep", env.src.join("dir-here"));
    fs::remove_file(env.src.join("link-here")).unwrap();
    write(env.src.join("link-here"), "now a file");
    env.once_ok();
    env.assert_mirrored();
}

#[test]
fn replica_directory_replaced_by_a_symlink_is_not_written_through() {
    let env = Env::new();
    write(env.src.join("d/f"), "data");
    let outside = env.root.join("outside");
    mkdir(&outside);
    mkdir(&env.rep);
    symlink(&outside, env.rep.join("d"));
    env.once_ok();
    env.assert_mirrored();
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through the symlink"
    );
}

#[test]
fn special_files_are_skipped_with_a_warning() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    let fifo = env.src.join("pipe");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let out = env.once_ok();
    assert!(!env.rep.join("pipe").exists());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("skipped fifo").count(), 1, "{err}");
    assert!(err.contains("WARN"), "{err}");
}

#[test]
fn leftover_temporary_files_are_removed() {
    let env = Env::new();
    write(env.src.join("d/f"), "x");
    mkdir(env.rep.join("d"));
    write(env.rep.join("d/.foldersync-dead0000-7.tmp"), "partial");
    env.once_ok();
    env.assert_mirrored();
}

#[test]
fn drift_in_replica_is_repaired_by_the_next_periodic_pass() {
    let env = Env::new();
    awkward_tree(&env);
    let mut run = env.spawn(&["-i", "300ms"]);
    env.wait_log("pass finished", 1, Duration::from_secs(20));
    env.assert_mirrored();
    write(env.rep.join("drift.txt"), "made by hand");
    fs::remove_file(env.rep.join("secret")).unwrap();
    write(env.rep.join("with space.txt"), "edited by hand");
    fs::remove_dir_all(env.rep.join("a/b")).unwrap();
    wait_for(Duration::from_secs(20), "replica repaired", || {
        env.mirrored()
    });
    run.stop();
    env.assert_mirrored();
    assert!(env.log_text().contains("removed file drift.txt"));
}

#[test]
fn unreadable_source_directory_is_an_error_for_that_path_only() {
    let env = Env::new();
    write(env.src.join("open/f"), "readable");
    write(env.src.join("closed/secret"), "hidden");
    env.once_ok();
    write(env.src.join("open/new"), "new");
    write(env.src.join("closed/added"), "cannot be seen");
    let mut cmd = unprivileged(&env);
    chmod(env.src.join("closed"), 0o000);
    let out = cmd.arg("--once").output().unwrap();
    chmod(env.src.join("closed"), 0o755);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("closed") && err.contains("Permission denied"),
        "{err}"
    );
    assert!(
        env.rep.join("open/new").is_file(),
        "the rest of the tree went on"
    );
    assert!(
        env.rep.join("closed/secret").is_file(),
        "an unreadable source directory must not empty its replica"
    );
}
