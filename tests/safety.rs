//! Safety and fault tolerance: an empty or unmounted SOURCE, --max-delete, --dry-run, a full
//! disk, permission errors, kill -9, signals in every state, and symlinks on either side.

use std::fs::{self, File};

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

const QUICK: Duration = Duration::from_secs(10);

// ---------- an empty or vanished SOURCE ----------

#[test]
fn empty_source_at_start_up_is_refused() {
    let env = Env::new();
    write(env.rep.join("precious/data"), "keep me");
    let before = snapshot(&env.root);
    let out = env.once();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--allow-empty-source"), "{err}");
    assert_eq!(before, snapshot(&env.root));

    let out = env
        .cmd()
        .args(["--once", "--allow-empty-source"])
        .output()
        .unwrap();
    assert!(out.status.success());
    env.assert_mirrored();
}

#[test]
fn source_emptied_while_running_removes_nothing() {
    let env = Env::new();
    write(env.src.join("a/file"), "a");
    write(env.src.join("b"), "b");
    let mut run = env.spawn(&["-i", "1s"]);
    env.wait_log("pass finished", 1, QUICK);
    let before = tree(&env.rep);
    fs::remove_dir_all(env.src.join("a")).unwrap();
    fs::remove_file(env.src.join("b")).unwrap();
    env.wait_log("--allow-empty-source", 1, QUICK);
    // Several ticks and periodic passes later: still nothing removed, still one error.
    std::thread::sleep(Duration::from_millis(2500));
    let log = env.log_text();
    assert_eq!(
        log.matches("is empty while REPLICA is not").count(),
        1,
        "{log}"
    );
    let now = tree(&env.rep);
    assert!(
        now.contains("f b ") || now.contains("d a "),
        "the last entries must survive:\n{now}\nwas:\n{before}"
    );
    // Content comes back: mirroring resumes by itself.
    write(env.src.join("c"), "c");
    env.converges(QUICK);
    run.stop();
}

/// SOURCE's device changes under it (a file system mounted over it, as when the disk it was on
/// is unmounted and the empty mount point shows): nothing is removed; when the original device
/// is back, mirroring resumes.
#[test]
fn source_on_another_device_removes_nothing() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs over SOURCE needs root");
        return;
    }
    let env = Env::new();
    write(env.src.join("f"), "data");
    let mut run = env.spawn(&["-i", "1s"]);
    env.wait_log("pass finished", 1, QUICK);
    let before = tree(&env.rep);
    {
        let _mount = Mount::tmpfs(&env.src, "1m");
        write(env.src.join("on-the-other-device"), "x");
        env.wait_log("another device", 1, QUICK);
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(before, tree(&env.rep), "REPLICA changed");
        assert_eq!(env.log_text().matches("another device").count(), 1);
    }
    env.wait_log("is back", 1, QUICK);
    write(env.src.join("g"), "after");
    env.converges(QUICK);
    run.stop();
}

// ---------- --max-delete and --dry-run ----------

