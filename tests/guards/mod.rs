//! Issue 18, the cases a local REPLICA shows: every guard holds where a person would trip over
//! it. A directory that was never a replica is not emptied by surprise; `lost+found`, empty
//! directories, fifos and sockets do not make SOURCE non-empty; a file system unmounted inside
//! SOURCE keeps its copy; set-ID bits follow the owner; attributes are set through the entry that
//! was checked, and a new file's group is read back, not predicted; backups keep privacy and
//! bounds; writers in SOURCE cannot stall the mirror; an interrupted `--once` says so, and one
//! SIGTERM is one stop request.
//!
//! Each test fails on the code from before issue 18 (b53c0c3). Some options did not exist then
//! (`--state-dir`, `--adopt-replica`, `--backup-versions`, `--backup-max-age`): the helpers here
//! pass `--state-dir` only to a binary that takes it, so such a binary shows what it really did.
//! One test is ignored: it shows a bug still there after issue 18 (directories made while the
//! watcher catches up are lost; see `load.rs`); run it with `--ignored`.
//!
//! Run them alone with `cargo test --test integration guards::`.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::*;

mod attrs;
mod backups;
mod empty;
mod lifetime;
mod load;
mod mounts;
mod owner;
mod replica;

pub(crate) const QUICK: Duration = Duration::from_secs(10);

/// Held by the tests that load the machine (thousands of directories, a tight loop of
/// renames), so that they do not run beside each other: their bounds are about the mirror, not
/// about two such tests on two cores.
pub(crate) fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the binary takes the long option `option` (as `--help` lists it).
pub(crate) fn takes(option: &str) -> bool {
    static HELP: OnceLock<String> = OnceLock::new();
    let help = HELP.get_or_init(|| {
        let out = Command::new(BIN)
            .arg("--help")
            .output()
            .expect("run --help");
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .any(|word| word == option)
}

/// The test's state directory, given to a binary that takes `--state-dir`.
fn with_state(env: &Env, cmd: &mut Command) {
    if takes("--state-dir") {
        cmd.arg("--state-dir").arg(env.root.join("state"));
    }
}

/// A command for the binary with SOURCE, REPLICA, the log and (where it is taken) a state
/// directory of the test's own.
pub(crate) fn cmd(env: &Env) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg(&env.src).arg(&env.rep).arg("-l").arg(&env.log);
    with_state(env, &mut cmd);
    cmd.current_dir(&env.root);
    cmd
}

/// [`cmd`] run without root's power (see [`unprivileged`]).
pub(crate) fn cmd_unprivileged(env: &Env) -> Command {
    let mut cmd = unprivileged(env);
    with_state(env, &mut cmd);
    cmd
}

/// Runs one pass (`--once`) with `args`.
pub(crate) fn once(env: &Env, args: &[&str]) -> Output {
    cmd(env)
        .arg("--once")
        .args(args)
        .output()
        .expect("run foldersync")
}

/// Runs one pass with `args`, insisting it succeeded.
pub(crate) fn once_ok(env: &Env, args: &[&str]) -> Output {
    let out = once(env, args);
    assert!(
        out.status.success(),
        "foldersync --once {args:?} failed: {:?}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Starts `cmd` in the background, its console output going to a file.
pub(crate) fn start(env: &Env, mut cmd: Command) -> Running {
    let console = env.root.join("logs/console.txt");
    let out = File::create(&console).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    Running::from(cmd.spawn().expect("spawn foldersync"), console)
}

/// The mirror watching with `extra`, once its first pass is done.
pub(crate) fn watching(env: &Env, extra: &[&str]) -> Running {
    let mut c = cmd(env);
    c.args(extra);
    let run = start(env, c);
    env.wait_log("pass finished", 1, Duration::from_secs(30));
    run
}

/// `foldersync status PATH`: its exit status and what it printed.
pub(crate) fn status(path: &Path) -> (i32, String) {
    let out = Command::new(BIN).arg("status").arg(path).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The status file's document (null while it cannot be read).
pub(crate) fn status_doc(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_default()).unwrap_or_default()
}

/// Makes a fifo at `path`.
pub(crate) fn fifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

/// Makes a unix socket at `path` (bound, then closed: the socket file stays).
pub(crate) fn socket(path: &Path) {
    drop(std::os::unix::net::UnixListener::bind(path).unwrap());
}

/// Sets the owner of `path` (not following a symlink).
pub(crate) fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

/// A file's metadata (not following a symlink).
pub(crate) fn meta(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The permission bits of `path` (set-ID and sticky bits included).
pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta(path).permissions().mode() & 0o7777
}

/// The names in `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// [`tree`] without the fifos, sockets and devices, which are never mirrored.
pub(crate) fn data_tree(root: &Path) -> String {
    tree(root)
        .lines()
        .filter(|l| !l.starts_with("? "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Waits until REPLICA holds what SOURCE does but its fifos and sockets.
pub(crate) fn converges_but_specials(env: &Env, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (a, b) = (data_tree(&env.src), data_tree(&env.rep));
        if a == b {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!("REPLICA differs from SOURCE after {within:?}\n--- SOURCE\n{a}--- REPLICA\n{b}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Says why a test that needs root does nothing, and whether it may go on.
pub(crate) fn root_or_skip(why: &str) -> bool {
    if !is_root() {
        eprintln!("skipped: {why} needs root");
    }
    is_root()
}
