//! Logging to the console and to the log file through `simplelog`, one line per record with a
//! millisecond timestamp and a level (on a console that is the systemd journal, a priority
//! prefix instead: see [`crate::journal`]). Every line passes a last filter that escapes control
//! characters, so no name can forge a line. The log file is reopened on SIGHUP (and re-created
//! when it was deleted); a log that cannot be written is said once on the console, and again
//! when it recovers. Lines reach the file within `timing::LOG_FLUSH` of being logged ([`file`]): they are gathered and
//! written together (a write per line cost a tenth of a small-file copy's CPU), at once for
//! warnings and errors, and before the process exits.

use std::fs;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use indicatif::MultiProgress;
use indicatif_log_bridge::LogWrapper;
use log::{Level, LevelFilter, Log, Metadata, Record};
use simplelog::{
    format_description, ColorChoice, CombinedLogger, ConfigBuilder, LevelPadding, SharedLogger,
    TermLogger, TerminalMode, WriteLogger,
};

use crate::error::StartError;
use crate::escape::{controls, esc};

mod file;
use file::LogFile;

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
