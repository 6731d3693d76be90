//! The checks across pairs, beside each pair's own (`Config::from_args`): two pairs writing
//! into the same REPLICA or one inside another's; a REPLICA inside another mirror's SOURCE, or
//! a SOURCE inside another's REPLICA (one mirror would feed another, or delete its source); a
//! backup directory inside another pair's REPLICA. The log and the status file are one for the
//! process and given to every pair, whose own checks refuse them inside its REPLICA (inside a
//! SOURCE they are foldersync's own files there, never mirrored, as on the command line).

use std::path::Path;

use super::Pair;
use crate::config::paths::{self, within};
use crate::error::StartError;
use crate::escape::esc;

/// Refuses pairs that would get in each other's way.
pub fn check(pairs: &[Pair]) -> Result<(), StartError> {
    for (j, b) in pairs.iter().enumerate() {
        for a in &pairs[..j] {
            replicas(a, b)?;
            feeds(a, b)?;
            feeds(b, a)?;
            backups(a, b)?;
            backups(b, a)?;
        }
    }
    Ok(())
}

fn overlap(x: &Path, y: &Path) -> bool {
    x == y
        || within(x, y)
        || within(y, x)
        || paths::id(x).is_some_and(|id| Some(id) == paths::id(y))
}

fn who(p: &Pair) -> String {
    format!("REPLICA {} of mirror {}", esc(&p.config.given.1), p.mirror)
}

/// Two pairs writing into the same directory (or one into the other's).
fn replicas(a: &Pair, b: &Pair) -> Result<(), StartError> {
    let same = match (&a.config.remote, &b.config.remote) {
        (None, None) => overlap(&a.config.replica, &b.config.replica),
        (Some(x), Some(y)) => {
            let (px, py) = (Path::new(&x.path), Path::new(&y.path));
            x.host == y.host && (px.starts_with(py) || py.starts_with(px))
        }
        _ => false,
    };
    if !same {
        return Ok(());
    }
    Err(b.at.replica.error(
        Some(&b.mirror),
        format_args!(
            "{} and {} (at {}) are the same directory or one holds the other: each pair would \
             remove what the other writes; give each pair a REPLICA of its own",
            who(b),
            who(a),
            a.at.replica
        ),
    ))
}

/// `a`'s REPLICA inside `b`'s SOURCE (a writes what b mirrors), or `b`'s SOURCE inside `a`'s
/// REPLICA (a removes from b's SOURCE what a's own SOURCE lacks).
fn feeds(a: &Pair, b: &Pair) -> Result<(), StartError> {
    if a.config.remote.is_some() || a.mirror == b.mirror {
        return Ok(());
    }
    let (rep, src) = (&a.config.replica, &b.config.source);
    let why = if within(rep, src) {
        "inside SOURCE"
    } else if within(src, rep) {
        "holding SOURCE"
    } else {
        return Ok(());
    };
    Err(a.at.replica.error(
        Some(&a.mirror),
        format_args!(
            "{} is {why} {} of mirror {} (at {}): one mirror would feed the other, or remove \
             its source; keep replicas out of every mirror's SOURCE",
            who(a),
            esc(&b.config.source),
            b.mirror,
            b.at.source
        ),
    ))
}

/// `a`'s local backup directory inside `b`'s REPLICA: b would remove it.
fn backups(a: &Pair, b: &Pair) -> Result<(), StartError> {
    let (Some(backup), None, None) = (&a.config.backup_dir, &a.config.remote, &b.config.remote)
    else {
        return Ok(());
    };
    // The pairs of one mirror share its backup directory, which is their own file.
    if a.mirror == b.mirror || !within(backup, &b.config.replica) {
        return Ok(());
    }
    Err(a.at.key("backup-dir").error(
        Some(&a.mirror),
        format_args!(
            "backup directory {} is inside {} (at {}): that pair would remove it; put it \
             outside every REPLICA",
            esc(backup),
            who(b),
            b.at.replica
        ),
    ))
}
