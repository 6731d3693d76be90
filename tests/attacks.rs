//! What a review done as an attacker found, each made a test: someone who can write SOURCE (or
//! a directory mirrored into REPLICA) tries to make foldersync write, read or grant something
//! outside the two roots, or to hang it.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use crate::util::*;

const QUICK: Duration = Duration::from_secs(10);

fn skip_unless_root() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root");
    }
    !is_root()
}

/// A backup copied across file systems kept SOURCE's set-user-ID bit but not its owner: a
/// user's file became a set-UID-root program.
#[test]
fn a_backup_across_file_systems_never_makes_a_set_uid_root_file() {
    if skip_unless_root() {
        return;
    }
    let env = Env::new();
    let bak = env.root.join("bak");
    let _tmpfs = Mount::tmpfs(&bak, "8m");
    write(env.src.join("tool"), "v1");
    std::os::unix::fs::lchown(env.src.join("tool"), Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(env.src.join("tool"), 0o4755);
    let args = [std::ffi::OsStr::new("--backup-dir"), bak.as_os_str()];
    env.once_ok_with(&args);
    write(env.src.join("tool"), "v2, longer");
    std::os::unix::fs::lchown(env.src.join("tool"), Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(env.src.join("tool"), 0o4755);
    env.once_ok_with(&args);
    let kept: Vec<_> = fs::read_dir(&bak)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let meta = fs::metadata(&kept[0]).unwrap();
    assert!(
        meta.uid() == NOBODY || meta.mode() & 0o6000 == 0,
        "a set-ID file owned by {}",
        meta.uid()
    );
    assert_eq!(fs::read(&kept[0]).unwrap(), b"v1");
}

/// A full backup disk left truncated copies under their final names.
#[test]
fn a_failed_backup_copy_leaves_nothing_partial() {
    if skip_unless_root() {
        return;
    }
    let env = Env::new();
    let bak = env.root.join("bak");
    let _tmpfs = Mount::tmpfs(&bak, "1m");
    write(env.src.join("big"), bytes(3 << 20, 1));
    let args = [std::ffi::OsStr::new("--backup-dir"), bak.as_os_str()];
    env.once_ok_with(&args);
    write(env.src.join("big"), bytes(3 << 20, 2));
    for _ in 0..2 {
        let _ = env.cmd().arg("--once").args(args).output().unwrap();
    }
    let left: Vec<_> = walkdir::WalkDir::new(&bak)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect();
    assert!(left.is_empty(), "partial backups: {left:?}");
    // The replica keeps the version it had: nothing was destroyed without its backup.
    assert_eq!(fs::read(env.rep.join("big")).unwrap(), bytes(3 << 20, 1));
}

/// The log file inside SOURCE, replaced by a symlink or a fifo by whoever writes SOURCE: it is
/// never written through the link, and a fifo never hangs foldersync.
#[test]
fn a_log_file_in_source_swapped_for_a_symlink_or_a_fifo() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let log = env.src.join("sync.log");
    let victim = env.root.join("victim");
    let console = env.root.join("logs/console.txt");
    let child = env
        .cmd_with_log(&log)
        .args(["-i", "1h"])
        .stdout(fs::File::create(&console).unwrap())
        .stderr(fs::File::create(&console).unwrap())
        .spawn()
        .unwrap();
    let mut run = Running::from(child, console);
    wait_for(QUICK, "the first pass", || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("pass finished")
    });
    fs::remove_file(&log).unwrap();
    symlink(&victim, &log);
    std::thread::sleep(Duration::from_millis(1100));
    write(env.src.join("b"), "b");
    run.signal(libc::SIGHUP);
    wait_for(QUICK, "b mirrored", || env.rep.join("b").exists());
    std::thread::sleep(Duration::from_millis(300));
    assert!(!victim.exists(), "the log was written through a symlink");

    fs::remove_file(&log).unwrap();
    let made = Command::new("mkfifo").arg(&log).status().unwrap();
    assert!(made.success());
    run.signal(libc::SIGHUP);
    write(env.src.join("c"), "c");
    wait_for(QUICK, "c mirrored", || env.rep.join("c").exists());
    run.stop();
}

