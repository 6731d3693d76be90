//! A shortcut that skips a copy needs proof, not coincidence: size and mtime equal is a hint
//! that two files hold the same bytes, never proof. These files all look alike by size and
//! mtime and hold different bytes; REPLICA must end with SOURCE's bytes (`tree` compares
//! content digests).

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::*;

/// A release directory as a reproducible build leaves it: three 8 KiB files named after the
/// version, all dated 1980-01-01 (the directory too).
fn release(dir: &Path, version: &str, seed: u64) {
    for (i, name) in ["app", "lib", "data"].iter().enumerate() {
        dated_file(
            &dir.join(format!("{name}-{version}.bin")),
            8192,
            seed * 10 + i as u64,
            Y1980,
        );
    }
    set_mtime(dir, Y1980);
}

/// `rsync -a --delete staging/ SOURCE/dist/`: the old files removed, the new ones written under
/// temporary names and renamed into place.
fn deploy(env: &Env) {
    let staging = env.root.join("staging");
    release(&staging, "1.1", 2);
    rsync(&["-a", "--delete"], &staging, &env.src.join("dist"));
}

/// Issue 17, first case: three files replaced by new ones of the same size and mtime through
/// `rsync -a --delete` while watching. The old code took each new file for the rename of an
/// old one ("renamed dist/app-1.0.bin -> dist/app-1.1.bin") and REPLICA kept the old bytes
/// under the new names, for good.
#[test]
fn a_deploy_of_same_size_same_mtime_files_while_watching() {
    let env = Env::new();
    release(&env.src.join("dist"), "1.0", 1);
    let mut run = watching(&env, &[]);
    deploy(&env);
    converges(&env, QUICK);
    run.stop();
}

/// The same deploy made while foldersync was stopped: the next pass must not pair the old
/// files with the new ones by size and mtime (the old code's start-up pass "renamed" them),
/// and a second pass must leave REPLICA as exact as the first did.
#[test]
fn a_deploy_made_while_stopped_is_mirrored_by_the_next_pass() {
    let env = Env::new();
    release(&env.src.join("dist"), "1.0", 1);
    env.once_ok();
    env.assert_mirrored();
    deploy(&env);
    env.once_ok();
    env.assert_mirrored();
    env.once_ok();
    env.assert_mirrored();
}

/// Two users: a file of uid 1001 leaves SOURCE, and at the same moment a file of uid 1002 with
/// the same size and mtime but other bytes arrives elsewhere. `watch` says whether the mirror
/// watches (else the change is made while it is stopped, and a pass follows).
fn two_users(watch: bool) {
    if !is_root() {
        eprintln!("skipped: files of two users need root to make");
        return;
    }
    let env = Env::new();
    let outside = env.root.join("outside");
    mkdir(&outside);
    let owned = |path: &Path, uid: u32, seed: u64| {
        dated_file(path, 8192, seed, 1_700_000_000);
        std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    };
    owned(&env.src.join("home1/report.bin"), 1001, 1);
    mkdir(env.src.join("home2"));
    let mut run = if watch {
        Some(watching(&env, &[]))
    } else {
        env.once_ok();
        None
    };
    owned(&outside.join("staged"), 1002, 2);
    fs::rename(env.src.join("home1/report.bin"), outside.join("gone")).unwrap();
    fs::rename(outside.join("staged"), env.src.join("home2/notes.bin")).unwrap();
    match run.as_mut() {
        Some(run) => {
            converges(&env, QUICK);
            run.stop();
        }
        None => {
            env.once_ok();
            env.assert_mirrored();
        }
    }
    let copy = env.rep.join("home2/notes.bin");
    assert_eq!(
        fs::read(&copy).unwrap(),
        bytes(8192, 2),
        "user 1002's bytes"
    );
    assert_eq!(fs::metadata(&copy).unwrap().uid(), 1002);
}

/// Issue 17: user 1001's file leaving SOURCE was "renamed" onto user 1002's new file of the
/// same size and mtime, so 1002's copy held 1001's bytes. While watching.
#[test]
fn another_users_file_of_the_same_size_and_mtime_while_watching() {
    two_users(true);
}

