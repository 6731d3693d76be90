//! The watcher: changes reach REPLICA between full passes (the interval is an hour in these
//! tests, so only the watcher can have carried them).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

const QUICK: Duration = Duration::from_secs(10);

fn watching(env: &Env) -> Running {
    let run = env.spawn(&["-i", "1h"]);
    env.wait_log("pass finished", 1, Duration::from_secs(20));
    run
}

#[test]
fn create_modify_and_delete_reach_the_replica() {
    let env = Env::new();
    write(env.src.join("old"), "old");
    let mut run = watching(&env);
    write(env.src.join("new.txt"), "new");
    env.converges(QUICK);
    write(env.src.join("new.txt"), "changed, and longer");
    env.converges(QUICK);
    chmod(env.src.join("new.txt"), 0o600);
    env.converges(QUICK);
    fs::remove_file(env.src.join("old")).unwrap();
    env.converges(QUICK);
    symlink("new.txt", env.src.join("link"));
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    assert_eq!(
        log.matches("pass finished").count(),
        1,
        "only the watcher worked:\n{log}"
    );
}

#[test]
fn files_made_at_once_in_new_nested_directories() {
    let env = Env::new();
    let mut run = watching(&env);
    let status = Command::new("sh")
        .arg("-c")
        .arg("mkdir -p a/b/c && touch a/1 a/b/2 a/b/c/3 && echo x > a/b/c/4")
        .current_dir(&env.src)
        .status()
        .unwrap();
    assert!(status.success());
    env.converges(QUICK);
    run.stop();
}

#[test]
fn renames_keep_the_replica_inode() {
    let env = Env::new();
    write(env.src.join("file.bin"), bytes(1 << 20, 3));
    for i in 0..200 {
        write(env.src.join(format!("dir/sub/f{i}")), format!("{i}"));
    }
    let mut run = watching(&env);
    let file_ino = fs::metadata(env.rep.join("file.bin")).unwrap().ino();
    let dir_ino = fs::metadata(env.rep.join("dir")).unwrap().ino();
    let inner_ino = fs::metadata(env.rep.join("dir/sub/f7")).unwrap().ino();

    fs::rename(env.src.join("file.bin"), env.src.join("renamed.bin")).unwrap();
    fs::rename(env.src.join("dir"), env.src.join("moved dir")).unwrap();
    env.converges(QUICK);
    assert_eq!(
        fs::metadata(env.rep.join("renamed.bin")).unwrap().ino(),
        file_ino
    );
    assert_eq!(
        fs::metadata(env.rep.join("moved dir")).unwrap().ino(),
        dir_ino
    );
    assert_eq!(
        fs::metadata(env.rep.join("moved dir/sub/f7"))
            .unwrap()
            .ino(),
        inner_ino
    );
    run.stop();
    let log = env.log_text();
    assert!(log.contains("renamed file.bin -> renamed.bin"), "{log}");
    assert!(log.contains("renamed dir -> moved dir"), "{log}");
    assert!(!log.contains("copied renamed.bin"), "{log}");
}

#[test]
fn moves_into_and_out_of_the_tree() {
    let env = Env::new();
    let outside = env.root.join("outside");
    write(outside.join("incoming/a/b"), "b");
    write(outside.join("incoming/c"), "c");
    write(env.src.join("leaving/x"), "x");
    let mut run = watching(&env);
    fs::rename(outside.join("incoming"), env.src.join("incoming")).unwrap();
    fs::rename(env.src.join("leaving"), outside.join("leaving")).unwrap();
    env.converges(QUICK);
    run.stop();
}

#[test]
fn a_burst_of_40000_files_converges() {
    let env = Env::new();
    let mut run = watching(&env);
    for d in 0..40 {
        let dir = env.src.join(format!("d{d:02}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..1000 {
            fs::write(dir.join(format!("f{f:04}")), b"burst").unwrap();
        }
    }
    env.converges(Duration::from_secs(120));
    run.stop();
}

#[test]
fn source_root_moved_away_and_back() {
    let env = Env::new();
    write(env.src.join("keep/me"), "precious");
    let mut run = watching(&env);
    let before = tree(&env.rep);
    let away = env.root.join("src-away");
    fs::rename(&env.src, &away).unwrap();
    env.wait_log("left untouched", 1, QUICK);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        before,
        tree(&env.rep),
        "REPLICA changed while SOURCE was gone"
    );
    assert_eq!(
        env.log_text().matches("left untouched").count(),
        1,
        "one error, not one per tick"
    );

    fs::rename(&away, &env.src).unwrap();
    env.wait_log("is back", 1, QUICK);
    write(env.src.join("after-return"), "new");
    env.converges(QUICK);
    run.stop();
}

