//! Issue 19: the watcher's channel to the run loop is bounded. Its overflow must end in a rescan
//! that converges, never in hints lost for good; and a long pass must not fill it.
//!
//! The run loop is held up from outside, without SIGSTOP (which would stop the watcher too):
//! the mirror's console (stderr) is a pipe of one page that the test stops reading, so the
//! thread that logs next blocks on its line while the watcher's threads, which log nothing,
//! go on.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::*;

/// More removals than the channel holds (4,096 messages; each removal is one, sent at once),
/// fewer events than the kernel's queue holds (16,384), so only our channel can overflow.
const REMOVED: usize = 6000;
/// New files whose copies log far more than the console pipe holds.
const NEW: usize = 400;
/// The console pipe's size: one page, the least the kernel allows.
const PIPE: i32 = 4096;

/// A mirror whose console the test reads, or stops reading.
struct Console {
    reading: Arc<AtomicBool>,
    fd: RawFd,
    thread: Option<JoinHandle<Vec<u8>>>,
}

impl Console {
    /// Starts the mirror (watching, the next pass an hour away), its console read only while
    /// `reading`.
    fn spawn(env: &Env, reading: bool) -> (Running, Console) {
        let mut child = env
            .cmd()
            .args(["-i", "1h"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn foldersync");
        let mut stderr = child.stderr.take().expect("the console pipe");
        let fd = stderr.as_raw_fd();
        // SAFETY: fcntl on a pipe this process holds open.
        let size = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE) };
        assert_eq!(size, PIPE, "F_SETPIPE_SZ");
        let flag = Arc::new(AtomicBool::new(reading));
        let on = flag.clone();
        let thread = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                if !on.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                match stderr.read(&mut buf) {
                    Ok(0) | Err(_) => return all,
                    Ok(n) => all.extend_from_slice(&buf[..n]),
                }
            }
        });
        let console = Console {
            reading: flag,
            fd,
            thread: Some(thread),
        };
        (Running::from(child, env.root.join("logs/none")), console)
    }

    /// Bytes written to the console and not read yet.
    fn queued(&self) -> i32 {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD on a pipe the reader thread holds open, into an int.
        unsafe { libc::ioctl(self.fd, libc::FIONREAD, &mut n) };
        n
    }

    /// Waits until the pipe is full and stays so: whatever logs next is blocked.
    fn wait_blocked(&self) {
        wait_for(Duration::from_secs(60), "the console pipe to fill", || {
            self.queued() >= PIPE - 200
        });
        let mut last = self.queued();
        wait_for(QUICK, "the console pipe to stay full", || {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.queued();
            std::mem::replace(&mut last, now) == now
        });
    }

    fn read(&self, on: bool) {
        self.reading.store(on, Ordering::SeqCst);
    }

    /// Everything the console said, once the mirror has ended.
    fn text(mut self) -> String {
        self.read(true);
        let all = self.thread.take().map(|t| t.join().unwrap_or_default());
        String::from_utf8_lossy(&all.unwrap_or_default()).into_owned()
    }
}

/// The files of `churn/`: spread over 60 directories, so that a hint at a directory (the
/// parent of a removal) does not cover them all.
fn churn_files(env: &Env) -> impl Iterator<Item = PathBuf> + '_ {
    (0..REMOVED).map(|i| env.src.join(format!("churn/d{:02}/f{i:05}", i / 100)))
}

/// SOURCE with `REMOVED` files in `churn/`.
fn churn(env: &Env) {
    write(env.src.join("keep"), "k");
    for d in 0..REMOVED / 100 {
        mkdir(env.src.join(format!("churn/d{d:02}")));
    }
    for path in churn_files(env) {
        fs::File::create(path).unwrap();
    }
}

/// Removes the files of `churn/` (its directories stay), one directory after the other.
fn remove_churn(env: &Env) {
    for path in churn_files(env) {
        fs::remove_file(path).unwrap();
    }
}

fn new_files(env: &Env) {
    mkdir(env.src.join("new"));
    for i in 0..NEW {
        write(env.src.join(format!("new/f{i:04}")), "new");
    }
}

fn lost_lines(env: &Env) -> Vec<String> {
    env.log_text()
        .lines()
        .filter(|l| l.contains("[WARN") && l.contains("events were lost"))
        .map(str::to_string)
        .collect()
}

/// Waits until REPLICA equals SOURCE, failing with the log after `within`.
fn converged(env: &Env, within: Duration) {
    let deadline = Instant::now() + within;
    while !env.mirrored() {
        if Instant::now() > deadline {
            eprintln!("{}", log_digest(env));
            env.assert_mirrored();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Says how long the test has run at each step (seen with `--nocapture` and on failure).
fn step(started: Instant, what: &str) {
    eprintln!("{:>8.2?} {what}", started.elapsed());
}

/// While the run loop is held up in a batch, `REMOVED` files are deleted: more removals than
/// the channel holds. The watcher drops what does not fit and says the loss; the run loop warns,
/// watches anew and runs a full pass, which removes what the dropped hints named. (With the
/// unbounded channel this converged without a pass; with a bounded one that dropped hints
/// silently, REPLICA would keep the files until the next interval, an hour away.)
#[test]
fn a_full_channel_ends_in_a_rescan_that_converges() {
    let t = Instant::now();
    let env = Env::new();
    churn(&env);
    let (mut run, console) = Console::spawn(&env, true);
    env.wait_log("pass finished", 1, Duration::from_secs(120));
    step(t, "first pass done");
    console.read(false);
    new_files(&env);
    console.wait_blocked();
    step(t, "run loop held up in a batch");
    remove_churn(&env);
    // The watcher takes the removals in and sends what fits (it logs nothing, so it runs on).
    std::thread::sleep(Duration::from_secs(2));
    console.read(true);
    step(t, "removed, run loop let go");
    converged(&env, Duration::from_secs(120));
    step(t, "converged");
    let lost = lost_lines(&env);
    let said = lost.iter().any(|l| l.contains("fell behind"));
    assert!(
        said,
        "no WARN about dropped hints: {lost:#?}\n{}",
        log_digest(&env)
    );
    env.wait_log("pass finished", 2, QUICK);
    run.stop();
    drop(console.text());
    step(t, "stopped");
}

/// While the start-up pass is held up, `REMOVED` files are deleted: more removals than the
/// channel holds. The channel is read during the pass, so nothing is dropped: no loss is said,
/// and no second pass runs. (Before, the channel was not read during a pass: it would have
/// overflowed, and cost a rescan.)
#[test]
fn a_long_pass_reads_the_watchers_channel() {
    let t = Instant::now();
    let env = Env::new();
    churn(&env);
    env.once_ok();
    step(t, "mirrored once");
    let before = passes(&env);
    new_files(&env);
    let (mut run, console) = Console::spawn(&env, false);
    console.wait_blocked();
    step(t, "run loop held up in its first pass");
    remove_churn(&env);
    std::thread::sleep(Duration::from_secs(2));
    console.read(true);
    step(t, "removed, run loop let go");
    converged(&env, Duration::from_secs(120));
    step(t, "converged");
    // A rescan would start within about a second of the pass's end.
    std::thread::sleep(Duration::from_secs(3));
    let lost = lost_lines(&env);
    assert!(lost.is_empty(), "{lost:#?}\n{}", log_digest(&env));
    assert_eq!(passes(&env), before + 1, "{}", log_digest(&env));
    run.stop();
    drop(console.text());
    step(t, "stopped");
}