#[test]
fn max_delete_refuses_a_pass_that_removes_too_much() {
    let env = Env::new();
    write(env.src.join("keep"), "k");
    for i in 0..3 {
        write(env.rep.join(format!("extra{i}")), "x");
    }
    write(env.rep.join("extra-dir/a"), "x");
    write(env.rep.join("extra-dir/b"), "x");
    // 3 files + a directory of 2 = 6 entries.
    let before = tree(&env.rep);
    let out = env
        .cmd()
        .args(["--once", "--max-delete", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = env.log_text();
    assert!(log.contains("refusing to remove 6 entries"), "{log}");
    let after = tree(&env.rep);
    for name in ["extra0", "extra1", "extra2", "extra-dir"] {
        assert!(
            after.contains(name),
            "{name} was removed:\n{after}\nwas:\n{before}"
        );
    }
    assert!(env.rep.join("keep").is_file(), "copies still happen");

    let out = env
        .cmd()
        .args(["--once", "--max-delete", "6"])
        .output()
        .unwrap();
    assert!(out.status.success());
    env.assert_mirrored();
}

#[test]
fn max_delete_holds_back_type_changes_too() {
    let env = Env::new();
    write(env.src.join("x"), "now a file");
    write(env.rep.join("x/1"), "was a dir");
    write(env.rep.join("x/2"), "was a dir");
    let out = env
        .cmd()
        .args(["--once", "--max-delete", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(env.rep.join("x/1").is_file());
    let out = env
        .cmd()
        .args(["--once", "--max-delete", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    env.assert_mirrored();
}

#[test]
fn max_delete_refuses_a_batch_of_events_that_removes_too_much() {
    let env = Env::new();
    for i in 0..10 {
        write(env.src.join(format!("dir/f{i}")), "x");
    }
    write(env.src.join("other"), "o");
    write(env.src.join("stays"), "s");
    let mut run = env.spawn(&["-i", "1h", "--max-delete", "3"]);
    env.wait_log("pass finished", 1, QUICK);
    fs::remove_dir_all(env.src.join("dir")).unwrap();
    env.wait_log("refusing to remove 11 entries", 1, QUICK);
    assert!(env.rep.join("dir/f5").is_file());
    // Small removals still go through.
    fs::remove_file(env.src.join("other")).unwrap();
    wait_for(QUICK, "other removed", || !env.rep.join("other").exists());
    run.stop();
}

#[test]
fn dry_run_changes_nothing_and_says_what_it_would_do() {
    let env = Env::new();
    write(env.src.join("new/file"), "new");
    write(env.src.join("changed"), "new content");
    symlink("new", env.src.join("link"));
    mkdir(&env.rep);
    write(env.rep.join("changed"), "old");
    write(env.rep.join("extra"), "extra");
    let before = snapshot(&env.root.join("rep"));
    let out = env.cmd().args(["--once", "--dry-run"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(before, snapshot(&env.rep), "a dry run changed REPLICA");
    let log = env.log_text();
    for line in [
        "[dry run] created directory new",
        "[dry run] copied new/file (3 bytes)",
        "[dry run] updated changed (11 bytes)",
        "[dry run] created symlink link -> new",
        "[dry run] removed file extra",
    ] {
        assert!(log.contains(line), "missing {line:?}:\n{log}");
    }

    // A missing REPLICA is not created either.
    let fresh = env.root.join("fresh");
    let out = Command::new(BIN)
        .arg(&env.src)
        .arg(&fresh)
        .args(["-l"])
        .arg(&env.log)
        .args(["--once", "-n"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!fresh.exists());
}

#[test]
fn dry_run_in_watch_mode() {
    let env = Env::new();
    mkdir(&env.rep);
    write(env.src.join("a"), "a");
    write(env.rep.join("a"), "a");
    let mut run = env.spawn(&["-i", "1h", "--dry-run", "--allow-empty-source"]);
    env.wait_log("pass finished", 1, QUICK);
    write(env.src.join("b"), "b");
    env.wait_log("[dry run] copied b", 1, QUICK);
    assert!(!env.rep.join("b").exists());
    run.stop();
}

/// A dry run is the same plan, applied by logging it: in watch mode a rename is reported once,
/// as a rename, exactly as a real run would log it, and never again as a removal and a copy.
#[test]
fn dry_run_in_watch_mode_reports_a_rename_once() {
    let env = Env::new();
    write(env.src.join("a"), "contents of a");
    write(env.src.join("keep"), "k");
    env.once_ok();
    let mut run = env.spawn(&["-i", "1h", "--dry-run"]);
    env.wait_log("pass finished", 2, QUICK);
    fs::rename(env.src.join("a"), env.src.join("a2")).unwrap();
    env.wait_log("[dry run] renamed a -> a2", 1, QUICK);
    // Long enough for every later look at both names (the raw hints come 2 debounces later).
    std::thread::sleep(Duration::from_millis(600));
    write(
        env.src.join("later"),
        "a later change, to show the watcher is still at work",
    );
    env.wait_log("[dry run] copied later", 1, QUICK);
    run.stop();
    let log = env.log_text();
    assert_eq!(log.matches("renamed a -> a2").count(), 1, "{log}");
    assert!(!log.contains("removed file a"), "{log}");
    assert!(!log.contains("copied a2"), "{log}");
    assert!(env.rep.join("a").is_file() && !env.rep.join("a2").exists());
}

// ---------- a full disk ----------

#[test]
fn disk_full_keeps_the_old_version_and_recovers() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let env = Env::new();
    let mount = Mount::tmpfs(&env.rep, "1m");
    write(env.src.join("doc"), bytes(100_000, 1));
    env.once_ok();
    // Now the source grows beyond the replica's space, and a new big file arrives.
    write(env.src.join("doc"), bytes(3 << 20, 2));
    write(env.src.join("big.bin"), bytes(2 << 20, 3));
    write(env.src.join("small"), "fits");
    let out = env.once();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains("doc") || err.contains("big.bin"),
        "the error names the path: {err}"
    );
    assert!(temp_files(&env.rep).is_empty(), "temporary file left");
    assert_eq!(
        fs::read(env.rep.join("doc")).unwrap(),
        bytes(100_000, 1),
        "the replica keeps the previous version"
    );
    assert!(
        env.rep.join("small").is_file(),
        "the rest of the tree went on"
    );

    // Running, with space freed: recovers by itself at the next pass.
    let mut run = env.spawn(&["--no-watch", "-i", "1s"]);
    env.wait_log("No space left on device", 2, QUICK);
    mount.resize("16m");
    env.converges(QUICK);
    run.stop();
}

// ---------- permissions ----------

#[test]
fn unreadable_source_file_is_retried_later() {
    let env = Env::new();
    write(env.src.join("open"), "o");
    write(env.src.join("locked"), "secret");
    let mut cmd = unprivileged(&env);
    chmod(env.src.join("locked"), 0o000);
    let out = cmd.arg("--once").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("locked") && err.contains("Permission denied"),
        "{err}"
    );
    assert!(env.rep.join("open").is_file());

    // Running: once the file is readable, the next pass copies it.
    let mut cmd = unprivileged(&env);
    let mut child = cmd
        .args(["--no-watch", "-i", "1s"])
        .stderr(File::create(env.root.join("logs/console.txt")).unwrap())
        .spawn()
        .unwrap();
    env.wait_log("Permission denied", 2, QUICK);
    chmod(env.src.join("locked"), 0o644);
    wait_for(QUICK, "locked copied", || env.rep.join("locked").is_file());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn unwritable_replica_directory_is_an_error_for_that_path_only() {
    let env = Env::new();
    write(env.src.join("d/old"), "o");
    write(env.src.join("other"), "x");
    env.once_ok();
    write(env.src.join("d/new"), "n");
    write(env.src.join("other2"), "y");
    let mut cmd = unprivileged(&env);
    // A directory foldersync may not write into, nor open up: someone else's, read-only.
    chmod(env.rep.join("d"), 0o555);
    if is_root() {
        std::os::unix::fs::lchown(env.rep.join("d"), Some(0), Some(0)).unwrap();
    }
    let out = cmd.arg("--once").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("rep/d/") && err.contains("Permission denied"),
        "{err}"
    );
    assert!(
        env.rep.join("other2").is_file(),
        "the rest of the tree went on"
    );
    // Once the directory is foldersync's again, the next pass gets through.
    if is_root() {
        std::os::unix::fs::lchown(env.rep.join("d"), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let out = unprivileged(&env).arg("--once").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.assert_mirrored();
}

// ---------- kill -9, and signals in every state ----------

#[test]
fn kill_9_mid_copy_is_cleaned_up_by_the_next_start() {
    let env = Env::new();
    write(env.src.join("small"), "s");
    big_file(env.src.join("huge.bin"), 4 << 30);
    let mut run = env.spawn(&[]);
    wait_for(QUICK, "a temporary file", || {
        env.rep.is_dir() && !temp_files(&env.rep).is_empty()
    });
    run.signal(libc::SIGKILL);
    run.wait(QUICK).expect("killed");
    assert!(
        !temp_files(&env.rep).is_empty(),
        "kill -9 should leave the temporary file"
    );
    // A smaller file now, so the next run completes quickly.
    File::create(env.src.join("huge.bin"))
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    env.once_ok();
    assert!(temp_files(&env.rep).is_empty(), "leftover not removed");
    env.assert_mirrored();
}

/// Signals `sig` once `ready` holds and checks the stop: exit 0 within a second, the stop
/// line, no temporary file.
fn stops_cleanly(env: &Env, run: &mut Running, sig: i32) {
    let sent = Instant::now();
    run.signal(sig);
    let status = run
        .wait(Duration::from_secs(5))
        .expect("exit after the signal");
    let took = sent.elapsed();
    assert!(status.success(), "{status:?}\n{}", run.console_text());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(env.log_text().contains("stopped by user"));
    assert!(temp_files(&env.rep).is_empty(), "temporary file left");
}

#[test]
fn signal_during_a_pass() {
    let env = Env::new();
    for d in 0..10 {
        mkdir(env.src.join(format!("d{d}")));
        for f in 0..500 {
            fs::write(env.src.join(format!("d{d}/f{f}")), b"small").unwrap();
        }
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let _ = fs::remove_dir_all(&env.rep);
        let _ = fs::remove_file(&env.log);
        let mut run = env.spawn(&[]);
        wait_for(QUICK, "the pass under way", || env.rep.join("d0").is_dir());
        stops_cleanly(&env, &mut run, sig);
        let log = env.log_text();
        assert!(
            log.contains("pass interrupted"),
            "the pass ended before the signal:\n{log}"
        );
        // No log line is lost to the stop: every file that reached REPLICA has its line.
        let copied_files = walkdir::WalkDir::new(&env.rep)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .count();
        assert_eq!(copied_files, log.matches("] copied d").count(), "{log}");
    }
}

#[test]
fn signal_during_a_burst_of_events() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let env = Env::new();
        let mut run = env.spawn(&["-i", "1h"]);
        env.wait_log("pass finished", 1, QUICK);
        let src = env.src.clone();
        let writer = std::thread::spawn(move || {
            for d in 0..4 {
                for f in 0..1000 {
                    let _ = fs::create_dir_all(src.join(format!("b{d}")));
                    let _ = fs::write(src.join(format!("b{d}/f{f}")), b"burst");
                }
            }
        });
        wait_for(QUICK, "events being applied", || {
            env.log_text().contains("copied b")
        });
        stops_cleanly(&env, &mut run, sig);
        writer.join().unwrap();
    }
}

// ---------- symlinks ----------

#[test]
fn watcher_never_writes_through_a_replica_symlink() {
    let env = Env::new();
    write(env.src.join("d/f"), "data");
    let outside = env.root.join("outside");
    mkdir(&outside);
    let mut run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 1, QUICK);
    // Someone replaces a replica directory by a link to elsewhere; then SOURCE changes inside it.
    fs::remove_dir_all(env.rep.join("d")).unwrap();
    symlink(&outside, env.rep.join("d"));
    write(env.src.join("d/g"), "new");
    env.converges(QUICK);
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through the symlink"
    );
    run.stop();
}

#[test]
fn source_symlinks_are_never_followed_out_of_the_tree() {
    let env = Env::new();
    let outside = env.root.join("outside");
    write(outside.join("secret"), "not to be copied");
    symlink(&outside, env.src.join("escape"));
    symlink("..", env.src.join("loop"));
    env.once_ok();
    env.assert_mirrored();
    let link = env.rep.join("escape");
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(fs::read_dir(&env.rep).unwrap().count(), 2);
}
