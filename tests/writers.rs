//! Files that are being written: the mirror waits for the writer's close (a read lease tells it
//! that a writer has the file open), copies one that stays open anyway at a bounded rate,
//! appends to the replica what a growing file gained, and never shows a reader of REPLICA a
//! version SOURCE did not hold with no writer.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::util::*;

const QUICK: Duration = Duration::from_secs(10);

fn watching(env: &Env) -> Running {
    let run = env.spawn(&["-i", "1h", "--log-level", "debug"]);
    env.wait_log("pass finished", 1, Duration::from_secs(20));
    run
}

#[test]
fn a_file_open_for_writing_waits_for_its_writer() {
    let env = Env::new();
    let mut run = watching(&env);
    let path = env.src.join("report.csv");
    let mut writer = fs::File::create(&path).unwrap();
    writer.write_all(b"first half,").unwrap();
    env.wait_log("report.csv is open for writing", 1, QUICK);
    assert!(
        !env.rep.join("report.csv").exists(),
        "a file its writer still has open was copied half-way"
    );
    writer.write_all(b"second half\n").unwrap();
    drop(writer);
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    assert_eq!(log.matches("copied report.csv").count(), 1, "{log}");
    assert!(!log.contains("while it is open for writing"), "{log}");
}

#[test]
fn a_file_that_stays_open_is_copied_anyway_and_the_log_says_so() {
    let env = Env::new();
    let mut run = watching(&env);
    let path = env.src.join("app.log");
    let mut writer = fs::File::create(&path).unwrap();
    writer.write_all(b"started\n").unwrap();
    env.wait_log("while it is open for writing", 1, QUICK);
    assert_eq!(fs::read(env.rep.join("app.log")).unwrap(), b"started\n");
    writer.write_all(b"stopped\n").unwrap();
    drop(writer);
    env.converges(QUICK);
    run.stop();
}

#[test]
fn a_single_pass_copies_an_open_file_after_a_moment() {
    let env = Env::new();
    let path = env.src.join("db");
    let mut writer = fs::File::create(&path).unwrap();
    writer.write_all(b"rows").unwrap();
    let out = env.once_ok();
    let console = String::from_utf8_lossy(&out.stdout).to_string() + &env.log_text();
    assert!(
        console.contains("while it is open for writing"),
        "{console}"
    );
    env.assert_mirrored();
    drop(writer);
}

#[test]
fn what_a_file_gained_is_appended_in_place() {
    let env = Env::new();
    let path = env.src.join("events.log");
    write(&path, bytes(1 << 20, 7));
    let mut run = watching(&env);
    let inode = fs::metadata(env.rep.join("events.log")).unwrap().ino();
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"one more line\n").unwrap();
    drop(f);
    env.converges(QUICK);
    env.wait_log("updated events.log (14 bytes appended", 1, QUICK);
    assert_eq!(
        fs::metadata(env.rep.join("events.log")).unwrap().ino(),
        inode,
        "the replica's copy was appended to, not replaced"
    );
    // A change before the end is not an append: the file is copied whole.
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"X", 10).unwrap();
    f.write_all_at(b"and the tail\n", (1 << 20) + 14).unwrap();
    drop(f);
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    assert_eq!(log.matches("bytes appended").count(), 1, "{log}");
}

#[test]
fn in_place_rewrites_are_never_seen_half_done() {
    let env = Env::new();
    const LEN: usize = 4 << 20;
    let path = env.src.join("image.bin");
    write(&path, vec![b'a'; LEN]);
    let mut run = watching(&env);
    let replica = env.rep.join("image.bin");
    let done = AtomicBool::new(false);
    let (reads, mixed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if let Ok(data) = fs::read(&replica) {
                    reads.fetch_add(1, Ordering::Relaxed);
                    let first = data.first().copied();
                    if data.len() != LEN || data.iter().any(|b| Some(*b) != first) {
                        mixed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        // Rewrites back to back, so that copies and writes overlap; every tenth one waits
        // for the replica to follow.
        for round in 0..200u32 {
            let fill = b'a' + (round % 26) as u8;
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.write_all_at(&vec![fill; LEN], 0).unwrap();
            drop(f);
            if round % 10 == 9 {
                let replica_has = |b| fs::read(&replica).is_ok_and(|d| d.first() == Some(&b));
                wait_for(QUICK, "the replica to follow a rewrite", || {
                    replica_has(fill)
                });
            }
        }
        done.store(true, Ordering::Relaxed);
    });
    env.converges(QUICK);
    run.stop();
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(
        mixed.load(Ordering::Relaxed),
        0,
        "a reader of REPLICA saw a half-rewritten file"
    );
}

#[test]
fn a_file_rewritten_without_pause_is_copied_at_a_bounded_rate() {
    let env = Env::new();
    let path = env.src.join("busy.log");
    write(&path, "");
    let mut run = watching(&env);
    let start = Instant::now();
    let mut appends = 0;
    while start.elapsed() < Duration::from_secs(2) {
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(format!("line {appends}\n").as_bytes()).unwrap();
        appends += 1;
    }
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    let copies = log.matches("updated busy.log").count();
    // The debounce (50 ms) is the least time between two looks at one path: 40 in 2 s.
    assert!(
        copies <= 60,
        "{copies} copies for {appends} appends in 2 s; the rate is not bounded"
    );
}

#[test]
fn a_file_removed_right_after_its_close_is_removed_from_the_replica() {
    // The close is acted on at once; the removal follows within the debounce window, where
    // the debouncer drops a create and a remove of one path without a word.
    let env = Env::new();
    write(env.src.join("keep"), "SOURCE never becomes empty");
    let mut run = watching(&env);
    for i in 0..5 {
        let path = env.src.join(format!("flash{i}.tmp"));
        write(&path, bytes(8192, i));
        let copy = env.rep.join(format!("flash{i}.tmp"));
        wait_for(QUICK, "the closed file to be copied", || copy.exists());
        fs::remove_file(&path).unwrap();
    }
    env.converges(QUICK);
    run.stop();
}
