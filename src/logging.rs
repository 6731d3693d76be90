//! Logging to the console and to the log file through `simplelog`, one line per record with a
//! millisecond timestamp and a level (on a console that is the systemd journal, a priority
//! prefix instead: see [`crate::journal`]). Every line passes a last filter that escapes control
//! characters, so no name can forge a line. The log file is reopened on SIGHUP (and re-created
//! when it was deleted); a log that cannot be written is said once on the console, and again
//! when it recovers. Lines reach the file within [`LOG_FLUSH`] of being logged: they are gathered and
//! written together (a write per line cost a tenth of a small-file copy's CPU), at once for
//! warnings and errors, and before the process exits.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use indicatif::MultiProgress;
use indicatif_log_bridge::LogWrapper;
use log::{Level, LevelFilter, Log, Metadata, Record};
use simplelog::{
    format_description, ColorChoice, CombinedLogger, ConfigBuilder, LevelPadding, SharedLogger,
    TermLogger, TerminalMode, WriteLogger,
};

use crate::dir::Dir;
use crate::error::StartError;
use crate::escape::{controls, esc};
use crate::timing::{LOG_DELETED_CHECK, LOG_FLUSH};

static PROGRESS: OnceLock<MultiProgress> = OnceLock::new();
static FILE: OnceLock<LogFile> = OnceLock::new();
/// Where progress bars go, when stderr is a terminal.
pub fn progress() -> Option<&'static MultiProgress> {
    PROGRESS.get()
}

/// What was made on disk for the log: undone if start-up fails after all.
#[derive(Debug, Default)]
pub struct Made {
    pub dirs: Vec<PathBuf>,
    pub file: Option<PathBuf>,
}

/// Opens the log file for appending (creating it and its parent directories) and installs the
/// console and file loggers; with `file_level` off, no log file is opened or made. Must be called before any thread is spawned, because finding the
/// local UTC offset is only sound in a single-threaded process.
pub fn init(
    log_path: &Path,
    console: LevelFilter,
    file_level: LevelFilter,
    json: bool,
) -> Result<Made, StartError> {
    crate::log_json::set(json);
    let mut made = Made::default();
    if file_level == LevelFilter::Off {
        return start(console, None).map(|()| made);
    }
    let cannot = |e: io::Error| {
        StartError::new(format!(
            "cannot open log file {}: {e} (choose another with -l/--log-path)",
            esc(log_path)
        ))
    };
    if let Some(parent) = log_path.parent() {
        let missing: Vec<PathBuf> = parent
            .ancestors()
            .take_while(|p| fs::symlink_metadata(p).is_err())
            .map(Path::to_path_buf)
            .collect();
        fs::create_dir_all(parent).map_err(cannot)?;
        made.dirs = missing;
    }
    if fs::symlink_metadata(log_path).is_err() {
        made.file = Some(log_path.to_path_buf());
    }
    let log_file = LogFile::open(log_path).map_err(cannot)?;
    let _ = FILE.set(log_file.clone());
    start(console, Some((file_level, log_file))).map(|()| made)
}

