//! Under systemd: console lines for the journal (priority prefixes when stderr is the journal's
//! stream), sd_notify's messages on a datagram socket, the shipped unit's security score, and the
//! Debian package (see `package.rs`).

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A SOURCE with a file (an info line), a fifo (a warning: skipped) and, where permissions bind,
/// an unreadable file (an error).
fn source_with_each_level(env: &Env) -> bool {
    write(env.src.join("a"), "data");
    let fifo = std::ffi::CString::new(env.src.join("p").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path of our own.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    write(env.src.join("secret"), "hidden");
    chmod(env.src.join("secret"), 0o000);
    // Under root, as_nobody drops root's power to read it; otherwise the user has none.
    fs::read(env.src.join("secret")).is_err() || is_root()
}

/// Runs one pass with the console in `console` and `JOURNAL_STREAM` set to `stream` (given
/// the console file's device and inode), and returns the console's text.
fn run_with_stream(env: &Env, console: &std::path::Path, stream: impl Fn(u64, u64) -> String) {
    let file = File::create(console).unwrap();
    let meta = file.metadata().unwrap();
    let mut cmd = unprivileged(env);
    cmd.arg("--once")
        .arg("-v")
        .arg("--state-dir")
        .arg(env.root.join("state"))
        .env("JOURNAL_STREAM", stream(meta.dev(), meta.ino()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
    let status = cmd.status().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "a pass with an unreadable file fails"
    );
}

fn is_timestamped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 24 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':'
}

#[test]
fn console_lines_carry_priorities_when_stderr_is_the_journal() {
    let env = Env::new();
    if !source_with_each_level(&env) {
        eprintln!("skipped: this user can read a file of mode 000");
        return;
    }
    let console = env.root.join("logs/journal.txt");
    fs::create_dir_all(env.root.join("state")).unwrap();
    run_with_stream(&env, &console, |dev, ino| format!("{dev}:{ino}"));
    let text = fs::read_to_string(&console).unwrap();
    let has = |prefix: &str, needle: &str| {
        text.lines()
            .any(|l| l.starts_with(prefix) && l.contains(needle))
    };
    assert!(has("<6>", "copied a"), "info line:\n{text}");
    assert!(has("<4>", "skipped fifo"), "warning line:\n{text}");
    assert!(has("<3>", "secret"), "error line:\n{text}");
    assert!(
        text.lines().any(|l| l.starts_with("<7>")),
        "debug line:\n{text}"
    );
    for line in text.lines() {
        let rest = line.get(3..).unwrap_or_default();
        assert!(
            ["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| line.starts_with(p)),
            "a line without a priority: {line:?}\n{text}"
        );
        assert!(
            !is_timestamped(rest) && !rest.starts_with("[INFO") && !rest.starts_with("[WARN"),
            "a journal line with a timestamp or level: {line:?}"
        );
    }
    // The log file is unchanged: timestamps and levels.
    let log = env.log_text();
    assert!(
        log.lines().all(is_timestamped) && log.contains("[WARN ]"),
        "log file:\n{log}"
    );
    // A start-up refusal is an error for the journal too.
    let out = Command::new(BIN)
        .arg(env.root.join("missing"))
        .arg(&env.rep)
        .arg("-l")
        .arg(&env.log)
        .env("JOURNAL_STREAM", {
            let meta = fs::metadata(&console).unwrap();
            format!("{}:{}", meta.dev(), meta.ino())
        })
        .stderr(File::options().append(true).open(&console).unwrap())
        .status()
        .unwrap();
    assert_eq!(out.code(), Some(2));
    let text = fs::read_to_string(&console).unwrap();
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("<3>foldersync: error: "), "{last:?}");
}

#[test]
fn console_lines_are_unchanged_when_journal_stream_names_another_file() {
    let env = Env::new();
    if !source_with_each_level(&env) {
        eprintln!("skipped: this user can read a file of mode 000");
        return;
    }
    let console = env.root.join("logs/console.txt");
    fs::create_dir_all(env.root.join("state")).unwrap();
    // The stream of a parent whose stderr was redirected here: another inode.
    run_with_stream(&env, &console, |dev, ino| format!("{dev}:{}", ino + 1));
    let text = fs::read_to_string(&console).unwrap();
    assert!(!text.is_empty());
    for line in text.lines() {
        assert!(
            is_timestamped(line),
            "a console line without a timestamp: {line:?}"
        );
    }
    assert!(text.contains("[WARN ] skipped fifo"), "{text}");
    assert!(text.contains("[ERROR]"), "{text}");
}

/// Reads messages from `socket` until one contains `needle`, failing after `within`; returns
/// every message read, in order.
fn read_until(socket: &UnixDatagram, needle: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {needle:?} within {within:?}; got {got:#?}"
        );
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let found = msg.contains(needle);
            got.push(msg);
            if found {
                return got;
            }
        }
    }
}

