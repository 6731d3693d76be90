//! Turns the raw command line into a validated [`Config`]: resolves paths, compares them pairwise
//! (SOURCE, REPLICA, the backup directory, the log and the status file, both ways), refuses
//! dangerous or impossible combinations, and builds the one definition of foldersync's own
//! files. Nothing on disk is created, changed or removed here.

mod checks;
pub mod file;
mod here;
pub mod mounts;
mod parts;
pub mod paths;

use std::path::PathBuf;
use std::sync::Arc;

use crate::address::Spec;
use crate::cli::Args;
use crate::error::StartError;
use crate::filter::Filter;
use crate::own::OwnFiles;
use crate::rules::Rules;

use parts::{own_files, Files, Roots};

/// Everything the mirror needs, checked and resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// SOURCE, absolute with symlinks resolved.
    pub source: PathBuf,
    /// REPLICA, absolute with symlinks resolved (as far as it exists); for a remote one, how
    /// it was written (`host:path`).
    pub replica: PathBuf,
    /// A REPLICA on another machine, and the ssh command to reach it.
    pub remote: Option<Spec>,
    pub rsh: String,
    /// Whether REPLICA has to be created before the first pass.
    pub create_replica: bool,
    /// The log file, absolute.
    pub log_path: PathBuf,
    /// `--debounce` and `--interval`, and every delay derived from them.
    pub timing: crate::timing::Timing,
    pub once: bool,
    /// Watch SOURCE between passes (not with `--once` or `--no-watch`).
    pub watch: bool,
    pub dry_run: bool,
    pub max_delete: Option<u64>,
    pub allow_empty_source: bool,
    /// The first pass into a directory not mirrored into before may remove most of it.
    pub adopt_replica: bool,
    /// Where foldersync remembers what it mirrored, if anywhere.
    pub state_dir: Option<PathBuf>,
    /// SOURCE and REPLICA as given (absolute, symlinks not resolved; a remote REPLICA as
    /// written): what names the pair's record.
    pub given: (PathBuf, PathBuf),
    /// Exclude patterns.
    pub filter: Filter,
    /// foldersync's own files: the log, the status file, the backup directory, temporary files.
    pub own: Arc<OwnFiles>,
    /// How files are compared.
    pub rules: Rules,
    pub hard_links: bool,
    pub xattrs: bool,
    pub fsync: bool,
    /// Where removed and overwritten files go (absolute), if anywhere.
    pub backup_dir: Option<PathBuf>,
    /// How many versions of a path, and for how long, the backup directory keeps.
    pub retention: crate::backup::Retention,
    /// Where the status document is kept (absolute), if anywhere.
    pub status_file: Option<PathBuf>,
    /// Where the metrics are served (`--metrics`), if anywhere.
    pub metrics: Option<std::net::SocketAddr>,
    /// The console's log level (-v, -q) and the log file's (--log-level).
    pub console_level: log::LevelFilter,
    pub file_level: log::LevelFilter,
    /// Log lines as JSON objects (`--log-format json`).
    pub json_log: bool,
}

fn bad(msg: String) -> StartError {
    StartError::new(msg)
}

impl Config {
    pub fn from_args(args: Args) -> Result<Config, StartError> {
        let roots = Roots::check(&args)?;
        let files = Files::check(&args, &roots)?;
        let (own, state_dir) = own_files(&args, &roots, &files)?;
        let Roots {
            source,
            replica,
            remote,
            create_replica,
            given,
            ..
        } = roots;
        let Files {
            log_path,
            backup_dir,
            retention,
            status_file,
        } = files;
        let filter = Filter::new(
            &source,
            &args.exclude,
            &args.exclude_from,
            args.delete_excluded,
        )?;
        let console_level = args.console_level();
        Ok(Config {
            source,
            replica,
            remote,
            rsh: args.rsh.clone().unwrap_or_else(|| "ssh".into()),
            create_replica,
            log_path,
            timing: crate::timing::Timing::new(args.debounce, args.interval),
            once: args.once,
            watch: !args.once && !args.no_watch,
            dry_run: args.dry_run,
            max_delete: args.max_delete,
            allow_empty_source: args.allow_empty_source,
            adopt_replica: args.adopt_replica,
            state_dir,
            given,
            console_level,
            file_level: args.log_level,
            json_log: args.log_format == crate::cli::LogFormat::Json,
            filter,
            own: Arc::new(own),
            rules: Rules {
                checksum: args.checksum,
                owner: rustix::process::geteuid().is_root(),
                perms: true,
                window: args.modify_window,
                acls: !args.no_xattrs,
            },
            hard_links: !args.no_hard_links,
            xattrs: !args.no_xattrs,
            fsync: args.fsync,
            backup_dir,
            retention,
            status_file,
            metrics: args.metrics,
        })
    }
}
