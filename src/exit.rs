//! Exit statuses, kept in one place so the README and the code cannot drift apart.

/// Everything worked, or the user stopped the mirror with Ctrl+C or SIGTERM.
pub const SUCCESS: u8 = 0;
/// A `--once` pass finished but some paths failed (each was logged with its error).
pub const PASS_ERRORS: u8 = 1;
/// Bad command line or start-up input (missing SOURCE, nested paths, ...): nothing was changed.
pub const BAD_INPUT: u8 = 2;
/// A `--once` run was stopped (Ctrl+C, SIGTERM) before its pass ended: REPLICA may be only
/// partly mirrored (rsync's status for the same case).
pub const INTERRUPTED: u8 = 20;
/// A second Ctrl+C arrived while the first was being honoured: exit at once, like a shell does.
pub const FORCED: u8 = 130;
