//! Attack review (attack4) of the changes merged up to ed7be68: the one executor of changes to
//! REPLICA (backups before a replacement), the remote plan, `--config` with many pairs, the
//! metrics endpoint, the journal and sd_notify, JSON log lines. Each test shows one finding, says
//! what it shows and how it was fixed (or why it is ignored).
//!
//! Run them alone with `cargo test --test integration attack4::`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::util::*;

const QUICK: Duration = Duration::from_secs(20);

/// A port free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Sends `request` to `addr` and returns what comes back within `within` (the connection closed
/// or the time up).
fn http(addr: &str, request: &[u8], within: Duration) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.write_all(request);
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.windows(4).any(|w| w == b"\r\n\r\n")
            && String::from_utf8_lossy(&got).contains("foldersync_")
        {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A watching mirror with `--metrics` on a free port, once its first pass is over.
fn with_metrics(env: &Env) -> (Running, String) {
    write(env.src.join("a"), "a");
    let addr = format!("127.0.0.1:{}", free_port());
    let running = env.spawn(&["--metrics", &addr]);
    env.converges(QUICK);
    wait_for(QUICK, "the metrics served", || {
        http(
            &addr,
            b"GET /metrics HTTP/1.0\r\n\r\n",
            Duration::from_secs(2),
        )
        .contains("foldersync_")
    });
    (running, addr)
}

/// One unauthenticated request to the metrics endpoint killed the whole mirror: tiny_http drops
/// an unread request body by allocating a buffer as large as the `Content-Length` the client
/// declared (`EqualReader::drop`, `vec![0; remaining]`), on the metrics thread after the answer;
/// a declared length of 10^15 bytes fails the allocation and aborts the process ("memory
/// allocation of 1000000000000000 bytes failed"). With `--metrics 0.0.0.0:PORT` anyone on the
/// network could stop the mirror. Fixed: the endpoint is served by a few lines of our own
/// (src/metrics/serve.rs) that read the request head only, never a body, and close.
#[test]
fn a_huge_declared_body_does_not_kill_the_mirror() {
    let env = Env::new();
    let (mut running, addr) = with_metrics(&env);
    let answer = http(
        &addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Still alive, still mirroring, still serving.
    write(env.src.join("b"), "b");
    env.converges(QUICK);
    assert!(
        running.wait(Duration::from_millis(200)).is_none(),
        "the mirror died: {}",
        running.console_text()
    );
    let again = http(
        &addr,
        b"GET /metrics HTTP/1.0\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(again.contains("foldersync_"), "{again}");
    running.stop();
}

/// A client that declares a body (more than tiny_http reads at once, 1 KiB) and never sends it
/// held the metrics thread for ever: dropping the request waits, with no time limit, for bytes
/// that never come, and no one else is answered again. Fixed with the endpoint of our own: a
/// request's head has a deadline, a body is never read.
#[test]
fn a_client_that_never_sends_its_body_does_not_stop_the_metrics() {
    let env = Env::new();
    let (mut running, addr) = with_metrics(&env);
    let mut stuck = TcpStream::connect(&addr).unwrap();
    stuck
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        .unwrap();
    // A slow client sending its head a byte at a time, too.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GE").unwrap();
    let mut answered = false;
    let deadline = Instant::now() + QUICK;
    while !answered && Instant::now() < deadline {
        answered = http(
            &addr,
            b"GET /metrics HTTP/1.0\r\n\r\n",
            Duration::from_secs(3),
        )
        .contains("foldersync_");
    }
    assert!(
        answered,
        "no one answered after a client that never sent its body"
    );
    drop((stuck, slow));
    running.stop();
}

/// A configuration whose two mirrors write into one directory, one as a local REPLICA and the
/// other as `127.0.0.1:` the same directory (or `localhost:`, this machine under another name):
/// each pair would remove what the other writes. The checks across pairs compare a remote
/// REPLICA only with remote ones of the same host spelling.
#[test]
fn a_local_and_a_localhost_replica_of_one_directory_are_refused() {
    let Some((env, sshd)) = crate::remote::setup() else {
        return;
    };
    let (s1, s2) = (env.root.join("s1"), env.root.join("s2"));
    write(s1.join("one"), "1");
    write(s2.join("two"), "2");
    mkdir(&env.rep);
    write(env.rep.join("kept"), "data the user had");
    let conf = env.root.join("foldersync.toml");
    write(
        &conf,
        format!(
            "once = true\nlog-path = {:?}\nstate-dir = {:?}\n\
             [mirror.a]\nsource = {s1:?}\nreplicas = [{:?}]\n\
             [mirror.b]\nsource = {s2:?}\nreplicas = [{:?}]\nrsh = {:?}\n",
            env.log,
            env.state(),
            env.rep,
            sshd.remote(&env.rep),
            sshd.rsh()
        ),
    );
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&conf)
        .current_dir(&env.root)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "accepted:\n{err}\n{}",
        env.log_text()
    );
    assert!(env.rep.join("kept").exists(), "REPLICA's content touched");
}

/// The status file of a `--config` process inside one mirror's SOURCE: it is that pair's own
/// file, never mirrored, and so are its temporary files, told by the process's token. But the
/// board that writes the one document for all pairs named its temporary files with the first
/// pair's token, and each pair had a token of its own: the mirror whose SOURCE holds the status
/// file took them for data, copied them into its REPLICA ("copied
/// .foldersync-<token>-66.tmp") and removed them again a moment later. Many pairs writing
/// their status often (20 replicas of a busy mirror) make it show within seconds. Fixed: one
/// token for every pair of a process (`TempNames::process`).
#[test]
fn the_status_files_temporary_files_are_no_ones_data() {
    let env = Env::new();
    let (s1, s2) = (env.root.join("s1"), env.root.join("s2"));
    mkdir(&s1);
    write(s2.join("x"), "x");
    let replicas: Vec<String> = (0..20)
        .map(|i| format!("{:?}", env.root.join(format!("r{i}"))))
        .collect();
    let conf = env.root.join("foldersync.toml");
    write(
        &conf,
        format!(
            "debounce = \"1ms\"\nlog-path = {:?}\nstate-dir = {:?}\nstatus-file = {:?}\n\
             [mirror.a]\nsource = {s1:?}\nreplicas = [{}]\n\
             [mirror.b]\nsource = {s2:?}\nreplicas = [{:?}]\n",
            env.log,
            env.state(),
            s2.join("status.json"),
            replicas.join(", "),
            env.rep,
        ),
    );
    let console = env.root.join("logs/console.txt");
    let child = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&conf)
        .current_dir(&env.root)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&console).unwrap())
        .stderr(std::fs::File::create(&console).unwrap())
        .spawn()
        .unwrap();
    let mut running = Running::from(child, console);
    wait_for(QUICK, "mirror b's first copy", || {
        env.rep.join("x").exists()
    });
    let until = Instant::now() + Duration::from_secs(4);
    let mut i = 0;
    while Instant::now() < until {
        write(s1.join(format!("f{i}")), "f");
        i += 1;
        wait_for(QUICK, "mirror a's copy", || {
            env.root.join(format!("r0/f{}", i - 1)).exists()
        });
    }
    running.stop();
    let b_saw: Vec<String> = env
        .log_text()
        .lines()
        .filter(|l| l.contains("[b -> ") && l.contains(".foldersync-"))
        .map(str::to_string)
        .collect();
    assert!(
        b_saw.is_empty(),
        "mirror b took the status file's temporary files for data:\n{}",
        b_saw.join("\n")
    );
}

