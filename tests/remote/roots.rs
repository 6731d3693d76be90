//! Issue 18 on a remote replica, its root checked as a local one is: never through a symlink,
//! a replaced or re-mounted root refused rather than adopted, made again only where the old one
//! is gone and its parent is the directory it was.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::{watching, QUICK};
use crate::util::sshd::Sshd;
use crate::util::*;

/// foldersync watching SOURCE into `rep` on the test server, logging at debug level (so that
/// each failed attempt to find REPLICA back is logged), after its first pass.
fn watch_into(env: &Env, sshd: &Sshd, rep: &Path) -> Running {
    let console = env.root.join("logs/console.txt");
    let child = Command::new(BIN)
        .arg(&env.src)
        .arg(sshd.remote(rep))
        .arg("-l")
        .arg(&env.log)
        .args(["-i", "1h", "--log-level", "debug", "-e"])
        .arg(sshd.rsh())
        .arg("--state-dir")
        .arg(env.state())
        .stdout(fs::File::create(&console).unwrap())
        .stderr(fs::File::create(&console).unwrap())
        .spawn()
        .expect("spawn foldersync");
    let run = Running::from(child, console);
    env.wait_log("pass finished", 1, QUICK);
    run
}

/// After a change in SOURCE, two attempts to find REPLICA back that fail: then `empty` is
/// still empty.
fn never_adopted(env: &Env, mut run: Running, empty: &Path) {
    write(env.src.join("g"), "2");
    env.wait_log("still unusable", 2, QUICK);
    run.stop();
    let names: Vec<_> = fs::read_dir(empty)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        names.is_empty(),
        "written into what took REPLICA's place: {names:?}\n{}",
        env.log_text()
    );
    assert!(env
        .log_text()
        .contains("not the directory foldersync started with"));
}

#[test]
fn a_root_swapped_for_a_symlink_to_an_empty_directory_is_refused() {
    let Some((env, sshd)) = setup_with_file() else {
        return;
    };
    let run = watch_into(&env, &sshd, &env.rep);
    let empty = env.root.join("empty");
    mkdir(&empty);
    fs::rename(&env.rep, env.root.join("rep.old")).unwrap();
    symlink(&empty, &env.rep);
    never_adopted(&env, run, &empty);
}

#[test]
fn a_root_replaced_by_an_empty_directory_is_refused() {
    let Some((env, sshd)) = setup_with_file() else {
        return;
    };
    let run = watch_into(&env, &sshd, &env.rep);
    fs::rename(&env.rep, env.root.join("rep.old")).unwrap();
    mkdir(&env.rep);
    never_adopted(&env, run, &env.rep);
}

#[test]
fn a_root_covered_by_a_bind_mount_is_refused() {
    if !is_root() {
        eprintln!("skipped: a bind mount needs root");
        return;
    }
    let Some((env, sshd)) = setup_with_file() else {
        return;
    };
    let run = watch_into(&env, &sshd, &env.rep);
    let empty = env.root.join("empty");
    mkdir(&empty);
    let _mount = Mount::bind(&empty, &env.rep);
    never_adopted(&env, run, &empty);
}

/// The root's parent swapped for a symlink to a tree of the same shape: nothing is made or
/// written there.
#[test]
fn a_symlink_above_the_root_is_not_followed() {
    let Some((env, sshd)) = setup_with_file() else {
        return;
    };
    let rep = env.root.join("gp/p/rep");
    let run = watch_into(&env, &sshd, &rep);
    let elsewhere = env.root.join("elsewhere");
    mkdir(elsewhere.join("p"));
    fs::rename(env.root.join("gp"), env.root.join("gp.old")).unwrap();
    symlink(&elsewhere, env.root.join("gp"));
    never_adopted_or_made(&env, run, &elsewhere.join("p"));
}

/// The root gone with its parent, and a new empty parent made at the same path: the root is
/// not made again there (its parent is not the directory it was).
#[test]
fn a_root_is_made_again_only_in_the_parent_it_had() {
    let Some((env, sshd)) = setup_with_file() else {
        return;
    };
    let rep = env.root.join("p/rep");
    let run = watch_into(&env, &sshd, &rep);
    fs::rename(env.root.join("p"), env.root.join("p.old")).unwrap();
    mkdir(env.root.join("p"));
    never_adopted_or_made(&env, run, &env.root.join("p"));
}

fn never_adopted_or_made(env: &Env, mut run: Running, dir: &Path) {
    write(env.src.join("g"), "2");
    env.wait_log("still unusable", 2, QUICK);
    run.stop();
    let names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        names.is_empty(),
        "REPLICA made again in another directory: {names:?}\n{}",
        env.log_text()
    );
}

/// REPLICA given through a symlink is resolved once, at start-up, as a local one is: pointing
/// the link elsewhere later changes nothing.
#[test]
fn a_root_given_through_a_symlink_is_resolved_once() {
    let Some((env, sshd)) = setup_with_file() else {
        return;
    };
    let real = env.root.join("real");
    let other = env.root.join("other");
    mkdir(&real);
    mkdir(&other);
    symlink(&real, &env.rep);
    let mut run = watching(&env, &sshd, &[]);
    assert!(real.join("f").exists());
    fs::remove_file(&env.rep).unwrap();
    symlink(&other, &env.rep);
    write(env.src.join("g"), "2");
    wait_for(QUICK, "g in the directory REPLICA resolved to", || {
        real.join("g").exists()
    });
    run.stop();
    assert_eq!(
        fs::read_dir(&other).unwrap().count(),
        0,
        "{}",
        env.log_text()
    );
}

fn setup_with_file() -> Option<(Env, Sshd)> {
    let (env, sshd) = super::setup()?;
    write(env.src.join("f"), "1");
    Some((env, sshd))
}

/// A root that was a mount point itself (a disk, a bind mount), unmounted and the mount point
/// removed: not made again on the parent's file system. (The disk holds on 4f06146, which
/// compared devices; the bind mount, on the same device, does not.)
#[test]
fn a_root_that_was_a_mount_point_is_not_made_again() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let Some((env, sshd)) = setup_with_file() else {
        return;
    };
    let data = env.root.join("data");
    mkdir(&data);
    for bind in [false, true] {
        let mount = if bind {
            Mount::bind(&data, &env.rep)
        } else {
            Mount::tmpfs(&env.rep, "4m")
        };
        let run = watch_into(&env, &sshd, &env.rep);
        mount.unmount();
        fs::remove_dir(&env.rep).unwrap();
        write(env.src.join("g"), "2");
        env.wait_log("still unusable", 2, QUICK);
        drop(run);
        assert!(!env.rep.exists(), "made again on the parent's file system");
        fs::remove_file(&env.log).unwrap();
        fs::remove_file(env.src.join("g")).unwrap();
    }
}