/// A status file path that holds someone's file is refused; its directory swapped for a
/// symlink later is not followed.
#[test]
fn a_status_file_never_replaces_a_file_or_follows_a_swapped_directory() {
    let env = Env::new();
    write(env.src.join("report.json"), "precious");
    let out = env
        .cmd()
        .args(["--once", "--status-file"])
        .arg(env.src.join("report.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(fs::read(env.src.join("report.json")).unwrap(), b"precious");

    let state = env.src.join("state");
    mkdir(&state);
    let outside = env.root.join("outside");
    mkdir(&outside);
    let file = state.join("status.json");
    let mut run = env.spawn(&["-i", "1h", "--status-file", file.to_str().unwrap()]);
    wait_for(QUICK, "the status file", || file.exists());
    fs::rename(&state, env.src.join("state.old")).unwrap();
    symlink(&outside, &state);
    write(env.src.join("x"), "x");
    wait_for(QUICK, "x mirrored", || env.rep.join("x").exists());
    run.stop();
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "written through the symlink"
    );
}

/// A bind-mounted REPLICA unmounted while running shows the directory below on the same device:
/// never taken for a REPLICA made anew. A bind-mounted SOURCE unmounted removes nothing.
#[test]
fn unmounted_bind_mounts_are_not_taken_for_new_directories() {
    if skip_unless_root() {
        return;
    }
    let env = Env::new();
    let store = env.root.join("store");
    mkdir(&store);
    write(env.src.join("f1"), "1");
    let bind = Mount::bind(&store, &env.rep);
    let mut run = env.spawn(&["-i", "1s"]);
    env.wait_log("pass finished", 1, QUICK);
    bind.unmount();
    write(env.src.join("f2"), "2");
    env.wait_log("its mount is gone", 1, QUICK);
    std::thread::sleep(Duration::from_millis(1200));
    run.stop();
    assert_eq!(
        fs::read_dir(&env.rep).unwrap().count(),
        0,
        "written below the mount"
    );

    let env = Env::new();
    let real = env.root.join("real");
    write(real.join("f1"), "1");
    write(env.src.join("README"), "what lies below the mount");
    let bind = Mount::bind(&real, &env.src);
    let mut run = env.spawn(&["-i", "1s"]);
    env.wait_log("pass finished", 1, QUICK);
    bind.unmount();
    env.wait_log("its mount is gone", 1, QUICK);
    std::thread::sleep(Duration::from_millis(1200));
    run.stop();
    assert!(
        env.rep.join("f1").exists(),
        "REPLICA lost what the mount held"
    );
}

/// A directory above REPLICA swapped for a symlink to SOURCE: REPLICA is not made again there.
#[test]
fn a_symlink_above_replica_is_not_followed_to_make_it_again() {
    let env = Env::new();
    write(env.src.join("p/f"), "f");
    let rep = env.root.join("gp/p/rep");
    let console = env.root.join("logs/console.txt");
    let child = std::process::Command::new(BIN)
        .arg(&env.src)
        .arg(&rep)
        .arg("-l")
        .arg(&env.log)
        .args(["-i", "1s"])
        .stderr(fs::File::create(&console).unwrap())
        .spawn()
        .unwrap();
    let mut run = Running::from(child, console);
    env.wait_log("pass finished", 1, QUICK);
    fs::rename(env.root.join("gp"), env.root.join("gp.old")).unwrap();
    symlink(&env.src, env.root.join("gp"));
    std::thread::sleep(Duration::from_millis(2500));
    run.stop();
    assert!(
        !env.src.join("p/rep").exists(),
        "REPLICA was made inside SOURCE"
    );
}

/// A dry run in watch mode made REPLICA again after it was deleted.
#[test]
fn a_dry_run_never_makes_replica_again() {
    let env = Env::new();
    write(env.src.join("f"), "1");
    env.once_ok();
    let mut run = env.spawn(&["-i", "1h", "-n"]);
    env.wait_log("pass finished", 2, QUICK);
    fs::remove_dir_all(&env.rep).unwrap();
    write(env.src.join("g"), "2");
    env.wait_log("is gone", 1, QUICK);
    std::thread::sleep(Duration::from_millis(300));
    run.stop();
    assert!(!env.rep.exists(), "a dry run made REPLICA");
}

/// A backup directory given through a bind mount of REPLICA, and a log file through a bind
/// mount of SOURCE, are still foldersync's own.
#[test]
fn own_files_reached_through_bind_mounts_are_recognised() {
    if skip_unless_root() {
        return;
    }
    let env = Env::new();
    write(env.src.join("f1"), "1");
    mkdir(&env.rep);
    let rbind = env.root.join("rbind");
    let _r = Mount::bind(&env.rep, &rbind);
    let sbind = env.root.join("sbind");
    let _s = Mount::bind(&env.src, &sbind);
    let out = env
        .cmd_with_log(&sbind.join("sync.log"))
        .args(["--once", "--backup-dir"])
        .arg(rbind.join("bk"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env
        .cmd_with_log(&sbind.join("sync.log"))
        .args(["--once", "--backup-dir"])
        .arg(rbind.join("bk"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!env.rep.join("sync.log").exists(), "the log was mirrored");
    let nested = walkdir::WalkDir::new(env.rep.join("bk"))
        .into_iter()
        .count();
    assert!(
        nested <= 1,
        "the backup directory was backed up into itself: {nested} entries"
    );
}

/// A directory holding the backup directory, renamed in SOURCE: the backups stay where they
/// were configured.
#[test]
fn a_rename_never_carries_the_backup_directory_off() {
    let env = Env::new();
    write(env.src.join("a/f"), "1");
    let bak = env.rep.join("a/bk");
    let mut run = env.spawn(&["-i", "1h", "--backup-dir", bak.to_str().unwrap()]);
    env.wait_log("pass finished", 1, QUICK);
    write(env.src.join("a/f"), "version 2");
    wait_for(QUICK, "the update", || {
        fs::read(env.rep.join("a/f")).unwrap_or_default() == b"version 2"
    });
    fs::rename(env.src.join("a"), env.src.join("b")).unwrap();
    wait_for(QUICK, "b mirrored", || env.rep.join("b/f").exists());
    run.stop();
    assert!(bak.is_dir(), "the backup directory moved");
    assert!(!env.rep.join("b/bk").exists());
    assert!(
        !env.log_text().contains("Invalid argument"),
        "{}",
        env.log_text()
    );
}

/// An invalid exclude pattern is quoted in the error; its terminal sequences are escaped.
#[test]
fn an_invalid_pattern_cannot_reach_the_terminal_raw() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let out = env
        .cmd()
        .args(["--once", "--exclude", "x\x1b]0;PWNED\x07\x1b[2J["])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !out.stderr.contains(&0x1b),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stderr.contains(&0x07));
}

/// Someone who can make entries in a REPLICA directory hard-links a file of their own there,
/// with the size and mtime of a set-UID file in SOURCE: foldersync replaces the link, and never
/// changes the outside file's owner or mode.
#[test]
fn a_hard_link_planted_in_replica_is_replaced_not_changed() {
    if skip_unless_root() {
        return;
    }
    let env = Env::new();
    write(env.src.join("tool"), "program");
    chmod(env.src.join("tool"), 0o4755);
    env.once_ok();
    let mine = env.root.join("mine");
    write(&mine, "program");
    std::os::unix::fs::lchown(&mine, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::remove_file(env.rep.join("tool")).unwrap();
    fs::hard_link(&mine, env.rep.join("tool")).unwrap();
    let when = fs::metadata(env.src.join("tool"))
        .unwrap()
        .modified()
        .unwrap();
    fs::File::options()
        .write(true)
        .open(&mine)
        .unwrap()
        .set_modified(when)
        .unwrap();
    env.once_ok();
    let meta = fs::metadata(&mine).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o7777),
        (NOBODY, 0o644),
        "the outside file changed"
    );
    assert_eq!(
        fs::metadata(env.rep.join("tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o4755
    );
    assert_ne!(
        fs::metadata(env.rep.join("tool")).unwrap().ino(),
        meta.ino()
    );
}

/// Entries that are excluded do not make SOURCE non-empty: the empty guard still holds.
#[test]
fn excluded_entries_do_not_defeat_the_empty_guard() {
    let env = Env::new();
    write(env.src.join("f1"), "1");
    env.once_ok_with(&["--exclude", ".DS_Store"]);
    fs::remove_file(env.src.join("f1")).unwrap();
    write(env.src.join(".DS_Store"), "");
    let out = env
        .cmd()
        .args(["--once", "--exclude", ".DS_Store"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(env.rep.join("f1").exists());
}

/// `-l` inside SOURCE in directories that do not exist made them (and they were mirrored).
#[test]
fn a_log_path_never_makes_directories_in_source() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let before = snapshot(&env.src);
    let out = env
        .cmd_with_log(&env.src.join("logs/deep/sync.log"))
        .arg("--once")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(before, snapshot(&env.src));
}

/// Directories too deep for inotify are said, and the status says the mirror leans on passes.
#[test]
fn too_deep_to_watch_is_reported() {
    let env = Env::new();
    deep_chain(&env.src, &"d".repeat(100), 42, b"deep");
    let file = env.root.join("status.json");
    let mut run = env.spawn(&["-i", "1h", "--status-file", file.to_str().unwrap()]);
    env.wait_log("deeper than inotify can watch", 1, QUICK);
    wait_for(QUICK, "a degraded status", || {
        fs::read_to_string(&file)
            .unwrap_or_default()
            .contains("\"degraded\"")
    });
    run.stop();
    remove_deep(&env.src.join("d".repeat(100)));
}
