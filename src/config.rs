//! Turns the raw command line into a validated [`Config`]: resolves paths, refuses dangerous or
//! impossible combinations, and does so before anything on disk is created, changed or removed.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::cli::Args;
use crate::error::StartError;
use crate::filter::Filter;
use crate::fsops;

/// Everything the mirror needs, checked and resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// SOURCE, absolute with symlinks resolved.
    pub source: PathBuf,
    /// REPLICA, absolute with symlinks resolved (as far as it exists).
    pub replica: PathBuf,
    /// Whether REPLICA has to be created before the first pass.
    pub create_replica: bool,
    /// The log file, absolute.
    pub log_path: PathBuf,
    /// The log file's path relative to SOURCE when it lives there: it is never mirrored.
    pub log_in_source: Option<PathBuf>,
    pub interval: Duration,
    pub once: bool,
    /// Watch SOURCE between passes (not with `--once` or `--no-watch`).
    pub watch: bool,
    pub debounce: Duration,
    pub dry_run: bool,
    pub max_delete: Option<u64>,
    pub allow_empty_source: bool,
    /// Exclude patterns and protected paths.
    pub filter: Filter,
    pub checksum: bool,
    /// Where removed and overwritten files go (absolute), if anywhere.
    pub backup_dir: Option<PathBuf>,
    /// Where the status document is kept (absolute), if anywhere.
    pub status_file: Option<PathBuf>,
    /// The console's log level (-v, -q) and the log file's (--log-level).
    pub console_level: log::LevelFilter,
    pub file_level: log::LevelFilter,
}

impl Config {
    pub fn from_args(args: Args) -> Result<Config, StartError> {
        let console_level = args.console_level();
        let (Some(source_arg), Some(replica_arg)) = (args.source.clone(), args.replica.clone())
        else {
            return Err(StartError::new("SOURCE and REPLICA are both needed"));
        };
        let source = check_source(&source_arg)?;
        let (replica, create_replica) = check_replica(&replica_arg)?;

        if replica == source {
            return Err(StartError::new(format!(
                "SOURCE {} and REPLICA {} are the same directory",
                source_arg.display(),
                replica_arg.display()
            )));
        }
        if replica.starts_with(&source) {
            return Err(StartError::new(format!(
                "REPLICA {} is inside SOURCE {}: the mirror would copy itself",
                replica_arg.display(),
                source_arg.display()
            )));
        }
        if source.starts_with(&replica) {
            return Err(StartError::new(format!(
                "SOURCE {} is inside REPLICA {}: the mirror would delete its own source",
                source_arg.display(),
                replica_arg.display()
            )));
        }

        let log_path = resolve(&args.log_path).map_err(|e| {
            StartError::new(format!(
                "cannot use log file {}: {e}",
                args.log_path.display()
            ))
        })?;
        if log_path.starts_with(&replica) {
            return Err(StartError::new(format!(
                "log file {} is inside REPLICA {}: the mirror would delete it",
                args.log_path.display(),
                replica_arg.display()
            )));
        }
        if fs::metadata(&log_path).is_ok_and(|m| m.is_dir()) {
            return Err(StartError::new(format!(
                "log file {} is a directory",
                args.log_path.display()
            )));
        }
        let log_in_source = log_path.strip_prefix(&source).ok().map(Path::to_path_buf);

        let backup_dir = match &args.backup_dir {
            None => None,
            Some(arg) => Some(check_backup(arg, &source, &replica)?),
        };
        let status_file = match &args.status_file {
            None => None,
            Some(arg) => {
                let path = resolve(arg).map_err(|e| {
                    StartError::new(format!("cannot use status file {}: {e}", arg.display()))
                })?;
                if path.starts_with(&replica) {
                    return Err(StartError::new(format!(
                        "status file {} is inside REPLICA {}: the mirror would delete it",
                        arg.display(),
                        replica_arg.display()
                    )));
                }
                Some(path)
            }
        };
        let mut protected: Vec<PathBuf> = log_in_source.iter().cloned().collect();
        if let Some(rel) = status_file
            .as_ref()
            .and_then(|p| p.strip_prefix(&source).ok())
        {
            protected.push(rel.to_path_buf());
        }
        if let Some(rel) = backup_dir
            .as_ref()
            .and_then(|b| b.strip_prefix(&replica).ok())
        {
            protected.push(rel.to_path_buf());
        }
        let filter = Filter::new(
            &source,
            &args.exclude,
            &args.exclude_from,
            protected,
            args.delete_excluded,
        )?;

        if !args.allow_empty_source
            && !create_replica
            && is_empty(&source, log_in_source.as_deref())
            && !is_empty(&replica, None)
        {
            return Err(StartError::new(format!(
                "SOURCE {} is empty but REPLICA {} is not: refusing to empty it (is SOURCE's disk \
                 mounted?); use --allow-empty-source to allow it",
                source_arg.display(),
                replica_arg.display()
            )));
        }

        Ok(Config {
            source,
            replica,
            create_replica,
            log_path,
            log_in_source,
            interval: args.interval,
            once: args.once,
            watch: !args.once && !args.no_watch,
            debounce: args.debounce,
            dry_run: args.dry_run,
            max_delete: args.max_delete,
            allow_empty_source: args.allow_empty_source,
            console_level,
            file_level: args.log_level,
            filter,
            checksum: args.checksum,
            backup_dir,
            status_file,
        })
    }
}

