//! The steps of [`super::Config::from_args`]: the two roots, then foldersync's own files (the
//! log, the status file, the backup directory, the state directory), each checked against the
//! roots and against each other.

use std::path::{Path, PathBuf};

use super::bad;
use super::checks::{
    check_apart, check_backup, check_file, check_remote_backup, check_replica, check_source,
    check_state_dir, check_status, given_path,
};
use super::paths::{self, resolve, within};
use crate::address::{self as spec, Spec};
use crate::cli::Args;
use crate::error::StartError;
use crate::escape::esc;
use crate::own::OwnFiles;

/// SOURCE and REPLICA, checked.
pub(super) struct Roots {
    pub source: PathBuf,
    /// A local REPLICA resolved, or a remote one as written.
    pub replica: PathBuf,
    pub remote: Option<Spec>,
    pub create_replica: bool,
    /// The pair as given (absolute, symlinks not resolved): it names the record.
    pub given: (PathBuf, PathBuf),
    replica_shown: String,
}

impl Roots {
    pub fn check(args: &Args) -> Result<Roots, StartError> {
        let (Some(source_arg), Some(replica_arg)) = (&args.source, &args.replica) else {
            return Err(bad("SOURCE and REPLICA are both needed".into()));
        };
        let source = check_source(source_arg)?;
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
            None => check_replica(replica_arg)?,
        };
        let replica_shown = esc(replica_arg).to_string();
        if remote.is_none() {
            check_apart(&source, &replica, &esc(source_arg), &esc(replica_arg))?;
        }
        let given = (
            given_path(source_arg, &source),
            match &remote {
                Some(_) => replica.clone(),
                None => given_path(replica_arg, &replica),
            },
        );
        Ok(Roots {
            source,
            replica,
            remote,
            create_replica,
            given,
            replica_shown,
        })
    }

    /// A local REPLICA (a remote one holds none of this machine's files).
    fn local_replica(&self) -> Option<&Path> {
        self.remote.is_none().then_some(self.replica.as_path())
    }

    fn in_replica(&self, path: &Path) -> bool {
        self.local_replica().is_some_and(|r| within(path, r))
    }
}

/// foldersync's own files, checked.
pub(super) struct Files {
    pub log_path: PathBuf,
    pub backup_dir: Option<PathBuf>,
    pub retention: crate::backup::Retention,
    pub status_file: Option<PathBuf>,
}

impl Files {
    pub fn check(args: &Args, roots: &Roots) -> Result<Files, StartError> {
        let rep_shown = &roots.replica_shown;
        let log_path = check_file("log file", &args.log_path)
            .map_err(|e| StartError::new(format!("{e} (choose another with -l/--log-path)")))?;
        if roots.in_replica(&log_path) {
            return Err(bad(format!(
                "log file {} is inside REPLICA {rep_shown}: the mirror would delete it",
                esc(&args.log_path)
            )));
        }
        let backup_dir = match (&args.backup_dir, &roots.remote) {
            (None, _) => None,
            (Some(arg), Some(_)) => Some(check_remote_backup(arg)?),
            (Some(arg), None) => Some(check_backup(arg, &roots.source, &roots.replica)?),
        };
        let local_backup = backup_dir.as_ref().filter(|_| roots.remote.is_none());
        if local_backup.is_some_and(|b| within(&log_path, b)) {
            return Err(bad(format!(
                "log file {} is inside the backup directory",
                esc(&args.log_path)
            )));
        }
        let retention = crate::backup::Retention {
            versions: (args.backup_versions > 0).then_some(args.backup_versions),
            max_age: args.backup_max_age,
        };
        let retention_given = args.backup_versions != 10 || args.backup_max_age.is_some();
        if retention_given && (roots.remote.is_some() || backup_dir.is_none()) {
            return Err(bad(
                "--backup-versions and --backup-max-age apply to a local --backup-dir only".into(),
            ));
        }
        let status_file = match &args.status_file {
            None => None,
            Some(arg) => {
                let path = check_status(arg)?;
                if roots.in_replica(&path) {
                    return Err(bad(format!(
                        "status file {} is inside REPLICA {rep_shown}: the mirror would delete it",
                        esc(arg)
                    )));
                }
                if path == log_path {
                    return Err(bad(format!("status file {} is the log file", esc(arg))));
                }
                if local_backup.is_some_and(|b| within(&path, b)) {
                    return Err(bad(format!(
                        "status file {} is inside the backup directory",
                        esc(arg)
                    )));
                }
                Some(path)
            }
        };
        Ok(Files {
            log_path,
            backup_dir,
            retention,
            status_file,
        })
    }
}

/// The one definition of foldersync's own files inside the roots, found by where they really
/// are (a bind mount of SOURCE or REPLICA cannot disguise them); and the state directory.
pub(super) fn own_files(
    args: &Args,
    roots: &Roots,
    files: &Files,
) -> Result<(OwnFiles, Option<PathBuf>), StartError> {
    let source = &roots.source;
    let own = OwnFiles::new(
        [Some(&files.log_path), files.status_file.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|p| paths::relative(p, source))
            .collect(),
        // A remote REPLICA's backup directory is placed by the remote side itself (see
        // remote::script::PROBE): paths there can only be resolved there.
        files
            .backup_dir
            .iter()
            .filter(|_| roots.remote.is_none())
            .filter_map(|b| paths::relative(b, &roots.replica))
            .filter(|rel| !rel.as_os_str().is_empty())
            .collect(),
    );
    if let Some(rel) = paths::relative(&files.log_path, source) {
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
    let local_replica = roots.local_replica();
    let own = own
        .with_source_dirs(
            state_dir
                .iter()
                .filter_map(|d| paths::relative(d, source))
                .collect(),
        )
        .with_replica_dirs(
            state_dir
                .iter()
                .filter_map(|d| local_replica.and_then(|r| paths::relative(d, r)))
                .collect(),
        );
    Ok((own, state_dir))
}
