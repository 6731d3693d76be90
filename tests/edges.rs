//! Operational rough edges: SIGHUP and log rotation, a log that cannot be written, the final
//! state of a `--once` run, bad status-file paths, a refused start-up leaving nothing behind,
//! and durations too short to be sane.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::util::*;

const QUICK: Duration = Duration::from_secs(10);

fn status(path: &std::path::Path) -> (i32, String) {
    let out = Command::new(BIN).arg("status").arg(path).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// SIGHUP reopens the log file (logrotate's `create` then `postrotate kill -HUP`) instead of
/// stopping the mirror; a log file deleted under it is made again.
#[test]
fn sighup_reopens_the_log_file() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let mut run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 1, QUICK);
    let rotated = env.root.join("logs/sync.log.1");
    fs::rename(&env.log, &rotated).unwrap();
    run.signal(libc::SIGHUP);
    env.wait_log("reopened the log file (SIGHUP)", 1, QUICK);
    write(env.src.join("b"), "b");
    env.wait_log("copied b", 1, QUICK);
    assert!(!fs::read_to_string(&rotated).unwrap().contains("copied b"));
    assert!(!env.log_text().contains("stopped by user"));

    fs::remove_file(&env.log).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    write(env.src.join("c"), "c");
    env.wait_log("copied c", 1, QUICK);
    run.stop();
}

/// With the log's disk full, lines were lost and nothing said so: now the console says it once,
/// and again when the log works; the status file says it meanwhile.
#[test]
fn a_log_that_cannot_be_written_is_reported() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let env = Env::new();
    let logs = env.root.join("small-logs");
    let mount = Mount::tmpfs(&logs, "64k");
    let log = logs.join("sync.log");
    let file = env.root.join("status.json");
    write(env.src.join("a"), "a");
    let console = env.root.join("logs/console.txt");
    let child = env
        .cmd_with_log(&log)
        .args(["-i", "1h", "--status-file"])
        .arg(&file)
        .stdout(fs::File::create(&console).unwrap())
        .stderr(fs::File::create(&console).unwrap())
        .spawn()
        .unwrap();
    let _run = Running::from(child, console.clone());
    wait_for(QUICK, "the first pass", || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("pass finished")
    });
    // Fill the disk, then make the mirror log.
    let filler = logs.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", filler.display()))
        .output();
    for i in 0..200 {
        write(env.src.join(format!("f{i}")), "x");
    }
    wait_for(QUICK, "the failure said on the console", || {
        fs::read_to_string(&console)
            .unwrap_or_default()
            .contains("cannot write log file")
    });
    wait_for(QUICK, "the failure in the status file", || {
        let (code, text) = status(&file);
        code == 1 && text.contains("cannot write log file")
    });
    fs::remove_file(&filler).unwrap();
    write(env.src.join("after"), "x");
    wait_for(QUICK, "the recovery said", || {
        fs::read_to_string(&console)
            .unwrap_or_default()
            .contains("is written again")
    });
    let said = fs::read_to_string(&console).unwrap();
    assert_eq!(said.matches("cannot write log file").count(), 1, "{said}");
    drop(mount);
}

/// `--once --status-file` left "passing" and no last pass; the final state is always written.
#[test]
fn a_once_run_writes_its_final_state() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let file = env.root.join("status.json");
    env.once_ok_with(&[std::ffi::OsStr::new("--status-file"), file.as_os_str()]);
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(json["state"], "finished");
    assert_eq!(json["last_pass"]["outcome"], "ok");
    let (code, text) = status(&file);
    assert_eq!(code, 0, "{text}");
}

/// A status file that is a directory, or whose directory does not exist, only warned; now it is
/// refused at start-up.
#[test]
fn bad_status_file_paths_are_refused() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    for bad in [env.root.join("logs"), env.root.join("nowhere/status.json")] {
        let before = snapshot(&env.root);
        let out = env
            .cmd()
            .arg("--once")
            .arg("--status-file")
            .arg(&bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", bad.display());
        assert_eq!(before, snapshot(&env.root));
    }
}

/// Exit 2 promises that nothing was created: not REPLICA, not the log file or its directories,
/// whichever of them could not be made.
#[test]
fn a_refused_start_up_leaves_nothing_behind() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let locked = env.root.join("locked");
    mkdir(&locked);

    // REPLICA cannot be made; the log, in new directories, could.
    let mut cmd = as_nobody(&env);
    chmod(&locked, 0o555);
    let out = cmd
        .arg(&env.src)
        .arg(locked.join("replica"))
        .arg("-l")
        .arg(env.root.join("new/logs/sync.log"))
        .arg("--once")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot create REPLICA"), "{err}");
    assert!(!env.root.join("new").exists(), "the log was left behind");

    // REPLICA can be made, the log cannot: REPLICA is taken back.
    let out = as_nobody(&env)
        .arg(&env.src)
        .arg(env.root.join("fresh/replica"))
        .arg("-l")
        .arg(locked.join("new/sync.log"))
        .arg("--once")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot open log file"), "{err}");
    assert!(!env.root.join("fresh").exists(), "REPLICA was left behind");
    chmod(&locked, 0o755);
}

/// `-i 1e-9` and `--debounce 1e-9` were accepted, shown as 0ms, and spun.
#[test]
fn durations_too_short_are_refused() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    for args in [["-i", "1e-9"], ["--debounce", "1e-9"], ["-i", "50ms"]] {
        let mut run = env.spawn(&args);
        let status = run.wait(QUICK);
        let err = run.console_text();
        assert_eq!(status.and_then(|s| s.code()), Some(2), "{args:?}: {err}");
        assert!(err.contains("too short"), "{err}");
    }
    assert!(!env.rep.exists());
}
