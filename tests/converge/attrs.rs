//! Every full pass is the safety net, and ctime may add reasons to look, never remove them:
//! extended attribute changes that the ctime rule hid for good.

use std::fs;
use std::io::Write;

use super::*;

/// Waits until REPLICA's `rel` carries `user.k` = `want`, then until rsync (attributes
/// compared) lists nothing.
fn attr_arrives(env: &Env, rel: &str, want: &[u8], within: Duration) {
    let copy = env.rep.join(rel);
    let deadline = Instant::now() + within;
    while xattr_of(&copy, "user.k").as_deref() != Some(want) {
        assert!(
            Instant::now() < deadline,
            "REPLICA {rel} has user.k = {:?}, not {:?}, after {within:?}\nlog:\n{}",
            xattr_of(&copy, "user.k").map(|v| String::from_utf8_lossy(&v).into_owned()),
            String::from_utf8_lossy(want),
            env.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    rsync_settles(env, "-aHAX", QUICK);
}

/// Issue 17: `setfattr -n user.k -v v2 f; mv f g` while watching. The rename was mirrored as a
/// rename, which moved REPLICA's ctime past SOURCE's, so the attribute change was never looked
/// at again: REPLICA's g kept user.k = v1.
#[test]
fn an_xattr_change_then_a_rename_while_watching() {
    let env = Env::new();
    if !xattrs_work(&env) {
        return;
    }
    let f = env.src.join("f");
    write(&f, bytes(8192, 1));
    xattr::set(&f, "user.k", b"v1").unwrap();
    let mut run = watching(&env, &[]);
    assert_eq!(xattr_of(&env.rep.join("f"), "user.k").unwrap(), b"v1");
    xattr::set(&f, "user.k", b"v2").unwrap();
    fs::rename(&f, env.src.join("g")).unwrap();
    attr_arrives(&env, "g", b"v2", QUICK);
    env.assert_mirrored();
    run.stop();
}

/// Issue 17: an attribute set while the file is being copied. A 256 MiB file of real data (so
/// its copy takes a while) is moved into SOURCE; once the copy is under way (its temporary file
/// shows in REPLICA) `user.k` is set. REPLICA must carry it soon after (10 s allowed).
///
/// Timing: the attribute must be set while the temporary file exists. If the copy ended first
/// (a fast disk), the try does not count and is made again with another file, up to 3 times.
///
/// This one passes on the old code too: a copy reads the attributes after the bytes, so an
/// attribute set during the bytes' copy is taken along. It guards that order. The way the old
/// code really lost an attribute set while a file was being carried over is the append path:
/// see [`an_xattr_set_while_the_file_grows`].
#[test]
fn an_xattr_set_while_the_file_is_copied() {
    let env = Env::new();
    if !xattrs_work(&env) {
        return;
    }
    write(env.src.join("keep"), "k");
    let outside = env.root.join("outside");
    mkdir(&outside);
    let mut run = watching(&env, &[]);
    let block = bytes(1 << 20, 7);
    for attempt in 0..3 {
        let name = format!("big{attempt}.bin");
        let staged = outside.join(&name);
        let mut f = fs::File::create(&staged).unwrap();
        for i in 0..256u32 {
            f.write_all(&i.to_le_bytes()).unwrap();
            f.write_all(&block[4..]).unwrap();
        }
        drop(f);
        let src = env.src.join(&name);
        fs::rename(&staged, &src).unwrap();
        wait_for(QUICK, "the copy to start", || {
            !temp_files(&env.rep).is_empty() || env.rep.join(&name).exists()
        });
        if env.rep.join(&name).exists() {
            eprintln!("attempt {attempt}: the copy ended before it was seen; again");
            continue;
        }
        xattr::set(&src, "user.k", b"set during the copy").unwrap();
        let during = !temp_files(&env.rep).is_empty();
        // Whatever the timing, REPLICA must get the attribute: within a few seconds, but the
        // copy of 256 MiB itself may take some on a loaded machine.
        attr_arrives(&env, &name, b"set during the copy", QUICK);
        if during {
            run.stop();
            return;
        }
        eprintln!("attempt {attempt}: the copy ended as the attribute was set; again");
    }
    panic!("could not set the attribute while a copy was under way in 3 tries");
}

fn future_file(env: &Env) -> bool {
    if !xattrs_work(env) {
        return false;
    }
    let f = env.src.join("future");
    dated_file(&f, 8192, 1, Y2100);
    xattr::set(&f, "user.k", b"v1").unwrap();
    true
}

/// Issue 17: any attribute change on a file whose mtime is in the future (2100), while
/// watching. The ctime rule trusted REPLICA's ctime only when later than its mtime, which a
/// future mtime never is: the change was never compared.
#[test]
fn an_xattr_change_on_a_future_dated_file_while_watching() {
    let env = Env::new();
    if !future_file(&env) {
        return;
    }
    let mut run = watching(&env, &[]);
    assert_eq!(xattr_of(&env.rep.join("future"), "user.k").unwrap(), b"v1");
    xattr::set(env.src.join("future"), "user.k", b"v2").unwrap();
    attr_arrives(&env, "future", b"v2", QUICK);
    run.stop();
}

/// The same change made while foldersync was stopped: a fresh `--once` must carry it.
#[test]
fn an_xattr_change_on_a_future_dated_file_while_stopped() {
    let env = Env::new();
    if !future_file(&env) {
        return;
    }
    env.once_ok();
    xattr::set(env.src.join("future"), "user.k", b"v2").unwrap();
    env.once_ok();
    assert_eq!(
        xattr_of(&env.rep.join("future"), "user.k").as_deref(),
        Some(&b"v2"[..]),
        "log:\n{}",
        env.log_text()
    );
    let said = rsync_differences(&env, "-aHAX");
    assert!(said.trim().is_empty(), "rsync lists:\n{said}");
}

/// Issue 17 (an attribute set while the file is being copied, as it happens): an attribute set
/// on a file that is being written (appended to, as a log is). The mirror carries the new
/// bytes by appending them to REPLICA's copy, and must carry the attribute too. The old code's
/// append path set no attributes, and REPLICA's ctime, moved by the append, then hid the
/// change from every later look and pass.
#[test]
fn an_xattr_set_while_the_file_grows() {
    let env = Env::new();
    if !xattrs_work(&env) {
        return;
    }
    let f = env.src.join("app.log");
    write(&f, bytes(100_000, 1));
    let mut run = watching(&env, &[]);
    let mut log = fs::OpenOptions::new().append(true).open(&f).unwrap();
    for i in 0..20 {
        log.write_all(&bytes(4096, 100 + i)).unwrap();
        if i == 10 {
            xattr::set(&f, "user.k", b"set while written").unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(log);
    attr_arrives(&env, "app.log", b"set while written", QUICK);
    env.assert_mirrored();
    run.stop();
}