/// Whether a directory holds nothing but (optionally) `ignored`, a name directly inside it, and
/// foldersync's own temporary files. An unreadable directory counts as not empty.
pub fn is_empty(dir: &Path, ignored: Option<&Path>) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    for entry in entries {
        let Ok(entry) = entry else {
            return false;
        };
        let name = entry.file_name();
        if ignored.is_some_and(|ig| ig.as_os_str() == name) || fsops::is_temp_name(&name) {
            continue;
        }
        return false;
    }
    true
}

/// The backup directory, resolved: not SOURCE nor inside it (the mirror never writes there), not
/// REPLICA itself, and a directory if it exists. Inside REPLICA is allowed: it is left out of
/// the mirror.
fn check_backup(arg: &Path, source: &Path, replica: &Path) -> Result<PathBuf, StartError> {
    let path = resolve(arg).map_err(|e| {
        StartError::new(format!(
            "cannot use backup directory {}: {e}",
            arg.display()
        ))
    })?;
    if path.starts_with(source) {
        return Err(StartError::new(format!(
            "backup directory {} is inside SOURCE: foldersync never writes into SOURCE",
            arg.display()
        )));
    }
    if path == replica || replica.starts_with(&path) {
        return Err(StartError::new(format!(
            "backup directory {} would hold REPLICA itself",
            arg.display()
        )));
    }
    if fs::metadata(&path).is_ok_and(|m| !m.is_dir()) {
        return Err(StartError::new(format!(
            "backup directory {} is not a directory",
            arg.display()
        )));
    }
    Ok(path)
}

fn check_source(arg: &Path) -> Result<PathBuf, StartError> {
    let meta = fs::metadata(arg).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            StartError::new(format!("SOURCE {} does not exist", arg.display()))
        } else {
            StartError::new(format!("cannot access SOURCE {}: {e}", arg.display()))
        }
    })?;
    if !meta.is_dir() {
        return Err(StartError::new(format!(
            "SOURCE {} is not a directory",
            arg.display()
        )));
    }
    if let Err(e) = fs::read_dir(arg) {
        return Err(StartError::new(format!(
            "SOURCE {} is not readable: {e}",
            arg.display()
        )));
    }
    fs::canonicalize(arg)
        .map_err(|e| StartError::new(format!("cannot resolve SOURCE {}: {e}", arg.display())))
}

/// Returns REPLICA resolved, and whether it must be created.
fn check_replica(arg: &Path) -> Result<(PathBuf, bool), StartError> {
    match fs::metadata(arg) {
        Ok(meta) if meta.is_dir() => {
            let path = fs::canonicalize(arg).map_err(|e| {
                StartError::new(format!("cannot resolve REPLICA {}: {e}", arg.display()))
            })?;
            Ok((path, false))
        }
        Ok(_) => Err(StartError::new(format!(
            "REPLICA {} exists and is not a directory",
            arg.display()
        ))),
        Err(e) if fsops::is_absent(&e) => {
            if fs::symlink_metadata(arg).is_ok() {
                return Err(StartError::new(format!(
                    "REPLICA {} is a symlink to a missing directory",
                    arg.display()
                )));
            }
            let path = resolve(arg).map_err(|e| {
                StartError::new(format!("cannot create REPLICA {}: {e}", arg.display()))
            })?;
            Ok((path, true))
        }
        Err(e) => Err(StartError::new(format!(
            "cannot access REPLICA {}: {e}",
            arg.display()
        ))),
    }
}

/// Resolves a path that may not exist yet: every existing prefix is canonicalized (so symlinks
/// and `..` are followed as the kernel would) and the missing rest is applied lexically. Fails if
/// an existing ancestor is not a directory.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut out = PathBuf::from("/");
    let mut exists = true;
    for part in abs.components() {
        match part {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir if !exists => {
                out.pop();
            }
            _ => {
                let next = out.join(part);
                if exists {
                    match fs::canonicalize(&next) {
                        Ok(real) => {
                            out = real;
                            continue;
                        }
                        Err(e) if fsops::is_absent(&e) => {
                            if !fs::metadata(&out)?.is_dir() {
                                return Err(io::Error::new(
                                    io::ErrorKind::NotADirectory,
                                    format!("{} is not a directory", out.display()),
                                ));
                            }
                            exists = false;
                        }
                        Err(e) => return Err(e),
                    }
                }
                if part == Component::ParentDir {
                    out.pop();
                } else {
                    out.push(part);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_applies_dotdot_after_the_existing_part() {
        let tmp = std::env::temp_dir();
        let base = fs::canonicalize(&tmp).unwrap();
        let p = tmp.join("fs-missing-x/y/../z");
        assert_eq!(resolve(&p).unwrap(), base.join("fs-missing-x/z"));
    }

    #[test]
    fn resolve_refuses_a_file_as_a_parent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        assert!(resolve(&file.join("sub")).is_err());
    }
}
