//! What watcher batches and options do on a remote replica, beyond copying: renames never
//! made into excluded names, `--max-delete` counting each removal once, the directories a
//! remote rename makes logged, and a backup directory inside REPLICA, however it is spelled,
//! never mirrored or removed.

use std::fs;
use std::os::unix::fs::MetadataExt;

use super::{once, once_ok, setup, watching, QUICK};
use crate::util::*;

#[test]
fn a_rename_into_an_excluded_name_removes_the_old_name() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("keep"), "k");
    write(env.src.join("a.txt"), bytes(10_000, 3));
    let mut run = watching(&env, &sshd, &["--exclude", "*.log"]);
    fs::rename(env.src.join("a.txt"), env.src.join("a.log")).unwrap();
    wait_for(QUICK, "a.txt to go from REPLICA", || {
        !env.rep.join("a.txt").exists()
    });
    // Held removals go a moment later; nothing may appear under the excluded name meanwhile.
    env.wait_log("removed a.txt", 1, QUICK);
    run.stop();
    assert!(!env.rep.join("a.log").exists(), "{}", env.log_text());
    assert!(env.rep.join("keep").exists());
}

#[test]
fn max_delete_counts_each_removal_once_and_renames_as_none() {
    let Some((env, sshd)) = setup() else { return };
    for i in 0..10 {
        write(env.src.join(format!("d/f{i}")), "x");
    }
    for i in 0..20 {
        write(env.src.join(format!("album/p{i}")), "y");
    }
    write(env.src.join("keep"), "k");
    let mut run = watching(&env, &sshd, &["--max-delete", "15"]);
    let album = fs::metadata(env.rep.join("album")).unwrap().ino();
    fs::remove_dir_all(env.src.join("d")).unwrap();
    fs::rename(env.src.join("album"), env.src.join("album-2025")).unwrap();
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    assert!(!log.contains("[ERROR]"), "{log}");
    assert_eq!(
        fs::metadata(env.rep.join("album-2025")).unwrap().ino(),
        album
    );
}

#[test]
fn directories_made_for_a_rename_are_logged() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("f"), bytes(5000, 4));
    let mut run = watching(&env, &sshd, &[]);
    mkdir(env.src.join("new/deep"));
    fs::rename(env.src.join("f"), env.src.join("new/deep/f")).unwrap();
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    assert!(log.contains("created directory new"), "{log}");
}

#[test]
fn a_backup_dir_inside_replica_reached_through_a_symlink_is_left_alone() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("a"), "a1");
    write(env.src.join("c"), "c");
    once_ok(&env, &sshd, &[]);
    let link = env.root.join("rep-link");
    std::os::unix::fs::symlink(&env.rep, &link).unwrap();
    let backup = link.join(".bak");
    let backup_arg = ["--backup-dir", backup.to_str().unwrap()];
    fs::remove_file(env.src.join("c")).unwrap();
    once_ok(&env, &sshd, &backup_arg);
    write(env.src.join("a"), "a2, longer");
    once_ok(&env, &sshd, &backup_arg);
    once_ok(&env, &sshd, &backup_arg);
    let kept: Vec<String> = fs::read_dir(env.rep.join(".bak"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(kept.iter().any(|n| n.starts_with("c.")), "{kept:?}");
    assert!(kept.iter().any(|n| n.starts_with("a.")), "{kept:?}");
    assert!(
        !kept.iter().any(|n| n == ".bak"),
        "backups moved again: {kept:?}"
    );
    let log = env.log_text();
    assert!(!log.contains("removed .bak"), "{log}");
}

#[test]
fn a_backup_dir_that_is_or_holds_replica_is_refused() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("a"), "a");
    once_ok(&env, &sshd, &[]);
    for dir in [&env.rep, &env.root] {
        let out = once(&env, &sshd, &["--backup-dir", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", dir.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("backup directory"), "{err}");
    }
}

#[test]
fn a_write_through_one_name_shows_through_all() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("a"), "v1");
    mkdir(env.src.join("d"));
    fs::hard_link(env.src.join("a"), env.src.join("d/b")).unwrap();
    let mut run = watching(&env, &sshd, &[]);
    write(env.src.join("a"), "v2 and longer");
    wait_for(QUICK, "the other name to follow", || {
        fs::read(env.rep.join("d/b")).is_ok_and(|b| b == b"v2 and longer")
    });
    run.stop();
    assert_eq!(
        fs::metadata(env.rep.join("a")).unwrap().ino(),
        fs::metadata(env.rep.join("d/b")).unwrap().ino()
    );
}

#[test]
fn a_change_in_the_root_leaves_its_times_right_and_specials_are_said() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("a"), "a");
    write(env.src.join("sub/b"), "b");
    let fifo = env.src.join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut run = watching(&env, &sshd, &[]);
    env.wait_log("skipped pipe", 1, QUICK);
    write(env.src.join("a"), "a, longer");
    write(env.src.join("new"), "new");
    let mtime = |p: &std::path::Path| {
        let m = fs::metadata(p).unwrap();
        (m.mtime(), m.mtime_nsec())
    };
    wait_for(QUICK, "REPLICA's root to take SOURCE's times", || {
        env.rep.join("new").exists() && mtime(&env.src) == mtime(&env.rep)
    });
    run.stop();
}

#[test]
fn options_that_cannot_mean_the_same_remotely_are_refused() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("a"), "a");
    let dot = format!("{}/.", env.rep.display());
    let dotdot = format!("{}/../rep/.bak", env.rep.display());
    for extra in [
        ["--modify-window", "0.5"],
        ["--backup-dir", dot.as_str()],
        ["--backup-dir", dotdot.as_str()],
    ] {
        let out = once(&env, &sshd, &extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(!env.rep.exists(), "{extra:?} made REPLICA");
    }
}

#[test]
fn own_files_in_source_are_kept_in_replica_with_delete_excluded() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("a"), "a");
    write(env.rep.join("mylog.txt"), "someone's own file");
    let out = std::process::Command::new(BIN)
        .arg(&env.src)
        .arg(sshd.remote(&env.rep))
        .arg("-e")
        .arg(sshd.rsh())
        .args(["--once", "--delete-excluded", "--exclude", "*.tmp", "-l"])
        .arg(env.src.join("mylog.txt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.rep.join("mylog.txt").exists());
}
