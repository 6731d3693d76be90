//! Attributes through the entry that was checked. As root, foldersync mirrors ownership, so a
//! user owns their directory in REPLICA and may swap names in it at will. Swapping a file whose
//! owner and mode foldersync is about to set for a hard link to a root-owned file elsewhere
//! (`renameat2` with `RENAME_EXCHANGE`, between the check and a `chown`/`chmod` by name) made
//! root give that file away.
//!
//! This is a race. The swapper below runs flat out while passes come every 100 ms, each finding
//! 16 files whose owner and mode are wrong again (the swapper breaks them between its swaps),
//! for at least 5 s and 20 passes. The code before issue 18 gave the outside file away in the
//! first or second pass when the test ran alone (6 runs of 6), after 23 passes beside other
//! tests; the current code must never.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rustix::fs::{renameat_with, RenameFlags, CWD};

use super::*;

const USER: u32 = 1001;
const FILES: usize = 16;

/// Owner, group and mode of `path`.
fn attrs(path: &Path) -> (u32, u32, u32) {
    let m = meta(path);
    (m.uid(), m.gid(), m.permissions().mode() & 0o7777)
}

/// The user's side: keeps a hard link to `secret` at `x`, breaks the owner and mode of the
/// real file at `f` (never the secret), and swaps the two names back and forth.
fn swap(f: &Path, x: &Path, secret: &Path, ino: u64) {
    match fs::symlink_metadata(x) {
        Ok(m) if m.ino() == ino => {}
        found => {
            if found.is_ok() {
                let _ = fs::remove_file(x);
            }
            let _ = fs::hard_link(secret, x);
        }
    }
    if fs::symlink_metadata(f).is_ok_and(|m| m.ino() != ino && m.is_file()) {
        // Only this thread puts the secret at `f`, so `f` is the real file here.
        let _ = std::os::unix::fs::lchown(f, Some(0), Some(0));
        let _ = fs::set_permissions(f, fs::Permissions::from_mode(0o600));
    }
    for _ in 0..50 {
        let _ = renameat_with(CWD, f, CWD, x, RenameFlags::EXCHANGE);
    }
}

#[test]
fn attributes_are_set_through_the_entry_that_was_checked() {
    if !root_or_skip("mirroring ownership (and owning a file outside both roots)") {
        return;
    }
    let _heavy = heavy();
    let env = Env::new();
    let secret = env.root.join("outside/shadow");
    write(&secret, "root's secret");
    chmod(&secret, 0o600);
    let ino = meta(&secret).ino();
    let home = env.src.join("home");
    mkdir(&home);
    chown(&home, USER, USER);
    for i in 0..FILES {
        let f = home.join(format!("f{i:02}"));
        write(&f, format!("the user's file {i}"));
        chown(&f, USER, USER);
        chmod(&f, 0o644);
    }
    // The links live under names SOURCE lacks and the mirror leaves alone (excluded).
    once_ok(&env, &["--exclude", "x*"]);
    env.assert_mirrored();
    assert_eq!(attrs(&env.rep.join("home")).0, USER);

    let mut mirror = cmd(&env);
    mirror.args(["--no-watch", "-i", "100ms", "--exclude", "x*"]);
    let mut run = start(&env, mirror);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (rep, secret, stop) = (env.rep.join("home"), secret.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for i in 0..FILES {
                    let f = rep.join(format!("f{i:02}"));
                    let x = rep.join(format!("x{i:02}"));
                    swap(&f, &x, &secret, ino);
                }
            }
        })
    };
    let started = Instant::now();
    let passes = || env.log_text().matches("pass finished").count();
    let first = passes();
    let mut given_away = None;
    while started.elapsed() < Duration::from_secs(5) || passes() < first + 20 {
        let now = attrs(&secret);
        if now != (0, 0, 0o600) {
            given_away = Some((now, started.elapsed()));
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let passes = passes() - first;
    if let Some(((uid, gid, mode), after)) = given_away {
        panic!(
            "root's file outside both roots was given away after {after:?} ({passes} passes): \
             now owned by {uid}:{gid}, mode {mode:o}"
        );
    }
    eprintln!("{passes} passes under the swapper, the outside file untouched");
    assert_eq!(fs::read(&secret).unwrap(), b"root's secret");
    run.stop();
}
