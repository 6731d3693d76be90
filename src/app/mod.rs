//! The program: validate the command line, open the roots, make what must exist (REPLICA, the
//! backup directory, the log file), then hand over to the run loop. A refused start-up exits 2
//! and leaves nothing behind: what start-up made is removed again.

mod engine;
mod guard;
mod many;
mod pairs;
mod reload;

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
    let result = match &args.config {
        Some(path) => many::run(path, &args),
        None => run(args),
    };
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
    let stop = Stop::new();
    let mut opened = open(&config, &stop)?;
    let mut made = Made::default();
    let made_root = match make(&config, &mut opened, &mut made, true) {
        Ok(made_root) => made_root,
        Err(e) => {
            made.undo();
            return Err(e);
        }
    };
    let stop_rx = stop::install(&stop, None)?;
    Ok(launch(&config, opened, made_root, stop, stop_rx, None))
}

/// One pair opened and guarded, before anything is made for it.
struct Opened {
    src: Root,
    target: engine::Engine,
    kept: guard::Kept,
    status: Option<StatusFile>,
    /// `--metrics`' socket, bound before anything is made (an address in use refuses the start).
    metrics: Option<std::net::TcpListener>,
    /// Its server, started once the log is.
    served: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

/// Opens SOURCE and REPLICA, refuses an empty SOURCE, runs the guards and opens the status
/// file: every start-up check that makes nothing.
fn open(config: &Config, stop: &Stop) -> Result<Opened, StartError> {
    let src = Root::open(&config.source)
        .map_err(|e| StartError::new(format!("cannot open SOURCE {}: {e}", esc(&config.source))))?;
    let mut target = engine::open(config, &src, stop)?;
    if let Some(why) = source::refuse_empty(
        &src,
        &config.own,
        &config.filter,
        config.allow_empty_source,
        target.replica_ref(),
    ) {
        return Err(StartError::new(why));
    }
    let kept = guard::check(config, &src, target.replica())?;

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
    let metrics = config.metrics.map(crate::metrics::bind).transpose()?;
    Ok(Opened {
        src,
        target,
        kept,
        status,
        metrics,
        served: None,
    })
}

/// Makes what the pair needs (REPLICA, the backup directory, and the log if `log`) and takes
/// REPLICA's lock. Returns whether REPLICA was made; what was made is in `made`.
fn make(
    config: &Config,
    opened: &mut Opened,
    made: &mut Made,
    log: bool,
) -> Result<bool, StartError> {
    let made_root = engine::make(config, &mut opened.target, made, log)?;
    guard::lock_made(config, &mut opened.kept, opened.target.lock_identity())?;
    // Its thread after the log's start (see logging::init).
    opened.served = opened
        .metrics
        .take()
        .map(crate::metrics::serve)
        .transpose()?;
    Ok(made_root)
}

/// Runs the pair's daemon until it ends; returns its exit status.
fn launch(
    config: &Config,
    opened: Opened,
    made_root: bool,
    stop: Stop,
    stop_rx: crossbeam_channel::Receiver<()>,
    tap: Option<crate::watch::shared::Tap>,
) -> Exit {
    let Opened {
        src,
        mut target,
        kept,
        status,
        served,
        ..
    } = opened;
    started(config, target.replica_ref(), made_root);
    for warning in &kept.warnings {
        log::warn!("{warning}");
    }
    target.begin();

    let report = Report::new(status, config.watch).with_metrics(served);
    let source = SourceCheck::new(
        src,
        config.allow_empty_source,
        config.own.clone(),
        config.filter.clone(),
        config.watch,
    );
    Daemon::new(config, target.replica(), source, report, stop, stop_rx)
        .with_state(kept.state, kept.record, kept.lock)
        .with_tap(tap)
        .run()
}

fn init_log(config: &Config, made: &mut Made) -> Result<(), StartError> {
    let log = crate::logging::init(
        &config.log_path,
        config.console_level,
        config.file_level,
        config.json_log,
    )?;
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
