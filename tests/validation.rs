//! Start-up validation: every bad input exits 2 with one clear line and leaves the disk as it was.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::*;

fn run(env: &Env, src: &Path, rep: &Path, log: &Path) -> Output {
    Command::new(BIN)
        .arg(src)
        .arg(rep)
        .arg("-l")
        .arg(log)
        .arg("--once")
        .current_dir(&env.root)
        .output()
        .unwrap()
}

/// Runs with the given paths and asserts exit 2, one stderr line containing `needle`, and an
/// unchanged test directory.
fn refused(env: &Env, src: &Path, rep: &Path, log: &Path, needle: &str) {
    let before = snapshot(&env.root);
    let out = run(env, src, rep, log);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert_eq!(before, snapshot(&env.root), "the disk changed");
}

fn populated() -> Env {
    let env = Env::new();
    write(env.src.join("a/file"), "content");
    mkdir(&env.rep);
    write(env.rep.join("keep"), "replica data");
    env
}

#[test]
fn source_missing() {
    let env = populated();
    refused(
        &env,
        &env.root.join("nope"),
        &env.rep,
        &env.log,
        "does not exist",
    );
}

#[test]
fn source_not_a_directory() {
    let env = populated();
    let file = env.root.join("plain");
    write(&file, "x");
    refused(&env, &file, &env.rep, &env.log, "not a directory");
}

#[test]
fn source_unreadable() {
    let env = populated();
    let mut cmd = unprivileged(&env);
    chmod(&env.src, 0o000);
    let before = snapshot(&env.root);
    let out = cmd.arg("--once").output().unwrap();
    let after = snapshot(&env.root);
    chmod(&env.src, 0o755);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not readable"), "{err}");
    assert_eq!(before, after, "the disk changed");
}

#[test]
fn replica_equal_to_source() {
    let env = populated();
    refused(&env, &env.src, &env.src, &env.log, "same directory");
    // The same directory spelled differently.
    let dotted = env.src.join("a/..");
    refused(&env, &env.src, &dotted, &env.log, "same directory");
}

#[test]
fn replica_inside_source() {
    let env = populated();
    refused(
        &env,
        &env.src,
        &env.src.join("a/mirror"),
        &env.log,
        "inside SOURCE",
    );
    refused(
        &env,
        &env.src,
        &env.src.join("a"),
        &env.log,
        "inside SOURCE",
    );
}

#[test]
fn replica_inside_source_through_a_symlink() {
    let env = populated();
    let link = env.root.join("link-to-src");
    symlink(&env.src, &link);
    refused(
        &env,
        &env.src,
        &link.join("new-mirror"),
        &env.log,
        "inside SOURCE",
    );
    refused(
        &env,
        &env.src,
        &env.rep.join("../src/x"),
        &env.log,
        "inside SOURCE",
    );
}

#[test]
fn source_inside_replica() {
    let env = populated();
    refused(&env, &env.src, &env.root, &env.log, "inside REPLICA");
}

#[test]
fn replica_is_a_file() {
    let env = populated();
    let file = env.root.join("plain");
    write(&file, "x");
    refused(&env, &env.src, &file, &env.log, "not a directory");
    refused(
        &env,
        &env.src,
        &file.join("below"),
        &env.log,
        "not a directory",
    );
}

#[test]
fn replica_is_a_dangling_symlink() {
    let env = populated();
    let link = env.root.join("dangling");
    symlink(env.root.join("nowhere"), &link);
    refused(
        &env,
        &env.src,
        &link,
        &env.log,
        "symlink to a missing directory",
    );
}

#[test]
fn log_file_inside_replica() {
    let env = populated();
    refused(
        &env,
        &env.src,
        &env.rep,
        &env.rep.join("sync.log"),
        "inside REPLICA",
    );
    refused(
        &env,
        &env.src,
        &env.rep,
        &env.rep.join("sub/dir/sync.log"),
        "inside REPLICA",
    );
}

#[test]
fn missing_replica_is_created_with_its_parents() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    let rep: PathBuf = env.root.join("deep/er/replica");
    let out = run(&env, &env.src, &rep, &env.log);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(rep.join("f")).unwrap(), b"x");
}

#[test]
fn log_file_inside_source_is_allowed_and_never_mirrored() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    let log = env.src.join("sync.log");
    for _ in 0..2 {
        let out = run(&env, &env.src, &env.rep, &log);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(log.is_file());
    assert!(
        !env.rep.join("sync.log").exists(),
        "the log file was mirrored"
    );
    assert!(env.rep.join("f").is_file());
}
