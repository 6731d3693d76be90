//! A remote REPLICA when things go wrong: the connection lost and back, the remote disk full,
//! a wrong host key, an unreachable host, the remote root replaced, a stop in the middle of a
//! transfer, dangerous paths, and an rsync that cannot delete by list.

use std::fs;
use std::process::Command;
use std::time::Duration;

use super::{cmd, once, once_ok, setup, watching, QUICK};
use crate::util::*;

#[test]
fn a_lost_connection_comes_back_and_converges() {
    let Some((env, mut sshd)) = setup() else {
        return;
    };
    write(env.src.join("before"), "b");
    let mut run = watching(&env, &sshd, &["--log-level", "debug"]);
    sshd.kill();
    write(env.src.join("during"), "written while the server was down");
    fs::remove_file(env.src.join("before")).unwrap();
    env.wait_log("[ERROR]", 1, QUICK);
    // A change after a failed attempt to reconnect.
    env.wait_log("still unusable", 1, QUICK);
    write(env.src.join("later"), "also while down");
    sshd.restart();
    env.converges(Duration::from_secs(90));
    run.stop();
    let log = env.log_text();
    assert!(log.contains("is usable again"), "{log}");
}

#[test]
fn a_full_remote_disk_is_an_error_and_leaves_nothing_partial() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let Some((env, sshd)) = setup() else { return };
    let mount = Mount::tmpfs(&env.rep, "1m");
    write(env.src.join("small"), "fits");
    // Random bytes: a file of zeros would go over as holes and take no space.
    write(env.src.join("huge"), bytes(3 << 20, 9));
    let out = once(&env, &sshd, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", env.log_text());
    let log = env.log_text();
    assert!(log.contains("No space left on device"), "{log}");
    assert!(
        !env.rep.join("huge").exists(),
        "a partial file under its final name"
    );
    assert!(temp_files(&env.rep).is_empty());
    let leftovers: Vec<_> = fs::read_dir(&env.rep)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with(".huge"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "rsync's temporary file left: {leftovers:?}"
    );
    // Room again: the next run completes the mirror.
    mount.resize("16m");
    once_ok(&env, &sshd, &[]);
    env.assert_mirrored();
}

#[test]
fn a_wrong_host_key_is_refused_and_nothing_is_made() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("f"), "x");
    sshd.forget_host_key();
    let out = once(&env, &sshd, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Host key verification failed"), "{err}");
    assert!(!env.rep.exists() && !env.log.exists());
}

#[test]
fn an_unreachable_host_is_refused_at_start() {
    let Some((env, mut sshd)) = setup() else {
        return;
    };
    write(env.src.join("f"), "x");
    sshd.kill();
    let out = once(&env, &sshd, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to 127.0.0.1"), "{err}");
}

#[test]
fn sigterm_during_a_large_transfer_stops_cleanly() {
    let Some((env, sshd)) = setup() else { return };
    big_file(env.src.join("huge.bin"), 1 << 30);
    let console = env.root.join("logs/console.txt");
    let mut c = cmd(&env, &sshd);
    c.args(["-i", "1h"])
        .stdout(fs::File::create(&console).unwrap())
        .stderr(fs::File::create(&console).unwrap());
    let mut run = Running::from(c.spawn().unwrap(), console);
    wait_for(QUICK, "the transfer to start", || {
        fs::read_dir(&env.rep).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".huge.bin"))
        })
    });
    run.signal(libc::SIGTERM);
    let status = run
        .wait(Duration::from_secs(10))
        .expect("stopped within 10 s");
    assert!(status.success(), "{status:?}");
    let log = env.log_text();
    assert!(log.contains("stopped by user"), "{log}");
    assert!(
        !log.contains("copied huge.bin"),
        "a copy cut off was logged: {log}"
    );
    assert!(!env.rep.join("huge.bin").exists());
    wait_for(QUICK, "rsync's temporary file to go", || {
        fs::read_dir(&env.rep).is_ok_and(|d| d.flatten().count() == 0)
    });
}

#[test]
fn a_once_run_cut_off_by_a_lost_connection_exits_1() {
    let Some((env, mut sshd)) = setup() else {
        return;
    };
    big_file(env.src.join("huge.bin"), 1 << 30);
    let console = env.root.join("console.txt");
    let child = cmd(&env, &sshd)
        .arg("--once")
        .stdout(fs::File::create(&console).unwrap())
        .stderr(fs::File::create(&console).unwrap())
        .spawn()
        .unwrap();
    let mut run = Running::from(child, console);
    wait_for(QUICK, "the transfer to start", || {
        fs::read_dir(&env.rep).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".huge.bin"))
        })
    });
    sshd.kill();
    let status = run.wait(Duration::from_secs(30)).expect("exit");
    assert_eq!(status.code(), Some(1), "{}", env.log_text());
    let log = env.log_text();
    assert!(log.contains("[ERROR]"), "{log}");
    assert!(!log.contains("copied huge.bin"), "{log}");
}

