//! Trust: foldersync writes only beneath REPLICA, every replica converges, and no file name can
//! forge a log line. Each test is one reproduction from the trust issue; each failed on the code
//! before it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::util::*;

const QUICK: Duration = Duration::from_secs(10);

/// `REPLICA = nonexist/../slink/x` with `slink -> SOURCE`: the kernel cannot resolve
/// `nonexist/..`, so neither does foldersync; it once folded it away, then wrote 2,038
/// directories deep inside SOURCE. The backup directory the same way.
#[test]
fn a_dotdot_after_a_missing_part_is_refused() {
    let env = Env::new();
    write(env.src.join("a"), "hi");
    symlink(&env.src, env.root.join("slink"));
    let before = snapshot(&env.root);
    let out = Command::new(BIN)
        .args([
            "src",
            "nonexist/../slink/x",
            "-l",
            "logs/sync.log",
            "--once",
        ])
        .current_dir(&env.root)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(before, snapshot(&env.root), "something was written");

    let out = env
        .cmd()
        .args(["--once", "--backup-dir", "nonexist/../slink/bk"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(before, snapshot(&env.root), "something was written");
}

/// A bind mount shows a SOURCE directory at a path outside it: used as REPLICA, foldersync
/// recursed into SOURCE.
#[test]
fn replica_bind_mounted_from_inside_source_is_refused() {
    if !is_root() {
        eprintln!("skipped: bind mounts need root");
        return;
    }
    let env = Env::new();
    write(env.src.join("sub/f"), "x");
    write(env.src.join("g"), "y");
    let _bind = Mount::bind(&env.src.join("sub"), &env.rep);
    let before = snapshot(&env.src);
    let out = env.once();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("inside SOURCE"), "{err}");
    assert_eq!(before, snapshot(&env.src), "SOURCE was written");
}

/// Only "backup directory inside SOURCE" was checked, not the other way round.
#[test]
fn source_inside_the_backup_directory_is_refused() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let before = snapshot(&env.root);
    let out = env
        .cmd()
        .arg("--once")
        .arg("--backup-dir")
        .arg(&env.root)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("SOURCE is inside the backup directory"),
        "{err}"
    );
    assert_eq!(before, snapshot(&env.root));
}

/// REPLICA's root replaced by a symlink while running: nothing is removed from, or copied
/// into, where it points.
#[test]
fn a_replica_root_replaced_by_a_symlink_is_not_followed() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let elsewhere = env.root.join("elsewhere");
    write(elsewhere.join("victim"), "not yours");
    let mut run = env.spawn(&["-i", "1s"]);
    env.wait_log("pass finished", 1, QUICK);
    fs::remove_dir_all(&env.rep).unwrap();
    symlink(&elsewhere, &env.rep);
    write(env.src.join("b"), "b");
    env.wait_log("is no longer a directory", 1, QUICK);
    // Periodic passes come and go; none writes through the link.
    std::thread::sleep(Duration::from_millis(1500));
    run.stop();
    let names: Vec<_> = fs::read_dir(&elsewhere)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["victim"], "written through REPLICA's symlink");
    assert_eq!(fs::read(elsewhere.join("victim")).unwrap(), b"not yours");
}

/// Two files of the same size and mtime swapped by renames were never mirrored: a rename moves
/// a file's ctime, and a pass now looks closer when SOURCE's ctime is newer than its copy's.
#[test]
fn files_of_the_same_size_and_mtime_swapped_by_renames_are_mirrored() {
    let env = Env::new();
    write(env.src.join("x"), "xxxx");
    write(env.src.join("y"), "yyyy");
    set_mtime(env.src.join("x"), 1_700_000_000);
    set_mtime(env.src.join("y"), 1_700_000_000);
    env.once_ok();
    let swap = || {
        fs::rename(env.src.join("x"), env.src.join("t")).unwrap();
        fs::rename(env.src.join("y"), env.src.join("x")).unwrap();
        fs::rename(env.src.join("t"), env.src.join("y")).unwrap();
    };
    swap();
    env.once_ok();
    assert_eq!(fs::read(env.rep.join("x")).unwrap(), b"yyyy");
    env.assert_mirrored();
    // An unchanged pass after that compares nothing again and copies nothing.
    let out = env.once_ok();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(" 0 copied, 0 updated"), "{err}");

    // And through the watcher.
    let mut run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 4, QUICK);
    swap();
    wait_for(QUICK, "the swap mirrored", || {
        fs::read(env.rep.join("x")).unwrap_or_default() == b"xxxx"
            && fs::read(env.rep.join("y")).unwrap_or_default() == b"yyyy"
    });
    run.stop();
}

