//! Review of issue 18 ("Never destroy, never leak: every guard holds where a person would trip
//! over it"), local parts: cases beyond those tests/guards/ covers where a guard of the issue
//! still fails — data destroyed, data leaked, an error not said. Each test fails on the code it
//! was written against (main at b5328b6) and says why in its comment, with a suggested fix.
//!
//! Run them alone with `cargo test --test integration review18::`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::guards::{cmd, mode, names, once, once_ok, root_or_skip, start, watching};
use crate::util::*;

const QUICK: Duration = Duration::from_secs(10);

/// `n` files named `{prefix}-NN.jpg` in `dir`.
fn files(dir: &Path, prefix: &str, n: usize) {
    for i in 0..n {
        write(
            dir.join(format!("{prefix}-{i:02}.jpg")),
            format!("{prefix} {i}"),
        );
    }
}

/// What a run printed, for messages.
fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `device:inode` of a directory, as the state record keeps REPLICA's identity.
fn identity(path: &Path) -> String {
    let m = fs::metadata(path).unwrap();
    format!("{}:{}", m.dev(), m.ino())
}

/// The first-pass guard trusts the state record when REPLICA's root has the `device:inode` it
/// had at the last pass (`app.rs` `first_pass_guard`, `Mirror::identity`). But that pair names a
/// place, not a file system: the root directory of any file system mounted at REPLICA's mount
/// point has the same inode number (2 on ext4, 1 on tmpfs) and, through the same device node (a
/// USB disk in the same port, `/dev/sdb1`) or the lowest free anonymous device number (tmpfs,
/// FUSE, NFS), the same device number. Another disk mounted where the backup disk was — the
/// user's photo archive — is taken for the directory mirrored into: no survey, no refusal, and
/// the 30 photos on it are removed, exit 0. Fix: identify REPLICA's root by what a new file
/// system cannot repeat: its birth time (`statx` `STATX_BTIME`) and the file system's identity
/// (`statfs` `f_fsid`, or the mount's UUID), besides `device:inode`; when the root is a mount
/// root, treat a mismatch as a stranger.
#[test]
fn another_file_system_at_replicas_mount_point_is_a_stranger() {
    if !root_or_skip("mounting a file system at REPLICA") {
        return;
    }
    let env = Env::new();
    write(env.src.join("notes.txt"), "the one file");
    let first = Mount::tmpfs(&env.rep, "4m");
    once_ok(&env, &[]);
    env.assert_mirrored();
    let mirrored = identity(&env.rep);
    first.unmount();
    drop(first);

    // Another disk in the same place: someone's photos. (A tmpfs gets the lowest free
    // anonymous device number, the one just freed, unless another mount took it meanwhile:
    // then mount again.)
    let mut other = Mount::tmpfs(&env.rep, "4m");
    for _ in 0..20 {
        if identity(&env.rep) == mirrored {
            break;
        }
        other.unmount();
        drop(other);
        other = Mount::tmpfs(&env.rep, "4m");
    }
    files(&env.rep, "photo", 30);
    let now = identity(&env.rep);
    let before = snapshot(&env.rep);
    let out = once(&env, &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a file system never mirrored into (REPLICA's root was {mirrored}, is {now}) lost \
         what SOURCE lacks to a first pass that was not refused\nstderr:\n{}\nREPLICA now:\n{}",
        said(&out),
        names(&env.rep).join(" ")
    );
    assert_eq!(before, snapshot(&env.rep), "REPLICA changed");
}

/// A file system mounted inside SOURCE while the mirror watches is learnt in the batch that
/// mirrors it (`Run::unmounted`, src/mirror/mounts.rs, puts it in `known`), but the state record
/// is written only after a full pass (`Daemon::remember`, called from `full_pass` alone), and
/// passes come every 10 minutes by default. Stop the mirror before the next one (a reboot, a
/// `systemctl restart`), start it with the disk not mounted, and the record knows nothing of
/// it: `SOURCE/disk` is an empty directory, and the first pass removes REPLICA's 20 copies, exit
/// 0 — what issue 18 item 4 says must be an error for that subtree. Fix: write the record when
/// the set of known mount points changes (in `apply_pending` as in `full_pass`), and when the
/// mirror stops.
#[test]
fn a_disk_mounted_while_watching_is_remembered_across_a_restart() {
    if !root_or_skip("mounting a tmpfs inside SOURCE") {
        return;
    }
    let env = Env::new();
    write(env.src.join("top.txt"), "top");
    let mut run = watching(&env, &["-i", "1h"]);
    let disk = Mount::tmpfs(&env.src.join("disk"), "8m");
    files(&env.src.join("disk"), "scan", 20);
    env.converges(QUICK);
    run.stop();

    disk.unmount();
    let before = snapshot(&env.rep.join("disk"));
    let out = once(&env, &[]);
    assert_eq!(
        before,
        snapshot(&env.rep.join("disk")),
        "REPLICA's copy of the disk mounted while watching was emptied after a restart\n\
         exit {:?}\nlog:\n{}",
        out.status.code(),
        env.log_text()
    );
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
}

/// SOURCE itself a mount point (`/mnt/disk`): nothing remembers that it was. The state record
/// keeps the mount points *inside* SOURCE (`Record::source_mounts`, relative paths; the root's
/// own, "", is never one: `Run::unmounted` skips it), and `Root::now` compares the root only
/// with itself while running. Start with the disk not mounted and the directory beneath holds
/// whatever was left there — here the note an admin leaves in a mount point, `NOT-MOUNTED` —
/// so the empty-SOURCE guard does not fire, the record says "mirrored before", and the pass
/// removes REPLICA's 30 files, exit 0. Fix: record whether SOURCE's root was a mount root (and
/// its file system's identity); a root that was one and is not now, or is another file system,
/// is refused at start-up as it is while running ("was it unmounted?").
#[test]
fn a_source_that_was_a_mount_point_and_is_not_now_is_refused() {
    if !root_or_skip("mounting a tmpfs at SOURCE") {
        return;
    }
    let env = Env::new();
    let disk = Mount::tmpfs(&env.src, "8m");
    files(&env.src, "photo", 30);
    once_ok(&env, &[]);
    env.assert_mirrored();

    disk.unmount();
    write(env.src.join("NOT-MOUNTED"), "the disk is not mounted\n");
    let before = snapshot(&env.rep);
    let out = once(&env, &[]);
    assert_eq!(
        before,
        snapshot(&env.rep),
        "REPLICA followed the directory beneath SOURCE's mount point\nexit {:?}\nlog:\n{}",
        out.status.code(),
        env.log_text()
    );
    assert_ne!(out.status.code(), Some(0), "{}", said(&out));
}

/// Runs setfacl with `args` on `path`.
fn setfacl(args: &[&str], path: &Path) {
    let ok = Command::new("setfacl")
        .args(args)
        .arg(path)
        .status()
        .expect("setfacl (package acl)");
    assert!(ok.success(), "setfacl {args:?}");
}

/// README: "A file with an ACL is never readable beyond it in REPLICA". On a REPLICA whose file
/// system keeps no ACLs (ramfs, FAT, some NFS and FUSE mounts), the probe turns extended
/// attributes off (`Mirror::probe`), and a copy is then given SOURCE's mode bits alone
/// (`finish_file`, src/mirror/copy/mod.rs; `Node::drop` for a directory). With an ACL the
/// group bits of the mode are its mask: a 0644 payroll file that denies group 1002
/// (`g:1002:---`) becomes a plain 0644 copy that group 1002 reads as "other", and so does a
/// 0755 directory that denies it. Backups got this right in issue 18 (`tree::private_if`: owner
/// only when the ACL is lost); REPLICA did not. Only a warning says the attributes are not
/// mirrored. Fix: read SOURCE's ACL even when REPLICA keeps none, and where it cannot be kept
/// give the copy `perm & 0o7700` (as `private_if` does), for files and directories.
#[test]
fn a_replica_without_acls_never_opens_an_acl_up() {
    if !root_or_skip("mounting a ramfs (a file system without ACLs) as REPLICA") {
        return;
    }
    let env = Env::new();
    mkdir(&env.rep);
    let mounted = Command::new("mount")
        .args(["-t", "ramfs", "ramfs"])
        .arg(&env.rep)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount ramfs");
    let _mount = Mount::existing(&env.rep);
    let file = env.src.join("payroll.csv");
    write(&file, "name,salary\n");
    chmod(&file, 0o644);
    setfacl(&["-m", "g:1002:---"], &file);
    let dir = env.src.join("reviews");
    write(dir.join("2025.txt"), "confidential");
    chmod(&dir, 0o755);
    setfacl(&["-m", "g:1002:---"], &dir);
    let out = once(&env, &[]);
    let mut leaks = Vec::new();
    for copy in [env.rep.join("payroll.csv"), env.rep.join("reviews")] {
        let Ok(m) = fs::symlink_metadata(&copy) else {
            continue;
        };
        let acl = xattr::get(&copy, "system.posix_acl_access").ok().flatten();
        if acl.is_none() && m.mode() & 0o077 != 0 {
            leaks.push(format!(
                "{} is {:o} with no ACL: group 1002 reads it",
                copy.display(),
                m.mode() & 0o7777
            ));
        }
    }
    assert!(
        leaks.is_empty(),
        "{leaks:#?}\nexit {:?}\nlog:\n{}",
        out.status.code(),
        env.log_text()
    );
}

/// Issue 18 item 7: "backup directories are no more open than the SOURCE directories they
/// stand for". Those made below `--backup-dir` are 0700 now, but the backup directory itself is
/// made at start-up by `app.rs` `make_dirs`, 0755 — and it stands for SOURCE's root. A file at
/// the top of a private (0700) SOURCE, 0644 as files are, removed or overwritten, is kept as
/// `DIR/secret.txt.<stamp>`, 0644, in a 0755 directory: anyone reads it (the test reads it as
/// nobody). Fix: make the backup directory (and the parents start-up makes for it) 0700, or no
/// more open than SOURCE's root.
#[test]
fn the_backup_directory_itself_is_private() {
    let env = Env::new();
    let backup = env.root.join("backups/mirror");
    let opt = ["--backup-dir", backup.to_str().unwrap()];
    write(env.src.join("secret.txt"), "the safe's code is 1234");
    write(env.src.join("other.txt"), "stays");
    chmod(env.src.join("secret.txt"), 0o644);
    chmod(&env.src, 0o700);
    once_ok(&env, &opt);
    fs::remove_file(env.src.join("secret.txt")).unwrap();
    once_ok(&env, &opt);
    let kept: Vec<String> = names(&backup)
        .into_iter()
        .filter(|n| n.starts_with("secret.txt."))
        .collect();
    assert_eq!(kept.len(), 1, "{:?}", names(&backup));
    let kept = backup.join(&kept[0]);
    // Whoever may pass through the test's directory (a home directory, /var/backups).
    chmod(&env.root, 0o755);
    let read = is_root().then(|| {
        Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "--",
            ])
            .arg("cat")
            .arg(&kept)
            .output()
            .unwrap()
    });
    assert!(
        mode(&backup) & 0o077 == 0,
        "the backup directory is {:o} while SOURCE's root is 0700: {} (0644) is readable by \
         everyone through it{}",
        mode(&backup),
        kept.display(),
        read.map(|o| format!("; nobody read: {:?}", String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_default()
    );
}

/// `--backup-max-age` prunes "versions", which `retention::version_of` knows by name alone:
/// `<anything>.<YYYYMMDDTHHMMSSZ>[-n]`. But the backup directory also holds the directories made
/// for REPLICA's paths (`Backup::place`, `tree::make_dirs`), named as REPLICA's directories are,
/// and a directory named like a timestamped snapshot (`db.20200101T000000Z`, AWS's date format,
/// many backup tools' too) is taken for a version of `db` from 2020 — and removed whole, with the
/// version of `db.20200101T000000Z/data.txt` kept a second before, by the very pass that kept
/// it. The overwritten file is gone from REPLICA and from the backup. (`prune_versions` has the
/// same blind spot beside a file `db`: with `--backup-versions 1`, a new version of `db` prunes
/// the directory.) Fix: tell versions from path directories by more than their names — a version
/// is what `place` put there: e.g. never descend-or-prune a directory that holds versions, or
/// give path directories and versions distinct shapes (escape a REPLICA name that looks like a
/// version).
#[test]
fn pruning_never_removes_a_directory_of_fresh_versions() {
    let env = Env::new();
    let backup = env.root.join("backup");
    let opt = [
        "--backup-dir",
        backup.to_str().unwrap(),
        "--backup-max-age",
        "30d",
    ];
    let snapshot_dir = "snapshots/db.20200101T000000Z";
    write(env.src.join(snapshot_dir).join("data.txt"), "first");
    once_ok(&env, &opt);
    write(
        env.src.join(snapshot_dir).join("data.txt"),
        "second, longer",
    );
    once_ok(&env, &opt);
    env.assert_mirrored();
    // A directory on the way with a version's shape gets `.dir` added in the backup directory.
    let kept = backup.join(format!("{snapshot_dir}.dir"));
    let versions: Vec<String> = names(&kept)
        .into_iter()
        .filter(|n| n.starts_with("data.txt."))
        .collect();
    assert_eq!(
        versions.len(),
        1,
        "the version of {snapshot_dir}/data.txt kept by this pass is gone: {:?} holds {:?}\n\
         log:\n{}",
        backup.join("snapshots"),
        names(&backup.join("snapshots")),
        env.log_text()
    );
    assert_eq!(fs::read(kept.join(&versions[0])).unwrap(), b"first");
}

/// Mirroring one's home is the first thing a person does as a normal user: SOURCE is `$HOME`,
/// and the default state directory, `$XDG_STATE_HOME/foldersync` or
/// `~/.local/state/foldersync`, lies inside it. `Config::from_args` then drops it without a word
/// (`default_dir().filter(|d| !within(d, &source) ...)`): no record is ever kept, so every
/// guard that lives in it is off for good, silently — here the memory of a disk mounted inside
/// SOURCE (`~/disk`): unmounted before the next run, it is an empty directory, and REPLICA's 20
/// copies are removed, exit 0, with nothing in the log about the state directory. Fix: keep the
/// record anyway — the state directory inside SOURCE is one of foldersync's own files, never
/// mirrored and never watched, as the log file may be — or fall back to a directory outside
/// both roots; at the least say at start-up, as a warning, that no record can be kept.
#[test]
fn mirroring_a_home_directory_keeps_its_record() {
    if !root_or_skip("mounting a tmpfs inside SOURCE for a mirror run as nobody") {
        return;
    }
    let env = Env::new();
    write(env.src.join("notes.txt"), "notes");
    let disk = Mount::tmpfs(&env.src.join("disk"), "8m");
    files(&env.src.join("disk"), "scan", 20);
    let run = || {
        let mut c = unprivileged(&env);
        c.env("HOME", &env.src)
            .env_remove("XDG_STATE_HOME")
            .arg("--once")
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", said(&first));
    // The state directory is foldersync's own: everything else is mirrored.
    let source: String = tree(&env.src)
        .lines()
        .filter(|l| !l.contains(".local/state/foldersync"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(source, tree(&env.rep));

    disk.unmount();
    let before = snapshot(&env.rep.join("disk"));
    let out = run();
    assert_eq!(
        before,
        snapshot(&env.rep.join("disk")),
        "REPLICA's copy of the unmounted disk was emptied: the record of it was never kept\n\
         exit {:?}\nlog:\n{}",
        out.status.code(),
        env.log_text()
    );
}

/// Issue 18 item 4, "empty means empty of data", is asked of SOURCE as a whole only
/// (`daemon::source::try_empty`). A disk mounted inside SOURCE (`SOURCE/archive`) that is
/// replaced by a freshly formatted one — nothing on it but `lost+found` — is a mount point
/// still (`Run::unmounted` sees `mount_root` and is content), so the pass mirrors it: REPLICA's
/// 20 copies of the archive are removed, exit 0. That is the issue's own case ("a freshly
/// formatted disk mounted at SOURCE, then a restart: 20 removed") one directory down. Fix: ask
/// the empty-of-data question of every file system mounted inside SOURCE too: one without
/// data whose copy in REPLICA holds some is an error for that subtree (copy kept, status
/// unhealthy), unless `--allow-empty-source`.
#[test]
fn a_fresh_file_system_mounted_inside_source_does_not_empty_its_copy() {
    if !root_or_skip("mounting a tmpfs inside SOURCE") {
        return;
    }
    let env = Env::new();
    write(env.src.join("top.txt"), "top");
    let at = env.src.join("archive");
    let old = Mount::tmpfs(&at, "8m");
    files(&at, "scan", 20);
    once_ok(&env, &[]);
    env.assert_mirrored();
    old.unmount();
    drop(old);

    // A new disk, just formatted: an empty lost+found.
    let _new = Mount::tmpfs(&at, "8m");
    mkdir(at.join("lost+found"));
    chmod(at.join("lost+found"), 0o700);
    let before = snapshot(&env.rep.join("archive"));
    let out = once(&env, &[]);
    let after = snapshot(&env.rep.join("archive"));
    assert!(
        after.lines().count() >= before.lines().count(),
        "REPLICA's copy of the archive was emptied by a file system holding no data\n\
         exit {:?}\nREPLICA now:\n{after}\nlog:\n{}",
        out.status.code(),
        env.log_text()
    );
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
}

/// New directories in REPLICA are made 0700 and opened up only once their contents are done
/// (`Run::make_dir`), so a private SOURCE directory's files are never readable through a copy
/// being made. Not REPLICA's root: start-up makes it 0755 (`app.rs` `make_dirs`, as
/// `Mirror::recreate` does when it was removed), and it gets SOURCE's root mode only when the
/// root's `Node` is dropped, once the files at its top are copied. A private (0700) SOURCE's
/// files are readable by everyone in REPLICA until then — minutes for a directory of many or
/// large files; here a second or so, while ten logs a writer holds open wait their turn — and
/// for good when that pass is interrupted (`Node::drop` sets nothing once the stop flag is
/// set): SIGTERM then leaves a 0755 REPLICA holding a 0644 secret. Fix: make REPLICA's root (and
/// a root made again) 0700, as other new directories are.
#[test]
fn a_replica_made_for_a_private_source_is_private_from_the_start() {
    let env = Env::new();
    write(env.src.join("secret.txt"), "the safe's code is 1234");
    chmod(env.src.join("secret.txt"), 0o644);
    // Files a writer has open: a pass waits a little for each before it copies it anyway.
    let held: Vec<fs::File> = (0..10)
        .map(|i| {
            let path = env.src.join(format!("zz-log-{i}.txt"));
            write(&path, "open");
            fs::OpenOptions::new().append(true).open(path).unwrap()
        })
        .collect();
    chmod(&env.src, 0o700);
    let mut c = cmd(&env);
    c.arg("--once");
    let mut run = start(&env, c);
    wait_for(QUICK, "the secret copied", || {
        env.rep.join("secret.txt").exists()
    });
    let during = mode(&env.rep);
    run.signal(libc::SIGTERM);
    let status = run.wait(QUICK).expect("exit after SIGTERM");
    drop(held);
    let after = mode(&env.rep);
    assert!(
        during & 0o077 == 0 && after & 0o077 == 0,
        "SOURCE's root is 0700, REPLICA's was {during:o} during the first pass and is {after:o} \
         after it was interrupted ({status:?}): its 0644 secret.txt is readable by everyone\n\
         log:\n{}",
        env.log_text()
    );
}

/// The state record is JSON written through serde, and `Record::source_mounts` is a set of
/// `PathBuf`s: serde refuses to serialize a path that is not valid UTF-8 ("path contains invalid
/// UTF-8 characters"). A disk mounted inside SOURCE at such a name — a Latin-1 `Fotos-\xe4`, a
/// camera's card — makes every `State::save` in `Daemon::remember` fail: the record of the
/// pass, and of the mount, is never written (one warning, then silence; the test's name is
/// `Fotos-\xff\xfe`). The next run, with the card not mounted, knows nothing of it: REPLICA's 20
/// copies are removed, exit 0. Fix: keep paths in the record as bytes (e.g. escaped, or base64
/// of `as_bytes()`), never as `PathBuf` through serde's UTF-8 form; and a record that cannot be
/// written should be an error the status shows, not a warning said once.
#[test]
fn a_mount_point_named_in_latin_1_is_remembered() {
    if !root_or_skip("mounting a tmpfs inside SOURCE") {
        return;
    }
    let env = Env::new();
    write(env.src.join("top.txt"), "top");
    let at = env.src.join(non_utf8("Fotos-"));
    let card = Mount::tmpfs(&at, "8m");
    files(&at, "img", 20);
    once_ok(&env, &[]);
    env.assert_mirrored();

    card.unmount();
    let copy = env.rep.join(non_utf8("Fotos-"));
    let before = snapshot(&copy);
    let out = once(&env, &[]);
    assert_eq!(
        before,
        snapshot(&copy),
        "REPLICA's copy of the card was emptied once it was unmounted\nexit {:?}\nlog:\n{}",
        out.status.code(),
        env.log_text()
    );
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
}

/// The mount points inside SOURCE are known by their paths (`SourceMounts::known`, relative),
/// and nothing moves them when a directory above them is renamed. A card unplugged from
/// `SOURCE/media/card` is an error there and its copy is kept — until someone renames `media`
/// to `volumes` (an ordinary tidy-up while the card is out). The watcher mirrors the rename
/// (REPLICA's `media`, with the card's copy, becomes `volumes`), then looks at
/// `volumes/card`: an empty directory that is no known mount point, so REPLICA's 20 copies are
/// removed. A pass does the same (the orphan `media` is taken by its names for `volumes`). Fix:
/// carry the known and gone mount points along every rename the mirror makes (`rename::rename`,
/// `take_dir`), or key them by something a rename keeps (the mount point directory's inode).
#[test]
fn a_gone_mount_point_keeps_its_copy_when_its_parent_is_renamed() {
    if !root_or_skip("mounting a tmpfs inside SOURCE") {
        return;
    }
    let env = Env::new();
    write(env.src.join("top.txt"), "top");
    write(env.src.join("media/notes.txt"), "where the card goes");
    let card = Mount::tmpfs(&env.src.join("media/card"), "8m");
    files(&env.src.join("media/card"), "img", 20);
    let mut run = watching(&env, &["-i", "1h"]);
    env.converges(QUICK);

    card.unmount();
    env.wait_log("the file system mounted there is gone", 1, QUICK);
    fs::rename(env.src.join("media"), env.src.join("volumes")).unwrap();
    wait_for(QUICK, "the rename mirrored", || {
        env.rep.join("volumes").exists()
    });
    // What follows the rename (the look at what was moved, held a moment) comes within 2 s.
    let copy = || -> Vec<String> {
        ["media/card", "volumes/card"]
            .iter()
            .flat_map(|d| names(&env.rep.join(d)))
            .collect()
    };
    holds(Duration::from_secs(2), || copy().len() == 20).unwrap_or_else(|| {
        panic!(
            "REPLICA's copy of the unplugged card: {:?}\nlog:\n{}",
            copy(),
            env.log_text()
        )
    });
    run.stop();
}

/// Polls `cond` for `during`; `None` as soon as it fails to hold (a change that must not come,
/// seen when it comes).
fn holds(during: Duration, mut cond: impl FnMut() -> bool) -> Option<()> {
    let deadline = std::time::Instant::now() + during;
    while std::time::Instant::now() < deadline {
        if !cond() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond().then_some(())
}

/// REPLICA's path is resolved at each start (`config::check_replica`: `fs::canonicalize`), so a
/// symlink put at REPLICA's path between runs is followed, and the mirror writes wherever it
/// points. The record does not stop it: it is looked up by the resolved path, finds none for
/// the new place, and the first-pass guard lets a pass remove up to 20 entries of a directory
/// never mirrored into. Whoever may write REPLICA's parent (a user's own directory, where root
/// mirrors into `~alice/backup`) points `backup` at a small directory of someone else's — here
/// five files — and the next start (a reboot) removes them and writes SOURCE's files there:
/// writes outside REPLICA, data destroyed, exit 0. While running, the same swap is refused
/// (`Root::now`: "a symlink took its place"). Fix: keep in the record the path as it was given
/// and the directory it led to; at start-up, a given path that now leads elsewhere (through a
/// symlink that was not there, or to another directory) is refused with exit 2, as a replaced
/// root is while running — or never follow a symlink at REPLICA's last component.
#[test]
fn a_replica_made_a_symlink_between_runs_is_not_followed() {
    let env = Env::new();
    write(env.src.join("notes.txt"), "the one file");
    once_ok(&env, &[]);
    env.assert_mirrored();

    let theirs = env.root.join("someone-else");
    files(&theirs, "letter", 5);
    fs::rename(&env.rep, env.root.join("rep.old")).unwrap();
    symlink(&theirs, &env.rep);
    let before = snapshot(&theirs);
    let out = once(&env, &[]);
    assert_eq!(
        before,
        snapshot(&theirs),
        "the directory a symlink at REPLICA's path leads to was written\nexit {:?}\nlog:\n{}",
        out.status.code(),
        env.log_text()
    );
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
}
