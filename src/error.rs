//! Error types: per-path errors that a pass logs and survives, and start-up errors that end the program.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// An I/O error on one path, with the operation that failed. Logged, counted, and the run goes
/// on; the path it names relative to the roots is tried again later.
#[derive(Debug)]
pub struct PathError {
    op: &'static str,
    path: PathBuf,
    err: io::Error,
    /// The path to try again (relative to the roots), and how closely.
    retry: Option<(PathBuf, crate::replica::Look)>,
}

impl PathError {
    pub fn new(op: &'static str, path: impl Into<PathBuf>, err: io::Error) -> Self {
        PathError {
            op,
            path: path.into(),
            err,
            retry: None,
        }
    }

    /// The path relative to the roots that is to be tried again (the entry itself).
    pub fn retry(mut self, rel: impl Into<PathBuf>) -> Self {
        self.retry = Some((rel.into(), crate::replica::Look::ENTRY));
        self
    }

    /// What is to be tried again is the whole directory (its listing failed).
    pub fn tree(mut self) -> Self {
        if let Some((_, look)) = &mut self.retry {
            look.tree = true;
        }
        self
    }

    /// The path to try again, if it is known.
    pub fn retried(&self) -> Option<&(PathBuf, crate::replica::Look)> {
        self.retry.as_ref()
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.op,
            crate::escape::rel(&self.path),
            self.err
        )
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.err)
    }
}

/// A failure that was already logged (with its path) and counted: the caller only stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logged;

/// A problem with the command line or the environment found at start-up: the program exits with
/// [`crate::exit::Exit::BadInput`] and changes nothing.
#[derive(Debug)]
pub struct StartError(pub String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl StartError {
    pub fn new(msg: impl Into<String>) -> Self {
        StartError(msg.into())
    }
}