/// A name holding a newline and a fake log line, ANSI and OSC sequences, a carriage return;
/// names that are not UTF-8. None reaches the log or the console raw; distinct names print
/// distinctly.
#[test]
fn file_names_cannot_forge_log_lines_or_terminal_sequences() {
    let env = Env::new();
    let forged = "evil\n2026-11-24 23:59:59.999 [ERROR] cannot read directory: Permission denied (os error 13)";
    write(env.src.join(forged), "x");
    write(env.src.join("red\x1b[31mtext"), "x");
    write(env.src.join("title\x1b]0;pwned\x07"), "x");
    write(env.src.join("back\rspace"), "x");
    write(env.src.join(non_utf8("bad1")), "x");
    let mut other = b"bad1".to_vec();
    other.extend_from_slice(b"\xfe\xff");
    let other: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(&other[..]);
    write(env.src.join(other), "x");
    let out = env.once_ok();
    let log = fs::read(&env.log).unwrap();
    for output in [&log, &out.stderr] {
        assert!(!output.contains(&0x1b), "an escape byte reached the output");
        assert!(
            !output.contains(&b'\r'),
            "a carriage return reached the output"
        );
        let text = String::from_utf8(output.to_vec()).expect("output is valid UTF-8");
        for line in text.lines() {
            assert!(
                line.starts_with("20") && line.as_bytes()[23] == b' ',
                "a line that is not a record: {line:?}"
            );
        }
        assert!(
            text.lines().all(|l| l.get(24..31) != Some("[ERROR]")),
            "a forged error record: {text}"
        );
        assert!(
            text.contains("copied evil\\n2026-11-24 23:59:59.999 [ERROR]"),
            "{text}"
        );
        assert!(
            text.contains("copied bad1\\xff\\xfe ") && text.contains("copied bad1\\xfe\\xff "),
            "{text}"
        );
        assert!(
            text.contains("red\\x1b[31mtext") && text.contains("back\\rspace"),
            "{text}"
        );
    }
    env.assert_mirrored();
}

/// Paths longer than PATH_MAX: 145 levels of 27-byte names (about 4,060 bytes below SOURCE).
#[test]
fn paths_longer_than_path_max_are_mirrored() {
    let env = Env::new();
    let name = "d".repeat(27);
    deep_chain(&env.src, &name, 145, b"at the bottom");
    write(env.src.join("shallow"), "s");
    let out = env.once();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", err.lines().last().unwrap_or(""));
    assert_eq!(
        read_deep_chain(&env.rep, &name),
        (145, Some(b"at the bottom".to_vec()))
    );
    // Removed again, just as deep.
    remove_deep(&env.src.join(&name));
    env.once_ok();
    assert_eq!(read_deep_chain(&env.rep, &name).0, 0);
}

/// With `--backup-dir`, a name of 239 bytes or more could never be updated: the stamp made
/// the backup's name longer than 255 bytes.
#[test]
fn long_names_can_be_backed_up() {
    let env = Env::new();
    let bak = env.root.join("bak");
    let long = "n".repeat(250);
    write(env.src.join(&long), "one");
    env.once_ok();
    write(env.src.join(&long), "two!");
    env.once_ok_with(&[std::ffi::OsStr::new("--backup-dir"), bak.as_os_str()]);
    fs::remove_file(env.src.join(&long)).unwrap();
    write(env.src.join("other"), "o");
    env.once_ok_with(&[std::ffi::OsStr::new("--backup-dir"), bak.as_os_str()]);
    env.assert_mirrored();
    let kept: Vec<_> = fs::read_dir(&bak)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|n| n.len() <= 255));
}

/// A backup directory below a REPLICA directory that SOURCE lacks: the directory is emptied of
/// everything else, and kept; every pass succeeds.
#[test]
fn a_backup_directory_below_a_removed_directory() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    write(env.rep.join("old/stale"), "stale");
    let bak = env.rep.join("old/bk");
    for _ in 0..3 {
        env.once_ok_with(&[std::ffi::OsStr::new("--backup-dir"), bak.as_os_str()]);
    }
    assert!(bak.is_dir());
    assert!(!env.rep.join("old/stale").exists());
    assert_eq!(
        fs::read_dir(&bak).unwrap().count(),
        1,
        "stale was kept in the backup"
    );
}

