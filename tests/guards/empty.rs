//! Empty means empty of data: a freshly formatted disk at SOURCE (its `lost+found`), empty
//! directories, fifos and sockets do not make SOURCE non-empty, at start-up or while running.

use std::fs;

use super::*;

/// What a disk that lost its data, or was formatted anew, holds: no file, no symlink.
fn no_data(src: &Path) {
    mkdir(src.join("lost+found"));
    chmod(src.join("lost+found"), 0o700);
    mkdir(src.join("photos/2025"));
    fifo(&src.join("pipe"));
    socket(&src.join("photos/agent.sock"));
}

#[test]
fn a_source_without_data_is_refused_at_start_up() {
    let env = Env::new();
    write(env.rep.join("precious/data"), "keep me");
    write(env.rep.join("notes.txt"), "and me");
    // As root, a real file system at SOURCE (tmpfs), as a disk mounted there.
    let _disk = is_root().then(|| Mount::tmpfs(&env.src, "1m"));
    no_data(&env.src);
    let before = snapshot(&env.rep);
    let out = once(&env, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a SOURCE of only lost+found, an empty directory, a fifo and a socket is empty\n\
         stderr:\n{err}\nREPLICA now:\n{}",
        snapshot(&env.rep)
    );
    assert!(err.contains("--allow-empty-source"), "{err}");
    assert_eq!(before, snapshot(&env.rep), "REPLICA changed");
}

#[test]
fn a_source_left_without_data_while_running_removes_nothing() {
    let env = Env::new();
    write(env.src.join("photos/2025/a.jpg"), "a");
    write(env.src.join("b.txt"), "b");
    mkdir(env.src.join("lost+found"));
    fifo(&env.src.join("pipe"));
    socket(&env.src.join("photos/agent.sock"));
    let mut run = watching(&env, &["-i", "1h"]);
    converges_but_specials(&env, QUICK);

    // Every file goes; directories, the fifo and the socket stay.
    fs::remove_file(env.src.join("photos/2025/a.jpg")).unwrap();
    fs::remove_file(env.src.join("b.txt")).unwrap();
    let data_left = || env.rep.join("b.txt").exists() || env.rep.join("photos/2025/a.jpg").exists();
    wait_for(QUICK, "the empty-SOURCE error, or REPLICA emptied", || {
        env.log_text().contains("is empty while REPLICA is not") || !data_left()
    });
    assert!(
        data_left(),
        "REPLICA lost all its files to a SOURCE that holds none:\n{}\nlog:\n{}",
        tree(&env.rep),
        env.log_text()
    );
    assert!(env.log_text().contains("--allow-empty-source"));

    // Data comes back: mirroring resumes by itself.
    write(env.src.join("c.txt"), "c");
    converges_but_specials(&env, QUICK);
    run.stop();
}
