//! A REPLICA on another machine: foldersync drives rsync over ssh to an sshd on 127.0.0.1 that
//! each test starts with keys of its own. REPLICA is a directory on this machine that the
//! server writes, so the tests can look at it directly.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};
use std::time::Duration;

mod batches;
mod converge;
mod faults;
mod fidelity;
mod guards;
mod honest;
mod mounts;
mod quick;
mod roots;

use crate::util::sshd::{self, Sshd};
use crate::util::*;

pub(crate) const QUICK: Duration = Duration::from_secs(20);

/// An environment and a server, or `None` (said) where no sshd can run.
pub(crate) fn setup() -> Option<(Env, Sshd)> {
    if !sshd::available() {
        eprintln!("skipped: no sshd here (tests/run.sh installs openssh-server)");
        return None;
    }
    Some((Env::new(), Sshd::start()))
}

pub(crate) fn cmd(env: &Env, sshd: &Sshd) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg(&env.src)
        .arg(sshd.remote(&env.rep))
        .arg("-l")
        .arg(&env.log)
        .arg("-e")
        .arg(sshd.rsh())
        .arg("--state-dir")
        .arg(env.state())
        .current_dir(&env.root);
    cmd
}

pub(crate) fn once(env: &Env, sshd: &Sshd, extra: &[&str]) -> Output {
    cmd(env, sshd)
        .arg("--once")
        .args(extra)
        .output()
        .expect("run foldersync")
}

pub(crate) fn once_ok(env: &Env, sshd: &Sshd, extra: &[&str]) -> Output {
    let out = once(env, sshd, extra);
    assert!(
        out.status.success(),
        "{:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        env.log_text()
    );
    out
}

pub(crate) fn watching(env: &Env, sshd: &Sshd, extra: &[&str]) -> Running {
    let console = env.root.join("logs/console.txt");
    let mut c = cmd(env, sshd);
    c.args(["-i", "1h"])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(&console).unwrap())
        .stderr(fs::File::create(&console).unwrap());
    let run = Running::from(c.spawn().expect("spawn foldersync"), console);
    env.wait_log("pass finished", 1, QUICK);
    run
}

fn awkward_tree(env: &Env) {
    write(env.src.join("plain.txt"), "plain");
    write(env.src.join("dir/sub/deep.bin"), bytes(70_000, 1));
    write(env.src.join("with space & 'quote' \"dq\" $HOME `x`"), "odd");
    write(env.src.join("new\nline"), "nl");
    write(env.src.join("back\\slash\ttab"), "bs");
    write(env.src.join(non_utf8("latin")), "bytes");
    write(env.src.join("-dash"), "dash");
    write(env.src.join("star*[x]?"), "wild");
    mkdir(env.src.join("empty"));
    symlink("plain.txt", env.src.join("link"));
    symlink("../nowhere", env.src.join("dir/dangling"));
    write(env.src.join("secret"), "s");
    chmod(env.src.join("secret"), 0o600);
    write(env.src.join("old"), "old");
    set_mtime(env.src.join("old"), 100_000_000);
}

#[test]
fn a_tree_in_one_pass_then_nothing_to_do() {
    let Some((env, sshd)) = setup() else { return };
    awkward_tree(&env);
    once_ok(&env, &sshd, &[]);
    env.assert_mirrored();
    let log = env.log_text();
    assert!(log.contains("created REPLICA 127.0.0.1:"), "{log}");
    assert!(
        log.contains("copied new\\nline (2 bytes)"),
        "names are escaped:\n{log}"
    );
    assert!(log.contains("created symlink link -> plain.txt"), "{log}");
    once_ok(&env, &sshd, &[]);
    let log = env.log_text();
    let last = log.lines().rfind(|l| l.contains("pass finished")).unwrap();
    assert!(
        last.contains("0 copied, 0 updated, 0 created, 0 removed") && last.contains("0 B written"),
        "the second run did work: {last}"
    );
}

#[test]
fn a_remote_path_with_spaces_and_quotes_is_one_path() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("f"), "x");
    let rep = env.root.join("rep x $HOME 'q'");
    // With old-style arguments rsync would hand `.../rep` and `x` to the remote shell apart.
    let out = Command::new(BIN)
        .arg(&env.src)
        .arg(sshd.remote(&rep))
        .arg("-l")
        .arg(&env.log)
        .arg("-e")
        .arg(sshd.rsh())
        .arg("--once")
        .env("RSYNC_OLD_ARGS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", env.log_text());
    assert_eq!(fs::read(rep.join("f")).unwrap(), b"x");
    assert!(
        !env.root.join("rep").join("f").exists(),
        "written outside REPLICA"
    );
}

