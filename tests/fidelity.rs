//! Fidelity: the replica keeps what `cp -a` and `rsync -aHAXS` keep (hard links, holes,
//! extended attributes and ACLs, every mode bit, numeric ownership), through passes and through
//! the watcher; `--modify-window` for coarse timestamps; and rsync itself finds no difference.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::*;

const QUICK: Duration = Duration::from_secs(10);

fn ino(path: impl AsRef<Path>) -> u64 {
    fs::symlink_metadata(path).unwrap().ino()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Sets an extended attribute, or says the file system does not take them.
fn setxattr(path: &Path, name: &str, value: &[u8]) -> bool {
    xattr::set(path, name, value).is_ok()
}

fn sparse(path: &Path, len: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = fs::File::create(path).unwrap();
    f.write_all(b"head").unwrap();
    f.seek(SeekFrom::Start(len / 2)).unwrap();
    f.write_all(b"middle").unwrap();
    f.set_len(len).unwrap();
}

fn allocated(path: impl AsRef<Path>) -> u64 {
    fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn hard_links_are_kept_in_passes() {
    let env = Env::new();
    write(env.src.join("a/one"), "shared");
    fs::create_dir(env.src.join("b")).unwrap();
    fs::hard_link(env.src.join("a/one"), env.src.join("b/two")).unwrap();
    fs::hard_link(env.src.join("a/one"), env.src.join("three")).unwrap();
    write(env.src.join("solo"), "alone");
    env.once_ok();
    let group = [
        ino(env.rep.join("a/one")),
        ino(env.rep.join("b/two")),
        ino(env.rep.join("three")),
    ];
    assert!(
        group.iter().all(|i| *i == group[0]),
        "not one inode: {group:?}"
    );
    assert_eq!(fs::metadata(env.rep.join("three")).unwrap().nlink(), 3);
    // A change through one name, mirrored by a pass, shows through every name.
    fs::write(env.src.join("b/two"), "changed content").unwrap();
    env.once_ok();
    assert_eq!(fs::read(env.rep.join("three")).unwrap(), b"changed content");
    assert_eq!(ino(env.rep.join("a/one")), ino(env.rep.join("three")));
    // Separate copies made by other means become links.
    fs::remove_file(env.rep.join("three")).unwrap();
    fs::copy(env.rep.join("a/one"), env.rep.join("three")).unwrap();
    let mtime = fs::metadata(env.src.join("three")).unwrap().mtime();
    set_mtime(env.rep.join("three"), mtime as u64);
    env.once_ok();
    assert_eq!(ino(env.rep.join("a/one")), ino(env.rep.join("three")));
    env.assert_mirrored();
}

#[test]
fn hard_links_are_kept_through_the_watcher() {
    let env = Env::new();
    write(env.src.join("h1"), "first");
    write(env.src.join("d/keep"), "k");
    let mut run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 1, QUICK);
    fs::hard_link(env.src.join("h1"), env.src.join("h2")).unwrap();
    fs::hard_link(env.src.join("h1"), env.src.join("d/h3")).unwrap();
    wait_for(QUICK, "the new names", || {
        env.rep.join("h2").exists() && env.rep.join("d/h3").exists()
    });
    use std::io::Write;
    fs::OpenOptions::new()
        .append(true)
        .open(env.src.join("h1"))
        .unwrap()
        .write_all(b" and more")
        .unwrap();
    wait_for(QUICK, "the change through every name", || {
        ["h1", "h2", "d/h3"]
            .iter()
            .all(|n| fs::read(env.rep.join(n)).unwrap_or_default() == b"first and more")
    });
    wait_for(QUICK, "one inode in REPLICA", || {
        ino(env.rep.join("h1")) == ino(env.rep.join("h2"))
            && ino(env.rep.join("h2")) == ino(env.rep.join("d/h3"))
    });
    run.stop();
}

#[test]
fn no_hard_links_copies_each_name() {
    let env = Env::new();
    write(env.src.join("one"), "shared");
    fs::hard_link(env.src.join("one"), env.src.join("two")).unwrap();
    env.once_ok_with(&["--no-hard-links"]);
    assert_ne!(ino(env.rep.join("one")), ino(env.rep.join("two")));
    env.assert_mirrored();
}

#[test]
fn sparse_files_stay_sparse_in_passes_and_through_the_watcher() {
    let env = Env::new();
    sparse(&env.src.join("disk.img"), 256 << 20);
    env.once_ok();
    assert_eq!(
        fs::metadata(env.rep.join("disk.img")).unwrap().len(),
        256 << 20
    );
    assert!(allocated(env.rep.join("disk.img")) <= allocated(env.src.join("disk.img")) + (1 << 20));
    env.assert_mirrored();
    let mut run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 2, QUICK);
    sparse(&env.src.join("vm.qcow"), 512 << 20);
    env.converges(QUICK);
    run.stop();
    assert!(allocated(env.rep.join("vm.qcow")) <= allocated(env.src.join("vm.qcow")) + (1 << 20));
}

