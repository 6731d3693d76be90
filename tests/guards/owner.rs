//! Set-ID bits follow the owner, and a new file's group is set, not predicted: a copy never
//! carries set-UID or set-GID for an owner it does not have, and is never readable by a group
//! it does not belong to (or that its ACL denies), not even while it is copied.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;

const USER: u32 = 1001;
const OTHER_GROUP: u32 = 1002;

#[test]
fn set_id_bits_follow_the_owner() {
    if !root_or_skip("a file owned by someone else in SOURCE") {
        return;
    }
    let env = Env::new();
    write(env.src.join("tool"), "#!/bin/sh\nid\n");
    write(env.src.join("group-tool"), "#!/bin/sh\nid -g\n");
    write(env.src.join("mine"), "#!/bin/sh\ntrue\n");
    // The mirror runs as nobody: everything under the test's directory is nobody's now.
    let mut run = cmd_unprivileged(&env);
    // alice's set-UID program (here root's), a set-GID program of another group, and one of
    // the mirror's own user.
    chown(&env.src.join("tool"), 0, 0);
    chmod(env.src.join("tool"), 0o4755);
    chown(&env.src.join("group-tool"), NOBODY, 0);
    chmod(env.src.join("group-tool"), 0o2755);
    chmod(env.src.join("mine"), 0o6755);
    let out = run.arg("--once").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, want) in [("tool", 0o755), ("group-tool", 0o755), ("mine", 0o6755)] {
        let copy = meta(&env.rep.join(name));
        assert_eq!(
            (copy.permissions().mode() & 0o7777, copy.uid(), copy.gid()),
            (want, NOBODY, NOBODY),
            "{name}: the copy is the mirror's user's, and carries a set-ID bit only for it"
        );
    }

    // As root, ownership is kept, and with it the bits.
    let kept = Env::new();
    write(kept.src.join("tool"), "#!/bin/sh\nid\n");
    chown(&kept.src.join("tool"), USER, USER);
    chmod(kept.src.join("tool"), 0o6755);
    once_ok(&kept, &[]);
    let copy = meta(&kept.rep.join("tool"));
    assert_eq!(
        (copy.permissions().mode() & 0o7777, copy.uid(), copy.gid()),
        (0o6755, USER, USER)
    );
}

/// Watches REPLICA's directory `dir` until `done` says the copy is in place; returns what a
/// temporary file ever showed that `leaks` finds wrong.
fn watch_temps(
    dir: &Path,
    done: impl Fn() -> bool,
    leaks: impl Fn(&Path, &fs::Metadata) -> Option<String>,
) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut looks = 0;
    wait_for(Duration::from_secs(60), "the copy in place", || {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with(".foldersync-") {
                continue;
            }
            if let Ok(m) = fs::symlink_metadata(entry.path()) {
                looks += 1;
                if let Some(leak) = leaks(&entry.path(), &m) {
                    if seen.len() < 5 {
                        seen.push(leak);
                    }
                }
            }
        }
        done()
    });
    (seen, looks)
}

/// Root's 0640 file into a directory its user owns and made set-GID: the copy is never
/// readable by that user's group, while it is copied or after.
#[test]
fn a_new_file_is_private_until_it_has_its_group() {
    if !root_or_skip("mirroring ownership") {
        return;
    }
    let env = Env::new();
    mkdir(env.src.join("home"));
    chown(&env.src.join("home"), USER, USER);
    let mut run = watching(&env, &["-i", "1h"]);
    // The user makes their directory in REPLICA set-GID: new files get their group.
    chmod(env.rep.join("home"), 0o2755);
    // Root's private file, 0640 from the start (made elsewhere and moved in).
    let staging = env.root.join("staging");
    mkdir(&staging);
    big_file(staging.join("salaries.db"), 1 << 30);
    chmod(staging.join("salaries.db"), 0o640);
    fs::rename(
        staging.join("salaries.db"),
        env.src.join("home/salaries.db"),
    )
    .unwrap();
    let copy = env.rep.join("home/salaries.db");
    let (leaks, looks) = watch_temps(
        &env.rep.join("home"),
        || copy.exists(),
        |path, m| {
            (m.gid() == USER && m.permissions().mode() & 0o040 != 0).then(|| {
                format!(
                    "{} mode {:o} group {}",
                    path.display(),
                    m.permissions().mode() & 0o7777,
                    m.gid()
                )
            })
        },
    );
    assert!(
        leaks.is_empty(),
        "the copy was readable by the directory's group while copied: {leaks:?}"
    );
    let m = meta(&copy);
    assert_eq!((m.uid(), m.gid(), mode(&copy)), (0, 0, 0o640));
    eprintln!("looked at a temporary file {looks} times");
    run.stop();
}