#[test]
fn sd_notify_says_ready_status_watchdog_and_stopping_in_order() {
    let env = Env::new();
    write(env.src.join("a"), "data");
    let path = env.root.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let console = env.root.join("logs/console.txt");
    let mut cmd = env.cmd();
    // WATCHDOG_PID is left unset: the child's pid is not known before it starts, and
    // sd_watchdog_enabled(3) (and the sd-notify crate) take an unset one as "this process".
    cmd.env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&console).unwrap());
    let mut run = Running::from(cmd.spawn().unwrap(), console);
    let within = Duration::from_secs(20);
    let mut got = read_until(&socket, "READY=1", within);
    got.extend(read_until(
        &socket,
        "last pass: ok, 1 checked, 1 copied",
        within,
    ));
    got.extend(read_until(&socket, "STATUS=watching", within));
    // A ping every half of the 0.4 s asked for: two more take 0.4 s (a loaded machine may
    // delay them somewhat; without pings between passes none would come).
    got.extend(read_until(&socket, "WATCHDOG=1", within));
    let first = Instant::now();
    got.extend(read_until(&socket, "WATCHDOG=1", within));
    got.extend(read_until(&socket, "WATCHDOG=1", within));
    assert!(
        first.elapsed() < Duration::from_millis(1500),
        "pings too far apart: {:?}",
        first.elapsed()
    );
    run.signal(libc::SIGHUP);
    got.extend(read_until(&socket, "RELOADING=1", within));
    let reload = got.last().unwrap().clone();
    assert!(reload.contains("MONOTONIC_USEC="), "{reload:?}");
    got.extend(read_until(&socket, "READY=1", within));
    run.signal(libc::SIGTERM);
    got.extend(read_until(&socket, "STOPPING=1", within));
    assert!(run.wait(within).is_some_and(|s| s.success()));
    let stopping = got.last().unwrap();
    assert!(stopping.starts_with("STOPPING=1"), "{got:#?}");
    let before_stop = &got[got.len() - 2];
    assert!(
        before_stop.contains("STATUS=stopped; last pass: ok"),
        "{got:#?}"
    );
    // READY=1 came once before the reload; nothing came before the first STATUS.
    assert!(got[0].starts_with("STATUS=passing"), "{got:#?}");
    let readies = got.iter().filter(|m| m.contains("READY=1")).count();
    assert_eq!(readies, 2, "{got:#?}");
}

#[test]
fn sd_notify_status_follows_a_source_that_goes_and_comes_back() {
    let env = Env::new();
    write(env.src.join("a"), "data");
    let path = env.root.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let console = env.root.join("logs/console.txt");
    let mut cmd = env.cmd();
    cmd.env("NOTIFY_SOCKET", &path)
        .env_remove("WATCHDOG_USEC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&console).unwrap());
    let mut run = Running::from(cmd.spawn().unwrap(), console);
    let within = Duration::from_secs(20);
    read_until(&socket, "STATUS=watching", within);
    let away = env.root.join("src.away");
    fs::rename(&env.src, &away).unwrap();
    let got = read_until(&socket, "STATUS=source-missing (", within);
    assert!(got.last().unwrap().contains("; last pass: ok"), "{got:#?}");
    fs::rename(&away, &env.src).unwrap();
    read_until(&socket, "STATUS=watching", within);
    run.stop();
    read_until(&socket, "STOPPING=1", within);
}

#[test]
fn the_watchdog_is_kept_during_a_long_pass() {
    let env = Env::new();
    for d in 0..10 {
        for f in 0..100 {
            write(env.src.join(format!("d{d}/f{f}")), format!("{d} {f}"));
        }
    }
    let path = env.root.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let console = env.root.join("logs/console.txt");
    let mut cmd = env.cmd();
    cmd.env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "40000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&console).unwrap());
    let mut run = Running::from(cmd.spawn().unwrap(), console);
    let within = Duration::from_secs(60);
    read_until(&socket, "READY=1", within);
    let started = Instant::now();
    let got = read_until(&socket, "last pass: ok, 1020 checked, 1000 copied", within);
    let took = started.elapsed();
    let pings = got.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    eprintln!("pass of {took:?}, {pings} pings");
    // A ping every 20 ms while the pass moves; the run loop is in the pass all along.
    if took > Duration::from_millis(200) {
        assert!(pings >= 2, "{pings} pings during a pass of {took:?}");
    }
    run.stop();
}
