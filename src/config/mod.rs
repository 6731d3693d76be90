//! Turns the raw command line into a validated [`Config`]: resolves paths, compares them pairwise
//! (SOURCE, REPLICA, the backup directory, the log and the status file, both ways), refuses
//! dangerous or impossible combinations, and builds the one definition of foldersync's own
//! files. Nothing on disk is created, changed or removed here.

mod here;
pub mod mounts;
pub mod paths;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::Args;
use crate::dir;
use crate::error::StartError;
use crate::escape::esc;
use crate::filter::Filter;
use crate::mirror::plan::Rules;
use crate::own::OwnFiles;
use crate::remote::spec::{self, Spec};

use paths::{resolve, within};

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
    pub interval: Duration,
    pub once: bool,
    /// Watch SOURCE between passes (not with `--once` or `--no-watch`).
    pub watch: bool,
    pub debounce: Duration,
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
    pub retention: crate::mirror::backup::Retention,
    /// Where the status document is kept (absolute), if anywhere.
    pub status_file: Option<PathBuf>,
    /// The console's log level (-v, -q) and the log file's (--log-level).
    pub console_level: log::LevelFilter,
    pub file_level: log::LevelFilter,
}

fn bad(msg: String) -> StartError {
    StartError::new(msg)
}

impl Config {
    pub fn from_args(args: Args) -> Result<Config, StartError> {
        let console_level = args.console_level();
        let (Some(source_arg), Some(replica_arg)) = (args.source.clone(), args.replica.clone())
        else {
            return Err(bad("SOURCE and REPLICA are both needed".into()));
        };
        let source = check_source(&source_arg)?;
        let remote = match spec::parse(replica_arg.as_os_str()) {
            None => None,
            Some(Ok(spec)) => Some(spec),
            Some(Err(e)) => return Err(bad(e)),
        };
        if remote.is_some() && args.modify_window.subsec_nanos() != 0 {
            return Err(bad(format!(
                "--modify-window {}: with a remote REPLICA it is rsync's, which takes whole \
                 seconds",
                args.modify_window.as_secs_f64()
            )));
        }
        if remote.is_none() && args.rsh.is_some() {
            return Err(bad(
                "--rsh applies to a remote REPLICA ([USER@]HOST:PATH) only".into(),
            ));
        }
        let (replica, create_replica) = match &remote {
            Some(spec) => (PathBuf::from(spec.to_string()), false),
            None => check_replica(&replica_arg)?,
        };
        let (src_shown, rep_shown) = (esc(&source_arg), esc(&replica_arg));
        if remote.is_none() {
            check_apart(&source, &replica, &src_shown, &rep_shown)?;
        }
        // A remote REPLICA holds none of the local files below.
        let local_replica = remote.is_none().then_some(replica.as_path());
        let in_replica = |path: &Path| local_replica.is_some_and(|r| within(path, r));

        let log_path = check_file("log file", &args.log_path)?;
        if in_replica(&log_path) {
            return Err(bad(format!(
                "log file {} is inside REPLICA {rep_shown}: the mirror would delete it",
                esc(&args.log_path)
            )));
        }

        let backup_dir = match (&args.backup_dir, &remote) {
            (None, _) => None,
            (Some(arg), Some(_)) => Some(check_remote_backup(arg)?),
            (Some(arg), None) => Some(check_backup(arg, &source, &replica)?),
        };
        if let Some(backup) = backup_dir.as_ref().filter(|_| remote.is_none()) {
            if within(&log_path, backup) {
                return Err(bad(format!(
                    "log file {} is inside the backup directory",
                    esc(&args.log_path)
                )));
            }
        }
        let retention = crate::mirror::backup::Retention {
            versions: (args.backup_versions > 0).then_some(args.backup_versions),
            max_age: args.backup_max_age,
        };
        let retention_given = args.backup_versions != 10 || args.backup_max_age.is_some();
        if retention_given && (remote.is_some() || backup_dir.is_none()) {
            return Err(bad(
                "--backup-versions and --backup-max-age apply to a local --backup-dir only".into(),
            ));
        }
        let status_file = match &args.status_file {
            None => None,
            Some(arg) => {
                let path = check_status(arg)?;
                if in_replica(&path) {
                    return Err(bad(format!(
                        "status file {} is inside REPLICA {rep_shown}: the mirror would delete it",
                        esc(arg)
                    )));
                }
                if path == log_path {
                    return Err(bad(format!("status file {} is the log file", esc(arg))));
                }
                if remote.is_none() && backup_dir.as_ref().is_some_and(|b| within(&path, b)) {
                    return Err(bad(format!(
                        "status file {} is inside the backup directory",
                        esc(arg)
                    )));
                }
                Some(path)
            }
        };

        // Found by where they really are, so a bind mount of SOURCE or REPLICA cannot disguise
        // them.
        let own = OwnFiles::new(
            [Some(&log_path), status_file.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|p| paths::relative(p, &source))
                .collect(),
            // A remote REPLICA's backup directory is placed by the remote side itself (see
            // remote::script::PROBE): paths there can only be resolved there.
            backup_dir
                .iter()
                .filter(|_| remote.is_none())
                .filter_map(|b| paths::relative(b, &replica))
                .filter(|rel| !rel.as_os_str().is_empty())
                .collect(),
        );
        if let Some(rel) = paths::relative(&log_path, &source) {
            if !source.join(&rel).parent().is_some_and(Path::is_dir) {
                return Err(bad(format!(
                    "log file {}: its directory inside SOURCE does not exist, and foldersync \
                     makes nothing in SOURCE",
                    esc(&args.log_path)
                )));
            }
        }
        // The state directory may lie inside SOURCE (a home directory mirrored with the default
        // one) or inside REPLICA: it is then one of foldersync's own directories there.
        let state_dir = match &args.state_dir {
            Some(arg) => Some(check_state_dir(arg)?),
            None => crate::state::default_dir().map(|d| resolve(&d).unwrap_or(d)),
        };
        let own = own
            .with_source_dirs(
                state_dir
                    .iter()
                    .filter_map(|d| paths::relative(d, &source))
                    .collect(),
            )
            .with_replica_dirs(
                state_dir
                    .iter()
                    .filter_map(|d| local_replica.and_then(|r| paths::relative(d, r)))
                    .collect(),
            );
        // The pair as given (absolute, symlinks not resolved) names the record: a symlink put
        // at REPLICA's path later leads elsewhere, and the record says where it led.
        let given = (
            given_path(&source_arg, &source),
            match &remote {
                Some(_) => replica.clone(),
                None => given_path(&replica_arg, &replica),
            },
        );
        let filter = Filter::new(
            &source,
            &args.exclude,
            &args.exclude_from,
            args.delete_excluded,
        )?;

        Ok(Config {
            source,
            replica,
            remote,
            rsh: args.rsh.clone().unwrap_or_else(|| "ssh".into()),
            create_replica,
            log_path,
            interval: args.interval,
            once: args.once,
            watch: !args.once && !args.no_watch,
            debounce: args.debounce,
            dry_run: args.dry_run,
            max_delete: args.max_delete,
            allow_empty_source: args.allow_empty_source,
            adopt_replica: args.adopt_replica,
            state_dir,
            given,
            console_level,
            file_level: args.log_level,
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
        })
    }
}

