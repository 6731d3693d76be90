//! A REPLICA that was never a replica is not emptied by surprise: the first pass into an
//! existing directory foldersync has not mirrored into before, that would remove more than half
//! of it and more than 20 entries, is refused (exit 2, nothing touched, what would go and how to
//! confirm said), unless `--adopt-replica` or `--max-delete` says otherwise. The record of a
//! pass lives in the state directory, so a later start is not refused.

use std::fs;

use super::*;

/// `n` files named `{prefix}-NN.jpg` in `dir`.
fn files(dir: &Path, prefix: &str, n: usize) {
    for i in 0..n {
        write(
            dir.join(format!("{prefix}-{i:02}.jpg")),
            format!("{prefix} {i}"),
        );
    }
}

#[test]
fn a_directory_never_mirrored_into_is_not_emptied() {
    let env = Env::new();
    write(env.src.join("notes.txt"), "the one file");
    // Someone's home, photos, /dev/shm: 30 entries SOURCE lacks, in a directory anyone may write.
    files(&env.rep, "photo", 30);
    chmod(&env.rep, 0o1777);
    set_mtime(&env.rep, 1_600_000_000);
    let before = snapshot(&env.rep);

    let out = once(&env, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a first pass removing 30 of 30 entries must be refused\nstderr:\n{err}"
    );
    assert_eq!(before, snapshot(&env.rep), "REPLICA changed:\n{err}");
    assert_eq!(mode(&env.rep), 0o1777, "the refused REPLICA keeps its mode");
    assert!(
        err.contains("remove 30") && err.contains("photo-00.jpg"),
        "the refusal says what would go: {err}"
    );
    assert!(err.contains("--adopt-replica"), "and how to confirm: {err}");
    assert!(!env.rep.join("notes.txt").exists());

    // Confirmed: it becomes a copy of SOURCE.
    once_ok(&env, &["--adopt-replica"]);
    env.assert_mirrored();

    // Mirrored before (the record in the state directory): new extras are removed, not refused.
    files(&env.rep, "later", 30);
    once_ok(&env, &[]);
    env.assert_mirrored();
    let state: Vec<_> = fs::read_dir(env.root.join("state"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .collect();
    assert_eq!(state.len(), 1, "one record for the pair");

    // --max-delete bounds what the first pass may remove: it goes through.
    let bounded = Env::new();
    write(bounded.src.join("notes.txt"), "the one file");
    files(&bounded.rep, "photo", 30);
    once_ok(&bounded, &["--max-delete", "100"]);
    bounded.assert_mirrored();

    // An empty REPLICA, and one with a few extras, are not refused.
    let empty = Env::new();
    write(empty.src.join("notes.txt"), "the one file");
    mkdir(&empty.rep);
    once_ok(&empty, &[]);
    empty.assert_mirrored();
    let few = Env::new();
    write(few.src.join("notes.txt"), "the one file");
    files(&few.rep, "photo", 5);
    once_ok(&few, &[]);
    few.assert_mirrored();

    // Most entries shared with SOURCE: a refresh, not a stranger's directory.
    let shared = Env::new();
    files(&shared.src, "photo", 30);
    files(&shared.rep, "photo", 30);
    files(&shared.rep, "old", 25);
    once_ok(&shared, &[]);
    shared.assert_mirrored();
}

/// The record speaks for the very directory it was made for: a REPLICA replaced by another
/// directory at the same path is a stranger again.
#[test]
fn the_record_is_of_that_very_directory() {
    let env = Env::new();
    write(env.src.join("notes.txt"), "the one file");
    once_ok(&env, &[]);
    env.assert_mirrored();
    fs::rename(&env.rep, env.root.join("old-rep")).unwrap();
    files(&env.rep, "photo", 30);
    let before = snapshot(&env.rep);
    let out = once(&env, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(before, snapshot(&env.rep));
    assert!(err.contains("--adopt-replica"), "{err}");
}

/// Two foldersync processes on one pair (a cron `--once` beside the service, a second service
/// instance) would each take the other's temporary files for leftovers of a killed run, and
/// remove them under it. The second is refused, saying which lock it met; a dry run, which
/// writes nothing, may look meanwhile.
#[test]
fn a_second_foldersync_on_the_same_pair_is_refused() {
    let env = Env::new();
    write(env.src.join("a.txt"), "a");
    let mut run = watching(&env, &[]);
    env.converges(QUICK);
    let out = once(&env, &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("another foldersync is mirroring"), "{said}");
    let dry = once(&env, &["--dry-run"]);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    run.stop();
    once_ok(&env, &[]);
}

/// A state record that cannot be understood (a disk error, an edit by hand) is said, and taken
/// for none: the guards act as on a first run, and the next pass writes a good one.
#[test]
fn an_unreadable_record_is_said_and_replaced() {
    let env = Env::new();
    write(env.src.join("a.txt"), "a");
    once_ok(&env, &[]);
    let record = fs::read_dir(env.root.join("state"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .expect("a state record")
        .path();
    fs::write(&record, "{ not json").unwrap();
    let out = once_ok(&env, &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("cannot be read"), "{said}");
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&record).unwrap()).unwrap();
    assert_eq!(json["mirrored"], true);
}

/// REPLICA is a disk's mount point; the disk is not mounted at the next start (it failed to
/// mount at boot, it was unplugged): its empty mount point is not filled, the start is refused
/// (exit 2) and names the way out, until the disk is back or `--adopt-replica` says so.
#[test]
fn an_unmounted_replica_disk_is_refused_at_start_up() {
    if !root_or_skip("mounting a tmpfs at REPLICA") {
        return;
    }
    let env = Env::new();
    write(env.src.join("a.txt"), "a");
    let disk = Mount::tmpfs(&env.rep, "4m");
    once_ok(&env, &[]);
    disk.unmount();
    let out = once(&env, &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("was a mount point") && said.contains("--adopt-replica"),
        "{said}"
    );
    assert_eq!(fs::read_dir(&env.rep).unwrap().count(), 0, "filled: {said}");
    let _back = Mount::tmpfs(&env.rep, "4m");
    once_ok(&env, &[]);
    env.assert_mirrored();
}