/// Installs the loggers: the console's, and the log file's if there is one.
fn start(console: LevelFilter, file: Option<(LevelFilter, LogFile)>) -> Result<(), StartError> {
    let mut builder = ConfigBuilder::new();
    builder
        .set_time_format_custom(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
        ))
        .set_level_padding(LevelPadding::Right)
        .set_thread_level(LevelFilter::Off)
        .set_target_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        // Only our own records: the watcher's crates log internal chatter at INFO, and what
        // matters of theirs reaches us as errors on the event channel.
        .add_filter_allow_str("foldersync");
    // Falls back to UTC when the offset cannot be determined; the time format then still holds.
    let _ = builder.set_time_offset_to_local();
    if crate::log_json::on() {
        // The JSON object carries the time and the level.
        builder
            .set_time_level(LevelFilter::Off)
            .set_max_level(LevelFilter::Off);
    }
    let config = builder.build();

    let terminal = io::stderr().is_terminal();
    let console_logger: Box<dyn SharedLogger> = if crate::journal::is_stderr() {
        // The journal keeps the time and takes the level from each line's priority prefix.
        crate::journal::Console::new(console, "foldersync")
    } else {
        TermLogger::new(
            console,
            config.clone(),
            TerminalMode::Stderr,
            // termcolor's Auto does not look at whether stderr is a terminal.
            if terminal {
                ColorChoice::Auto
            } else {
                ColorChoice::Never
            },
        )
    };
    let mut loggers: Vec<Box<dyn SharedLogger>> = vec![console_logger];
    let file_level = file.as_ref().map_or(LevelFilter::Off, |(level, _)| *level);
    if let Some((level, log_file)) = &file {
        loggers.push(WriteLogger::new(*level, config, log_file.clone()));
    }
    let logger = Escaping(CombinedLogger::new(loggers));
    let started = if terminal {
        // On a terminal, log lines are written around the progress line, never through it.
        let multi = MultiProgress::new();
        let _ = PROGRESS.set(multi.clone());
        let bridge = LogWrapper::new(multi, logger);
        log::set_max_level(console.max(file_level));
        log::set_boxed_logger(Box::new(bridge))
    } else {
        log::set_max_level(console.max(file_level));
        log::set_boxed_logger(Box::new(logger))
    };
    started.map_err(|e| StartError::new(format!("cannot start logging: {e}")))?;
    // Last: the local time offset above is only found while the process has one thread.
    if let Some((_, log_file)) = file {
        log_file
            .start_writer()
            .map_err(|e| StartError::new(format!("cannot start logging: {e}")))?;
    }
    Ok(())
}

/// Reopens the log file at its path (after a rotation, or if it was deleted).
pub fn reopen() -> io::Result<()> {
    match FILE.get() {
        Some(file) => file.reopen(),
        None => Ok(()),
    }
}

/// Writes out the lines the log file holds (before the process exits).
pub fn flush() {
    log::logger().flush();
}

/// What is wrong with the log file, if writing it fails.
pub fn trouble() -> Option<String> {
    FILE.get().and_then(LogFile::trouble)
}

/// The last line of defence: control characters in a formatted message are escaped, so a name
/// that reached a message unescaped still cannot start a new line or move the cursor.
struct Escaping(Box<CombinedLogger>);

impl Log for Escaping {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.0.enabled(record.metadata()) {
            return;
        }
        thread_local! {
            static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        LINE.with(|line| {
            let mut text = line.borrow_mut();
            text.clear();
            // The pair the line is about, when one process runs several (crate::label).
            crate::label::prefix(&mut text);
            let _ = std::fmt::Write::write_fmt(&mut *text, *record.args());
            self.forward(record, &text);
        });
        if record.level() <= Level::Warn {
            self.flush();
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

impl Escaping {
    fn forward(&self, record: &Record, text: &str) {
        let safe = if crate::log_json::on() {
            std::borrow::Cow::Owned(crate::log_json::line(record.level(), text))
        } else {
            controls(text)
        };
        self.0.log(
            &Record::builder()
                .args(format_args!("{safe}"))
                .metadata(record.metadata().clone())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }
}

/// The log file: appended to in whole lines (so a line is never split, even if the process
/// dies), gathered for at most [`LOG_FLUSH`] or [`FLUSH_BYTES`] by a thread of its own that sleeps
/// while there is nothing to write; reopened on demand.
#[derive(Clone)]
struct LogFile(Arc<Shared>);

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
    fn open(path: &Path) -> io::Result<LogFile> {
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
    fn start_writer(&self) -> io::Result<()> {
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

    fn reopen(&self) -> io::Result<()> {
        let mut inner = crate::lock(&self.0.inner);
        inner.write_held();
        inner.file = open_append(&inner.dir, &inner.name)?;
        Ok(())
    }

    fn trouble(&self) -> Option<String> {
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