#[test]
fn a_replaced_remote_root_is_never_written() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("f"), "1");
    let mut run = watching(&env, &sshd, &[]);
    let moved = env.root.join("rep.moved");
    fs::rename(&env.rep, &moved).unwrap();
    write(env.rep.join("someone else's"), "not ours");
    write(env.src.join("g"), "2");
    env.wait_log("not the directory foldersync started with", 1, QUICK);
    run.stop();
    assert!(!env.rep.join("g").exists() && env.rep.join("someone else's").exists());
    assert!(!moved.join("g").exists());
}

#[test]
fn a_deleted_remote_root_is_made_again_and_filled() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("f"), "1");
    let mut run = watching(&env, &sshd, &[]);
    fs::remove_dir_all(&env.rep).unwrap();
    write(env.src.join("g"), "2");
    env.wait_log("was made again", 1, QUICK);
    env.converges(QUICK);
    run.stop();
}

#[test]
fn a_remote_root_below_an_unmounted_disk_is_not_made_again() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let Some((env, sshd)) = setup() else { return };
    let disk = env.root.join("disk");
    let mount = Mount::tmpfs(&disk, "4m");
    let rep = disk.join("mirror");
    write(env.src.join("f"), "1");
    let console = env.root.join("console.txt");
    let child = Command::new(BIN)
        .arg(&env.src)
        .arg(sshd.remote(&rep))
        .arg("-l")
        .arg(&env.log)
        .args(["--log-level", "debug", "-e"])
        .arg(sshd.rsh())
        .stdout(fs::File::create(&console).unwrap())
        .stderr(fs::File::create(&console).unwrap())
        .spawn()
        .unwrap();
    let mut run = Running::from(child, console);
    env.wait_log("pass finished", 1, QUICK);
    assert!(rep.join("f").exists());
    mount.unmount();
    write(env.src.join("g"), "2");
    // Two attempts to find REPLICA back, and nothing made below the mount point.
    env.wait_log("still unusable", 2, QUICK);
    run.stop();
    assert!(
        !rep.exists(),
        "REPLICA was made again below the mount point"
    );
}

#[test]
fn dangerous_remote_paths_and_misplaced_options_are_refused() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    for (replica, says) in [
        ("nas:", "home directory"),
        ("nas:/", "root directory"),
        ("nas:.", "home directory"),
        ("nas:a/..", "'..'"),
        ("nas:~/x", "without ~"),
        ("-oProxyCommand=x:/m", "host name"),
        ("nas:/srv/rep[1]", "wildcard"),
        ("nas:*", "wildcard"),
        ("nas::module", "rsync daemon"),
    ] {
        let out = Command::new(BIN)
            .arg("-l")
            .arg(&env.log)
            .arg("--once")
            .arg("--")
            .arg(&env.src)
            .arg(replica)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{replica}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{replica}: {err}");
    }
    let out = Command::new(BIN)
        .arg(&env.src)
        .arg(&env.rep)
        .args(["-e", "ssh", "--once", "-l"])
        .arg(&env.log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rsh applies to a remote REPLICA"));
    assert!(!env.rep.exists() && !env.log.exists());
}

#[test]
fn batches_use_include_filters_where_delete_missing_args_fails() {
    let Some((env, sshd)) = setup() else { return };
    // An rsync here that refuses --delete-missing-args, as rsync 3.4.3 and some distribution
    // builds did.
    let bin = env.root.join("bin");
    mkdir(&bin);
    let real = which_rsync();
    fs::write(
        bin.join("rsync"),
        format!(
            "#!/bin/sh\nfor a; do [ \"$a\" = --delete-missing-args ] && {{ echo 'rsync: \
             invalid file mode 00 (code 2)' >&2; exit 2; }}; done\nexec {real} \"$@\"\n"
        ),
    )
    .unwrap();
    chmod(bin.join("rsync"), 0o755);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    write(env.src.join("old"), "old");
    write(env.src.join("dir/a"), "a");
    let console = env.root.join("logs/console.txt");
    let mut c = cmd(&env, &sshd);
    // --delete-excluded with include rules would take whatever a batch leaves out for excluded.
    c.args(["-i", "1h", "--exclude", "*.log", "--delete-excluded"])
        .env("PATH", path)
        .stdout(fs::File::create(&console).unwrap())
        .stderr(fs::File::create(&console).unwrap());
    let mut run = Running::from(c.spawn().unwrap(), console);
    env.wait_log("pass finished", 1, QUICK);
    assert!(
        env.log_text().contains("include filters"),
        "{}",
        env.log_text()
    );
    write(env.src.join("new [1].txt"), "new");
    write(env.src.join("dir/deeper/b"), "b");
    fs::remove_file(env.src.join("old")).unwrap();
    write(env.src.join("dir/a"), "changed");
    env.converges(QUICK);
    fs::rename(env.src.join("dir"), env.src.join("moved")).unwrap();
    env.converges(QUICK);
    run.stop();
}

fn which_rsync() -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("command -v rsync")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
