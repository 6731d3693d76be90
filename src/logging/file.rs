//! The log file: appended to through its directory held open, written by a thread of its own
//! that gathers lines for at most [`LOG_FLUSH`] (at once for warnings and errors), reopened on
//! SIGHUP or when it was deleted, and a failure to write it said once.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use log::Level;

use crate::dir::Dir;
use crate::escape::esc;
use crate::timing::{LOG_DELETED_CHECK, LOG_FLUSH};

/// The log file: appended to in whole lines (so a line is never split, even if the process
/// dies), gathered for at most [`LOG_FLUSH`] or [`FLUSH_BYTES`] by a thread of its own that sleeps
/// while there is nothing to write; reopened on demand.
#[derive(Clone)]
pub(super) struct LogFile(Arc<Shared>);

struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the writer thread when lines start waiting.
    waiting: Condvar,
}

struct Inner {
    path: PathBuf,
    /// The log's directory, unwritten open: the file is reopened in it, never through a path that a
    /// symlink swapped in could redirect.
    dir: Dir,
    name: OsString,
    file: File,
    /// The line being assembled.
    line: Vec<u8>,
    /// Whole lines waiting to be written, and since when.
    unwritten: Vec<u8>,
    since: Option<Instant>,
    /// Why the last write failed; cleared (and said) when one works again.
    failing: Option<String>,
    /// When the file was last checked for having been deleted.
    checked: Instant,
}

/// How many bytes of lines may wait (they wait at most [`LOG_FLUSH`]).
const FLUSH_BYTES: usize = 32 << 10;

/// Opens (or creates) the log file `name` in `dir` for appending: never through a symlink,
/// never blocking on a fifo, and only if it is a regular file (or a character device).
fn open_append(dir: &Dir, name: &OsStr) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY
            | OFlags::APPEND
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::NOCTTY
            | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let file = File::from(fd);
    // A regular file, or a character device such as /dev/null; never a fifo, which could hang
    // the logger, or anything else.
    match crate::dir::meta_of(&file)?.kind {
        crate::dir::Kind::File | crate::dir::Kind::Special("character device") => Ok(file),
        _ => Err(io::Error::other("it is not a regular file")),
    }
}

impl LogFile {
    pub(super) fn open(path: &Path) -> io::Result<LogFile> {
        let (parent, name) = (path.parent(), path.file_name());
        let (Some(parent), Some(name)) = (parent, name) else {
            return Err(io::Error::other("it has no name"));
        };
        let dir = Dir::open(parent)?;
        let file = open_append(&dir, name)?;
        Ok(LogFile(Arc::new(Shared {
            inner: Mutex::new(Inner {
                path: path.to_path_buf(),
                dir,
                name: name.to_os_string(),
                file,
                line: Vec::new(),
                unwritten: Vec::new(),
                since: None,
                failing: None,
                checked: Instant::now(),
            }),
            waiting: Condvar::new(),
        })))
    }

    /// Starts the thread that writes unwritten lines out once they have waited [`LOG_FLUSH`].
    pub(super) fn start_writer(&self) -> io::Result<()> {
        let shared = Arc::clone(&self.0);
        std::thread::Builder::new()
            .name("log".into())
            .spawn(move || {
                let mut inner = crate::lock(&shared.inner);
                loop {
                    inner = match inner.since {
                        None => shared
                            .waiting
                            .wait(inner)
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                        Some(since) => {
                            let left = LOG_FLUSH.saturating_sub(since.elapsed());
                            if left.is_zero() {
                                inner.write_held();
                                continue;
                            }
                            match shared.waiting.wait_timeout(inner, left) {
                                Ok((guard, _)) => guard,
                                Err(poisoned) => poisoned.into_inner().0,
                            }
                        }
                    };
                }
            })?;
        Ok(())
    }

    pub(super) fn reopen(&self) -> io::Result<()> {
        let mut inner = crate::lock(&self.0.inner);
        inner.write_held();
        inner.file = open_append(&inner.dir, &inner.name)?;
        Ok(())
    }

    pub(super) fn trouble(&self) -> Option<String> {
        crate::lock(&self.0.inner).failing.clone()
    }
}

impl Inner {
    /// Moves the assembled line to those waiting; returns whether they were waiting for none.
    fn hold_line(&mut self) -> bool {
        self.unwritten.extend_from_slice(&self.line);
        self.line.clear();
        if self.unwritten.len() >= FLUSH_BYTES {
            self.write_held();
            return false;
        }
        self.since.is_none() && {
            self.since = Some(Instant::now());
            true
        }
    }

    /// Writes the waiting lines out.
    fn write_held(&mut self) {
        self.since = None;
        if self.unwritten.is_empty() {
            return;
        }
        if self.checked.elapsed() >= LOG_DELETED_CHECK {
            self.checked = Instant::now();
            if self.file.metadata().is_ok_and(|m| m.nlink() == 0) {
                if let Ok(file) = open_append(&self.dir, &self.name) {
                    self.file = file;
                }
            }
        }
        let result = self.file.write_all(&self.unwritten);
        self.unwritten.clear();
        match (result, &self.failing) {
            (Err(e), None) => {
                let why = e.to_string();
                eprintln!(
                    "{}foldersync: cannot write log file {}: {why}; log lines are lost until it works again",
                    crate::journal::prefix(Level::Error),
                    esc(&self.path)
                );
                self.failing = Some(format!("cannot write log file {}: {why}", esc(&self.path)));
            }
            (Ok(()), Some(_)) => {
                eprintln!(
                    "{}foldersync: log file {} is written again",
                    crate::journal::prefix(Level::Info),
                    esc(&self.path)
                );
                self.failing = None;
            }
            _ => {}
        }
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = crate::lock(&self.0.inner);
        let mut wake = false;
        for part in buf.split_inclusive(|b| *b == b'\n') {
            inner.line.extend_from_slice(part);
            if part.ends_with(b"\n") {
                wake |= inner.hold_line();
            }
        }
        drop(inner);
        if wake {
            self.0.waiting.notify_one();
        }
        // A failure is reported above and in the status file; simplelog must not stop logging.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut inner = crate::lock(&self.0.inner);
        if !inner.line.is_empty() {
            inner.hold_line();
        }
        inner.write_held();
        Ok(())
    }
}
