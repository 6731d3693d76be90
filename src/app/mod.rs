//! The program: validate the command line, open the roots, make what must exist (REPLICA, the
//! backup directory, the log file), then hand over to the run loop. A refused start-up exits 2
//! and leaves nothing behind: what start-up made is removed again.

mod guard;

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
use crate::remote::{Remote, Settings};
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
    let stop = Stop::new();
    let mut target = match &config.remote {
        Some(spec) => {
            let remote = Remote::connect(
                spec.clone(),
                &config.source,
                remote_settings(&config),
                stop.clone(),
            )?;
            // This very machine under another name: its local rules, before anything is made.
            if let Some(here) = remote.on_this_machine() {
                config.check_on_this_machine(here)?;
            }
            Target::Remote(Box::new(remote))
        }
        None => Target::Local(Box::new(local(&config, &src, &stop)?)),
    };
    if let Some(why) = source::refuse_empty(
        &src,
        &config.own,
        &config.filter,
        config.allow_empty_source,
        target.replica_ref(),
    ) {
        return Err(StartError::new(why));
    }
    let kept = guard::check(&config, &src, target.replica())?;

    // Opened before anything is made: a status file that cannot be used refuses the start.
    let status = match &config.status_file {
        None => None,
        Some(path) => Some(
            StatusFile::new(
                path.clone(),
                Status::new(
                    &config.source,
                    &target.replica_ref().describe(),
                    config.interval,
                    State::Passing,
                ),
                config.own.clone(),
            )
            .map_err(|e| StartError::new(format!("cannot use status file {}: {e}", esc(path))))?,
        ),
    };
    let mut made = Made::default();
    let made_root = match make(&config, &mut target, &mut made) {
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
    match &mut target {
        Target::Local(mirror) => mirror.probe(),
        Target::Remote(remote) => remote.try_pair(),
    }

    let report = Report::new(status, config.watch);
    let source = Source::new(
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

/// Where the mirror writes: a directory here, or one on another machine.
enum Target {
    Local(Box<Mirror>),
    Remote(Box<Remote>),
}

impl Target {
    fn replica(&mut self) -> &mut dyn Replica {
        match self {
            Target::Local(m) => m.as_mut(),
            Target::Remote(r) => r.as_mut(),
        }
    }

    fn replica_ref(&self) -> &dyn Replica {
        match self {
            Target::Local(m) => m.as_ref(),
            Target::Remote(r) => r.as_ref(),
        }
    }
}

/// A local REPLICA: opened if it exists (and not SOURCE itself).
fn local(config: &Config, src: &Root, stop: &Stop) -> Result<Mirror, StartError> {
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
    Ok(Mirror::new(
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
            allow_empty_source: config.allow_empty_source,
            hard_links: config.hard_links,
            xattrs: config.xattrs,
            fsync: config.fsync,
            stamp_after_rename: false,
            ctimes: true,
            hold: config.debounce * 2,
        },
    ))
}

fn remote_settings(config: &Config) -> Settings {
    Settings {
        rsh: config.rsh.clone(),
        dry_run: config.dry_run,
        max_delete: config.max_delete,
        allow_empty_source: config.allow_empty_source,
        checksum: config.rules.checksum,
        owner: config.rules.owner,
        hard_links: config.hard_links,
        xattrs: config.xattrs,
        fsync: config.fsync,
        window: config.rules.window,
        backup_dir: config
            .backup_dir
            .as_ref()
            .map(|b| b.to_string_lossy().into_owned()),
        filter: config.filter.clone(),
        own: config.own.clone(),
        hold: crate::mirror::orphans::HOLD + config.debounce * 2,
        settle: config.debounce * 2,
    }
}

/// Makes what must exist before the mirror starts: REPLICA and the backup directory (not in
/// a dry run), and the log file. Everything made here is recorded in `made`; a remote root is
/// made last, so nothing fails after it. Returns whether REPLICA was made.
fn make(config: &Config, target: &mut Target, made: &mut Made) -> Result<bool, StartError> {
    let mirror = match target {
        Target::Local(mirror) => mirror,
        Target::Remote(remote) => {
            init_log(config, made)?;
            return remote.make_root();
        }
    };
    let mut made_root = false;
    if config.create_replica && !config.dry_run {
        // Private until the first pass gives it SOURCE's root's mode: a private SOURCE's files
        // must not be readable through it meanwhile, nor after a pass cut short.
        let root = make_dirs(&config.replica, made, 0o755, 0o700).map_err(|e| {
            StartError::new(format!(
                "cannot create REPLICA {}: {e}",
                esc(&config.replica)
            ))
        })?;
        mirror.set_root(root);
        made_root = true;
    }
    if let Some(path) = config.backup_dir.as_ref().filter(|_| !config.dry_run) {
        // Private, parents and all: what it keeps came from directories that may have been.
        let root = make_dirs(path, made, 0o700, 0o700).map_err(|e| {
            StartError::new(format!("cannot create backup directory {}: {e}", esc(path)))
        })?;
        mirror.set_backup(Backup::new(root, config.retention));
    }
    init_log(config, made)?;
    Ok(made_root || (config.create_replica && config.dry_run))
}

fn init_log(config: &Config, made: &mut Made) -> Result<(), StartError> {
    let log = crate::logging::init(&config.log_path, config.console_level, config.file_level)?;
    made.0.extend(log.dirs.into_iter().rev());
    made.1 = log.file;
    Ok(())
}

/// Makes the directory `path` (with permissions `mode`) and its missing parents (`parents`), one
/// component at a time beneath the deepest one that exists, never through a symlink; opens it.
fn make_dirs(path: &Path, made: &mut Made, parents: u32, mode: u32) -> io::Result<Root> {
    let mut base = path;
    while fs::symlink_metadata(base).is_err() {
        base = base.parent().unwrap_or(Path::new("/"));
    }
    let rest = path.strip_prefix(base).unwrap_or(Path::new(""));
    let mut dir = Dir::open(base)?;
    let mut at = base.to_path_buf();
    let last = rest.components().count();
    for (i, part) in rest.components().enumerate() {
        let name = part.as_os_str();
        at.push(name);
        match dir.make_dir(name, if i + 1 == last { mode } else { parents }) {
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

fn started(config: &Config, replica: &dyn Replica, made_root: bool) {
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
        replica.describe(),
    );
    if made_root {
        let marker = if config.dry_run { "[dry run] " } else { "" };
        info!("{marker}created REPLICA {}", replica.describe());
    }
}
