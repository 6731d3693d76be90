//! The status file of a process running several pairs (`--config`): one document listing every
//! pair, each with its mirror's name and the fields a single pair's document has. Each pair's
//! [`StatusFile`] keeps its own document and rate limit, and writes through the board, which
//! holds the latest of each and replaces the whole file at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{now_text, unix_now, write_json, Status};
use crate::dir::Dir;
use crate::own::OwnFiles;

/// The document: the process, and every pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Many {
    pub version: String,
    pub pid: u32,
    pub updated_at: String,
    pub updated_unix: f64,
    pub pairs: Vec<Slot>,
}

/// One pair: its mirror's name, and its own document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slot {
    pub mirror: String,
    #[serde(flatten)]
    pub status: Status,
}

/// The shared status file.
#[derive(Debug)]
pub struct Board {
    path: PathBuf,
    dir: Dir,
    own: Arc<OwnFiles>,
    slots: Mutex<Vec<Option<Slot>>>,
}

impl Board {
    /// The status file at `path` (resolved), for `count` pairs; its directory opened and held.
    pub fn new(path: &Path, count: usize, own: Arc<OwnFiles>) -> std::io::Result<Arc<Board>> {
        let dir = Dir::open(path.parent().unwrap_or(Path::new("/")))?;
        Ok(Arc::new(Board {
            path: path.to_path_buf(),
            dir,
            own,
            slots: Mutex::new(vec![None; count]),
        }))
    }

    /// Keeps pair `index`'s document, without writing (an index past the others adds a pair,
    /// as a reload does).
    pub fn set(&self, index: usize, mirror: &str, doc: &Status) {
        let mut slots = crate::lock(&self.slots);
        if slots.len() <= index {
            slots.resize(index + 1, None);
        }
        slots[index] = Some(Slot {
            mirror: mirror.to_string(),
            status: doc.clone(),
        });
    }

    /// Keeps pair `index`'s document and writes the whole file.
    pub fn put(&self, index: usize, mirror: &str, doc: &Status) -> std::io::Result<()> {
        self.set(index, mirror, doc);
        self.write()
    }

    /// Takes pair `index` off the document (a reload removed it), and writes it.
    pub fn remove(&self, index: usize) {
        if let Some(slot) = crate::lock(&self.slots).get_mut(index) {
            *slot = None;
        }
        if let Err(e) = self.write() {
            log::debug!("cannot write the status file: {e}");
        }
    }

    fn write(&self) -> std::io::Result<()> {
        let slots = crate::lock(&self.slots);
        let many = Many {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            updated_at: now_text(),
            updated_unix: unix_now(),
            pairs: slots.iter().flatten().cloned().collect(),
        };
        // Written while the lock is held: two pairs never rename over each other's newer file.
        write_json(&self.dir, &self.path, &self.own, &many)
    }
}
