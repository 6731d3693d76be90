//! The one place that turns a configuration into a replica: which engine, opened how, and
//! what it needs made before the mirror starts. The run loop sees only `dyn Replica`.

use std::fs;
use std::io;
use std::path::Path;

use super::{init_log, Made};
use crate::backup::Backup;
use crate::config::Config;
use crate::dir::{self, Dir};
use crate::error::StartError;
use crate::escape::esc;
use crate::mirror::{Mirror, Options};
use crate::remote::{Remote, Settings};
use crate::replica::Replica;
use crate::root::Root;
use crate::stop::Stop;

/// The engine `config` names, opened: a local REPLICA (opened if it exists, and not SOURCE
/// itself), or a remote one connected to (and, when it is this very machine under another name,
/// checked by the local rules before anything is made).
pub fn open(config: &Config, src: &Root, stop: &Stop) -> Result<Engine, StartError> {
    Ok(match &config.remote {
        Some(spec) => {
            let remote = Remote::connect(
                spec.clone(),
                &config.source,
                remote_settings(config),
                stop.clone(),
            )?;
            // This very machine under another name: its local rules, before anything is made.
            if let Some(here) = remote.on_this_machine() {
                config.check_on_this_machine(here)?;
            }
            Engine::Remote(Box::new(remote))
        }
        None => Engine::Local(Box::new(local(config, src, stop)?)),
    })
}

/// Where the mirror writes: a directory here, or one on another machine.
pub enum Engine {
    Local(Box<Mirror>),
    Remote(Box<Remote>),
}

impl Engine {
    pub fn replica(&mut self) -> &mut dyn Replica {
        match self {
            Engine::Local(m) => m.as_mut(),
            Engine::Remote(r) => r.as_mut(),
        }
    }

    /// What REPLICA's lock is named by (see `guard::lock_made`): the directory's device and
    /// inode wherever it is on this machine, a local REPLICA or a remote one that turned out to
    /// be here (`localhost:`, `127.0.0.1:`, the host's own name), so that one directory reached
    /// both ways takes one lock; else the remote root's fingerprint.
    pub fn lock_identity(&self) -> Option<String> {
        let here = |id: crate::dir::Id| format!("here:{}:{}", id.dev, id.ino);
        match self {
            Engine::Local(m) => m.root_dir()?.stat().ok().map(|meta| here(meta.id)),
            Engine::Remote(r) => match r.on_this_machine().and_then(|h| h.root) {
                Some(id) => Some(here(id)),
                None => r.identity(),
            },
        }
    }

    pub fn replica_ref(&self) -> &dyn Replica {
        match self {
            Engine::Local(m) => m.as_ref(),
            Engine::Remote(r) => r.as_ref(),
        }
    }

    /// What an engine does once the log is open: a local one probes what REPLICA's file
    /// system keeps, a remote one pairs its connection.
    pub fn begin(&mut self) {
        match self {
            Engine::Local(mirror) => mirror.probe(),
            Engine::Remote(remote) => remote.try_pair(),
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
            timing: config.timing,
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
        timing: config.timing,
    }
}

/// Makes what must exist before the mirror starts: REPLICA and the backup directory (not in
/// a dry run), and the log file (if `log`: one process running several pairs opens it once). Everything made here is recorded in `made`; a remote root is
/// made last, so nothing fails after it. Returns whether REPLICA was made.
pub fn make(
    config: &Config,
    target: &mut Engine,
    made: &mut Made,
    log: bool,
) -> Result<bool, StartError> {
    let mirror = match target {
        Engine::Local(mirror) => mirror,
        Engine::Remote(remote) => {
            if log {
                init_log(config, made)?;
            }
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
    if log {
        init_log(config, made)?;
    }
    Ok(made_root || (config.create_replica && config.dry_run))
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
