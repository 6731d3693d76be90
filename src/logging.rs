//! Logging to the console and to the log file through `simplelog`, one line per record with a
//! millisecond timestamp and a level. Every line passes a last filter that escapes control
//! characters, so no name can forge a line. The log file is reopened on SIGHUP (and re-created
//! when it was deleted); a log that cannot be written is said once on the console, and again
//! when it recovers.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::MultiProgress;
use indicatif_log_bridge::LogWrapper;
use log::{LevelFilter, Log, Metadata, Record};
use simplelog::{
    format_description, ColorChoice, CombinedLogger, ConfigBuilder, LevelPadding, SharedLogger,
    TermLogger, TerminalMode, WriteLogger,
};

use crate::dir::Dir;
use crate::error::StartError;
use crate::escape::{controls, esc};

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
/// console and file loggers. Must be called before any thread is spawned, because finding the
/// local UTC offset is only sound in a single-threaded process.
pub fn init(
    log_path: &Path,
    console: LevelFilter,
    file_level: LevelFilter,
) -> Result<Made, StartError> {
    let mut made = Made::default();
    let cannot =
        |e: io::Error| StartError::new(format!("cannot open log file {}: {e}", esc(log_path)));
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
    let config = builder.build();

    let terminal = io::stderr().is_terminal();
    let loggers: Vec<Box<dyn SharedLogger>> = vec![
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
        ),
        WriteLogger::new(file_level, config, log_file),
    ];
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
    Ok(made)
}

/// Reopens the log file at its path (after a rotation, or if it was deleted).
pub fn reopen() -> io::Result<()> {
    match FILE.get() {
        Some(file) => file.reopen(),
        None => Ok(()),
    }
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
            let _ = std::fmt::Write::write_fmt(&mut *text, *record.args());
            self.forward(record, &text);
        });
    }

    fn flush(&self) {
        self.0.flush();
    }
}

impl Escaping {
    fn forward(&self, record: &Record, text: &str) {
        let safe = controls(text);
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

/// The log file: appended to one whole line at a time (one `write` per line, so a line is
/// never split even if the process dies between two records), reopened on demand.
#[derive(Clone)]
struct LogFile(Arc<Mutex<Inner>>);

struct Inner {
    path: PathBuf,
    /// The log's directory, held open: the file is reopened in it, never through a path that a
    /// symlink swapped in could redirect.
    dir: Dir,
    name: OsString,
    file: File,
    line: Vec<u8>,
    /// Why the last write failed; cleared (and said) when one works again.
    failing: Option<String>,
    /// When the file was last checked for having been deleted.
    checked: Instant,
}

/// How often the log file is checked for having been deleted under foldersync.
const DELETED_CHECK: Duration = Duration::from_secs(1);

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
        Ok(LogFile(Arc::new(Mutex::new(Inner {
            path: path.to_path_buf(),
            dir,
            name: name.to_os_string(),
            file,
            line: Vec::new(),
            failing: None,
            checked: Instant::now(),
        }))))
    }

    fn reopen(&self) -> io::Result<()> {
        let mut inner = crate::lock(&self.0);
        inner.file = open_append(&inner.dir, &inner.name)?;
        Ok(())
    }

    fn trouble(&self) -> Option<String> {
        crate::lock(&self.0).failing.clone()
    }
}

impl Inner {
    fn write_line(&mut self) {
        if self.checked.elapsed() >= DELETED_CHECK {
            self.checked = Instant::now();
            if self.file.metadata().is_ok_and(|m| m.nlink() == 0) {
                if let Ok(file) = open_append(&self.dir, &self.name) {
                    self.file = file;
                }
            }
        }
        let result = self.file.write_all(&self.line);
        self.line.clear();
        match (result, &self.failing) {
            (Err(e), None) => {
                let why = e.to_string();
                eprintln!(
                    "foldersync: cannot write log file {}: {why}; log lines are lost until it works again",
                    esc(&self.path)
                );
                self.failing = Some(format!("cannot write log file {}: {why}", esc(&self.path)));
            }
            (Ok(()), Some(_)) => {
                eprintln!("foldersync: log file {} is written again", esc(&self.path));
                self.failing = None;
            }
            _ => {}
        }
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = crate::lock(&self.0);
        for part in buf.split_inclusive(|b| *b == b'\n') {
            inner.line.extend_from_slice(part);
            if part.ends_with(b"\n") {
                inner.write_line();
            }
        }
        // A failure is reported above and in the status file; simplelog must not stop logging.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut inner = crate::lock(&self.0);
        if !inner.line.is_empty() {
            inner.write_line();
        }
        Ok(())
    }
}
