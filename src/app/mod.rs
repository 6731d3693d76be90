//! The program: validate the command line, open the roots, make what must exist (REPLICA, the
//! backup directory, the log file), then hand over to the run loop. A refused start-up exits 2
//! and leaves nothing behind: what start-up made is removed again.

mod engine;
mod guard;

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use log::info;

use crate::cli::{Args, Command};
use crate::config::Config;
use crate::daemon::report::Report;
use crate::daemon::source::{self, SourceCheck};
use crate::daemon::Daemon;
use crate::duration;
use crate::error::StartError;
use crate::escape::esc;
use crate::exit::Exit;
use crate::replica::Replica;
use crate::root::Root;
use crate::status::{State, Status, StatusFile};
use crate::stop::{self, Stop};

/// Runs foldersync with the process's command line and returns its exit status.
pub fn main() -> ExitCode {
    crate::dir::read_umask();
    if let Err(e) = stop::hold_signals() {
        eprintln!("foldersync: error: {e}");
        return ExitCode::from(Exit::BadInput);
    }
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // --help and --version print and exit 0; usage errors exit 2, their text escaped
            // (it may quote what was typed).
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(Exit::Success);
            }
            for line in e.to_string().lines() {
                eprintln!("{}", crate::escape::controls(line));
            }
            return ExitCode::from(Exit::BadInput);
        }
    };
    if let Some(Command::Status { path }) = &args.command {
        return ExitCode::from(crate::status::print(path));
    }
    let result = run(args);
    crate::logging::flush();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!(
                "{}foldersync: error: {}",
                crate::journal::prefix(log::Level::Error),
                crate::escape::controls(&e.to_string())
            );
            ExitCode::from(Exit::BadInput)
        }
    }
}

/// What start-up made, so that a refused start-up can take it back.
#[derive(Default)]
struct Made(Vec<PathBuf>, Option<PathBuf>);

impl Made {
    fn undo(self) {
        if let Some(file) = self.1 {
            let _ = fs::remove_file(file);
        }
        for dir in self.0.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn run(args: Args) -> Result<Exit, StartError> {
    let config = Config::from_args(args)?;
    let src = Root::open(&config.source)
        .map_err(|e| StartError::new(format!("cannot open SOURCE {}: {e}", esc(&config.source))))?;
    let stop = Stop::new();
    let mut target = engine::open(&config, &src, &stop)?;
    if let Some(why) = source::refuse_empty(
        &src,
        &config.own,
        &config.filter,
        config.allow_empty_source,
        target.replica_ref(),
    ) {
        return Err(StartError::new(why));
    }
    let mut kept = guard::check(&config, &src, target.replica())?;

    // Opened before anything is made: a status file that cannot be used refuses the start.
    let status = match &config.status_file {
        None => None,
        Some(path) => Some(
            StatusFile::new(
                path.clone(),
                Status::new(
                    &config.source,
                    &target.replica_ref().describe(),
                    config.timing.interval,
                    State::Passing,
                ),
                config.own.clone(),
            )
            .map_err(|e| StartError::new(format!("cannot use status file {}: {e}", esc(path))))?,
        ),
    };
    let mut made = Made::default();
    let made_root = match engine::make(&config, &mut target, &mut made).and_then(|made_root| {
        guard::lock_made(&config, &mut kept, target.replica_ref()).map(|()| made_root)
    }) {
        Ok(made_root) => made_root,
        Err(e) => {
            made.undo();
            return Err(e);
        }
    };
    let stop_rx = stop::install(&stop)?;
    started(&config, target.replica_ref(), made_root);
    for warning in &kept.warnings {
        log::warn!("{warning}");
    }
    target.begin();

    let report = Report::new(status, config.watch);
    let source = SourceCheck::new(
        src,
        config.allow_empty_source,
        config.own.clone(),
        config.filter.clone(),
        config.watch,
    );
    Ok(
        Daemon::new(&config, target.replica(), source, report, stop, stop_rx)
            .with_state(kept.state, kept.record, kept.lock)
            .run(),
    )
}

fn init_log(config: &Config, made: &mut Made) -> Result<(), StartError> {
    let log = crate::logging::init(&config.log_path, config.console_level, config.file_level)?;
    made.0.extend(log.dirs.into_iter().rev());
    made.1 = log.file;
    Ok(())
}

fn started(config: &Config, replica: &dyn Replica, made_root: bool) {
    let mut mode = if config.once {
        "one pass".to_string()
    } else if config.watch {
        format!(
            "watching, debounce {}, full pass every {}",
            duration::show(config.timing.debounce),
            duration::show(config.timing.interval)
        )
    } else {
        format!(
            "periodic passes only, every {}",
            duration::show(config.timing.interval)
        )
    };
    if config.dry_run {
        mode.push_str(", dry run: nothing is changed");
    }
    if let Some(max) = config.max_delete {
        mode.push_str(&format!(", at most {max} removals at a time"));
    }
    info!(
        "foldersync {} started: SOURCE {} REPLICA {} ({mode})",
        env!("CARGO_PKG_VERSION"),
        esc(&config.source),
        replica.describe(),
    );
    if made_root {
        let marker = if config.dry_run { "[dry run] " } else { "" };
        info!("{marker}created REPLICA {}", replica.describe());
    }
}