/// SOURCE and a local REPLICA: not the same directory, neither inside the other.
fn check_apart(
    source: &Path,
    replica: &Path,
    src_shown: &impl std::fmt::Display,
    rep_shown: &impl std::fmt::Display,
) -> Result<(), StartError> {
    if replica == source || paths::id(replica).is_some_and(|id| Some(id) == paths::id(source)) {
        return Err(bad(format!(
            "SOURCE {src_shown} and REPLICA {rep_shown} are the same directory"
        )));
    }
    if within(replica, source) {
        return Err(bad(format!(
            "REPLICA {rep_shown} is inside SOURCE {src_shown}: the mirror would copy itself"
        )));
    }
    if within(source, replica) {
        return Err(bad(format!(
            "SOURCE {src_shown} is inside REPLICA {rep_shown}: the mirror would delete its own source"
        )));
    }
    Ok(())
}

/// The state directory: a directory if it exists. Inside SOURCE or REPLICA it is one of
/// foldersync's own directories there, never mirrored, never removed.
fn check_state_dir(arg: &Path) -> Result<PathBuf, StartError> {
    let shown = esc(arg);
    let path = resolve(arg).map_err(|e| bad(format!("cannot use state directory {shown}: {e}")))?;
    if fs::metadata(&path).is_ok_and(|m| !m.is_dir()) {
        return Err(bad(format!("state directory {shown} is not a directory")));
    }
    Ok(path)
}

/// A remote REPLICA's backup directory: an absolute path on the remote machine.
fn check_remote_backup(arg: &Path) -> Result<PathBuf, StartError> {
    let shown = esc(arg);
    let text = arg.to_str().filter(|t| !t.chars().any(char::is_control));
    // `.` and `..` would be resolved on the remote side only as far as the path exists.
    let plain = |t: &str| !t.split('/').any(|part| part == "." || part == "..");
    match text {
        Some(t) if t.starts_with('/') && t.trim_end_matches('/').len() > 1 && plain(t) => {
            Ok(PathBuf::from(t.trim_end_matches('/')))
        }
        _ => Err(bad(format!(
            "backup directory {shown}: with a remote REPLICA, give an absolute path on the \
             remote machine, without . or .."
        ))),
    }
}

