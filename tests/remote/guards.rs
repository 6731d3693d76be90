//! Issue 18 on a remote replica, the start-up guards: a REPLICA that turns out to be this
//! machine is checked as a local one (whatever name reaches it), and a first pass into a
//! directory foldersync has not mirrored into before does not empty it; a refused start touches
//! nothing on either side.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

use super::{cmd, once, once_ok, setup};
use crate::util::sshd::{self, Sshd};
use crate::util::*;

/// One `--once` run from `source` to `replica` (written as given), with `extra` arguments
/// (the test's log file and state directory unless they say otherwise).
fn run_to(env: &Env, sshd: &Sshd, source: &Path, replica: &str, extra: &[&OsStr]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg(source).arg(replica).arg("-e").arg(sshd.rsh());
    if !extra.contains(&OsStr::new("-l")) {
        cmd.arg("-l").arg(&env.log);
    }
    if !extra.contains(&OsStr::new("--state-dir")) {
        cmd.arg("--state-dir").arg(env.state());
    }
    cmd.arg("--once")
        .args(extra)
        .current_dir(&env.root)
        .output()
        .expect("run foldersync")
}

/// Runs, and asserts a refusal (exit 2) that says `says` and leaves `env.root` as it was.
fn refused(env: &Env, sshd: &Sshd, source: &Path, replica: &str, extra: &[&OsStr], says: &str) {
    let before = snapshot(&env.root);
    let out = run_to(env, sshd, source, replica, extra);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{replica}: not refused\n{err}\n{}",
        env.log_text()
    );
    assert!(err.contains(says), "{replica}: {err}");
    assert_eq!(before, snapshot(&env.root), "{replica}: something changed");
}

/// `home/docs/photos` mirrored to `HOST:home/docs` on this very machine, under each name it
/// answers to: SOURCE is inside REPLICA, as it would be said of local paths. It once removed
/// SOURCE and its siblings, exit 0.
#[test]
fn this_machine_under_any_name_gets_local_rules() {
    let Some((env, sshd)) = setup() else { return };
    let docs = env.root.join("home/docs");
    let photos = docs.join("photos");
    write(photos.join("cat.jpg"), "meow");
    write(docs.join("letters/to-mum.txt"), "hi");
    let mut hosts = vec![
        "127.0.0.1".to_string(),
        "localhost".into(),
        sshd::host_name(),
    ];
    if sshd::has_ipv6(sshd.port) {
        hosts.push("[::1]".into());
    } else {
        eprintln!("no ::1 here: [::1]: left out");
    }
    for host in hosts {
        let replica = format!("{host}:{}", docs.display());
        refused(&env, &sshd, &photos, &replica, &[], "is inside REPLICA");
    }
    assert!(docs.join("letters/to-mum.txt").exists() && photos.join("cat.jpg").exists());
}

/// sshd sees other mounts than foldersync (a mount namespace of its own, as systemd's
/// `PrivateTmp=` or a container gives): `HOST:srv/docs` is SOURCE's parent there, while here
/// `srv` is an empty directory. The identities of the remote root and of what is above it
/// tell what its path cannot.
#[test]
fn this_machine_in_other_mounts_is_told_by_identity() {
    let unshare = Command::new("unshare").arg("--version").output();
    if !is_root() || !sshd::available() || !unshare.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: needs root, sshd and unshare");
        return;
    }
    let env = Env::new();
    let (home, srv) = (env.root.join("home"), env.root.join("srv"));
    let photos = home.join("docs/photos");
    write(photos.join("cat.jpg"), "meow");
    mkdir(&srv);
    let bind = r#"mount --bind "$1" "$2" && shift 2 && exec "$@""#;
    let (home_s, srv_s) = (home.to_str().unwrap(), srv.to_str().unwrap());
    let wrap = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        bind,
        "sh",
        home_s,
        srv_s,
    ];
    let sshd = Sshd::start_wrapped(&wrap);
    let replica = format!("127.0.0.1:{srv_s}/docs");
    refused(&env, &sshd, &photos, &replica, &[], "is inside REPLICA");
}