/// `--config` naming something that is not a regular file: a FIFO (a typo'd path to one, a
/// process substitution) hung start-up for ever, and `/dev/zero` (or any endless or huge file)
/// was read whole into memory until the allocation failed, after taking the machine's memory.
/// Bad start-up input is to be refused at once (exit 2). Fixed: only a regular file is read,
/// and at most 1 MiB of it.
#[test]
fn a_configuration_that_is_no_regular_file_is_refused_at_once() {
    let env = Env::new();
    let fifo = env.root.join("fifo.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let huge = env.root.join("huge.toml");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(64 << 20).unwrap();
    for path in [
        fifo.as_path(),
        std::path::Path::new("/dev/zero"),
        huge.as_path(),
    ] {
        let mut child = std::process::Command::new(BIN)
            .arg("--config")
            .arg(path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.and_then(|s| s.code()), Some(2), "{}", path.display());
    }
}

/// A watching dry run reports a new file twice: "[dry run] copied new (4 bytes)" at once, then
/// "[dry run] updated new (4 bytes)" a moment later, with nothing changed in between (the
/// writer's close brings the path back, and its second look does not agree with what the dry
/// view recorded of the first). So a dry run says more than the real run would do. Not from
/// this session's changes (the dry view records the same `Copied` as before the executor).
/// Fixed: the close's look asks for the bytes to be compared, and a copy only the dry view holds
/// has none to compare; it is SOURCE's own file, unchanged since (same inode and ctime).
#[test]
fn a_dry_run_reports_a_new_file_once() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let mut running = env.spawn(&["--dry-run"]);
    env.wait_log("pass finished", 1, QUICK);
    write(env.src.join("new"), "new\n");
    env.wait_log("copied new", 1, QUICK);
    // Time for the close's look (debounce 50 ms), polled through the log's pace.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && !env.log_text().contains("updated new") {
        std::thread::sleep(Duration::from_millis(50));
    }
    running.stop();
    let log = env.log_text();
    assert!(!log.contains("updated new"), "{log}");
}
