//! `--metrics ADDR`: Prometheus's text format over HTTP, scraped with curl during a pass (held
//! up by a console pipe the test stops reading) and after it, and checked by `promtool` where
//! it is installed. An address that cannot be used refuses the start.

use std::io::Read;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::util::*;

const QUICK: Duration = Duration::from_secs(20);
/// Files whose "copied" lines are far more than the console pipe holds.
const FILES: usize = 300;

fn curl_available() -> bool {
    Command::new("curl").arg("--version").output().is_ok()
}

/// A port free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The HTTP status and body of GET `url`.
fn get(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", "-w", "\n%{http_code}", url])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The value of the sample named exactly `name` (with its labels), if present.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_scraped_during_a_pass_and_after() {
    if !curl_available() {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let env = Env::new();
    for i in 0..FILES {
        write(env.src.join(format!("d{}/f{i:04}", i % 10)), "0123456789");
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}/metrics");
    let mut child = env
        .cmd()
        .args(["-i", "1h", "--metrics", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn foldersync");
    let mut stderr = child.stderr.take().expect("the console pipe");
    // SAFETY: fcntl on a pipe this process holds open.
    let size = unsafe { libc::fcntl(stderr.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert_eq!(size, 4096, "F_SETPIPE_SZ");
    let mut run = Running::from(child, env.root.join("logs/none"));
    let reading = Arc::new(AtomicBool::new(false));
    let on = reading.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            if !on.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });

    // During the pass: the console is full, so the pass is held up in its copies.
    wait_for(QUICK, "a scrape during the pass", || {
        get(&url).1.contains("foldersync_pass_running 1")
    });
    let (code, during) = get(&url);
    assert_eq!(code, 200, "{during}");
    assert_eq!(
        value(&during, "foldersync_state{state=\"passing\"}"),
        Some(1.0),
        "{during}"
    );
    assert!(
        !during.contains("foldersync_passes_total{"),
        "no pass ended yet:\n{during}"
    );
    assert_eq!(
        value(&during, "foldersync_replica_up"),
        Some(1.0),
        "{during}"
    );

    // After it.
    reading.store(true, Ordering::SeqCst);
    wait_for(QUICK, "the pass to end", || {
        value(&get(&url).1, "foldersync_passes_total{outcome=\"ok\"}") == Some(1.0)
    });
    let (_, after) = get(&url);
    let expect = [
        ("foldersync_pass_running", 0.0),
        ("foldersync_operations_total{kind=\"copied\"}", FILES as f64),
        ("foldersync_operations_total{kind=\"created\"}", 10.0),
        ("foldersync_written_bytes_total", FILES as f64 * 10.0),
        ("foldersync_last_pass_errors", 0.0),
        ("foldersync_errors_total", 0.0),
        ("foldersync_failing_paths", 0.0),
        ("foldersync_watch_lost_events_total", 0.0),
        ("foldersync_state{state=\"watching\"}", 1.0),
    ];
    for (name, want) in expect {
        assert_eq!(value(&after, name), Some(want), "{name} in\n{after}");
    }
    let ended = value(&after, "foldersync_last_pass_end_timestamp_seconds").unwrap();
    let now = now().duration_since(std::time::UNIX_EPOCH).unwrap();
    assert!((now.as_secs_f64() - ended).abs() < 60.0, "{ended}");
    assert!(value(&after, "foldersync_last_pass_duration_seconds").unwrap() > 0.0);

    // A change the watcher carries over.
    write(env.src.join("new"), "12345");
    wait_for(QUICK, "the watched change counted", || {
        let text = get(&url).1;
        value(&text, "foldersync_events_applied_total").unwrap_or(0.0) >= 1.0
            && value(&text, "foldersync_operations_total{kind=\"copied\"}")
                == Some(FILES as f64 + 1.0)
    });
    let (_, last) = get(&url);
    assert_eq!(
        value(&last, "foldersync_written_bytes_total"),
        Some(FILES as f64 * 10.0 + 5.0),
        "{last}"
    );
    // The write's own events (create, then close after writing) may leave a hint waiting a
    // moment after the copy: the queue empties.
    wait_for(QUICK, "no path pending", || {
        value(&get(&url).1, "foldersync_pending_paths") == Some(0.0)
    });
    assert_eq!(get(&format!("http://{addr}/")).0, 404);
    promtool(&env, &last);
    run.stop();
    reader.join().unwrap();
}

/// `promtool check metrics` on a scrape, where promtool is installed (Debian's `prometheus`
/// package, 96 MB: not installed for the tests).
fn promtool(env: &Env, text: &str) {
    let file = env.root.join("scrape.txt");
    std::fs::write(&file, text).unwrap();
    let Ok(out) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
    else {
        eprintln!("promtool is not installed: its check is skipped");
        return;
    };
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_metrics_address_that_cannot_be_used_refuses_the_start() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for (bad, says) in [
        (addr.as_str(), "cannot serve metrics on"),
        ("localhost", "--metrics"),
        ("127.0.0.1:99999", "--metrics"),
    ] {
        let out = env
            .cmd()
            .args(["--once", "--metrics", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains(says), "{bad}: {err}");
        assert!(!env.rep.exists(), "{bad}: REPLICA made");
        assert!(!env.log.exists(), "{bad}: log made");
    }
}
