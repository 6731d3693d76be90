//! Logging to the console and to the log file through `simplelog`, one line per event with a
//! millisecond timestamp and a level.

use std::fs::{self, OpenOptions};
use std::io::{IsTerminal, LineWriter};
use std::path::Path;

use std::sync::OnceLock;

use indicatif::MultiProgress;
use indicatif_log_bridge::LogWrapper;
use log::LevelFilter;
use simplelog::{
    format_description, ColorChoice, CombinedLogger, ConfigBuilder, LevelPadding, SharedLogger,
    TermLogger, TerminalMode, WriteLogger,
};

use crate::error::StartError;

static PROGRESS: OnceLock<MultiProgress> = OnceLock::new();

/// Where progress bars go, when stderr is a terminal.
pub fn progress() -> Option<&'static MultiProgress> {
    PROGRESS.get()
}

/// Opens the log file for appending (creating it and its parent directories) and installs the
/// console and file loggers. Must be called before any thread is spawned, because finding the
/// local UTC offset is only sound in a single-threaded process.
pub fn init(
    log_path: &Path,
    console: LevelFilter,
    file_level: LevelFilter,
) -> Result<(), StartError> {
    let cannot = |e: std::io::Error| {
        StartError::new(format!("cannot open log file {}: {e}", log_path.display()))
    };
    if let Some(parent) = log_path.parent() {
        fs::create_dir_all(parent).map_err(cannot)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(cannot)?;

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

    // A LineWriter turns simplelog's several small writes per record into one write per line, so
    // a line is never split in the file even if the process dies between two records.
    let loggers: Vec<Box<dyn SharedLogger>> = vec![
        TermLogger::new(
            console,
            config.clone(),
            TerminalMode::Stderr,
            // termcolor's Auto does not look at whether stderr is a terminal.
            if std::io::stderr().is_terminal() {
                ColorChoice::Auto
            } else {
                ColorChoice::Never
            },
        ),
        WriteLogger::new(file_level, config, LineWriter::new(file)),
    ];
    let logger = CombinedLogger::new(loggers);
    let started = if std::io::stderr().is_terminal() {
        // On a terminal, log lines are written around the progress line, never through it.
        let multi = MultiProgress::new();
        let _ = PROGRESS.set(multi.clone());
        LogWrapper::new(multi, logger).try_init()
    } else {
        log::set_max_level(console.max(file_level));
        log::set_boxed_logger(logger)
    };
    started.map_err(|e| StartError::new(format!("cannot start logging: {e}")))
}
