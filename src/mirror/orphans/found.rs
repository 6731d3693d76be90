//! What the search for renames keeps, as values: REPLICA entries SOURCE lacks (orphans),
//! SOURCE entries new to REPLICA (newcomers), the renames the kernel reported, and a pass's
//! orphans indexed for matching.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::dir::{Kind, Stamp};

/// A REPLICA entry whose name SOURCE lacks.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub rel: PathBuf,
    pub kind: Kind,
    pub size: u64,
    pub mtime: Stamp,
    /// A file inside an orphan directory, indexed so it can be found; it goes with its
    /// directory if nothing claims it.
    pub inside: bool,
}

/// A SOURCE entry new to REPLICA, kept to the end of a pass.
#[derive(Debug, Clone)]
pub struct Newcomer {
    pub rel: PathBuf,
    pub kind: Kind,
}

/// The renames the kernel reported in one batch, for files: the new name's earlier self is the
/// old name, if the bytes agree. The old name is not removed before the new one had its chance.
#[derive(Debug, Default)]
pub struct Expected {
    /// New name -> old name, until claimed.
    pub(super) by_new: HashMap<PathBuf, PathBuf>,
    /// The old names, with how many new names expect them.
    pub(super) old: HashMap<PathBuf, usize>,
}

/// A pass's orphans, indexed for matching.
#[derive(Debug, Default)]
pub struct Index {
    pub orphans: Vec<Orphan>,
    pub taken: Vec<bool>,
    pub(super) by_path: HashMap<PathBuf, usize>,
    pub(super) dirs: HashMap<Vec<OsString>, Vec<usize>>,
    pub(super) files: HashMap<(u64, Stamp), Vec<usize>>,
}

pub(super) fn forget_old(old: &mut HashMap<PathBuf, usize>, from: &Path) {
    if let Some(n) = old.get_mut(from) {
        *n -= 1;
        if *n == 0 {
            old.remove(from);
        }
    }
}
