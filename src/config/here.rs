//! A remote REPLICA that turned out to be on this machine (`localhost:`, `127.0.0.1:`, the
//! host's own name, an ssh alias: see [`crate::remote`]) is checked as a local one would be, at
//! the path the remote side resolved it to: not SOURCE, nor inside or holding it; the log file,
//! the status file and the state directory not inside it; the backup directory not inside
//! SOURCE nor holding it. The same comparisons as for a local REPLICA (by path, by identity and
//! by where both really are), so a symlink or a bind mount cannot disguise it.

use std::path::Path;

use super::paths::within;
use super::{bad, check_apart, check_backup, check_state_dir, Config};
use crate::error::StartError;
use crate::escape::esc;

impl Config {
    /// Refuses a remote REPLICA on this machine, at `place`, where a local REPLICA at `place`
    /// would be refused.
    pub fn check_on_this_machine(&self, place: &Path) -> Result<(), StartError> {
        let rep_shown = format!("{} (on this machine: {})", esc(&self.replica), esc(place));
        check_apart(&self.source, place, &esc(&self.source), &rep_shown)?;
        let files = [
            ("log file", Some(&self.log_path)),
            ("status file", self.status_file.as_ref()),
        ];
        for (what, path) in files {
            if let Some(path) = path.filter(|p| within(p, place)) {
                return Err(bad(format!(
                    "{what} {} is inside REPLICA {rep_shown}: the mirror would delete it",
                    esc(path)
                )));
            }
        }
        if let Some(backup) = &self.backup_dir {
            check_backup(backup, &self.source, place)?;
        }
        if let Some(state) = &self.state_dir {
            check_state_dir(state, &self.source, Some(place))?;
        }
        Ok(())
    }
}
