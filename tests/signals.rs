//! Stopping: SIGINT and SIGTERM, idle and in the middle of a large copy.

use std::fs;
use std::time::{Duration, Instant};

use crate::util::*;

/// Starts a mirror copying a large file and signals it once the copy is under way.
fn stop_during_large_copy(sig: i32) {
    let env = Env::new();
    write(env.src.join("small"), "x");
    // Allocated: costs nothing to make, but the copy writes every byte.
    big_file(env.src.join("huge.bin"), 4 << 30);
    let mut run = env.spawn(&[]);
    wait_for(
        Duration::from_secs(20),
        "a temporary file in the replica",
        || env.rep.is_dir() && !temp_files(&env.rep).is_empty(),
    );
    let sent = Instant::now();
    run.signal(sig);
    let status = run
        .wait(Duration::from_secs(5))
        .expect("foldersync did not exit after the signal");
    let took = sent.elapsed();
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        run.console_text()
    );
    assert!(took < Duration::from_secs(1), "took {took:?} to stop");
    assert!(
        temp_files(&env.rep).is_empty(),
        "temporary file left behind"
    );
    assert!(
        !env.rep.join("huge.bin").exists(),
        "a partial file under the final name"
    );
    assert!(
        env.log_text().contains("stopped by user"),
        "{}",
        env.log_text()
    );
}

#[test]
fn sigint_during_a_large_copy() {
    stop_during_large_copy(libc::SIGINT);
}

#[test]
fn sigterm_during_a_large_copy() {
    stop_during_large_copy(libc::SIGTERM);
}

#[test]
fn sigint_while_idle() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    let mut run = env.spawn(&[]);
    env.wait_log("pass finished", 1, Duration::from_secs(20));
    run.signal(libc::SIGINT);
    let status = run.wait(Duration::from_secs(2)).expect("exit after SIGINT");
    assert!(status.success());
    env.wait_log("stopped by user", 1, Duration::from_secs(1));
    let _ = fs::remove_dir_all(&env.rep);
}
