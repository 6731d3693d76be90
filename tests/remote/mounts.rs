//! A file system mounted inside SOURCE that goes away (unmounted, or replaced by a freshly
//! formatted one) does not make a remote REPLICA lose its copy: an error for that subtree, the
//! copy kept (whatever `--delete-excluded` or a batch would do), the status unhealthy, and
//! mirroring resumes when it is back. The mount point is remembered in the state directory, so
//! a restart knows it too. (The local engine's tests are `guards::mounts`.)

use std::path::Path;

use super::*;

/// A tmpfs at SOURCE/`at` holding `n` files, as a disk mounted there.
fn disk(env: &Env, at: &str, n: usize, tag: &str) -> Mount {
    let dir = env.src.join(at);
    let mount = Mount::tmpfs(&dir, "8m");
    for i in 0..n {
        write(dir.join(format!("{i:02}.dat")), format!("{tag} {i}"));
    }
    write(dir.join("sub/deep.txt"), tag);
    mount
}

fn root_and_sshd(why: &str) -> Option<(Env, Sshd)> {
    if !is_root() {
        eprintln!("skipped: {why} needs root");
        return None;
    }
    setup()
}

/// What the run said, for assertion messages.
fn said(env: &Env, out: &Output) -> String {
    format!(
        "{:?}\nstderr:\n{}\nlog:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        env.log_text()
    )
}

fn failing(status: &Path) -> u64 {
    fs::read(status)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["failing"].as_u64())
        .unwrap_or(0)
}

#[test]
fn a_file_system_gone_from_inside_source_keeps_its_remote_copy_across_runs() {
    let Some((env, sshd)) = root_and_sshd("mounting a tmpfs inside SOURCE") else {
        return;
    };
    write(env.src.join("top.txt"), "top");
    write(env.src.join("old.tmp"), "excluded");
    let mount = disk(&env, "disk", 50, "first");
    once_ok(&env, &sshd, &[]);
    env.assert_mirrored();

    // Unmounted (a USB disk pulled, an automount expired): SOURCE/disk is an empty directory.
    mount.unmount();
    let copy = || snapshot(&env.rep.join("disk"));
    let before = copy();
    let out = once(&env, &sshd, &[]);
    assert_eq!(before, copy(), "the copy changed\n{}", said(&env, &out));
    assert_eq!(out.status.code(), Some(1), "{}", said(&env, &out));
    let named = format!(
        "{}: the file system mounted there is gone",
        env.src.join("disk").display()
    );
    assert!(
        env.log_text()
            .lines()
            .any(|l| l.contains("[ERROR]") && l.contains(&named)),
        "the log names the path at ERROR\n{}",
        said(&env, &out)
    );
    // Again, where excluded entries are removed too, and removals are bounded: still kept.
    let excluding = ["--exclude", "*.tmp", "--delete-excluded"];
    let out = once(&env, &sshd, &excluding);
    assert_eq!(out.status.code(), Some(1), "{}", said(&env, &out));
    assert_eq!(before, copy(), "--delete-excluded removed the copy");
    assert!(!env.rep.join("old.tmp").exists(), "{}", said(&env, &out));
    let out = once(&env, &sshd, &["--max-delete", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&env, &out));
    assert_eq!(before, copy());

    // Back (another file system, other files): mirrored.
    let again = disk(&env, "disk", 10, "second");
    once_ok(&env, &sshd, &[]);
    env.assert_mirrored();

    // Retired for good: gone, and confirmed.
    again.unmount();
    assert_eq!(once(&env, &sshd, &[]).status.code(), Some(1));
    once_ok(&env, &sshd, &["--adopt-replica"]);
    env.assert_mirrored();
    once_ok(&env, &sshd, &[]);
}

#[test]
fn a_fresh_file_system_inside_source_does_not_empty_its_remote_copy() {
    let Some((env, sshd)) = root_and_sshd("mounting a tmpfs inside SOURCE") else {
        return;
    };
    write(env.src.join("top.txt"), "top");
    let old = disk(&env, "archive", 20, "scan");
    once_ok(&env, &sshd, &[]);
    old.unmount();
    drop(old);
    // A new disk, just formatted: an empty lost+found.
    let at = env.src.join("archive");
    let _new = Mount::tmpfs(&at, "8m");
    mkdir(at.join("lost+found"));
    chmod(at.join("lost+found"), 0o700);
    let before = snapshot(&env.rep.join("archive"));
    let out = once(&env, &sshd, &[]);
    assert_eq!(
        before,
        snapshot(&env.rep.join("archive")),
        "{}",
        said(&env, &out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", said(&env, &out));
    assert!(
        env.log_text().contains("holds no data") && env.log_text().contains("--allow-empty-source"),
        "{}",
        said(&env, &out)
    );
    // Confirmed: mirrored as it is.
    once_ok(&env, &sshd, &["--allow-empty-source"]);
    env.assert_mirrored();
}

#[test]
fn a_file_system_gone_from_inside_source_while_watching() {
    let Some((env, sshd)) = root_and_sshd("mounting a tmpfs inside SOURCE") else {
        return;
    };
    write(env.src.join("top.txt"), "top");
    write(env.src.join("media/notes.txt"), "where the card goes");
    let card = disk(&env, "media/card", 30, "first");
    let status = env.root.join("status.json");
    let mut run = watching(&env, &sshd, &["--status-file", status.to_str().unwrap()]);
    env.converges(QUICK);
    let copy = || {
        ["media/card", "volumes/card"]
            .iter()
            .map(|d| snapshot(&env.rep.join(d)).lines().count())
            .sum::<usize>()
    };
    let files = copy();

    // Unplugged: the mount table's change is noticed at once, not at the next pass.
    card.unmount();
    wait_for(QUICK, "the error", || {
        env.log_text()
            .contains("the file system mounted there is gone")
    });
    wait_for(QUICK, "an unhealthy status", || failing(&status) > 0);
    // Something else changes meanwhile, and is mirrored; a rename of the directory above the
    // card too, with the card's copy.
    write(env.src.join("top.txt"), "top, changed");
    fs::rename(env.src.join("media"), env.src.join("volumes")).unwrap();
    wait_for(QUICK, "the changes beside it", || {
        fs::read(env.rep.join("top.txt")).unwrap_or_default() == b"top, changed"
            && env.rep.join("volumes").exists()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(files, copy(), "the card's copy changed\n{}", env.log_text());
    assert!(failing(&status) > 0);

    // Mounted again where it is now: mirrored, then watched, with no restart.
    let _again = disk(&env, "volumes/card", 10, "second");
    env.converges(QUICK);
    write(env.src.join("volumes/card/new.txt"), "watched anew");
    env.converges(QUICK);
    wait_for(QUICK, "a healthy status again", || failing(&status) == 0);
    run.stop();
}
