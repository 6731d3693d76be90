//! Copying one file into place: into a temporary file beside the target, with its metadata,
//! checked against the source once more, then renamed over the target. A reader never sees a
//! half-written file under the final name.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use log::{debug, warn};

use super::apply::Run;
use super::done::Done;
use super::node::Node;
use crate::dir::copy::{self as data, DataError, Progress};
use crate::dir::{self, Dir, Kind, Meta};
use crate::error::PathError;
use crate::escape::rel as show;
use crate::stats::Count;

/// How often a copy is tried when the source keeps changing under it (passes only).
const COPY_ATTEMPTS: usize = 3;

impl Run<'_> {
    /// Copies one file into place (on a worker thread), retrying in a pass when the source
    /// changes while it is read.
    pub fn copy(&self, node: &Node, name: &OsStr, rel: &Path, update: bool) {
        let attempts = if self.m.opts.requeue {
            1
        } else {
            COPY_ATTEMPTS
        };
        for _ in 0..attempts {
            match self.copy_once(node, name, rel, update) {
                Ok((bytes, kept, meta)) => {
                    return self.note(Done::Copied {
                        rel,
                        bytes,
                        update,
                        kept,
                        meta,
                    })
                }
                Err(Failure::Changed) => {
                    debug!("{} changed while being copied", show(rel));
                    if self.m.opts.requeue {
                        crate::lock(&self.retries).push(rel.to_path_buf());
                        return;
                    }
                }
                Err(Failure::Vanished) => {
                    debug!("{} vanished before it could be copied", show(rel));
                    return;
                }
                Err(Failure::Stopped) => return,
                Err(Failure::Failed(e)) => return self.fail(e),
            }
        }
        warn!(
            "{} kept changing while being copied; the replica keeps its previous version until a later pass",
            show(rel)
        );
        self.stats.add(Count::Error);
    }

    fn copy_once(
        &self,
        node: &Node,
        name: &OsStr,
        rel: &Path,
        update: bool,
    ) -> Result<(u64, Option<PathBuf>, Meta), Failure> {
        let Some(src) = &node.src else {
            return Err(Failure::Vanished);
        };
        let read = |op: &'static str| move |e| Failure::Failed(self.src_err(op, rel, e));
        let failed = |op: &'static str| move |e| Failure::Failed(self.dst_err(op, rel, e));
        let input = match src.open_file(name) {
            Ok(f) => f,
            Err(e) if dir::is_not_a_dir(&e) => return Err(Failure::Vanished),
            Err(e) => return Err(read("open")(e)),
        };
        let before = dir::meta_of(&input).map_err(read("stat"))?;
        if before.kind != Kind::File {
            return Err(Failure::Vanished);
        }
        let Some(dst) = node.dst.as_ref().filter(|_| !self.dry_run()) else {
            return Ok((before.size, None, before));
        };
        let tmp = self.m.own().temps().fresh();
        let output = node
            .writable(|| dst.create_file(&tmp))
            .map_err(failed("create"))?;
        let guard = TempGuard::new(dst, &tmp);
        let progress = CopyProgress(self);
        let bytes = data::copy_data(&input, &output, &before, &progress).map_err(|e| match e {
            DataError::Stopped => Failure::Stopped,
            DataError::Changed => Failure::Changed,
            DataError::Read(e) => read("read")(e),
            DataError::Write(e) => failed("write")(e),
        })?;
        finish_file(&output, &before, self.m.opts.rules.owner)
            .map_err(failed("set metadata of"))?;
        let after = dir::meta_of(&input).map_err(read("stat"))?;
        if after.size != before.size || after.mtime != before.mtime {
            return Err(Failure::Changed);
        }
        drop(output);
        let kept = match (&self.m.backup, update) {
            (Some(backup), true) => {
                Some(backup.keep_old(dst, name, rel).map_err(failed("back up"))?)
            }
            _ => None,
        };
        dst.rename(&tmp, dst, name).map_err(failed("rename into"))?;
        guard.disarm();
        node.touch();
        Ok((bytes, kept, before))
    }
}

/// Why a copy did not complete.
enum Failure {
    /// The source changed while it was copied; the temporary file was dropped.
    Changed,
    /// The source is gone, or is no longer a regular file: nothing to copy.
    Vanished,
    Stopped,
    Failed(PathError),
}

struct CopyProgress<'r, 'a>(&'r Run<'a>);

impl Progress for CopyProgress<'_, '_> {
    fn stopped(&self) -> bool {
        self.0.m.stop.is_set()
    }
    fn wrote(&self, n: u64) {
        self.0.stats.add_moving(n);
    }
}

/// Gives a freshly written file its owner (as root), permissions and times.
fn finish_file(file: &std::fs::File, meta: &Meta, owner: bool) -> std::io::Result<()> {
    use rustix::fs::{Gid, Mode, Uid};
    if owner {
        rustix::fs::fchown(
            file,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )?;
    }
    rustix::fs::fchmod(file, Mode::from_raw_mode(meta.perm))?;
    rustix::fs::futimens(file, &dir::timestamps(meta))?;
    Ok(())
}

/// Removes a temporary file when dropped, unless it was renamed into place.
pub struct TempGuard<'d> {
    dir: &'d Dir,
    name: OsString,
    armed: bool,
}

impl<'d> TempGuard<'d> {
    pub fn new(dir: &'d Dir, name: &OsStr) -> TempGuard<'d> {
        TempGuard {
            dir,
            name: name.to_os_string(),
            armed: true,
        }
    }

    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.dir.unlink(&self.name);
        }
    }
}