#[test]
fn source_root_removed_and_recreated() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let mut run = watching(&env);
    fs::remove_dir_all(&env.src).unwrap();
    env.wait_log("left untouched", 1, QUICK);
    assert!(env.rep.is_dir());
    // Recreated empty first: still nothing removed, and the error now names the option.
    fs::create_dir(&env.src).unwrap();
    env.wait_log("--allow-empty-source", 1, QUICK);
    assert!(env.rep.join("a").is_file());
    write(env.src.join("b"), "b");
    env.wait_log("is back", 1, QUICK);
    env.converges(QUICK);
    // The watch follows the new directory.
    write(env.src.join("c"), "c");
    env.converges(QUICK);
    run.stop();
}

#[test]
fn a_file_being_written_converges_to_its_final_content() {
    let env = Env::new();
    let mut run = watching(&env);
    let path = env.src.join("growing.log");
    let mut f = fs::File::create(&path).unwrap();
    for i in 0..200 {
        use std::io::Write;
        f.write_all(&bytes(4096, i)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(f);
    env.converges(QUICK);
    run.stop();
}

#[test]
fn no_watch_mode_leaves_changes_to_the_passes() {
    let env = Env::new();
    let mut run = env.spawn(&["--no-watch", "-i", "1s"]);
    env.wait_log("pass finished", 1, Duration::from_secs(20));
    write(env.src.join("f"), "x");
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    assert!(log.contains("periodic passes only"), "{log}");
    // The last pass may be cut short by the stop.
    let passes = log.matches("pass finished").count() + log.matches("pass interrupted").count();
    assert!(passes >= 2, "{log}");
}

#[test]
fn the_log_file_inside_source_does_not_feed_the_mirror() {
    let env = Env::new();
    write(env.src.join("f"), "x");
    let mut run = env
        .cmd_with_log(&env.src.join("self.log"))
        .args(["-i", "1h"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = env.src.join("self.log");
    wait_for(QUICK, "the first pass", || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("pass finished")
    });
    write(env.src.join("g"), "y");
    wait_for(QUICK, "g copied", || env.rep.join("g").is_file());
    std::thread::sleep(Duration::from_millis(300));
    let lines = fs::read_to_string(&log).unwrap().lines().count();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lines,
        fs::read_to_string(&log).unwrap().lines().count(),
        "the log keeps growing"
    );
    assert!(!env.rep.join("self.log").exists());
    let _ = run.kill();
    let _ = run.wait();
}

/// The watch limit, lowered for this test only: foldersync runs in a user namespace of its own,
/// whose inotify limit (`/proc/sys/user/max_inotify_watches`) is separate from the machine's, so
/// the other tests running beside it keep theirs.
#[test]
fn a_low_watch_limit_still_converges_through_passes() {
    let env = Env::new();
    for d in 0..30 {
        write(env.src.join(format!("d{d}/f")), "x");
    }
    let probe = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            "echo 5 > /proc/sys/user/max_inotify_watches",
        ])
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        panic!("unshare --user is needed for this test (user namespaces disabled?)");
    }
    let script = format!(
        "echo 5 > /proc/sys/user/max_inotify_watches && exec {} \"$@\"",
        BIN
    );
    let console = env.root.join("logs/console.txt");
    let mut child = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script, "sh"])
        .arg(&env.src)
        .arg(&env.rep)
        .arg("-l")
        .arg(&env.log)
        .args(["-i", "1s"])
        .stderr(fs::File::create(&console).unwrap())
        .spawn()
        .unwrap();
    env.wait_log("pass finished", 1, Duration::from_secs(20));
    for d in 0..30 {
        write(env.src.join(format!("d{d}/g")), "y");
    }
    env.converges(Duration::from_secs(20));
    let log = env.log_text();
    assert!(log.contains("max_user_watches"), "{log}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_name_back_in_source_is_not_taken_for_a_rename() {
    // `a` leaves SOURCE (REPLICA's `a` is held, in case it was renamed), comes back, and a new
    // `b/a` with the same names inside appears: REPLICA's `a` is SOURCE's `a` again, not an
    // earlier self of `b/a`.
    let env = Env::new();
    write(env.src.join("a/x"), "one");
    write(env.src.join("keep"), "SOURCE never becomes empty");
    let outside = env.root.join("outside");
    mkdir(&outside);
    let mut run = env.spawn(&["-i", "1h", "--log-level", "debug"]);
    env.wait_log("pass finished", 1, QUICK);
    fs::rename(env.src.join("a"), outside.join("a")).unwrap();
    env.wait_log("a is gone from SOURCE: held", 1, QUICK);
    write(env.src.join("a/x"), "two");
    write(env.src.join("b/a/x"), "three");
    env.converges(QUICK);
    run.stop();
}