/// The same, made while foldersync was stopped, then one pass.
#[test]
fn another_users_file_of_the_same_size_and_mtime_while_stopped() {
    two_users(false);
}

/// Issue 17: a same-size rewrite that keeps the mtime, then a rename. The rename was mirrored
/// as a rename (size and mtime matched), and REPLICA's renamed copy then looked newer than
/// SOURCE's status change (the ctime rule), so the new bytes never arrived.
///
/// The writer keeps its descriptor open until after the rename, as a slow writer would: a
/// close after writing makes the mirror copy at once, and a file open for writing is not
/// copied, so the mirror sees the rename before it can copy the new bytes. The order of events
/// is then the same on every run.
#[test]
fn a_same_size_rewrite_that_keeps_the_mtime_then_a_rename() {
    let env = Env::new();
    let f = env.src.join("f.bin");
    dated_file(&f, 8192, 1, 1_700_000_000);
    let mtime = fs::metadata(&f).unwrap().modified().unwrap();
    let mut run = watching(&env, &[]);
    let file = fs::OpenOptions::new().write(true).open(&f).unwrap();
    file.write_all_at(&bytes(8192, 2), 0).unwrap();
    file.set_times(fs::FileTimes::new().set_modified(mtime))
        .unwrap();
    fs::rename(&f, env.src.join("g.bin")).unwrap();
    drop(file);
    converges(&env, QUICK);
    run.stop();
    assert_eq!(
        fs::metadata(env.src.join("g.bin"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime,
        "the test kept the mtime"
    );
}

/// Two files of the same size, both dated in the future (2100), swapped by three renames.
fn swap(env: &Env) {
    let (a, b, tmp) = (env.src.join("a"), env.src.join("b"), env.src.join("tmp"));
    fs::rename(&a, &tmp).unwrap();
    fs::rename(&b, &a).unwrap();
    fs::rename(&tmp, &b).unwrap();
}

fn two_future_files(env: &Env) {
    dated_file(&env.src.join("a"), 8192, 1, Y2100);
    dated_file(&env.src.join("b"), 8192, 2, Y2100);
    assert!(
        fs::metadata(env.src.join("a")).unwrap().modified().unwrap()
            > UNIX_EPOCH + Duration::from_secs(Y2100 - 1)
    );
}

/// Issue 17: a swap of two same-size files dated in the future (a -> tmp, b -> a, tmp -> b),
/// while watching. The ctime rule trusted a REPLICA ctime only when later than the mtime, which
/// a future mtime never is, so the swap was never seen.
#[test]
fn a_swap_of_two_future_dated_files_while_watching() {
    let env = Env::new();
    two_future_files(&env);
    let mut run = watching(&env, &[]);
    swap(&env);
    converges(&env, QUICK);
    run.stop();
}

/// The same swap made while foldersync was stopped: a fresh pass must see it.
#[test]
fn a_swap_of_two_future_dated_files_while_stopped() {
    let env = Env::new();
    two_future_files(&env);
    env.once_ok();
    swap(&env);
    env.once_ok();
    env.assert_mirrored();
}

/// A large file renamed while watching is proven aside (orphans/aside.rs); rewritten in place
/// meanwhile, same size and mtime, the arrival must not take REPLICA's old bytes on the strength
/// of a comparison made before the rewrite.
#[test]
fn a_large_file_rewritten_while_its_rename_is_proven_aside() {
    use std::io::{Seek, SeekFrom, Write};
    let env = Env::new();
    let big = env.src.join("big");
    dated_file(&big, 64 << 20, 7, Y1980);
    let mut run = watching(&env, &[]);
    fs::rename(&big, env.src.join("big2")).unwrap();
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(env.src.join("big2"))
        .unwrap();
    f.seek(SeekFrom::End(-1)).unwrap();
    f.write_all(b"!").unwrap();
    drop(f);
    set_mtime(env.src.join("big2"), Y1980);
    converges(&env, QUICK);
    run.stop();
}