/// The directory is made set-GID and back again, over and over, while root's files arrive:
/// every copy ends with SOURCE's group, whatever the directory was when it was looked at.
#[test]
fn a_new_files_group_is_read_back_not_predicted() {
    if !root_or_skip("mirroring ownership") {
        return;
    }
    let env = Env::new();
    mkdir(env.src.join("home"));
    chown(&env.src.join("home"), USER, USER);
    let mut run = watching(&env, &["-i", "1h"]);
    let dir = env.rep.join("home");
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o2755));
                let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o755));
            }
        })
    };
    let staging = env.root.join("staging");
    mkdir(&staging);
    let mut wrong = Vec::new();
    for i in 0..100 {
        let name = format!("f{i:03}");
        write(staging.join(&name), format!("root's {i}"));
        chmod(staging.join(&name), 0o640);
        fs::rename(staging.join(&name), env.src.join("home").join(&name)).unwrap();
        let copy = dir.join(&name);
        wait_for(QUICK, "the copy", || copy.exists());
        let m = meta(&copy);
        if m.gid() != 0 {
            wrong.push(format!("{name}: group {} mode {:o}", m.gid(), mode(&copy)));
        }
    }
    stop.store(true, Ordering::Relaxed);
    toggler.join().unwrap();
    assert!(
        wrong.is_empty(),
        "copies of root's 0640 files in the user's group: {wrong:?}"
    );
    run.stop();
}

/// A file whose ACL denies a group is never readable by that group through its temporary
/// file: it stays private until the ACL is set.
#[test]
fn a_file_with_an_acl_is_never_readable_beyond_it() {
    let env = Env::new();
    let mut mirror = cmd_unprivileged(&env);
    mirror.args(["-i", "1h"]);
    let staging = env.root.join("staging");
    mkdir(&staging);
    let file = staging.join("report.pdf");
    big_file(&file, 1 << 30);
    chmod(&file, 0o644);
    if is_root() {
        chown(&file, NOBODY, NOBODY);
    }
    let acl = Command::new("setfacl")
        .args(["-m", &format!("g:{OTHER_GROUP}:---")])
        .arg(&file)
        .status()
        .expect("setfacl (package acl)");
    assert!(acl.success());
    let run = start(&env, mirror);
    env.wait_log("pass finished", 1, Duration::from_secs(30));
    fs::rename(&file, env.src.join("report.pdf")).unwrap();
    let copy = env.rep.join("report.pdf");
    let (leaks, looks) = watch_temps(
        &env.rep,
        || copy.exists(),
        |path, m| {
            let acl = xattr::get(path, "system.posix_acl_access").ok().flatten();
            (acl.is_none() && m.permissions().mode() & 0o004 != 0).then(|| {
                format!(
                    "{} mode {:o} without its ACL",
                    path.display(),
                    m.permissions().mode() & 0o7777
                )
            })
        },
    );
    assert!(
        leaks.is_empty(),
        "readable by the group the ACL denies while copied: {leaks:?}"
    );
    assert!(xattr::get(&copy, "system.posix_acl_access")
        .unwrap()
        .is_some());
    eprintln!("looked at a temporary file {looks} times");
    drop(run);
}
