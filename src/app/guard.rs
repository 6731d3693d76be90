//! The start-up guards that rest on what foldersync remembers of a mirror (see
//! [`crate::state`]): a lock against a second process on the same pair; SOURCE that was a
//! mount point and is not one now; REPLICA's path leading somewhere else than it did; and a
//! first pass into a directory foldersync has not mirrored into before, which must not empty it
//! by surprise. Each refusal is a start-up error (exit 2) with nothing written.

use std::fs::File;

use crate::config::Config;
use crate::error::StartError;
use crate::escape::esc;
use crate::replica::Replica;
use crate::root::Root;
use crate::state::{Loaded, Record, State};

/// What the guards leave for the run: the record and where it is kept, and the pair's lock.
pub struct Kept {
    pub state: Option<State>,
    pub record: Option<Record>,
    /// Held open for as long as the mirror runs.
    pub lock: Vec<File>,
    /// Warnings for the log, once it is open.
    pub warnings: Vec<String>,
}

/// Runs the guards. A dry run takes no lock and is refused nothing that only a removal would
/// make dangerous.
pub fn check(config: &Config, src: &Root, replica: &mut dyn Replica) -> Result<Kept, StartError> {
    let state = config
        .state_dir
        .clone()
        .map(|dir| State::new(dir, &config.given.0, &config.given.1));
    let mut warnings = Vec::new();
    let lock = match &state {
        Some(state) if !config.dry_run => lock(state, config, &mut warnings)?,
        _ => Vec::new(),
    };
    let record = match state.as_ref().map(State::load) {
        Some(Loaded::Record(r)) => Some(r),
        Some(Loaded::Unreadable(e)) => {
            if let Some(state) = &state {
                warnings.push(format!(
                    "foldersync's record of this mirror at {} cannot be read ({}): it is taken \
                     for none, so what it remembered (file systems mounted inside SOURCE) is \
                     forgotten",
                    esc(state.path()),
                    crate::escape::text(&e)
                ));
            }
            None
        }
        _ => None,
    };
    if let Some(r) = &record {
        // `--adopt-replica` retires the mount points met before: SOURCE is mirrored as it is.
        if !config.adopt_replica {
            replica.know_source_mounts(r.source_mounts.clone());
        }
        config.own.know_past_tokens(r.tokens.clone());
        if !config.adopt_replica {
            moved_roots(config, src, &*replica, r)?;
        }
    }
    first_pass(config, src, replica, record.as_ref())?;
    // What the record says of what REPLICA holds speaks only for this very pair of directories.
    let trusted = record
        .as_ref()
        .filter(|r| mirrored_before(r, src, replica.identity()));
    replica.keep_record(state.as_ref(), trusted);
    Ok(Kept {
        state,
        record,
        lock,
        warnings,
    })
}

/// Takes the pair's lock (REPLICA's own follows once it exists, see [`lock_made`]): another
/// foldersync mirroring the same pair is a start-up error. A state directory that cannot be
/// used is said, and the mirror goes on without.
fn lock(
    state: &State,
    config: &Config,
    warnings: &mut Vec<String>,
) -> Result<Vec<File>, StartError> {
    let held = |how: &str| {
        StartError::new(format!(
            "another foldersync is mirroring {how} (SOURCE {}, REPLICA {}; its locks are in {})",
            esc(&config.source),
            esc(&config.replica),
            esc(state.lock_path().parent().unwrap_or(state.path()))
        ))
    };
    let unusable = |e: std::io::Error, warnings: &mut Vec<String>| {
        warnings.push(format!(
            "cannot use the state directory {}: {e} (set --state-dir): nothing is remembered \
             of this mirror between runs",
            esc(state.lock_path().parent().unwrap_or(state.path()))
        ));
    };
    let mut locks = Vec::new();
    match state.lock() {
        Ok(Some(file)) => locks.push(file),
        Ok(None) => return Err(held("the same pair")),
        Err(e) => {
            unusable(e, warnings);
            return Ok(Vec::new());
        }
    }
    Ok(locks)
}

