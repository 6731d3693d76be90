//! What a copy checks as it runs: the stop flag, the bytes moved, whether a writer touched the
//! source (a read lease, or else its size and mtime), and the temporary file to remove if the
//! copy does not complete.

use std::ffi::{OsStr, OsString};
use std::fs::File;

use super::super::round::Round;
use crate::dir::copy::{self as data, Progress};
use crate::dir::lease;
use crate::dir::{Dir, Meta};
use crate::error::PathError;

/// Why a copy did not complete.
pub(in crate::mirror) enum Failure {
    /// The source changed while it was copied (a writer opened it); the copy was dropped.
    Changed,
    /// A writer has the source open: the copy waits for it.
    Busy,
    /// The source is gone, or is no longer a regular file: nothing to copy.
    Vanished,
    Stopped,
    Failed(PathError),
}

/// The copy's link to the run: the stop flag, the progress line, and the source's state.
pub(in crate::mirror) struct CopyProgress<'r, 'a> {
    pub(super) run: &'r Round<'a>,
    /// The source, while a read lease on it holds.
    pub(super) leased: Option<&'r File>,
    /// A writer has the source open, and the copy goes on anyway: changes do not stop it.
    pub(in crate::mirror) live: bool,
}

impl CopyProgress<'_, '_> {
    /// Checks, once the bytes have moved, that the source is still what `before` describes
    /// (unless it is being copied live). With a lease held, the fstat is not needed: the
    /// lease would have been broken by any writer.
    pub(in crate::mirror) fn settled(&self, input: &File, before: &Meta) -> std::io::Result<bool> {
        self.unchanged(input, before)
    }

    /// Lets go of the lease, so that a writer opening the file is not held up by the rest of
    /// the copy (flushing it, above all).
    pub(in crate::mirror) fn release(&self) {
        if let Some(file) = self.leased {
            lease::release(file);
        }
    }
}

impl Progress for CopyProgress<'_, '_> {
    fn stopped(&self) -> bool {
        self.run.m.stop.is_set()
    }
    fn wrote(&self, n: u64) {
        self.run.stats.add_moving(n);
    }
    fn unchanged(&self, input: &File, before: &Meta) -> std::io::Result<bool> {
        if self.live {
            return Ok(true);
        }
        match self.leased {
            Some(file) => Ok(lease::holds(file)),
            None => data::same_size_and_mtime(input, before),
        }
    }
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