/// The other local rules, on this machine through the remote form: REPLICA equal to SOURCE,
/// inside it, reached through a symlink; the log, the status file and the state directory
/// inside REPLICA; the backup directory inside SOURCE.
#[test]
fn this_machine_refuses_what_a_local_replica_refuses() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("f"), "x");
    write(env.rep.join("old"), "o");
    symlink(&env.root, env.root.join("link"));
    let at = |p: &Path| format!("127.0.0.1:{}", p.display());
    let src = env.src.clone();
    refused(&env, &sshd, &src, &at(&src), &[], "same directory");
    refused(&env, &sshd, &src, &at(&src.join("m")), &[], "inside SOURCE");
    let through_link = env.root.join("link");
    refused(&env, &sshd, &src, &at(&through_link), &[], "inside REPLICA");
    let rep = at(&env.rep);
    let inside = |name: &str| env.rep.join(name).into_os_string();
    let backup = src.join("bk");
    let cases: [(&[&OsStr], &str); 4] = [
        (&[OsStr::new("-l"), &inside("sync.log")], "log file"),
        (
            &[OsStr::new("--status-file"), &inside("status.json")],
            "status file",
        ),
        (&[OsStr::new("--state-dir"), &inside("state")], "state"),
        (
            &[OsStr::new("--backup-dir"), backup.as_os_str()],
            "backup directory",
        ),
    ];
    for (extra, says) in cases {
        refused(&env, &sshd, &src, &rep, extra, says);
    }
    if is_root() {
        // A bind mount shows SOURCE's parent at another path.
        let other = env.root.join("other");
        let _mount = Mount::bind(&env.root, &other);
        refused(&env, &sshd, &src, &at(&other), &[], "inside REPLICA");
    }
}

/// A directory of 1777 full of other people's files, as `/dev/shm` is: a first pass from a
/// SOURCE that lacks them is refused before rsync touches anything (not even the root's mode
/// or times). It once removed them all and made the root 0755.
#[test]
fn a_full_directory_never_mirrored_into_is_not_emptied() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("mine"), "m");
    for i in 0..30 {
        write(env.rep.join(format!("theirs-{i}")), "t");
    }
    write(env.rep.join("dir/a"), "a");
    chmod(&env.rep, 0o1777);
    let before = snapshot(&env.rep);
    let out = once(&env, &sshd, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}\n{}", env.log_text());
    assert!(
        err.contains("would remove 32 of them") && err.contains("--adopt-replica"),
        "{err}"
    );
    assert!(err.contains("theirs-0"), "{err}");
    assert_eq!(before, snapshot(&env.rep), "REPLICA was touched");
    assert_eq!(fs::metadata(&env.rep).unwrap().mode() & 0o7777, 0o1777);
    assert!(!env.log.exists());
    // Confirmed: mirrored. After that, the record says this directory was mirrored into.
    once_ok(&env, &sshd, &["--adopt-replica"]);
    env.assert_mirrored();
    for i in 0..30 {
        write(env.rep.join(format!("later-{i}")), "l");
    }
    once_ok(&env, &sshd, &[]);
    env.assert_mirrored();
}

/// What is left alone does not count: excluded entries, the backup directory inside REPLICA;
/// and a pass that removes less than half is not refused.
#[test]
fn only_what_a_pass_would_remove_counts() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("mine"), "m");
    for i in 0..30 {
        write(env.rep.join(format!("cache-{i}.keep")), "excluded");
        write(env.rep.join(format!("bk/old-{i}")), "a backup");
    }
    let backup = env.rep.join("bk");
    let extra = [
        "--exclude",
        "*.keep",
        "--backup-dir",
        backup.to_str().unwrap(),
    ];
    once_ok(&env, &sshd, &extra);
    assert!(env.rep.join("cache-0.keep").exists() && backup.join("old-0").exists());

    let env = Env::new();
    for i in 0..30 {
        write(env.src.join(format!("shared-{i}")), "s");
        write(env.rep.join(format!("shared-{i}")), "s");
    }
    for i in 0..25 {
        write(env.rep.join(format!("extra-{i}")), "e");
    }
    let out = cmd(&env, &sshd).arg("--once").output().unwrap();
    assert!(out.status.success(), "{}", env.log_text());
    env.assert_mirrored();
}
