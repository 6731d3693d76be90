//! A remote REPLICA keeps what a local one keeps: the same exclusions, hard links, attributes
//! and holes as rsync sees them, and a backup directory on the remote side.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use super::{once, once_ok, setup};
use crate::util::*;

#[test]
fn excludes_leave_out_what_a_local_mirror_leaves_out() {
    let Some((env, sshd)) = setup() else { return };
    for name in [
        "a.tmp",
        "sub/b.tmp",
        "build/x",
        "sub/build/y",
        "top-only",
        "sub/top-only",
        "docs/a.pdf",
        "sub/docs/a.pdf",
        "x/cache/c",
        "debug.log",
        "keep.log",
        "plain",
        "a/z/b",
        "a/b",
        "[odd].txt",
    ] {
        write(env.src.join(name), name);
    }
    write(env.rep.join("build/old"), "excluded in REPLICA: left alone");
    let patterns = [
        "*.tmp",
        "build/",
        "/top-only",
        "docs/*.pdf",
        "**/cache",
        "*.log",
        "!keep.log",
        "a/**/b",
        "\\[odd].txt",
    ];
    let mut args: Vec<&str> = Vec::new();
    for p in &patterns {
        args.push("--exclude");
        args.push(p);
    }
    once_ok(&env, &sshd, &args);
    let local_rep = env.root.join("local-rep");
    let out = Command::new(BIN)
        .arg(&env.src)
        .arg(&local_rep)
        .arg("-l")
        .arg(env.root.join("logs/local.log"))
        .arg("--once")
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success());
    // REPLICA's own excluded build/ stays, and the root's times differ between the two runs.
    let lines = |root: &std::path::Path| -> Vec<String> {
        tree(root)
            .lines()
            .filter(|l| !l.starts_with("d . ") && !l.contains(" build"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(lines(&env.rep), lines(&local_rep));
    assert!(env.rep.join("build/old").exists());
}

#[test]
fn hard_links_attributes_and_holes_as_rsync_sees_them() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("x/one"), "group 1");
    fs::hard_link(env.src.join("x/one"), env.src.join("two")).unwrap();
    let f = fs::File::create(env.src.join("sparse.img")).unwrap();
    f.set_len(32 << 20).unwrap();
    write(env.src.join("suid"), "s");
    chmod(env.src.join("suid"), 0o4755);
    let xattr = Command::new("setfattr")
        .args(["-n", "user.k", "-v", "v"])
        .arg(env.src.join("x/one"))
        .status()
        .is_ok_and(|s| s.success());
    once_ok(&env, &sshd, &[]);
    let flags = if xattr { "-aHAXS" } else { "-aHS" };
    let out = Command::new("rsync")
        .args([flags, "--delete", "--dry-run", "--itemize-changes"])
        .arg(format!("{}/", env.src.display()))
        .arg(format!("{}/", env.rep.display()))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.trim().is_empty(), "rsync sees differences:\n{said}");
    assert_eq!(
        fs::metadata(env.rep.join("two")).unwrap().ino(),
        fs::metadata(env.rep.join("x/one")).unwrap().ino()
    );
    assert!(fs::metadata(env.rep.join("sparse.img")).unwrap().blocks() < 1024);
}

#[test]
fn a_backup_dir_on_the_remote_keeps_what_is_replaced() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("doc.txt"), "version 1");
    write(env.src.join("gone.txt"), "will be removed");
    once_ok(&env, &sshd, &[]);
    write(env.src.join("doc.txt"), "version 2, longer");
    fs::remove_file(env.src.join("gone.txt")).unwrap();
    let backup = env.root.join("backup");
    once_ok(&env, &sshd, &["--backup-dir", backup.to_str().unwrap()]);
    env.assert_mirrored();
    let kept: Vec<String> = fs::read_dir(&backup)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(kept.iter().any(|n| n.starts_with("doc.txt.")), "{kept:?}");
    assert!(kept.iter().any(|n| n.starts_with("gone.txt.")), "{kept:?}");
    let out = once(&env, &sshd, &["--backup-dir", "relative/dir"]);
    assert_eq!(out.status.code(), Some(2));
}
