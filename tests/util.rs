//! The test harness: a temporary directory per test, a tree builder, the real binary run on it,
//! polling with deadlines, and tree comparison that prints both trees on failure.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File, FileTimes};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use walkdir::WalkDir;

pub mod conf;
pub mod sshd;

pub const BIN: &str = env!("CARGO_BIN_EXE_foldersync");

/// A test's own directory, on the same disk as `target/` (never tmpfs, so big files are cheap),
/// with `src/` created, `rep/` not yet, and the log in `logs/`.
pub struct Env {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub src: PathBuf,
    pub rep: PathBuf,
    pub log: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("fs-test-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("create test dir");
        let root = tmp.path().to_path_buf();
        let src = root.join("src");
        fs::create_dir(&src).unwrap();
        fs::create_dir(root.join("logs")).unwrap();
        Env {
            log: root.join("logs/sync.log"),
            rep: root.join("rep"),
            src,
            root,
            _tmp: tmp,
        }
    }

    /// A command for the binary with SOURCE, REPLICA and the log path already given (and a
    /// state directory of the test's own).
    pub fn cmd(&self) -> Command {
        self.cmd_with_log(&self.log)
    }

    /// A command for the binary with SOURCE, REPLICA and another log path.
    pub fn cmd_with_log(&self, log: &Path) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg(&self.src).arg(&self.rep).arg("-l").arg(log);
        cmd.arg("--state-dir").arg(self.state());
        cmd.current_dir(&self.root);
        cmd
    }

    /// The test's state directory (see `--state-dir`).
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// A token of this mirror's past runs, from its state record: a temporary file named with
    /// it is what a killed run of this very mirror left.
    pub fn past_token(&self) -> String {
        let record = fs::read_dir(self.state())
            .expect("the state directory")
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .expect("a state record");
        let record: serde_json::Value =
            serde_json::from_slice(&fs::read(record.path()).expect("the state record"))
                .expect("a JSON state record");
        record["tokens"][0].as_str().expect("a token").to_string()
    }

    /// Runs one pass (`--once`) and returns its output.
    pub fn once(&self) -> Output {
        self.cmd().arg("--once").output().expect("run foldersync")
    }

    /// Runs one pass and insists it succeeded.
    pub fn once_ok(&self) -> Output {
        self.once_ok_with::<&str>(&[])
    }

    /// Runs one pass with extra arguments and insists it succeeded.
    pub fn once_ok_with<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        let out = self
            .cmd()
            .arg("--once")
            .args(args)
            .output()
            .expect("run foldersync");
        assert!(
            out.status.success(),
            "foldersync --once failed: {:?}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts the mirror in the background, its console output going to a file.
    pub fn spawn(&self, extra: &[&str]) -> Running {
        let console = self.root.join("logs/console.txt");
        let mut cmd = self.cmd();
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(File::create(&console).unwrap())
            .stderr(File::create(&console).unwrap());
        Running {
            child: Some(cmd.spawn().expect("spawn foldersync")),
            console,
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has at least `n` lines containing `needle`.
    pub fn wait_log(&self, needle: &str, n: usize, within: Duration) {
        wait_for(within, &format!("{n} log lines with {needle:?}"), || {
            self.log_text().matches(needle).count() >= n
        });
    }

    /// Asserts that REPLICA equals SOURCE exactly, printing both trees if not.
    pub fn assert_mirrored(&self) {
        let (a, b) = (tree(&self.src), tree(&self.rep));
        if a != b {
            panic!(
                "REPLICA differs from SOURCE\n--- SOURCE\n{a}--- REPLICA\n{b}--- first difference\n{}",
                first_difference(&a, &b)
            );
        }
    }

    pub fn mirrored(&self) -> bool {
        tree(&self.src) == tree(&self.rep)
    }

    /// Waits until REPLICA equals SOURCE, failing with both trees after `within`.
    pub fn converges(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.mirrored() {
            if Instant::now() > deadline {
                self.assert_mirrored();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A running foldersync, killed if the test ends without stopping it.
pub struct Running {
    child: Option<Child>,
    pub console: PathBuf,
}

impl Running {
    /// Takes charge of a child started elsewhere: killed when dropped.
    pub fn from(child: Child, console: PathBuf) -> Running {
        Running {
            child: Some(child),
            console,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Stops the process with SIGSTOP, and waits until the kernel says it is stopped (its
    /// threads read nothing, so the kernel's inotify queue fills).
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
        let stat = format!("/proc/{}/stat", self.pid());
        wait_for(
            Duration::from_secs(10),
            "the process stopped (SIGSTOP)",
            || {
                // The state follows the command name, which is in parentheses.
                fs::read_to_string(&stat)
                    .ok()
                    .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
                    .unwrap_or(false)
            },
        );
    }

    /// Waits for the process to exit, for at most `within`.
    pub fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the process with SIGTERM and asserts a clean exit.
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        let status = self
            .wait(Duration::from_secs(5))
            .expect("exit after SIGTERM");
        assert!(
            status.success(),
            "exit status after SIGTERM: {status:?}\n{}",
            self.console_text()
        );
    }

    pub fn console_text(&self) -> String {
        fs::read_to_string(&self.console).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `cond` every few milliseconds until it holds, failing the test after `within`.
pub fn wait_for(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------- building trees ----------

pub fn write(path: impl AsRef<Path>, content: impl AsRef<[u8]>) {
    let path = path.as_ref();
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap();
}

pub fn mkdir(path: impl AsRef<Path>) {
    fs::create_dir_all(path).unwrap();
}

pub fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

pub fn chmod(path: impl AsRef<Path>, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Sets a file's or directory's modification time to `secs` after the epoch (plus some nanos).
pub fn set_mtime(path: impl AsRef<Path>, secs: u64) {
    let t = UNIX_EPOCH + Duration::new(secs, 123_456_789);
    let f = File::open(path).unwrap();
    f.set_times(FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

/// A large file whose copy takes a while: its blocks are allocated (so it is not sparse and
/// every byte is copied) but cost nothing to make.
pub fn big_file(path: impl AsRef<Path>, len: u64) {
    let f = File::create(path).unwrap();
    rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, len).unwrap();
}

/// A name that is not valid UTF-8.
pub fn non_utf8(prefix: &str) -> PathBuf {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.extend_from_slice(b"\xff\xfe");
    PathBuf::from(OsStr::from_bytes(&bytes))
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---------- comparing trees ----------

/// A textual description of a tree: one line per entry with kind, mode, mtime, size, content
/// digest or link target. Two trees are equal when their descriptions are.
pub fn tree(root: &Path) -> String {
    let mut out = String::new();
    for entry in WalkDir::new(root).follow_links(false).sort_by_file_name() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let _ = writeln!(out, "! {e}");
                continue;
            }
        };
        let rel = entry.path().strip_prefix(root).unwrap();
        // The tree may be changing while it is read (the mirror at work): a vanished entry is
        // just a difference, and a polling caller looks again.
        let Ok(meta) = entry.path().symlink_metadata() else {
            let _ = writeln!(out, "! vanished {}", rel.display());
            continue;
        };
        let name = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let ft = meta.file_type();
        let _ = if ft.is_symlink() {
            writeln!(
                out,
                "l {} -> {} mtime={}.{:09} uid={}",
                name.display(),
                fs::read_link(entry.path()).unwrap_or_default().display(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.uid()
            )
        } else if ft.is_dir() {
            writeln!(
                out,
                "d {} mode={:o} mtime={}.{:09} uid={}",
                name.display(),
                meta.mode() & 0o7777,
                meta.mtime(),
                meta.mtime_nsec(),
                meta.uid()
            )
        } else if ft.is_file() {
            writeln!(
                out,
                "f {} mode={:o} mtime={}.{:09} size={} sum={:016x} uid={}",
                name.display(),
                meta.mode() & 0o7777,
                meta.mtime(),
                meta.mtime_nsec(),
                meta.len(),
                digest(entry.path()),
                meta.uid()
            )
        } else {
            writeln!(out, "? {}", name.display())
        };
    }
    out
}

/// A listing of everything under `root` (names, kinds, sizes, mtimes), to show nothing changed.
pub fn snapshot(root: &Path) -> String {
    let mut out = String::new();
    for entry in WalkDir::new(root).follow_links(false).sort_by_file_name() {
        let Ok(entry) = entry else {
            let _ = writeln!(out, "! unreadable entry");
            continue;
        };
        let meta = entry.path().symlink_metadata().unwrap();
        let _ = writeln!(
            out,
            "{} {:o} {} {}.{}",
            entry.path().display(),
            meta.mode(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec()
        );
    }
    out
}

fn digest(path: &Path) -> u64 {
    // FNV-1a: enough to tell contents apart in tests.
    let mut hash: u64 = 0xcbf29ce484222325;
    let Ok(mut f) = File::open(path) else {
        return 0;
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let Ok(n) = f.read(&mut buf) else {
            return 0;
        };
        if n == 0 {
            return hash;
        }
        for b in &buf[..n] {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x100000001b3);
        }
    }
}

fn first_difference(a: &str, b: &str) -> String {
    let mut al = a.lines();
    let mut bl = b.lines();
    loop {
        match (al.next(), bl.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (x, y) => {
                return format!(
                    "SOURCE:  {}\nREPLICA: {}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                )
            }
        }
    }
}

/// Names of leftover temporary files anywhere under `root`.
pub fn temp_files(root: &Path) -> Vec<PathBuf> {
    WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().as_bytes();
            name.starts_with(b".foldersync-") && name.ends_with(b".tmp")
        })
        .map(|e| e.path().to_path_buf())
        .collect()
}

// ---------- mounts ----------

/// A tmpfs mounted for a test (as root), unmounted however the test ends.
pub struct Mount(PathBuf);

impl Mount {
    pub fn tmpfs(at: &Path, size: &str) -> Mount {
        mkdir(at);
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs at {}", at.display());
        Mount(at.to_path_buf())
    }

    /// A mount made by other means, unmounted when the guard goes.
    pub fn existing(at: &Path) -> Mount {
        Mount(at.to_path_buf())
    }

    /// `from` bind-mounted at `at` (as root).
    pub fn bind(from: &Path, at: &Path) -> Mount {
        mkdir(at);
        let status = Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(at)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "bind-mount {} at {}",
            from.display(),
            at.display()
        );
        Mount(at.to_path_buf())
    }

    /// Unmounts now (lazily: open descriptors keep the old file system).
    pub fn unmount(&self) {
        let status = Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "umount {}", self.0.display());
    }

    pub fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .stderr(Stdio::null())
            .status();
    }
}

// ---------- deep trees ----------

/// Makes `levels` nested directories named `name` under `root`, and a file `leaf` with
/// `content` at the bottom, one component at a time: the whole path may be longer than
/// PATH_MAX, which path-based calls refuse.
pub fn deep_chain(root: &Path, name: &str, levels: usize, content: &[u8]) {
    use rustix::fs::{openat, Mode, OFlags};
    let mut dir = openat(
        rustix::fs::CWD,
        root,
        OFlags::DIRECTORY | OFlags::RDONLY,
        Mode::empty(),
    )
    .unwrap();
    for _ in 0..levels {
        match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => panic!("mkdirat: {e}"),
        }
        dir = openat(
            &dir,
            name,
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )
        .unwrap();
    }
    let fd = openat(
        &dir,
        "leaf",
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::io::write(&fd, content).unwrap();
}

/// Reads `leaf` at the bottom of a chain made by [`deep_chain`], and counts the levels.
pub fn read_deep_chain(root: &Path, name: &str) -> (usize, Option<Vec<u8>>) {
    use rustix::fs::{openat, Mode, OFlags};
    let Ok(mut dir) = openat(
        rustix::fs::CWD,
        root,
        OFlags::DIRECTORY | OFlags::RDONLY,
        Mode::empty(),
    ) else {
        return (0, None);
    };
    let mut levels = 0;
    while let Ok(next) = openat(
        &dir,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        dir = next;
        levels += 1;
    }
    let leaf = openat(&dir, "leaf", OFlags::RDONLY, Mode::empty())
        .ok()
        .map(|fd| {
            let mut buf = vec![0u8; 1 << 16];
            let n = rustix::io::read(&fd, &mut buf).unwrap_or(0);
            buf.truncate(n);
            buf
        });
    (levels, leaf)
}

/// Removes a tree that may be deeper than PATH_MAX.
pub fn remove_deep(path: &Path) {
    let _ = Command::new("rm").arg("-rf").arg(path).status();
}

// ---------- privileges ----------

pub const NOBODY: u32 = 65534;

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A command for the binary that runs without root's power to ignore permission bits: under
/// root it drops to `nobody` with setpriv (the test dir is handed to nobody first); otherwise
/// it runs as the current user, who is already bound by permissions.
pub fn unprivileged(env: &Env) -> Command {
    unprivileged_with_log(env, &env.log)
}

/// [`unprivileged`] with another log path.
pub fn unprivileged_with_log(env: &Env, log: &Path) -> Command {
    let mut cmd = as_nobody(env);
    cmd.arg(&env.src).arg(&env.rep).arg("-l").arg(log);
    cmd
}

/// The binary with no arguments yet, run without root's power to ignore permission bits: under
/// root it drops to `nobody` with setpriv (the test dir is handed to nobody first); otherwise
/// it runs as the current user, who is already bound by permissions.
pub fn as_nobody(env: &Env) -> Command {
    if !is_root() {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&env.root);
        return cmd;
    }
    chmod(&env.root, 0o755);
    for entry in WalkDir::new(&env.root).follow_links(false) {
        let entry = entry.unwrap();
        std::os::unix::fs::lchown(entry.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--",
    ])
    .arg(BIN)
    .current_dir(&env.root);
    cmd
}

/// The current time, for log and mtime checks.
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// The kernel's inotify queue length (`fs.inotify.max_queued_events`).
pub fn max_queued_events() -> usize {
    fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384)
}
