//! The status file and `foldersync status`: what a monitoring check sees.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::util::*;

const QUICK: Duration = Duration::from_secs(10);

fn status(path: &std::path::Path) -> (i32, String) {
    let out = Command::new(BIN).arg("status").arg(path).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn status_of_a_running_mirror_through_its_states() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let file = env.root.join("status.json");
    let mut run = env.spawn(&["-i", "1h", "--status-file", file.to_str().unwrap()]);
    env.wait_log("pass finished", 1, QUICK);
    wait_for(QUICK, "a healthy, watching status", || {
        let (code, text) = status(&file);
        code == 0 && text.contains("): watching")
    });
    let (_, text) = status(&file);
    assert!(
        text.contains("watching") && text.contains("healthy"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(json["state"], "watching");
    assert_eq!(json["last_pass"]["outcome"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));

    // Changes applied by the watcher are counted.
    write(env.src.join("b"), "b");
    wait_for(QUICK, "events counted", || {
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(&file).unwrap_or_default()).unwrap_or_default();
        json["events_applied"].as_u64().unwrap_or(0) >= 1
    });

    // SOURCE goes missing: unhealthy, with the reason.
    let away = env.root.join("away");
    fs::rename(&env.src, &away).unwrap();
    wait_for(QUICK, "an unhealthy status", || status(&file).0 == 1);
    let (_, text) = status(&file);
    assert!(
        text.contains("SOURCE missing") && text.contains("UNHEALTHY"),
        "{text}"
    );
    fs::rename(&away, &env.src).unwrap();
    wait_for(QUICK, "healthy again", || status(&file).0 == 0);

    run.stop();
    let (code, text) = status(&file);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("stopped"), "{text}");
}

#[test]
fn status_of_a_dead_or_missing_mirror() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let file = env.root.join("status.json");
    let mut run = env.spawn(&["-i", "1h", "--status-file", file.to_str().unwrap()]);
    wait_for(QUICK, "a healthy status", || status(&file).0 == 0);
    run.signal(libc::SIGKILL);
    run.wait(QUICK);
    let (code, text) = status(&file);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not running"), "{text}");

    let (code, text) = status(&env.root.join("nope.json"));
    assert_eq!(code, 2, "{text}");
}

#[test]
fn status_file_inside_replica_is_refused() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    mkdir(&env.rep);
    let out = env
        .cmd()
        .arg("--once")
        .arg("--status-file")
        .arg(env.rep.join("status.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside REPLICA"));
}

/// foldersync's own files are one definition: a status file inside SOURCE counts as
/// foldersync's for the empty-SOURCE guard, exactly as the log file does.
#[test]
fn a_status_file_inside_an_otherwise_empty_source_does_not_empty_replica() {
    let env = Env::new();
    mkdir(&env.rep);
    write(env.rep.join("precious"), "keep me");
    // What an earlier run left: SOURCE holds nothing but the status file.
    write(env.src.join("a"), "a");
    env.once_ok_with(&[
        std::ffi::OsStr::new("--status-file"),
        env.src.join("status.json").as_os_str(),
    ]);
    fs::remove_file(env.src.join("a")).unwrap();
    let before = snapshot(&env.root);
    let out = env
        .cmd()
        .arg("--once")
        .arg("--status-file")
        .arg(env.src.join("status.json"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--allow-empty-source"), "{err}");
    assert_eq!(
        before,
        snapshot(&env.root),
        "a refused start-up changed the disk"
    );
}

/// The status file inside SOURCE is rewritten by foldersync; its events must not feed the
/// watcher, or the mirror is never idle.
#[test]
fn a_status_file_inside_source_does_not_feed_the_watcher() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let file = env.src.join("status.json");
    let mut run = env.spawn(&["-i", "1h", "--status-file", file.to_str().unwrap()]);
    env.wait_log("pass finished", 1, QUICK);
    write(env.src.join("b"), "b");
    wait_for(QUICK, "b mirrored", || env.rep.join("b").is_file());
    let applied = || {
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(&file).unwrap_or_default()).unwrap_or_default();
        json["events_applied"].as_u64().unwrap_or(u64::MAX)
    };
    wait_for(QUICK, "the change counted", || {
        applied() != u64::MAX && applied() >= 1
    });
    // The write's own later events (its close after writing) may come in a batch of their
    // own, late on a loaded machine: the count first rests for half a second.
    let mut settled = applied();
    let mut since = std::time::Instant::now();
    wait_for(QUICK, "the count at rest", || {
        let now = applied();
        if now != settled {
            (settled, since) = (now, std::time::Instant::now());
        }
        since.elapsed() >= Duration::from_millis(500)
    });
    // Quiet from here: the count must stay where it is, though the file keeps being written.
    let until = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < until {
        assert_eq!(applied(), settled, "the status file feeds the watcher");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !env.rep.join("status.json").exists(),
        "the status file was mirrored"
    );
    assert!(
        temp_files(&env.rep).is_empty(),
        "a temporary status file was mirrored"
    );
    run.stop();
}