/// Takes REPLICA's lock by its identity, once REPLICA exists (it may have been made just now):
/// another foldersync writing into the same directory, reached by another path, is a start-up
/// error.
pub fn lock_made(
    config: &Config,
    kept: &mut Kept,
    identity: Option<String>,
) -> Result<(), StartError> {
    let (Some(state), Some(id), false) = (&kept.state, identity, kept.lock.is_empty()) else {
        return Ok(());
    };
    match state.lock_replica(&id) {
        Ok(Some(file)) => kept.lock.push(file),
        Ok(None) => {
            return Err(StartError::new(format!(
                "another foldersync is mirroring into the same REPLICA, reached by another path \
                 (SOURCE {}, REPLICA {}; its locks are in {})",
                esc(&config.source),
                esc(&config.replica),
                esc(state.lock_path().parent().unwrap_or(state.path()))
            )))
        }
        Err(e) => kept.warnings.push(format!(
            "cannot take REPLICA's lock in {}: {e}",
            esc(state.lock_path().parent().unwrap_or(state.path()))
        )),
    }
    Ok(())
}

/// SOURCE or REPLICA was a mount point and is not one now (its disk is not mounted: the
/// directory beneath shows, or nothing), or REPLICA's path leads elsewhere than it did (a
/// symlink put there): refused.
fn moved_roots(
    config: &Config,
    src: &Root,
    replica: &dyn Replica,
    record: &Record,
) -> Result<(), StartError> {
    let confirm = "if that is meant, start again with --adopt-replica";
    if record.source_mount && !src.mount_root {
        return Err(StartError::new(format!(
            "SOURCE {} was a mount point when foldersync last mirrored it, and is not one now: \
             is its disk mounted? ({confirm})",
            esc(&config.source)
        )));
    }
    if record.mirrored && record.replica_mount && !replica.mount_root() {
        return Err(StartError::new(format!(
            "REPLICA {} was a mount point when foldersync last mirrored into it, and is not one \
             now: is its disk mounted? ({confirm})",
            replica.describe()
        )));
    }
    let place = config.remote.is_none().then_some(&config.replica);
    if let (Some(was), Some(now)) = (&record.replica_place, place) {
        if record.mirrored && was != now {
            return Err(StartError::new(format!(
                "REPLICA {} leads to {} now, not to {} as when foldersync last mirrored into it \
                 ({confirm})",
                esc(&config.given.1),
                esc(now),
                esc(was)
            )));
        }
    }
    Ok(())
}

/// A first pass into a directory foldersync has not mirrored into before (no record for this
/// very directory) is refused when it would remove more than half of it and more than 20
/// entries, unless `--adopt-replica` or `--max-delete` says otherwise. One into a directory
/// that is not the one the record names (another file system mounted there, a directory made
/// anew and filled) is refused if it would remove anything at all, unless `--adopt-replica`.
fn first_pass(
    config: &Config,
    src: &Root,
    replica: &mut dyn Replica,
    record: Option<&Record>,
) -> Result<(), StartError> {
    let mirrored = record.filter(|r| r.mirrored);
    let same_replica = mirrored.is_some_and(|r| r.replica_id == replica.identity());
    let stranger = mirrored.is_some() && !same_replica && replica.identity().is_some();
    let before = record.is_some_and(|r| mirrored_before(r, src, replica.identity()));
    if before || config.adopt_replica || config.dry_run {
        return Ok(());
    }
    if (config.max_delete.is_some() && !stranger) || !replica.has_content() {
        return Ok(());
    }
    let Some(survey) = replica.survey(src) else {
        return Ok(());
    };
    let survey = survey.map_err(StartError::new)?;
    if (stranger && survey.removed > 0) || survey.too_much() {
        return Err(StartError::new(crate::mirror::survey::refusal(
            &replica.describe(),
            &survey,
            stranger,
        )));
    }
    Ok(())
}

/// Whether `record` says foldersync mirrored from this very SOURCE into this very REPLICA
/// (whose identity is `replica`).
fn mirrored_before(record: &Record, src: &Root, replica: Option<String>) -> bool {
    record.mirrored
        && record.replica_id == replica
        && (record.source_id.is_none() || record.source_id == Some(src.fingerprint()))
}