/// The backup directory, resolved: not SOURCE, nor inside it, nor holding it (the mirror never
/// writes into SOURCE); not REPLICA, nor holding it; a directory if it exists. Inside REPLICA
/// is allowed: it is left out of the mirror.
fn check_backup(arg: &Path, source: &Path, replica: &Path) -> Result<PathBuf, StartError> {
    let shown = esc(arg);
    let path =
        resolve(arg).map_err(|e| bad(format!("cannot use backup directory {shown}: {e}")))?;
    if within(&path, source) {
        return Err(bad(format!(
            "backup directory {shown} is inside SOURCE: foldersync never writes into SOURCE"
        )));
    }
    if within(source, &path) {
        return Err(bad(format!(
            "SOURCE is inside the backup directory {shown}: foldersync never writes into SOURCE"
        )));
    }
    if within(replica, &path) {
        return Err(bad(format!(
            "backup directory {shown} would hold REPLICA itself"
        )));
    }
    if fs::metadata(&path).is_ok_and(|m| !m.is_dir()) {
        return Err(bad(format!("backup directory {shown} is not a directory")));
    }
    Ok(path)
}

/// A file foldersync writes (the log, the status file): resolved, not a directory, in a
/// directory that exists or can be made.
fn check_file(what: &str, arg: &Path) -> Result<PathBuf, StartError> {
    let shown = esc(arg);
    let path = resolve(arg).map_err(|e| bad(format!("cannot use {what} {shown}: {e}")))?;
    if fs::metadata(&path).is_ok_and(|m| m.is_dir()) || path.file_name().is_none() {
        return Err(bad(format!("{what} {shown} is a directory")));
    }
    Ok(path)
}

/// The status file: as [`check_file`], and its directory must exist (it is written atomically
/// by a rename in that directory).
fn check_status(arg: &Path) -> Result<PathBuf, StartError> {
    let path = check_file("status file", arg)?;
    if !path.parent().is_some_and(|p| p.is_dir()) {
        return Err(bad(format!(
            "status file {}: its directory does not exist",
            esc(arg)
        )));
    }
    // It is replaced on every write: what is there must be an earlier status file.
    if let Ok(meta) = fs::symlink_metadata(&path) {
        let ours = meta.is_file()
            && fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<crate::status::Status>(&b).ok())
                .is_some();
        if !ours {
            return Err(bad(format!(
                "status file {} exists and is not a foldersync status file: refusing to \
                 replace it",
                esc(arg)
            )));
        }
    }
    Ok(path)
}

fn check_source(arg: &Path) -> Result<PathBuf, StartError> {
    let shown = esc(arg);
    let meta = fs::metadata(arg).map_err(|e| {
        if dir::is_absent(&e) {
            bad(format!("SOURCE {shown} does not exist"))
        } else {
            bad(format!("cannot access SOURCE {shown}: {e}"))
        }
    })?;
    if !meta.is_dir() {
        return Err(bad(format!("SOURCE {shown} is not a directory")));
    }
    if let Err(e) = fs::read_dir(arg) {
        return Err(bad(format!("SOURCE {shown} is not readable: {e}")));
    }
    fs::canonicalize(arg).map_err(|e| bad(format!("cannot resolve SOURCE {shown}: {e}")))
}

/// A root as given on the command line, made absolute without resolving symlinks (`.` and
/// trailing slashes dropped); `resolved` if that cannot be done.
fn given_path(arg: &Path, resolved: &Path) -> PathBuf {
    std::path::absolute(arg)
        .map(|p| p.components().collect())
        .unwrap_or_else(|_| resolved.to_path_buf())
}

/// Returns REPLICA resolved, and whether it must be created.
fn check_replica(arg: &Path) -> Result<(PathBuf, bool), StartError> {
    let shown = esc(arg);
    match fs::metadata(arg) {
        Ok(meta) if meta.is_dir() => {
            let path = fs::canonicalize(arg)
                .map_err(|e| bad(format!("cannot resolve REPLICA {shown}: {e}")))?;
            Ok((path, false))
        }
        Ok(_) => Err(bad(format!(
            "REPLICA {shown} exists and is not a directory"
        ))),
        Err(e) if dir::is_absent(&e) => {
            if fs::symlink_metadata(arg).is_ok() {
                return Err(bad(format!(
                    "REPLICA {shown} is a symlink to a missing directory"
                )));
            }
            let path =
                resolve(arg).map_err(|e| bad(format!("cannot create REPLICA {shown}: {e}")))?;
            Ok((path, true))
        }
        Err(e) => Err(bad(format!("cannot access REPLICA {shown}: {e}"))),
    }
}
