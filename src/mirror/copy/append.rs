//! Files that only grow (logs, captures, downloads): the bytes added since REPLICA's copy was
//! made are appended to that copy in place, after checking that the copy is the beginning of
//! the file as it is now, instead of the whole file being copied again. So the bytes written
//! follow the bytes that changed. A reader of REPLICA may see the copy grow, as readers of
//! SOURCE saw the file grow; every other change is still made through a temporary file.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::super::dir_pair::DirPair;
use super::super::round::Round;
use super::{CopyProgress, Failure};
use crate::dir::copy::{self as data, DataError};
use crate::dir::{self, Kind, Meta};

/// Copies longer than this are not checked byte for byte before an append (the check reads
/// both); they are copied whole instead.
pub const VERIFY_AT_MOST: u64 = 64 << 20;

impl Round<'_> {
    /// Appends what `input` (as `before` describes it) gained since REPLICA's copy `dst` was made.
    /// `None` when the file did not simply grow, or the copy is not its beginning: then it is
    /// copied as usual. Called by [`Round::copy_once`] only, never in a dry run.
    pub(super) fn append(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
        (input, before): (&File, &Meta),
        dst: &Meta,
        progress: &CopyProgress,
    ) -> Option<Result<u64, Failure>> {
        let rules = &self.m.opts.rules;
        let grew = dst.kind == Kind::File
            && dst.size > 0
            && before.size > dst.size
            && dst.size <= VERIFY_AT_MOST
            && dst.nlink == 1
            && self.m.backup.is_none()
            && !rules.attrs_differ(before, dst);
        if !grew {
            return None;
        }
        let dir = node.dst.as_ref()?;
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let output = File::from(fd);
        let now = dir::meta_of(&output).ok()?;
        if now.kind != Kind::File || now.size != dst.size || now.id != dst.id {
            return None;
        }
        let stop = || self.m.stop.is_set();
        let same = crate::dir::compare::same_data(input, &output, dst.size, &stop);
        if !matches!(same, Ok(crate::dir::compare::Compared::Same)) {
            return None;
        }
        let failed = |op: &'static str| move |e| Failure::Failed(self.dst_err(op, rel, e));
        let read = |op: &'static str| move |e| Failure::Failed(self.src_err(op, rel, e));
        let result = data::copy_from(input, &output, dst.size, before, progress)
            .map_err(|e| match e {
                DataError::Stopped => Failure::Stopped,
                DataError::Changed => Failure::Changed,
                DataError::Read(e) => read("read")(e),
                DataError::Write(e) => failed("write")(e),
            })
            .and_then(|bytes| {
                if !progress.settled(input, before).map_err(read("stat"))? {
                    return Err(Failure::Changed);
                }
                if self.m.opts.fsync {
                    progress.release();
                    output.sync_data().map_err(failed("flush"))?;
                }
                rustix::fs::futimens(&output, &dir::timestamps(before))
                    .map_err(std::io::Error::from)
                    .map_err(failed("set metadata of"))?;
                Ok(bytes)
            });
        Some(result)
    }
}
