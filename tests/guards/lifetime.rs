//! Process lifetime: an interrupted `--once` does not pass for a success (a cron job would take
//! a half-made mirror for a whole one), and one SIGTERM that reaches the process twice (sent to
//! it and to its process group, as `timeout(1)` does) is one stop request, not two presses of
//! Ctrl+C.

use std::fs;
use std::time::Instant;

use super::*;

/// SOURCE with a large file whose copy takes a while.
fn large(env: &Env) {
    write(env.src.join("small"), "x");
    big_file(env.src.join("huge.bin"), 4 << 30);
}

fn copying(env: &Env) {
    wait_for(
        Duration::from_secs(20),
        "a temporary file in the replica",
        || env.rep.is_dir() && !temp_files(&env.rep).is_empty(),
    );
}

#[test]
fn an_interrupted_once_exits_non_zero() {
    let env = Env::new();
    large(&env);
    let mut c = cmd(&env);
    c.arg("--once");
    let mut run = start(&env, c);
    copying(&env);
    run.signal(libc::SIGTERM);
    let status = run
        .wait(Duration::from_secs(5))
        .expect("foldersync did not exit after SIGTERM");
    assert_eq!(
        status.code(),
        Some(20),
        "an interrupted --once: {status:?}\n{}",
        run.console_text()
    );
    assert!(temp_files(&env.rep).is_empty(), "temporary file left");
    assert!(!env.rep.join("huge.bin").exists());
    assert!(
        env.log_text().contains("stopped by user"),
        "{}",
        env.log_text()
    );
}

/// How the one SIGTERM comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// `timeout --preserve-status -s TERM SECS`: to the process, then to its process group, at
    /// once. Whether the process sees one signal or two is up to the scheduler (on a loaded
    /// machine the second often finds the first still pending).
    Timeout(&'static str),
    /// As timeout does, but the group's copy sent once the process's was delivered: always
    /// two deliveries, a millisecond or so apart.
    Twice,
}

/// Whether SIGTERM is pending for the process `pid` (process-wide).
fn term_pending(pid: i32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
}

/// foldersync (watching) stopped by one SIGTERM sent to it and to its process group, during a
/// large copy (`busy`) or idle: its exit status, and the log.
fn one_sigterm(env: &Env, sent: Sent, busy: bool) -> (Option<i32>, String) {
    let started = Instant::now();
    let mut run = match sent {
        Sent::Timeout(secs) => {
            let mut c = Command::new("timeout");
            c.args(["--preserve-status", "-s", "TERM", secs]);
            c.arg(BIN)
                .arg(&env.src)
                .arg(&env.rep)
                .arg("-l")
                .arg(&env.log);
            if takes("--state-dir") {
                c.arg("--state-dir").arg(env.root.join("state"));
            }
            c.current_dir(&env.root);
            start(env, c)
        }
        Sent::Twice => {
            use std::os::unix::process::CommandExt;
            let mut c = cmd(env);
            c.process_group(0);
            start(env, c)
        }
    };
    if busy {
        copying(env);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the copy started too late for this test"
        );
    }
    if sent == Sent::Twice {
        if !busy {
            env.wait_log("pass finished", 1, QUICK);
        }
        let pid = run.pid();
        // SAFETY: signals to our own child and to the process group it leads.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let sent = Instant::now();
        while term_pending(pid) && sent.elapsed() < Duration::from_secs(1) {
            std::thread::yield_now();
        }
        unsafe { libc::kill(-pid, libc::SIGTERM) };
    }
    let status = run
        .wait(Duration::from_secs(20))
        .expect("foldersync did not exit");
    (status.code(), env.log_text())
}

/// Sent as timeout(1) sends it, during a large copy and while idle: exit 0, stopped once.
#[test]
fn one_sigterm_to_process_and_group_is_one_stop_request() {
    let runs = [
        (Sent::Twice, true),
        (Sent::Twice, false),
        (Sent::Timeout("3"), true),
        (Sent::Timeout("1"), false),
        (Sent::Timeout("1"), false),
    ];
    for (sent, busy) in runs {
        let env = Env::new();
        if busy {
            large(&env);
        } else {
            write(env.src.join("small"), "x");
        }
        let (code, log) = one_sigterm(&env, sent, busy);
        let how = format!("{sent:?}, {}", if busy { "copying" } else { "idle" });
        assert!(
            !log.contains("second interrupt"),
            "{how}: one SIGTERM counted as two:\n{log}"
        );
        assert_eq!(code, Some(0), "{how}: exit status\n{log}");
        assert!(log.contains("stopped by user"), "{how}: {log}");
        if busy {
            assert!(temp_files(&env.rep).is_empty(), "temporary file left");
        }
    }
}
