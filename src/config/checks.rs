//! The checks of each path given on the command line: that it exists (or can be made), what it
//! resolves to, and that it lies where foldersync may use it.

use std::fs;
use std::path::{Path, PathBuf};

use super::bad;
use super::paths::{self, resolve, within};
use crate::dir;
use crate::error::StartError;
use crate::escape::esc;

/// SOURCE and a local REPLICA: not the same directory, neither inside the other.
pub(super) fn check_apart(
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
pub(super) fn check_state_dir(arg: &Path) -> Result<PathBuf, StartError> {
    let shown = esc(arg);
    let path = resolve(arg).map_err(|e| bad(format!("cannot use state directory {shown}: {e}")))?;
    if fs::metadata(&path).is_ok_and(|m| !m.is_dir()) {
        return Err(bad(format!("state directory {shown} is not a directory")));
    }
    Ok(path)
}

/// A remote REPLICA's backup directory: an absolute path on the remote machine.
pub(super) fn check_remote_backup(arg: &Path) -> Result<PathBuf, StartError> {
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
pub(super) fn check_backup(
    arg: &Path,
    source: &Path,
    replica: &Path,
) -> Result<PathBuf, StartError> {
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
pub(super) fn check_file(what: &str, arg: &Path) -> Result<PathBuf, StartError> {
    let shown = esc(arg);
    let path = resolve(arg).map_err(|e| bad(format!("cannot use {what} {shown}: {e}")))?;
    if fs::metadata(&path).is_ok_and(|m| m.is_dir()) || path.file_name().is_none() {
        return Err(bad(format!("{what} {shown} is a directory")));
    }
    Ok(path)
}

/// The status file: as [`check_file`], and its directory must exist (it is written atomically
/// by a rename in that directory).
pub(super) fn check_status(arg: &Path) -> Result<PathBuf, StartError> {
    let path = check_file("status file", arg)?;
    if !path.parent().is_some_and(|p| p.is_dir()) {
        return Err(bad(format!(
            "status file {}: its directory does not exist",
            esc(arg)
        )));
    }
    // It is replaced on every write: what is there must be an earlier status file (of one
    // pair, or of a `--config` process: restarted, or reading its configuration again).
    if let Ok(meta) = fs::symlink_metadata(&path) {
        let ours = meta.is_file()
            && fs::read(&path).is_ok_and(|b| {
                serde_json::from_slice::<crate::status::Status>(&b).is_ok()
                    || serde_json::from_slice::<crate::status::board::Many>(&b).is_ok()
            });
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

pub(super) fn check_source(arg: &Path) -> Result<PathBuf, StartError> {
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
pub(super) fn given_path(arg: &Path, resolved: &Path) -> PathBuf {
    std::path::absolute(arg)
        .map(|p| p.components().collect())
        .unwrap_or_else(|_| resolved.to_path_buf())
}

/// Returns REPLICA resolved, and whether it must be created.
pub(super) fn check_replica(arg: &Path) -> Result<(PathBuf, bool), StartError> {
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
