//! The program: validate the command line, open the roots, make what must exist (REPLICA, the
//! backup directory, the log file), then hand over to the run loop. A refused start-up exits 2
//! and leaves nothing behind: what start-up made is removed again.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use log::info;

use crate::cli::{Args, Command};
use crate::config::Config;
use crate::daemon::report::Report;
use crate::daemon::source::{self, Source};
use crate::daemon::Daemon;
use crate::dir::{self, Dir};
use crate::duration;
use crate::error::StartError;
use crate::escape::esc;
use crate::exit;
use crate::mirror::backup::Backup;
use crate::mirror::{Mirror, Options};
use crate::replica::Replica;
use crate::root::Root;
use crate::status::{State, Status, StatusFile};
use crate::stop::{self, Stop};

/// Runs foldersync with the process's command line and returns its exit status.
pub fn main() -> ExitCode {
    crate::dir::read_umask();
    if let Err(e) = stop::hold_signals() {
        eprintln!("foldersync: error: {e}");
        return ExitCode::from(exit::BAD_INPUT);
    }
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // --help and --version print and exit 0; usage errors exit 2, their text escaped
            // (it may quote what was typed).
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(exit::SUCCESS);
            }
            for line in e.to_string().lines() {
                eprintln!("{}", crate::escape::controls(line));
            }
            return ExitCode::from(exit::BAD_INPUT);
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
                "foldersync: error: {}",
                crate::escape::controls(&e.to_string())
            );
            ExitCode::from(exit::BAD_INPUT)
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

fn run(args: Args) -> Result<u8, StartError> {
    let config = Config::from_args(args)?;
    let src = Root::open(&config.source)
        .map_err(|e| StartError::new(format!("cannot open SOURCE {}: {e}", esc(&config.source))))?;
    let existing = if config.create_replica {
        None
    } else {
        let root = Root::open(&config.replica).map_err(|e| {
            StartError::new(format!("cannot open REPLICA {}: {e}", esc(&config.replica)))
        })?;
        if root.id == src.id {
            return Err(StartError::new(format!(
                "SOURCE {} and REPLICA {} are the same directory",
                esc(&config.source),
                esc(&config.replica)
            )));
        }
        Some(root)
    };
    let stop = Stop::new();
    let mut mirror = Mirror::new(
        existing,
        config.replica.clone(),
        None,
        stop.clone(),
        Options {
            filter: config.filter.clone(),
            own: config.own.clone(),
            rules: config.rules,
            requeue: config.watch,
            dry_run: config.dry_run,
            max_delete: config.max_delete,
            hard_links: config.hard_links,
            xattrs: config.xattrs,
            fsync: config.fsync,
            stamp_after_rename: false,
            hold: config.debounce * 2,
        },
    );
    if let Some(why) = source::refuse_empty(
        &src,
        &config.own,
        &config.filter,
        config.allow_empty_source,
        &mirror,
    ) {
        return Err(StartError::new(why));
    }

    // Opened before anything is made: a status file that cannot be used refuses the start.
    let status = match &config.status_file {
        None => None,
        Some(path) => Some(
            StatusFile::new(
                path.clone(),
                Status::new(
                    &config.source,
                    &mirror.describe(),
                    config.interval,
                    State::Passing,
                ),
                config.own.clone(),
            )
            .map_err(|e| StartError::new(format!("cannot use status file {}: {e}", esc(path))))?,
        ),
    };
    let mut made = Made::default();
    match make(&config, &mut mirror, &mut made) {
        Ok(()) => {}
        Err(e) => {
            made.undo();
            return Err(e);
        }
    }
    let stop_rx = stop::install(&stop)?;
    started(&config, &mirror);
    mirror.probe();

    let report = Report::new(status, config.watch);
    let source = Source::new(
        src,
        config.allow_empty_source,
        config.own.clone(),
        config.filter.clone(),
        config.watch,
    );
    Ok(Daemon::new(&config, &mut mirror, source, report, stop, stop_rx).run())
}

/// Makes what must exist before the mirror starts: REPLICA and the backup directory (not in
/// a dry run), then the log file. Everything made is recorded in `made`.
fn make(config: &Config, mirror: &mut Mirror, made: &mut Made) -> Result<(), StartError> {
    if config.create_replica && !config.dry_run {
        let root = make_dirs(&config.replica, made).map_err(|e| {
            StartError::new(format!(
                "cannot create REPLICA {}: {e}",
                esc(&config.replica)
            ))
        })?;
        mirror.set_root(root);
    }
    if let Some(path) = config.backup_dir.as_ref().filter(|_| !config.dry_run) {
        let root = make_dirs(path, made).map_err(|e| {
            StartError::new(format!("cannot create backup directory {}: {e}", esc(path)))
        })?;
        mirror.set_backup(Backup::new(root));
    }
    let log = crate::logging::init(&config.log_path, config.console_level, config.file_level)?;
    made.0.extend(log.dirs.into_iter().rev());
    made.1 = log.file;
    Ok(())
}

/// Makes the directory `path` and its missing parents, one component at a time beneath the
/// deepest one that exists, never through a symlink; opens it.
fn make_dirs(path: &Path, made: &mut Made) -> io::Result<Root> {
    let mut base = path;
    while fs::symlink_metadata(base).is_err() {
        base = base.parent().unwrap_or(Path::new("/"));
    }
    let rest = path.strip_prefix(base).unwrap_or(Path::new(""));
    let mut dir = Dir::open(base)?;
    let mut at = base.to_path_buf();
    for part in rest.components() {
        let name = part.as_os_str();
        at.push(name);
        match dir.make_dir(name, 0o755) {
            Ok(()) => made.0.push(at.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        dir = dir.open_dir(name).map_err(|e| {
            if dir::is_not_a_dir(&e) {
                io::Error::new(io::ErrorKind::NotADirectory, "a symlink took its place")
            } else {
                e
            }
        })?;
    }
    Root::open(path)
}

fn started(config: &Config, mirror: &Mirror) {
    let mut mode = if config.once {
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
        mirror.describe(),
    );
    if config.create_replica {
        let marker = if config.dry_run { "[dry run] " } else { "" };
        info!("{marker}created REPLICA {}", esc(&config.replica));
    }
}
