//! rsync's quick check (size and mtime) is a hint, never proof of equal bytes: a remote replica
//! compares by content the files whose ctime is after the last pass's mark, and every file in a
//! directory it holds by a rename found by looking or that came into SOURCE whole; an unchanged
//! pass compares nothing.

use std::fs;
use std::time::Duration;

use super::{once_ok, setup, watching, QUICK};
use crate::util::*;

/// 1980-01-01, as reproducible builds and zip contents date their files.
const FIXED: u64 = 315_532_800;

/// A file of `len` bytes made from `seed`, dated [`FIXED`].
fn fixed(path: &std::path::Path, len: usize, seed: u64) {
    write(path, bytes(len, seed));
    set_mtime(path, FIXED);
}

/// How many files the last pass in the log compared by content.
fn compared(log: &str) -> Vec<usize> {
    log.lines()
        .filter_map(|l| l.split("the pass compares ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect()
}

/// Made while foldersync was stopped: the next pass compares the file whose ctime is after the
/// last pass's mark (and only that one), and repairs it. (The mark is a little before the pass
/// began: the waits put the files' changes before it.)
#[test]
fn a_same_size_rewrite_made_while_stopped_is_mirrored_by_the_next_pass() {
    let Some((env, sshd)) = setup() else { return };
    fixed(&env.src.join("a"), 8192, 1);
    fixed(&env.src.join("d/b"), 8192, 2);
    std::thread::sleep(Duration::from_millis(2500));
    let debug = ["--log-level", "debug"];
    once_ok(&env, &sshd, &debug);
    env.assert_mirrored();
    fixed(&env.src.join("a"), 8192, 3);
    std::thread::sleep(Duration::from_millis(2500));
    once_ok(&env, &sshd, &debug);
    env.assert_mirrored();
    let log = env.log_text();
    assert_eq!(compared(&log), vec![1], "{log}");
    // The next pass compares nothing.
    once_ok(&env, &sshd, &debug);
    let log = env.log_text();
    assert_eq!(compared(&log), vec![1], "{log}");
}

/// The release directory swapped in under the same name (`mv app old && mv new-build app`)
/// while watching: its files were built before REPLICA's copies were made, with the same size
/// and mtime as the old ones.
#[test]
fn a_directory_swapped_in_under_the_same_name_keeps_none_of_the_old_bytes() {
    let Some((env, sshd)) = setup() else { return };
    let (staging, archive) = (env.root.join("staging"), env.root.join("archive"));
    fixed(&staging.join("app/bin/app"), 8192, 21);
    fixed(&env.src.join("app/bin/app"), 8192, 20);
    write(env.src.join("readme"), "readme");
    mkdir(&archive);
    // Made before the first pass's mark: their ctimes say nothing changed since.
    std::thread::sleep(Duration::from_millis(2500));
    let mut run = watching(&env, &sshd, &[]);
    env.converges(QUICK);
    fs::rename(env.src.join("app"), archive.join("app")).unwrap();
    fs::rename(staging.join("app"), env.src.join("app")).unwrap();
    env.converges(QUICK);
    run.stop();
}

/// A release moved out of SOURCE and the next one moved in: the remote side takes the old
/// directory for the new one by the names inside, then compares every file in it (the files'
/// ctimes, older than the last pass's mark, say nothing about what REPLICA holds there).
#[test]
fn a_directory_taken_by_its_names_is_compared_whatever_the_ctimes() {
    let Some((env, sshd)) = setup() else { return };
    let (staging, archive) = (env.root.join("staging"), env.root.join("archive"));
    fixed(&staging.join("app-1.1/bin/app"), 8192, 11);
    fixed(&env.src.join("app-1.0/bin/app"), 8192, 10);
    write(env.src.join("readme"), "readme");
    mkdir(&archive);
    std::thread::sleep(Duration::from_millis(2500));
    let mut run = watching(&env, &sshd, &[]);
    env.converges(QUICK);
    fs::rename(env.src.join("app-1.0"), archive.join("app-1.0")).unwrap();
    fs::rename(staging.join("app-1.1"), env.src.join("app-1.1")).unwrap();
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    assert!(log.contains("renamed app-1.0 -> app-1.1"), "{log}");
}
