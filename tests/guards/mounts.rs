//! A file system mounted inside SOURCE that goes away leaves an empty directory: an error for
//! that subtree, REPLICA's copy kept, the status unhealthy, and mirroring resumes when it is
//! back, with no restart. The mount point is remembered in the state directory, so a restart
//! (or a `--once` run) knows it too.

use super::*;

/// A tmpfs at SOURCE/disk holding `n` files, as a disk mounted there.
fn disk(env: &Env, n: usize, tag: &str) -> Mount {
    let mount = Mount::tmpfs(&env.src.join("disk"), "8m");
    for i in 0..n {
        write(
            env.src.join(format!("disk/{i:02}.dat")),
            format!("{tag} {i}"),
        );
    }
    write(env.src.join("disk/sub/deep.txt"), tag);
    mount
}

/// What REPLICA holds under `disk`.
fn replica_disk(env: &Env) -> String {
    snapshot(&env.rep.join("disk"))
}

#[test]
fn a_file_system_gone_from_inside_source_keeps_its_copy_across_runs() {
    if !root_or_skip("mounting a tmpfs inside SOURCE") {
        return;
    }
    let env = Env::new();
    write(env.src.join("top.txt"), "top");
    let mount = disk(&env, 50, "first");
    once_ok(&env, &[]);
    env.assert_mirrored();

    // Unmounted (a USB disk pulled, an automount expired): SOURCE/disk is an empty directory.
    mount.unmount();
    let before = replica_disk(&env);
    let out = once(&env, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        before,
        replica_disk(&env),
        "REPLICA's copy of the unmounted file system changed\nlog:\n{}",
        env.log_text()
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "an error for that subtree: {err}"
    );
    let log = env.log_text();
    let said = format!(
        "{}: the file system mounted there is gone",
        env.src.join("disk").display()
    );
    assert!(
        log.lines()
            .any(|l| l.contains("[ERROR]") && l.contains(&said)),
        "the log names the path at ERROR:\n{log}"
    );
    // And again on the next start: still kept.
    assert_eq!(once(&env, &[]).status.code(), Some(1));
    assert_eq!(before, replica_disk(&env));

    // Back (another file system, other files): mirrored.
    let _again = disk(&env, 10, "second");
    once_ok(&env, &[]);
    env.assert_mirrored();
}

#[test]
fn a_file_system_gone_from_inside_source_while_watching() {
    if !root_or_skip("mounting a tmpfs inside SOURCE") {
        return;
    }
    let env = Env::new();
    write(env.src.join("top.txt"), "top");
    let mount = disk(&env, 50, "first");
    let file = env.root.join("status.json");
    // Passes every 2 s: the watcher hears nothing of an unmount (inotify's IN_UNMOUNT does
    // not reach foldersync), the next pass finds it.
    let mut run = watching(&env, &["-i", "2s", "--status-file", file.to_str().unwrap()]);
    env.converges(QUICK);
    wait_for(QUICK, "a healthy status", || status(&file).0 == 0);

    mount.unmount();
    let before = replica_disk(&env);
    // Something else changes meanwhile, and is mirrored.
    write(env.src.join("top.txt"), "top, changed");
    wait_for(QUICK, "an unhealthy status", || {
        status_doc(&file)["failing"].as_u64().unwrap_or(0) > 0
    });
    wait_for(QUICK, "the change beside it", || {
        std::fs::read(env.rep.join("top.txt")).unwrap_or_default() == b"top, changed"
    });
    let (code, text) = status(&file);
    assert_eq!(code, 1, "{text}");
    assert!(
        env.log_text()
            .lines()
            .any(|l| l.contains("[ERROR]") && l.contains("the file system mounted there is gone")),
        "{}",
        env.log_text()
    );
    assert_eq!(
        before,
        replica_disk(&env),
        "REPLICA's copy of the unmounted file system changed\nlog:\n{}",
        env.log_text()
    );

    // Mounted again: mirrored, then watched, with no restart.
    let _again = disk(&env, 10, "second");
    env.converges(Duration::from_secs(20));
    write(env.src.join("disk/new.txt"), "watched anew");
    env.converges(QUICK);
    wait_for(QUICK, "a healthy status again", || status(&file).0 == 0);
    run.stop();
}
