//! The command line: help, version, durations, the log path and its old spelling.

use std::fs;
use std::process::Command;

use crate::util::*;

#[test]
fn help_shows_an_example_and_version_works() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Examples:"), "{text}");
    assert!(text.contains("--log-path"), "{text}");
    assert!(text.contains("--once"), "{text}");

    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn interval_accepts_seconds_and_durations() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    for value in ["1800", "500ms", "30s", "10m", "1h", "1h30m"] {
        let out = env.cmd().args(["--once", "-i", value]).output().unwrap();
        assert!(
            out.status.success(),
            "-i {value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    env.assert_mirrored();
}

#[test]
fn interval_rejects_zero_negative_and_garbage() {
    let env = Env::new();
    for value in ["0", "0s", "-5", "-1m", "abc", "10x", ""] {
        let out = env
            .cmd()
            .args(["--once", "--interval", value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "-i {value:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--interval"), "-i {value:?}: {err}");
        assert!(!env.rep.exists(), "-i {value:?} created REPLICA");
        assert!(!env.log.exists(), "-i {value:?} created the log");
    }
}

#[test]
fn log_path_old_spelling_and_appending() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    let other_log = env.root.join("logs/old-style.log");
    for _ in 0..2 {
        let out = Command::new(BIN)
            .arg(&env.src)
            .arg(&env.rep)
            .arg("--log_path")
            .arg(&other_log)
            .arg("--once")
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let text = fs::read_to_string(&other_log).unwrap();
    assert_eq!(
        text.matches("started").count(),
        2,
        "appended, not truncated:\n{text}"
    );
}

#[test]
fn default_log_file_is_in_the_current_directory() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    let out = Command::new(BIN)
        .arg(&env.src)
        .arg(&env.rep)
        .arg("--once")
        .current_dir(&env.root)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(env.root.join("sync_log.txt").is_file());
}

#[test]
fn log_lines_have_millisecond_timestamps_levels_and_relative_paths() {
    let env = Env::new();
    write(env.src.join("dir/file.txt"), "hello");
    env.once_ok();
    let text = env.log_text();
    let line = text
        .lines()
        .find(|l| l.contains("copied dir/file.txt"))
        .unwrap_or_else(|| panic!("no copy line in:\n{text}"));
    // 2026-11-23 23:04:43.736 [INFO ] copied dir/file.txt (5 bytes)
    let bytes = line.as_bytes();
    assert!(
        bytes[4] == b'-' && bytes[10] == b' ' && bytes[19] == b'.',
        "{line}"
    );
    assert!(bytes[20..23].iter().all(u8::is_ascii_digit), "{line}");
    assert!(line.contains("[INFO"), "{line}");
    assert!(text.contains("created directory dir"), "{text}");
    assert!(text.contains("started: SOURCE"), "{text}");
    assert!(text.contains("pass finished:"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour codes in the file:\n{text}"
    );
}
