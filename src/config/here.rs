//! A remote REPLICA that turned out to be on this machine (`localhost:`, `127.0.0.1:`, the
//! host's own name, an ssh alias: see [`crate::remote::machine`]) is checked as a local one
//! would be, at the path the remote side resolved it to: not SOURCE, nor inside or holding it;
//! the log file, the status file and the state directory not inside it; the backup directory
//! not inside SOURCE nor holding it. The same comparisons as for a local REPLICA (by path, by
//! identity and by where both really are), so a symlink or a bind mount cannot disguise it;
//! and by the identities of the remote root and the directories above it, which hold even
//! where sshd sees the file systems through other mounts than foldersync does.

use std::path::Path;

use super::paths::{ancestry, id, within};
use super::{bad, check_apart, check_backup, Config};
use crate::dir::Id;
use crate::error::StartError;
use crate::escape::esc;

impl Config {
    /// Refuses a remote REPLICA on this machine at `place`, whose root is `root` (if it exists)
    /// and whose deepest existing directory and those above it are `above`, where a local
    /// REPLICA there would be refused.
    pub fn check_on_this_machine(
        &self,
        place: &Path,
        root: Option<Id>,
        above: &[Id],
    ) -> Result<(), StartError> {
        let shown = format!("{} (on this machine: {})", esc(&self.replica), esc(place));
        let src = esc(&self.source);
        check_apart(&self.source, place, &src, &shown)?;
        // The same checks by identity.
        let source_id = id(&self.source);
        if root.is_some() && root == source_id {
            return Err(bad(format!(
                "SOURCE {src} and REPLICA {shown} are the same directory"
            )));
        }
        if source_id.is_some_and(|s| above.contains(&s)) {
            return Err(bad(format!(
                "REPLICA {shown} is inside SOURCE {src}: the mirror would copy itself"
            )));
        }
        let inside =
            |path: &Path| within(path, place) || root.is_some_and(|r| ancestry(path).contains(&r));
        if inside(&self.source) {
            return Err(bad(format!(
                "SOURCE {src} is inside REPLICA {shown}: the mirror would delete its own source"
            )));
        }
        let files = [
            ("log file", Some(&self.log_path)),
            ("status file", self.status_file.as_ref()),
        ];
        for (what, path) in files {
            if let Some(path) = path.filter(|p| inside(p)) {
                return Err(bad(format!(
                    "{what} {} is inside REPLICA {shown}: the mirror would delete it",
                    esc(path)
                )));
            }
        }
        if let Some(backup) = &self.backup_dir {
            check_backup(backup, &self.source, place)?;
        }
        if let Some(state) = &self.state_dir {
            if inside(state) {
                return Err(bad(format!(
                    "state directory {} is inside REPLICA {shown}: the mirror would remove it",
                    esc(state)
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// REPLICA on this machine seen at a path that shows nothing here (sshd in other mounts):
    /// its identities still tell where it is.
    #[test]
    fn identities_tell_what_paths_cannot() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let src = base.join("home/docs/photos");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("f"), b"x").unwrap();
        let args = crate::cli::Args::try_parse_from([
            std::ffi::OsStr::new("foldersync"),
            src.as_os_str(),
            std::ffi::OsStr::new("nas:/srv/docs"),
            std::ffi::OsStr::new("-l"),
            base.join("log").as_os_str(),
            std::ffi::OsStr::new("--state-dir"),
            base.join("state").as_os_str(),
        ])
        .unwrap();
        let config = Config::from_args(args).unwrap();
        let elsewhere = Path::new("/nonexistent/srv/docs");
        let docs = id(&base.join("home/docs"));
        let err = config
            .check_on_this_machine(elsewhere, docs, &[docs.unwrap()])
            .unwrap_err();
        assert!(err.to_string().contains("SOURCE"), "{err}");
        let same = id(&src);
        let err = config
            .check_on_this_machine(elsewhere, same, &[same.unwrap()])
            .unwrap_err();
        assert!(err.to_string().contains("same directory"), "{err}");
        let inside = ancestry(&src.join("x"));
        let err = config
            .check_on_this_machine(elsewhere, None, &inside)
            .unwrap_err();
        assert!(err.to_string().contains("inside SOURCE"), "{err}");
        let apart = ancestry(&base);
        assert!(config
            .check_on_this_machine(elsewhere, id(&base.join("other")), &apart[1..])
            .is_ok());
    }
}
