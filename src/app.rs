//! The program: validate the command line, start logging, then run passes until stopped.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use crossbeam_channel::{after, select};
use log::{error, info};

use crate::cli::Args;
use crate::config::Config;
use crate::duration;
use crate::error::StartError;
use crate::exit;
use crate::mirror::Mirror;
use crate::stats::Stats;
use crate::stop::{self, Stop};

/// Runs foldersync with the process's command line and returns its exit status.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // --help and --version print and exit 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::SUCCESS
            });
        }
    };
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if log::max_level() == log::LevelFilter::Off {
                eprintln!("foldersync: error: {e}");
            } else {
                error!("{e}");
            }
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}

fn run(args: Args) -> Result<u8, StartError> {
    let config = Config::from_args(args)?;
    crate::logging::init(&config.log_path)?;
    if config.create_replica {
        fs::create_dir_all(&config.replica).map_err(|e| {
            StartError::new(format!(
                "cannot create REPLICA {}: {e}",
                config.replica.display()
            ))
        })?;
    }
    let root_dev = fs::metadata(&config.source)
        .map_err(|e| {
            StartError::new(format!(
                "cannot access SOURCE {}: {e}",
                config.source.display()
            ))
        })?
        .dev();
    let stop = Stop::new();
    let stop_rx = stop::install(&stop)?;

    info!(
        "foldersync {} started: SOURCE {} REPLICA {} {}",
        env!("CARGO_PKG_VERSION"),
        config.source.display(),
        config.replica.display(),
        if config.once {
            "(one pass)".to_string()
        } else {
            format!("(full pass every {})", duration::show(config.interval))
        }
    );
    if config.create_replica {
        info!("created REPLICA {}", config.replica.display());
    }

    let mirror = Mirror::new(
        config.source.clone(),
        config.replica.clone(),
        config.log_in_source.clone(),
        stop.clone(),
    );
    let mut root = RootState::Ok;
    loop {
        let errors = pass(&mirror, root_dev, &mut root);
        if stop.is_set() {
            info!("stopped by user (Ctrl+C or SIGTERM)");
            return Ok(exit::SUCCESS);
        }
        if config.once {
            return Ok(if errors > 0 {
                exit::PASS_ERRORS
            } else {
                exit::SUCCESS
            });
        }
        // The interval runs from the end of one pass to the start of the next, so a pass that
        // takes longer than the interval never makes passes run back to back.
        select! {
            recv(stop_rx) -> _ => {
                info!("stopped by user (Ctrl+C or SIGTERM)");
                return Ok(exit::SUCCESS);
            }
            recv(after(config.interval)) -> _ => {}
        }
    }
}

/// Whether SOURCE was usable at the last look, so a lasting problem is logged once.
#[derive(Debug, PartialEq, Eq)]
enum RootState {
    Ok,
    Unavailable,
}

/// Runs one full pass, unless SOURCE is unavailable. Returns the number of errors.
fn pass(mirror: &Mirror, root_dev: u64, root: &mut RootState) -> u64 {
    if let Err(problem) = check_root(mirror, root_dev) {
        if *root == RootState::Ok {
            error!("{problem}; REPLICA is left untouched until SOURCE is back");
            *root = RootState::Unavailable;
        }
        return 1;
    }
    if *root == RootState::Unavailable {
        info!("SOURCE {} is back", mirror.source().display());
        *root = RootState::Ok;
    }
    let started = Instant::now();
    let stats = Stats::new();
    mirror.full_pass(&stats);
    let counts = stats.snapshot();
    info!("pass finished: {}", counts.summary(started.elapsed()));
    counts.errors
}

/// SOURCE must still be a readable directory on the device it was on at start-up: a vanished
/// source or an unmounted file system must never look like an empty tree.
fn check_root(mirror: &Mirror, root_dev: u64) -> Result<(), String> {
    let source = mirror.source();
    let meta = fs::metadata(source)
        .map_err(|e| format!("SOURCE {} is unavailable: {e}", source.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "SOURCE {} is no longer a directory",
            source.display()
        ));
    }
    if meta.dev() != root_dev {
        return Err(format!(
            "SOURCE {} is now on another device (was its file system unmounted?)",
            source.display()
        ));
    }
    fs::read_dir(source)
        .map(drop)
        .map_err(|e| format!("SOURCE {} is not readable: {e}", source.display()))
}
