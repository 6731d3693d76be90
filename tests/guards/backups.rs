//! Backups keep privacy and bounds: directories made in the backup directory are no more open
//! than the SOURCE directories they stand for; a backup that cannot keep its ACL is no more
//! open than the ACL allowed; foldersync's temporary files are never kept; old versions are
//! pruned (10 per path by default, `--backup-versions`, `--backup-max-age`).

use super::*;

/// The versions of `name` kept in `dir` (`name.<stamp>[-n]`).
fn versions(dir: &Path, name: &str) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| {
            n.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|stamp| stamp.len() >= 16 && stamp.as_bytes()[8] == b'T')
        })
        .collect()
}

#[test]
fn backup_directories_are_private() {
    let env = Env::new();
    let backup = env.root.join("backup");
    let opt = ["--backup-dir", backup.to_str().unwrap()];
    write(env.src.join("private/letters/to-bank.txt"), "account 1234");
    write(env.src.join("private/diary.txt"), "dear diary");
    chmod(env.src.join("private/letters/to-bank.txt"), 0o644);
    chmod(env.src.join("private"), 0o700);
    once_ok(&env, &opt);
    env.assert_mirrored();
    fs::remove_file(env.src.join("private/letters/to-bank.txt")).unwrap();
    write(env.src.join("private/diary.txt"), "dear diary, again");
    once_ok(&env, &opt);
    env.assert_mirrored();
    for dir in ["private", "private/letters"] {
        let made = backup.join(dir);
        assert!(
            mode(&made) & 0o077 == 0,
            "{dir} in the backup directory is {:o}: the file kept there (0644, from a 0700 \
             directory) is readable by everyone through it",
            mode(&made)
        );
    }
    assert_eq!(
        versions(&backup.join("private/letters"), "to-bank.txt").len(),
        1
    );
    assert_eq!(versions(&backup.join("private"), "diary.txt").len(), 1);
}

#[test]
fn a_backup_that_cannot_keep_its_acl_is_owner_only() {
    if !root_or_skip("mounting a ramfs (a file system without ACLs) for the backups") {
        return;
    }
    let env = Env::new();
    let backup = env.root.join("backup");
    mkdir(&backup);
    let mounted = Command::new("mount")
        .args(["-t", "ramfs", "ramfs"])
        .arg(&backup)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount ramfs");
    let _mount = Mount::existing(&backup);
    let opt = ["--backup-dir", backup.to_str().unwrap()];
    // Readable by all but one group, which the ACL denies (its mode says 0644).
    write(env.src.join("index.txt"), "stays");
    let file = env.src.join("payroll.csv");
    write(&file, "name,salary\n");
    chmod(&file, 0o644);
    let acl = Command::new("setfacl")
        .args(["-m", "g:1002:---"])
        .arg(&file)
        .status()
        .expect("setfacl (package acl)");
    assert!(acl.success());
    once_ok(&env, &opt);
    assert!(
        xattr::get(env.rep.join("payroll.csv"), "system.posix_acl_access")
            .unwrap()
            .is_some()
    );
    fs::remove_file(&file).unwrap();
    once_ok(&env, &opt);
    let kept = versions(&backup, "payroll.csv");
    assert_eq!(kept.len(), 1, "{kept:?}");
    let kept = backup.join(&kept[0]);
    assert_eq!(fs::read(&kept).unwrap(), b"name,salary\n");
    assert!(
        mode(&kept) & 0o077 == 0,
        "the backup lost its ACL but kept mode {:o}: group 1002 reads it as 'other'",
        mode(&kept)
    );
}

#[test]
fn a_leftover_temporary_file_is_removed_not_kept() {
    let env = Env::new();
    let backup = env.root.join("backup");
    let opt = ["--backup-dir", backup.to_str().unwrap()];
    write(env.src.join("a.txt"), "a");
    write(env.src.join("sub/b.txt"), "b");
    once_ok(&env, &opt);
    // What a kill -9 in the middle of copies leaves (named with a token of this mirror's runs).
    let token = env.past_token();
    write(
        env.rep.join(format!(".foldersync-{token}-1.tmp")),
        "half a copy",
    );
    write(
        env.rep.join(format!("sub/.foldersync-{token}-2.tmp")),
        "half",
    );
    once_ok(&env, &opt);
    env.assert_mirrored();
    let mut kept = Vec::new();
    for entry in walkdir::WalkDir::new(&backup).into_iter().flatten() {
        if entry.file_name().to_string_lossy().contains(".foldersync-") {
            kept.push(entry.path().display().to_string());
        }
    }
    assert!(kept.is_empty(), "temporary files kept as data: {kept:?}");
}

#[test]
fn old_versions_are_pruned() {
    let env = Env::new();
    let backup = env.root.join("backup");
    let opt = ["--backup-dir", backup.to_str().unwrap()];
    let file = env.src.join("db/data.bin");
    write(&file, bytes(4 << 20, 0));
    once_ok(&env, &opt);
    // Saved 32 times: each save overwrites REPLICA's copy, whose old version is kept.
    for i in 1..=32u64 {
        write(&file, bytes(4 << 20, i));
        set_mtime(&file, 1_700_000_000 + i);
        once_ok(&env, &opt);
    }
    env.assert_mirrored();
    let dir = backup.join("db");
    let kept = versions(&dir, "data.bin");
    assert_eq!(
        kept.len(),
        10,
        "32 versions of 4 MiB saved, 10 kept by default: {kept:?}"
    );

    let mut with = opt.to_vec();
    with.extend(["--backup-versions", "3"]);
    write(&file, bytes(4 << 20, 100));
    once_ok(&env, &with);
    let kept = versions(&dir, "data.bin");
    assert_eq!(kept.len(), 3, "{kept:?}");

    // Versions older than --backup-max-age go after a pass, wherever they are; nothing else
    // in the backup directory is touched.
    write(dir.join("data.bin.20200101T000000Z"), "old");
    write(backup.join("gone/old.txt.20200102T030405Z-1"), "old");
    write(backup.join("README"), "the admin's note");
    write(env.src.join("other.txt"), "a change, for a pass");
    once_ok(&env, &[&opt[..], &["--backup-max-age", "30d"]].concat());
    assert_eq!(versions(&dir, "data.bin").len(), 3, "{:?}", names(&dir));
    assert_eq!(
        names(&backup.join("gone")),
        Vec::<String>::new(),
        "an old version left"
    );
    assert!(backup.join("README").exists());
}
