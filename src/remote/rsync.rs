//! Running rsync: the arguments every run shares, a run's output read as it comes (changes,
//! statistics, foldersync's own markers from the remote side), a stop that ends the run within
//! a fraction of a second, and rsync's exit status sorted into what the mirror does next.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use super::itemize::{self, Change, FORMAT};
use super::written;
use crate::stop::Stop;

/// Marker lines the remote side writes on its standard error (see `super::script`).
pub const RENAMED: &[u8] = b"foldersync-renamed ";
pub const ROOT_CHANGED: &[u8] = b"foldersync-root-changed";
/// The remote side made the missing directory of rename number `n`'s new name.
pub const MADE_PARENT: &[u8] = b"foldersync-made-parent ";

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Ok,
    /// Some files could not be transferred, or vanished (exit 23, 24): the rest was done.
    Partial,
    /// Stopped by us.
    Interrupted,
    /// The connection failed (ssh's 255, a broken stream, a timeout).
    Lost,
    /// The remote root is not the directory the mirror started with: nothing was written.
    RootChanged,
    /// A file I/O error on the remote side, such as a full disk (exit 11).
    Io,
    /// Anything else (exit status).
    Failed(i32),
}

/// What a run reports as it goes.
#[derive(Debug)]
pub enum Event {
    Change(Change),
    /// The remote side renamed the batch's rename number `n`.
    Renamed(usize),
    /// The remote side made the directory rename number `n` moves into.
    MadeParent(usize),
    /// rsync left out a SOURCE entry that is not a file, directory or symlink.
    Skipped(std::path::PathBuf),
    /// The receiving rsync wrote this file (see [`super::written`]).
    Wrote(Change),
    /// The receiving rsync cannot say what it writes.
    ReceiverMute,
    /// An entry of a survey run (see [`Invocation::survey`]).
    Listed(PathBuf, itemize::Seen),
    /// The receiver removes this entry to make room for one of another kind (said where asked,
    /// see [`super::bound`]).
    MadeRoom(PathBuf),
}

/// What a run said.
#[derive(Debug)]
pub struct Report {
    pub ended: Ended,
    /// rsync's own error lines.
    pub errors: Vec<String>,
    /// Entries rsync looked at (from `--stats`).
    pub files: Option<u64>,
    /// The renames the remote side made (their numbers), filled in by the caller.
    pub renamed: Vec<usize>,
    /// The files whose data rsync sent (their bytes are SOURCE's once the run went through),
    /// filled in by the caller.
    pub copied: std::collections::HashSet<PathBuf>,
}

/// One rsync invocation, with everything but its changes' handling.
pub struct Invocation<'a> {
    pub args: Vec<OsString>,
    /// Written to rsync's standard input (a `--files-from=-` list or filter rules).
    pub stdin: Option<Vec<u8>>,
    /// The remote command that runs before the remote rsync (`--rsync-path`).
    pub rsync_path: Vec<u8>,
    pub rsh: String,
    pub source: &'a OsStr,
    pub destination: OsString,
    /// Settles where a link's name ends (see [`itemize::parse`]).
    pub split: itemize::Split<'a>,
    /// A dry run that lists every entry (`-ii`), unchanged ones too: each itemized line is
    /// handed on as [`Event::Listed`], and nothing else is.
    pub survey: bool,
}

