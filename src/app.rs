//! The program: validate the command line, start logging, create REPLICA, then hand over to the
//! run loop.

use std::fs;
use std::process::ExitCode;

use clap::Parser;
use log::{error, info};

use crate::cli::{Args, Command};
use crate::config::Config;
use crate::duration;
use crate::error::StartError;
use crate::exit;
use crate::mirror::{Mirror, Options};
use crate::run::{self, Runner};
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
    if let Some(Command::Status { path }) = &args.command {
        return ExitCode::from(crate::status::print(path));
    }
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
    crate::logging::init(&config.log_path, config.console_level, config.file_level)?;
    if config.create_replica && !config.dry_run {
        fs::create_dir_all(&config.replica).map_err(|e| {
            StartError::new(format!(
                "cannot create REPLICA {}: {e}",
                config.replica.display()
            ))
        })?;
    }
    let root = run::root_id(&config.source, true).map_err(StartError::new)?;
    let stop = Stop::new();
    let stop_rx = stop::install(&stop)?;

    let mode = if config.once {
        "one pass".to_string()
    } else if config.watch {
        format!(
            "watching, debounce {}, full pass every {}",
            duration::show(config.debounce),
            duration::show(config.interval)
        )
    } else {
        format!(
            "periodic passes only, every {}",
            duration::show(config.interval)
        )
    };
    let mut mode = mode;
    if config.dry_run {
        mode.push_str(", dry run: nothing is changed");
    }
    if let Some(max) = config.max_delete {
        mode.push_str(&format!(", at most {max} removals at a time"));
    }
    info!(
        "foldersync {} started: SOURCE {} REPLICA {} ({mode})",
        env!("CARGO_PKG_VERSION"),
        config.source.display(),
        config.replica.display(),
    );
    if config.create_replica {
        let marker = if config.dry_run { "[dry run] " } else { "" };
        info!("{marker}created REPLICA {}", config.replica.display());
    }

    let mirror = Mirror::new(
        config.source.clone(),
        config.replica.clone(),
        stop.clone(),
        Options {
            filter: config.filter.clone(),
            checksum: config.checksum,
            backup: config.backup_dir.clone(),
            requeue: config.watch,
            dry_run: config.dry_run,
            max_delete: config.max_delete,
        },
    );
    Ok(Runner::new(&config, &mirror, &stop, stop_rx, root).run())
}