#[test]
fn extended_attributes_and_acls_are_kept() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    write(env.src.join("d/g"), "y");
    if !setxattr(&env.src.join("f"), "user.color", b"blue") {
        eprintln!("skipped: the test file system takes no extended attributes");
        return;
    }
    setxattr(&env.src.join("d"), "user.dir", b"1");
    let acl = have("setfacl");
    if acl {
        let ok = Command::new("setfacl")
            .args(["-m", "u:65534:r"])
            .arg(env.src.join("f"))
            .status()
            .unwrap();
        assert!(ok.success());
        Command::new("setfacl")
            .args(["-d", "-m", "u:65534:rwx"])
            .arg(env.src.join("d"))
            .status()
            .unwrap();
    }
    if is_root() {
        assert!(setxattr(
            &env.src.join("d/g"),
            "trusted.secret",
            b"root only"
        ));
    }
    env.once_ok();
    let attrs = |p: &Path| {
        let mut names: Vec<_> = xattr::list(p).unwrap().collect();
        names.sort();
        names
            .into_iter()
            .map(|n| (n.clone(), xattr::get(p, &n).unwrap()))
            .collect::<Vec<_>>()
    };
    for rel in ["f", "d", "d/g"] {
        assert_eq!(
            attrs(&env.src.join(rel)),
            attrs(&env.rep.join(rel)),
            "{rel}"
        );
    }
    if acl {
        let get = |p: &Path| {
            Command::new("getfacl")
                .args(["-c", "-p"])
                .arg(p)
                .output()
                .unwrap()
                .stdout
        };
        assert_eq!(get(&env.src.join("f")), get(&env.rep.join("f")));
        assert_eq!(get(&env.src.join("d")), get(&env.rep.join("d")));
    }

    // Through the watcher: an attribute set, changed, removed.
    let mut run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 2, QUICK);
    setxattr(&env.src.join("d/g"), "user.new", b"v");
    xattr::set(env.src.join("f"), "user.color", b"green").unwrap();
    wait_for(QUICK, "attributes mirrored", || {
        attrs(&env.src.join("d/g")) == attrs(&env.rep.join("d/g"))
            && attrs(&env.src.join("f")) == attrs(&env.rep.join("f"))
    });
    xattr::remove(env.src.join("f"), "user.color").unwrap();
    wait_for(QUICK, "an attribute removed", || {
        attrs(&env.rep.join("f"))
            .iter()
            .all(|(n, _)| n != "user.color")
    });
    run.stop();

    // --no-xattrs leaves them out.
    let other = env.root.join("plain");
    let out = Command::new(BIN)
        .arg(&env.src)
        .arg(&other)
        .args(["-l"])
        .arg(&env.log)
        .args(["--once", "--no-xattrs"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(xattr::get(other.join("d/g"), "user.new").unwrap().is_none());
}

#[test]
fn every_mode_bit_and_numeric_ownership_are_kept() {
    let env = Env::new();
    write(env.src.join("suid"), "s");
    write(env.src.join("sgid"), "g");
    mkdir(env.src.join("sticky"));
    chmod(env.src.join("suid"), 0o4755);
    chmod(env.src.join("sgid"), 0o2750);
    chmod(env.src.join("sticky"), 0o1777);
    if is_root() {
        std::os::unix::fs::lchown(env.src.join("suid"), Some(1234), Some(5678)).unwrap();
        chmod(env.src.join("suid"), 0o4755);
    }
    env.once_ok();
    let mode = |p: &str| fs::metadata(env.rep.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        (mode("suid"), mode("sgid"), mode("sticky")),
        (0o4755, 0o2750, 0o1777)
    );
    if is_root() {
        let m = fs::metadata(env.rep.join("suid")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1234, 5678));
    }
    // Through the watcher.
    let mut run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 2, QUICK);
    chmod(env.src.join("sgid"), 0o6711);
    wait_for(QUICK, "the mode mirrored", || mode("sgid") == 0o6711);
    run.stop();
}