impl Invocation<'_> {
    /// The rsync command, not yet started.
    fn command(&self) -> Command {
        let mut cmd = Command::new("rsync");
        cmd.args(&self.args)
            .arg(format!("--out-format={FORMAT}"))
            .arg("-e")
            .arg(&self.rsh)
            .arg(OsStr::from_bytes(
                &[b"--rsync-path=".as_slice(), &self.rsync_path].concat(),
            ))
            .arg(self.source)
            .arg(&self.destination)
            // Names in rsync's output escaped alike everywhere: every byte above 127 too.
            .env("LC_ALL", "C")
            .env_remove("RSYNC_OLD_ARGS")
            .env_remove("RSYNC_PROTECT_ARGS")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group (with the ssh it starts): a stop ends them together.
            .process_group(0);
        crate::stop::die_with_us(&mut cmd);
        if log::log_enabled!(log::Level::Debug) {
            let words: Vec<String> = std::iter::once(cmd.get_program())
                .chain(cmd.get_args())
                .map(|a| super::ssh::quote(a.as_bytes()))
                .map(|w| String::from_utf8_lossy(&w).into_owned())
                .collect();
            log::debug!("running {}", crate::escape::text(&words.join(" ")));
        }
        cmd
    }

    /// Runs rsync, handing each change and rename to `on_event` as it is reported.
    pub fn go(mut self, stop: &Stop, mut on_event: impl FnMut(Event)) -> Report {
        let mut child = match self.command().spawn() {
            Ok(child) => child,
            Err(e) => {
                return Report {
                    ended: Ended::Failed(-1),
                    errors: vec![format!("cannot run rsync: {e}")],
                    files: None,
                    renamed: Vec::new(),
                    copied: Default::default(),
                }
            }
        };
        let pid = child.id();
        if let (Some(mut input), Some(data)) = (child.stdin.take(), self.stdin.take()) {
            std::thread::spawn(crate::label::carry(move || {
                let _ = input.write_all(&data);
            }));
        }
        // Both outputs, line by line, in the order they come: the remote side's renames (on
        // its standard error) come before rsync's changes.
        let (tx, lines) = crossbeam_channel::unbounded::<(bool, Vec<u8>)>();
        let reader = |stream: Box<dyn Read + Send>, is_err: bool| {
            let tx = tx.clone();
            std::thread::spawn(crate::label::carry(move || {
                for mut line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
                    // ssh ends its own messages with a carriage return.
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if tx.send((is_err, line)).is_err() {
                        break;
                    }
                }
            }));
        };
        if let Some(out) = child.stdout.take() {
            reader(Box::new(out), false);
        }
        if let Some(err) = child.stderr.take() {
            reader(Box::new(err), true);
        }
        drop(tx);
        let mut said = Said::default();
        let mut stopped = false;
        loop {
            match lines.recv_timeout(Duration::from_millis(50)) {
                Ok((false, line)) => self.out_line(&line, &mut said, &mut on_event),
                Ok((true, line)) => self.err_line(line, &mut said, &mut on_event),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if stop.is_set() && !stopped {
                stopped = true;
                if let Ok(pid) = i32::try_from(pid) {
                    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                        let _ =
                            rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
                    }
                }
            }
        }
        let code = child.wait().ok().and_then(|s| s.code());
        let ended = if stopped {
            Ended::Interrupted
        } else if said.root_changed {
            Ended::RootChanged
        } else {
            ended(code)
        };
        Report {
            ended,
            errors: said.errors,
            files: said.files,
            renamed: Vec::new(),
            copied: Default::default(),
        }
    }

    /// A line of rsync's standard output: a change, its statistics, an entry left out.
    fn out_line(&self, line: &[u8], said: &mut Said, on_event: &mut impl FnMut(Event)) {
        if let Some(rel) = super::replaced::made_room(line) {
            on_event(Event::MadeRoom(rel));
        } else if self.survey {
            if let Some((rel, seen)) = itemize::listed(line) {
                on_event(Event::Listed(rel, seen));
            }
        } else if let Some(change) = itemize::parse(line, self.split) {
            on_event(Event::Change(change));
        } else if let Some(n) = itemize::files_in_stats(line) {
            said.files = Some(n);
        } else if let Some(rel) = itemize::skipped(line) {
            on_event(Event::Skipped(rel));
        }
    }

    /// A line of the standard error: the remote side's markers and log, or rsync's messages.
    fn err_line(&self, line: Vec<u8>, said: &mut Said, on_event: &mut impl FnMut(Event)) {
        let number = |n: &[u8]| std::str::from_utf8(n).ok()?.trim().parse().ok();
        if let Some(n) = line.strip_prefix(RENAMED).and_then(number) {
            on_event(Event::Renamed(n));
        } else if let Some(n) = line.strip_prefix(MADE_PARENT).and_then(number) {
            on_event(Event::MadeParent(n));
        } else if line.starts_with(ROOT_CHANGED) {
            said.root_changed = true;
        } else if let Some(change) = written::wrote(&line, self.split) {
            on_event(Event::Wrote(change));
        } else if written::cannot_log(&line) {
            on_event(Event::ReceiverMute);
        } else if written::log_line(&line) {
            // The receiver's log repeats what rsync says anyway.
        } else if !line.is_empty() {
            said.errors
                .push(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

/// What a run said besides its changes.
#[derive(Default)]
struct Said {
    files: Option<u64>,
    errors: Vec<String>,
    root_changed: bool,
}

/// What rsync's exit status means.
fn ended(code: Option<i32>) -> Ended {
    match code {
        Some(0) => Ended::Ok,
        Some(23 | 24) => Ended::Partial,
        Some(11) => Ended::Io,
        Some(5 | 10 | 12 | 30 | 35 | 255) => Ended::Lost,
        Some(code) => Ended::Failed(code),
        None => Ended::Lost,
    }
}

/// A path list for `--files-from=- --from0`: each path, NUL-terminated.
pub fn nul_list<'p>(paths: impl IntoIterator<Item = &'p PathBuf>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in paths {
        out.extend_from_slice(p.as_os_str().as_bytes());
        out.push(0);
    }
    out
}
