//! Exit statuses, kept in one place so the README and the code cannot drift apart.

use std::process::ExitCode;

/// How foldersync ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked, or the user stopped the mirror with Ctrl+C or SIGTERM.
    Success = 0,
    /// A `--once` pass finished but some paths failed (each was logged with its error), or it was
    /// refused by `--max-delete`, or (remote) cut off by a lost connection or a replaced root.
    /// For `foldersync status`: the mirror is unhealthy.
    Failed = 1,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers README.md's "Exit status" table gives.
    #[test]
    fn the_codes_are_those_the_readme_gives() {
        let codes = [
            Exit::Success,
            Exit::Failed,
            Exit::BadInput,
            Exit::Interrupted,
            Exit::Forced,
        ]
        .map(Exit::code);
        assert_eq!(codes, [0, 1, 2, 20, 130]);
    }
}
