//! Exit statuses, kept in one place so the README and the code cannot drift apart.

use std::process::ExitCode;

/// How foldersync ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked, or the user stopped the mirror with Ctrl+C or SIGTERM.
    Success = 0,
    /// A `--once` pass finished but some paths failed (each was logged with its error).
    PassErrors = 1,
    /// Bad command line or start-up input (missing SOURCE, nested paths, ...): nothing was
    /// changed.
    BadInput = 2,
    /// A `--once` run was stopped (Ctrl+C, SIGTERM) before its pass ended: REPLICA may be only
    /// partly mirrored (rsync's status for the same case).
    Interrupted = 20,
    /// A second Ctrl+C arrived while the first was being honoured: exit at once, like a shell
    /// does.
    Forced = 130,
}

impl Exit {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
