//! Issue 17 on a remote replica, what a run sends and says: a batch sends only the paths it
//! names (the root's own times included, not its other entries), "copied" is said only for what
//! the remote side wrote, SOURCE changing under rsync is retried quietly whatever rsync's exit
//! status, and what failed (a full remote disk) is tried again until it succeeds.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{cmd, once, once_ok, setup, watching, QUICK};
use crate::util::*;

fn mtime(p: &Path) -> (i64, i64) {
    let m = fs::metadata(p).unwrap();
    (m.mtime(), m.mtime_nsec())
}

#[test]
fn a_batch_in_the_root_sends_only_what_it_names() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("other"), "o");
    let fifo = env.src.join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut run = watching(&env, &sshd, &[]);
    env.wait_log("skipped pipe", 1, QUICK);
    // A difference at a root name no batch names: the batches below leave it alone.
    write(env.rep.join("other"), "changed on the remote side");
    for i in 0..3 {
        let name = format!("new{i}");
        write(env.src.join(&name), "n");
        wait_for(QUICK, "the new file and the root's times", || {
            env.rep.join(&name).exists() && mtime(&env.src) == mtime(&env.rep)
        });
    }
    // The root's own attributes changed: they follow too.
    chmod(&env.src, 0o750);
    write(env.src.join("new-after-chmod"), "n");
    wait_for(QUICK, "the root's mode and times", || {
        let mode = fs::metadata(&env.rep).unwrap().mode() & 0o7777;
        env.rep.join("new-after-chmod").exists()
            && mode == 0o750
            && mtime(&env.src) == mtime(&env.rep)
    });
    run.stop();
    let log = env.log_text();
    assert_eq!(log.matches("skipped pipe").count(), 1, "{log}");
    assert_eq!(
        fs::read(env.rep.join("other")).unwrap(),
        b"changed on the remote side",
        "a batch sent a root entry it did not name:\n{log}"
    );
}

/// REPLICA made read-only (a bind mount of itself), undone when dropped.
struct ReadOnly {
    _mount: Mount,
}

impl ReadOnly {
    fn new(at: &Path) -> ReadOnly {
        let mount = Mount::bind(at, at);
        let status = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(at)
            .status()
            .unwrap();
        assert!(status.success());
        ReadOnly { _mount: mount }
    }
}

#[test]
fn nothing_is_said_copied_that_a_read_only_remote_did_not_write() {
    if !is_root() {
        eprintln!("skipped: a read-only bind mount needs root");
        return;
    }
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("a"), "v1");
    write(env.src.join("d/b"), "b");
    once_ok(&env, &sshd, &[]);
    let ro = ReadOnly::new(&env.rep);
    write(env.src.join("a"), "v2, longer");
    write(env.src.join("c"), "new");
    let out = once(&env, &sshd, &[]);
    drop(ro);
    assert_eq!(out.status.code(), Some(1), "{}", env.log_text());
    let log = env.log_text();
    let last = log.lines().rfind(|l| l.contains("pass finished")).unwrap();
    assert!(!log.contains("copied c"), "{log}");
    assert!(!log.contains("updated a"), "{log}");
    assert!(last.contains("0 copied, 0 updated"), "{last}");
    assert!(log.contains("Read-only file system"), "{log}");
}

/// An rsync here that fails as rsync does when SOURCE changes under it while it lists: once
/// for each status in `statuses`, then it is the real one.
fn racing_rsync(env: &Env, statuses: &[u8]) -> String {
    let bin = env.root.join("bin");
    mkdir(&bin);
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v rsync"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let plan = env.root.join("plan");
    let list: Vec<String> = statuses.iter().map(u8::to_string).collect();
    fs::write(&plan, list.join("\n") + "\n").unwrap();
    fs::write(
        bin.join("rsync"),
        format!(
            "#!/bin/sh\nplan={plan}\ncase \" $* \" in *--dry-run*) exec {real} \"$@\";; esac\n\
             case \" $* \" in *--files-from=-*) code=$(head -n 1 \"$plan\");; *) code=;; esac\n\
             if [ -n \"$code\" ]; then\n  sed -i 1d \"$plan\"; cat >/dev/null\n  \
             echo 'ABORTING due to invalid path from sender: d/x' >&2\n  \
             case $code in 2) why='protocol incompatibility';; *) why='requested action not \
             supported';; esac\n  \
             echo \"rsync error: $why (code $code) at generator.c(1715) [Receiver=3.5.0]\" >&2\n  \
             exit $code\nfi\nexec {real} \"$@\"\n",
            plan = plan.display(),
            real = real.trim()
        ),
    )
    .unwrap();
    chmod(bin.join("rsync"), 0o755);
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn source_races_are_retried_quietly_whatever_the_exit_status() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("a"), "a");
    let path = racing_rsync(&env, &[]);
    let console = env.root.join("logs/console.txt");
    let mut c = cmd(&env, &sshd);
    c.args(["-i", "1h"])
        .env("PATH", &path)
        .stdout(fs::File::create(&console).unwrap())
        .stderr(fs::File::create(&console).unwrap());
    let mut run = Running::from(c.spawn().unwrap(), console);
    env.wait_log("pass finished", 1, QUICK);
    for (i, code) in [2u8, 4].iter().enumerate() {
        fs::write(env.root.join("plan"), format!("{code}\n")).unwrap();
        write(env.src.join(format!("d/x{i}")), "x");
        env.converges(QUICK);
    }
    run.stop();
    let log = env.log_text();
    assert!(!log.contains("[ERROR]"), "{log}");
    assert!(log.contains("changed while rsync read them"), "{log}");
}

fn failing_count(status: &Path) -> u64 {
    let Ok(text) = fs::read_to_string(status) else {
        return 0;
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("failing").and_then(|f| f.as_u64()))
        .unwrap_or(0)
}

#[test]
fn a_full_remote_disk_is_retried_until_it_has_room() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let Some((env, sshd)) = setup() else { return };
    let mount = Mount::tmpfs(&env.rep, "1m");
    write(env.src.join("a-small"), "fits");
    // Random bytes: zeros would go over as holes and take no space.
    write(env.src.join("huge"), bytes(3 << 20, 9));
    // Sorted after the file that fails: rsync's exit 11 stops the run before it.
    write(env.src.join("zz-after"), "after");
    let status = env.root.join("status.json");
    let mut run = watching(&env, &sshd, &["--status-file", status.to_str().unwrap()]);
    wait_for(QUICK, "the status to count failing paths", || {
        failing_count(&status) > 0
    });
    mount.resize("16m");
    let t0 = Instant::now();
    env.converges(Duration::from_secs(10));
    let took = t0.elapsed();
    // And again for a batch: a file too big for the room there is now.
    write(env.src.join("huger"), bytes(20 << 20, 3));
    wait_for(QUICK, "the batch's failure to be counted", || {
        failing_count(&status) > 0
    });
    mount.resize("64m");
    env.converges(Duration::from_secs(10));
    wait_for(QUICK, "the status to count none", || {
        failing_count(&status) == 0
    });
    run.stop();
    eprintln!("converged {took:?} after the room was made");
    let log = env.log_text();
    assert!(log.contains("No space left on device"), "{log}");
}
