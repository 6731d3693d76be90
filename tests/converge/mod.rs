//! Issue 17: REPLICA converges to SOURCE whatever the timing, and every pass can repair
//! anything. Each test reproduces one way the mirror broke that promise: a shortcut taken on
//! coincidence (size and mtime equal), a change hidden by the ctime rule, lost events, a byte
//! comparison that held everything up, hard links, failures not retried, removals held, a
//! directory renamed mid-write copied again, a dry run that did not show its renames.
//!
//! Run them alone with `cargo test --test integration converge::`.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

mod attrs;
mod channel;
mod events;
mod limits;
mod links;
mod proof;
mod renames;

pub(crate) const QUICK: Duration = Duration::from_secs(10);

/// 1980-01-01 00:00:00 UTC: the fixed mtime of reproducible builds and zip contents.
pub(crate) const Y1980: u64 = 315_532_800;
/// 2100-01-01 00:00:00 UTC: a file dated in the future.
pub(crate) const Y2100: u64 = 4_102_444_800;

/// The mirror watching, with the next pass an hour away (so only the watcher can converge),
/// once its first pass is done.
pub(crate) fn watching(env: &Env, extra: &[&str]) -> Running {
    let mut args = vec!["-i", "1h"];
    args.extend_from_slice(extra);
    let run = env.spawn(&args);
    env.wait_log("pass finished", 1, Duration::from_secs(30));
    run
}

/// A file of `len` pseudo-random bytes (from `seed`) with the modification time `mtime`.
pub(crate) fn dated_file(path: &Path, len: usize, seed: u64, mtime: u64) {
    write(path, bytes(len, seed));
    set_mtime(path, mtime);
}

/// How many full passes the log shows.
pub(crate) fn passes(env: &Env) -> usize {
    env.log_text().matches("pass finished").count()
}

/// Runs rsync with `args`, insisting it succeeded; its standard output.
pub(crate) fn rsync(args: &[&str], from: &Path, to: &Path) -> String {
    let out = Command::new("rsync")
        .args(args)
        .arg(format!("{}/", from.display()))
        .arg(format!("{}/", to.display()))
        .output()
        .expect("run rsync (tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "rsync {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What `rsync FLAGS --delete --dry-run --itemize-changes SOURCE/ REPLICA/` lists: nothing
/// when REPLICA is an exact copy in every respect the flags name.
pub(crate) fn rsync_differences(env: &Env, flags: &str) -> String {
    rsync(
        &[flags, "--delete", "--dry-run", "--itemize-changes"],
        &env.src,
        &env.rep,
    )
}

/// Waits until rsync with `flags` finds no difference, failing with its listing and the log.
pub(crate) fn rsync_settles(env: &Env, flags: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let said = rsync_differences(env, flags);
        if said.trim().is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rsync {flags} still lists differences after {within:?}:\n{said}\nlog:\n{}",
            env.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether this file system takes `user.*` extended attributes (said when it does not).
pub(crate) fn xattrs_work(env: &Env) -> bool {
    let probe = env.root.join("xattr-probe");
    write(&probe, "p");
    let ok = xattr::set(&probe, "user.probe", b"1").is_ok();
    let _ = fs::remove_file(&probe);
    if !ok {
        eprintln!("skipped: the test file system takes no user.* extended attributes");
    }
    ok
}

/// One extended attribute's value, `None` if absent or the file is missing.
pub(crate) fn xattr_of(path: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(path, name).ok().flatten()
}

/// The status file as JSON (`Null` while it cannot be read or parsed).
pub(crate) fn status_json(path: &Path) -> serde_json::Value {
    fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// `foldersync status PATH`: its exit status and what it printed.
pub(crate) fn status_check(path: &Path) -> (i32, String) {
    let out = Command::new(BIN).arg("status").arg(path).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Waits until REPLICA equals SOURCE (`tree`: kinds, bytes, modes, mtimes, owners), failing
/// with both trees and the log after `within`.
pub(crate) fn converges(env: &Env, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        // A comparison of a large tree costs CPU the mirror needs: poll at most half the time.
        let looked = Instant::now();
        if env.mirrored() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("log:\n{}", log_digest(env));
            env.assert_mirrored();
        }
        std::thread::sleep(looked.elapsed().max(Duration::from_millis(20)));
    }
}

/// The log, or for a long one its lines other than copies and new directories, with a count.
pub(crate) fn log_digest(env: &Env) -> String {
    let log = env.log_text();
    if log.lines().count() <= 200 {
        return log;
    }
    let routine = |l: &&str| l.contains("] copied ") || l.contains("] created directory ");
    let mut out: String = log
        .lines()
        .filter(|l| !routine(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let skipped = log.lines().filter(routine).count();
    out.push_str(&format!(
        "({skipped} lines of copies and new directories left out)\n"
    ));
    out
}