/// On FAT, times have a 2-second resolution: without a window every pass would copy every file.
#[test]
fn modify_window_on_a_vfat_replica() {
    if !is_root() || !have("mkfs.vfat") {
        eprintln!("skipped: needs root and mkfs.vfat (dosfstools)");
        return;
    }
    let kernel_fat = fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("vfat"));
    if !kernel_fat && !have("fusefat") {
        eprintln!("skipped: no vfat in the kernel and no fusefat");
        return;
    }
    let env = Env::new();
    for i in 0..20 {
        write(env.src.join(format!("d/f{i}")), format!("file {i}"));
        chmod(env.src.join(format!("d/f{i}")), 0o755);
    }
    let image = env.root.join("fat.img");
    fs::File::create(&image).unwrap().set_len(32 << 20).unwrap();
    assert!(Command::new("mkfs.vfat")
        .arg(&image)
        .output()
        .unwrap()
        .status
        .success());
    let mount = env.root.join("fat");
    mkdir(&mount);
    // The kernel's vfat on a loop device, or the same format through FUSE where the kernel has
    // no vfat (fusefat keeps FAT's 2-second times and no permission bits, as vfat does).
    let status = if kernel_fat {
        Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount)
            .status()
    } else {
        Command::new("fusefat")
            .args(["-o", "rw+"])
            .arg(&image)
            .arg(&mount)
            .stdout(std::process::Stdio::null())
            .status()
    };
    assert!(status.unwrap().success());
    let _mount = Mount::existing(&mount);
    // A folder on the stick, as people mirror to (a FAT root directory has no times at all).
    let replica = mount.join("backup");
    let pass = |window: &str| {
        let out = Command::new(BIN)
            .arg(&env.src)
            .arg(&replica)
            .arg("-l")
            .arg(&env.log)
            .args(["--once", "--modify-window", window])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    pass("2");
    assert_eq!(fs::read(replica.join("d/f7")).unwrap(), b"file 7");
    let err = pass("2");
    assert!(err.contains(" 0 copied, 0 updated"), "{err}");
    assert!(err.contains(" 0 errors"), "{err}");
    // Without the window, FAT's rounded times make every file look changed.
    let err = pass("0");
    assert!(!err.contains(" 0 updated"), "{err}");
}

#[test]
fn fsync_mirrors_as_usual() {
    let env = Env::new();
    write(env.src.join("a/b"), "durable");
    env.once_ok_with(&["--fsync"]);
    env.assert_mirrored();
    let mut run = env.spawn(&["-i", "1h", "--fsync"]);
    env.wait_log("pass finished", 2, QUICK);
    write(env.src.join("a/c"), "also durable");
    env.converges(QUICK);
    run.stop();
}

/// The independent check: rsync, asked for every kind of difference it knows, finds none.
#[test]
fn rsync_finds_no_difference() {
    if !have("rsync") {
        eprintln!("skipped: rsync is not installed");
        return;
    }
    let env = Env::new();
    write(env.src.join("x/one"), "group 1");
    mkdir(env.src.join("y/deep"));
    fs::hard_link(env.src.join("x/one"), env.src.join("y/deep/two")).unwrap();
    fs::hard_link(env.src.join("x/one"), env.src.join("three")).unwrap();
    write(env.src.join("p"), "group 2");
    fs::hard_link(env.src.join("p"), env.src.join("x/q")).unwrap();
    sparse(&env.src.join("sparse.img"), 64 << 20);
    write(env.src.join("attrs"), "a");
    let xattrs = setxattr(&env.src.join("attrs"), "user.k", b"v");
    if xattrs && have("setfacl") {
        Command::new("setfacl")
            .args(["-m", "u:65534:rw"])
            .arg(env.src.join("attrs"))
            .status()
            .unwrap();
        Command::new("setfacl")
            .args(["-d", "-m", "g:65534:rx"])
            .arg(env.src.join("x"))
            .status()
            .unwrap();
    }
    write(env.src.join("suid"), "s");
    chmod(env.src.join("suid"), 0o4755);
    mkdir(env.src.join("sticky"));
    chmod(env.src.join("sticky"), 0o1777);
    mkdir(env.src.join("empty/dir"));
    symlink("x/one", env.src.join("link"));
    symlink("nowhere", env.src.join("dangling"));
    write(env.src.join("old"), "old");
    set_mtime(env.src.join("old"), 100_000_000);
    write(env.src.join("future"), "future");
    set_mtime(env.src.join("future"), 4_000_000_000);
    set_mtime(env.src.join("empty"), 200_000_000);
    let rsync = |env: &Env| {
        let flags = if xattrs { "-aHAXS" } else { "-aHS" };
        let out = Command::new("rsync")
            .args([flags, "--delete", "--dry-run", "--itemize-changes"])
            .arg(format!("{}/", env.src.display()))
            .arg(format!("{}/", env.rep.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    env.once_ok();
    let said = rsync(&env);
    assert!(
        said.trim().is_empty(),
        "rsync lists differences after a pass:\n{said}"
    );

    // And after the watcher carried changes of every kind.
    let mut run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 2, QUICK);
    fs::hard_link(env.src.join("p"), env.src.join("y/r")).unwrap();
    sparse(&env.src.join("y/sparse2"), 32 << 20);
    if xattrs {
        setxattr(&env.src.join("p"), "user.later", b"1");
    }
    chmod(env.src.join("x/q"), 0o2755);
    mkdir(env.src.join("new/empty"));
    let deadline = std::time::Instant::now() + QUICK;
    loop {
        let said = rsync(&env);
        if said.trim().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rsync still lists differences:\n{said}\nlog:\n{}",
            env.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    run.stop();
}