#[test]
fn extras_are_removed_and_max_delete_holds() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("keep"), "k");
    for name in ["x1", "x2", "d/x3"] {
        write(env.rep.join(name), "extra");
    }
    let out = once(&env, &sshd, &["--max-delete", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", env.log_text());
    assert!(env.log_text().contains("more than --max-delete 1"));
    assert!(env.rep.join("x1").exists() && env.rep.join("d/x3").exists());
    assert!(env.rep.join("keep").exists(), "copies still happen");
    once_ok(&env, &sshd, &[]);
    env.assert_mirrored();
    assert!(env.log_text().contains("removed directory d"));
}

#[test]
fn the_watcher_carries_creates_changes_and_removals() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("old"), "old");
    write(env.src.join("gone/inside"), "x");
    let mut run = watching(&env, &sshd, &[]);
    write(env.src.join("new.txt"), "new");
    write(env.src.join("nested/a/b/c.txt"), "deep");
    env.converges(QUICK);
    write(env.src.join("new.txt"), "changed, and longer");
    chmod(env.src.join("old"), 0o640);
    fs::remove_dir_all(env.src.join("gone")).unwrap();
    symlink("new.txt", env.src.join("link"));
    env.converges(QUICK);
    fs::remove_file(env.src.join("link")).unwrap();
    write(env.src.join("link"), "a file now");
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    assert_eq!(log.matches("pass finished").count(), 1, "{log}");
}

#[test]
fn renames_keep_the_remote_inodes() {
    let Some((env, sshd)) = setup() else { return };
    big_file(env.src.join("big.bin"), 24 << 20);
    for i in 0..50 {
        write(env.src.join(format!("album/p{i}.jpg")), bytes(5000, i));
    }
    write(env.src.join("2025/notes.txt"), "n");
    let mut run = watching(&env, &sshd, &[]);
    let file_ino = fs::metadata(env.rep.join("big.bin")).unwrap().ino();
    let dir_ino = fs::metadata(env.rep.join("album")).unwrap().ino();
    fs::rename(env.src.join("big.bin"), env.src.join("renamed.bin")).unwrap();
    // Into a directory that was there before. (A move into a directory made an instant
    // before is a rename only as long as the new directory's batch waits for it, which a
    // loaded machine can outlast; docs/remote.md says so.)
    fs::rename(env.src.join("album"), env.src.join("2025/album")).unwrap();
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    assert_eq!(
        fs::metadata(env.rep.join("renamed.bin")).unwrap().ino(),
        file_ino,
        "{log}"
    );
    assert_eq!(
        fs::metadata(env.rep.join("2025/album")).unwrap().ino(),
        dir_ino,
        "{log}"
    );
    assert!(log.contains("renamed big.bin -> renamed.bin"), "{log}");
    assert!(log.contains("renamed album -> 2025/album"), "{log}");
    assert!(!log.contains("copied renamed.bin"), "{log}");
}

#[test]
fn files_swapped_by_renames_are_mirrored() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("a"), "one");
    write(env.src.join("b"), "two");
    // Same size and mtime: rsync's quick check alone cannot tell them apart.
    set_mtime(env.src.join("a"), 1_600_000_000);
    set_mtime(env.src.join("b"), 1_600_000_000);
    let mut run = watching(&env, &sshd, &[]);
    fs::rename(env.src.join("a"), env.src.join("tmp")).unwrap();
    fs::rename(env.src.join("b"), env.src.join("a")).unwrap();
    fs::rename(env.src.join("tmp"), env.src.join("b")).unwrap();
    env.converges(QUICK);
    run.stop();
}

#[test]
fn type_changes_while_watching_are_not_errors() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("d/x"), "in a directory");
    write(env.src.join("d/y/z"), "deeper");
    write(env.src.join("f"), "a file");
    symlink("f", env.src.join("l"));
    let mut run = watching(&env, &sshd, &[]);
    fs::remove_dir_all(env.src.join("d")).unwrap();
    write(env.src.join("d"), "now a file");
    fs::remove_file(env.src.join("f")).unwrap();
    write(env.src.join("f/inside"), "now a directory");
    fs::remove_file(env.src.join("l")).unwrap();
    mkdir(env.src.join("l"));
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    assert!(!log.contains("[ERROR]"), "{log}");
}

#[test]
fn a_burst_of_two_thousand_files() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("seed"), "s");
    let mut run = watching(&env, &sshd, &[]);
    let staging = env.root.join("staging");
    for i in 0..2000 {
        write(
            staging.join(format!("d{}/f{i}", i % 20)),
            format!("file {i}"),
        );
    }
    let status = Command::new("cp")
        .arg("-a")
        .arg(&staging)
        .arg(env.src.join("burst"))
        .status()
        .unwrap();
    assert!(status.success());
    env.converges(QUICK);
    run.stop();
}

#[test]
fn an_empty_source_is_refused() {
    let Some((env, sshd)) = setup() else { return };
    write(env.rep.join("precious"), "data");
    let out = once(&env, &sshd, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    assert!(env.rep.join("precious").exists());
}

#[test]
fn a_dry_run_changes_nothing() {
    let Some((env, sshd)) = setup() else { return };
    write(env.src.join("new"), "n");
    write(env.rep.join("extra"), "e");
    let before = tree(&env.rep);
    once_ok(&env, &sshd, &["--dry-run"]);
    assert_eq!(tree(&env.rep), before);
    let log = env.log_text();
    assert!(log.contains("[dry run] copied new"), "{log}");
    assert!(log.contains("[dry run] removed extra"), "{log}");
}