/// User files named like foldersync's temporary files are mirrored, not dropped; a real
/// leftover is removed, and said at INFO.
#[test]
fn user_files_named_like_temporary_files_are_mirrored() {
    let env = Env::new();
    write(env.src.join(".foldersync-x.tmp"), "mine");
    write(
        env.src.join(".foldersync-0123456789abcdef-1.tmp"),
        "mine too",
    );
    // A temporary name of no run of this mirror is someone's data.
    write(
        env.rep.join(".foldersync-fedcba9876543210-7.tmp"),
        "not ours",
    );
    env.once_ok();
    env.assert_mirrored();
    assert!(
        env.log_text()
            .contains("[INFO ] removed file .foldersync-fedcba9876543210-7.tmp"),
        "{}",
        env.log_text()
    );
    // One left by an earlier run of this mirror (its token is in the state record) is a
    // leftover.
    let token = env.past_token();
    write(
        env.rep.join(format!(".foldersync-{token}-7.tmp")),
        "a leftover",
    );
    env.once_ok();
    env.assert_mirrored();
    assert!(
        env.log_text().contains(&format!(
            "[INFO ] removed leftover temporary file .foldersync-{token}-7.tmp"
        )),
        "{}",
        env.log_text()
    );
}

/// Run as a normal user, a read-only (0555) source directory could never be updated: its copy
/// had mode 0555 too. foldersync opens it up for its owner while it works there, as rsync does.
#[test]
fn a_read_only_directory_is_updated_by_a_normal_user() {
    let env = Env::new();
    write(env.src.join("ro/f"), "f");
    chmod(env.src.join("ro"), 0o555);
    let out = unprivileged(&env).arg("--once").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    chmod(env.src.join("ro"), 0o755);
    write(env.src.join("ro/g"), "g");
    write(env.src.join("ro/f"), "changed");
    chmod(env.src.join("ro"), 0o555);
    if is_root() {
        for p in ["ro", "ro/g", "ro/f"] {
            std::os::unix::fs::lchown(env.src.join(p), Some(NOBODY), Some(NOBODY)).unwrap();
        }
    }
    let out = unprivileged(&env).arg("--once").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(env.rep.join("ro/g")).unwrap(), b"g");
    assert_eq!(fs::read(env.rep.join("ro/f")).unwrap(), b"changed");
    let mode = fs::metadata(env.rep.join("ro"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o555);
    chmod(env.src.join("ro"), 0o755);
    chmod(env.rep.join("ro"), 0o755);
}

/// REPLICA deleted while running: made again (its parent is where it was), then a full pass.
#[test]
fn a_replica_deleted_while_running_is_made_again() {
    let env = Env::new();
    write(env.src.join("a/b"), "b");
    let mut run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 1, QUICK);
    fs::remove_dir_all(&env.rep).unwrap();
    write(env.src.join("c"), "c");
    env.converges(QUICK);
    run.stop();
    assert!(
        env.log_text().contains("was gone: made it again"),
        "{}",
        env.log_text()
    );
}

/// REPLICA unmounted while running: the mount point below it is never written (that would fill
/// the disk under the mount).
#[test]
fn an_unmounted_replica_is_never_written() {
    if !is_root() {
        eprintln!("skipped: mounting needs root");
        return;
    }
    let env = Env::new();
    write(env.src.join("a"), "a");
    let mount = Mount::tmpfs(&env.rep, "4m");
    let mut run = env.spawn(&["-i", "1s"]);
    env.wait_log("pass finished", 1, QUICK);
    mount.unmount();
    write(env.src.join("b"), "b");
    env.wait_log("on another device", 1, QUICK);
    std::thread::sleep(Duration::from_millis(1500));
    run.stop();
    assert_eq!(
        fs::read_dir(&env.rep).unwrap().count(),
        0,
        "the mount point was written"
    );
    assert_eq!(
        env.log_text().matches("on another device").count(),
        1,
        "{}",
        env.log_text()
    );
}

/// A directory in SOURCE replaced by a symlink to elsewhere: the link is mirrored as a link,
/// and nothing is read through it.
#[test]
fn a_symlink_swapped_into_source_is_not_read_through() {
    let env = Env::new();
    write(env.src.join("d/f"), "f");
    let outside = env.root.join("outside");
    write(outside.join("secret"), "secret");
    let mut run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 1, QUICK);
    fs::remove_dir_all(env.src.join("d")).unwrap();
    symlink(&outside, env.src.join("d"));
    fs::write(outside.join("secret"), "changed secret").unwrap();
    env.converges(QUICK);
    run.stop();
    assert!(fs::symlink_metadata(env.rep.join("d"))
        .unwrap()
        .is_symlink());
    let log = env.log_text();
    assert!(!log.contains("secret"), "{log}");
}
