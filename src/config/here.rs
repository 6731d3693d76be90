//! A remote REPLICA that turned out to be on this machine (`localhost:`, `127.0.0.1:`, the
//! host's own name, an ssh alias: see [`crate::remote::machine`]) is checked as a local one
//! would be, at the path the remote side resolved it to: not SOURCE, nor inside or holding it;
//! the log file, the status file and the state directory not inside it; the backup directory
//! not inside SOURCE nor holding it. The same comparisons as for a local REPLICA (by path, by
//! identity and by where both really are), so a symlink or a bind mount cannot disguise it;
//! and by the identities of the remote root and the directories above it, which hold even
//! where sshd sees the file systems through other mounts than foldersync does.

use std::path::Path;

use super::checks::{check_apart, check_backup};
use super::paths::{ancestry, id, within};
use super::{bad, Config};
use crate::dir::Id;
use crate::error::StartError;
use crate::escape::esc;
use crate::remote::machine::Here;

impl Config {
    /// Refuses a remote REPLICA on this machine (`here`: where the remote side resolved it,
    /// the identities of its root and of the directories above it, and of the backup
    /// directory's), where a local REPLICA there would be refused. Paths are compared only
    /// where they mean the same on both sides (not in a container with a machine id of its
    /// own); identities always.
    pub fn check_on_this_machine(&self, here: &Here) -> Result<(), StartError> {
        let (place, root, above) = (&here.place, here.root, &here.ancestry);
        let shown = if here.paths {
            format!("{} (on this machine: {})", esc(&self.replica), esc(place))
        } else {
            // A container on this kernel: its paths name other directories here.
            format!(
                "{} (on this machine's kernel, told by the identity of its directories)",
                esc(&self.replica)
            )
        };
        let src = esc(&self.source);
        if here.paths {
            check_apart(&self.source, place, &src, &shown)?;
        }
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
        let inside = |path: &Path| {
            (here.paths && within(path, place)) || root.is_some_and(|r| ancestry(path).contains(&r))
        };
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
            if here.paths {
                check_backup(backup, &self.source, place)?;
            }
            if let Some((ids, whole)) = &here.backup {
                backup_apart(backup, ids, *whole, source_id, &self.source)?;
            }
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

/// The backup directory `backup` on this machine, by the identities of its deepest existing
/// directory and of those above it (`ids`; `whole`: the first is the backup directory itself),
/// as the remote side sees them: neither inside SOURCE nor holding it.
fn backup_apart(
    backup: &Path,
    ids: &[Id],
    whole: bool,
    source_id: Option<Id>,
    source: &Path,
) -> Result<(), StartError> {
    let shown = esc(backup);
    if source_id.is_some_and(|s| ids.contains(&s)) {
        return Err(bad(format!(
            "backup directory {shown} is inside SOURCE (it is on this machine): foldersync \
             never writes into SOURCE"
        )));
    }
    if whole && ids.first().is_some_and(|b| ancestry(source).contains(b)) {
        return Err(bad(format!(
            "SOURCE is inside the backup directory {shown} (it is on this machine): foldersync \
             never writes into SOURCE"
        )));
    }
    Ok(())
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
        let here = |root: Option<Id>, ancestry: &[Id]| Here {
            place: "/nonexistent/srv/docs".into(),
            root,
            ancestry: ancestry.to_vec(),
            paths: true,
            backup: None,
        };
        let docs = id(&base.join("home/docs"));
        let err = config
            .check_on_this_machine(&here(docs, &[docs.unwrap()]))
            .unwrap_err();
        assert!(err.to_string().contains("SOURCE"), "{err}");
        let same = id(&src);
        let err = config
            .check_on_this_machine(&here(same, &[same.unwrap()]))
            .unwrap_err();
        assert!(err.to_string().contains("same directory"), "{err}");
        let inside = ancestry(&src.join("x"));
        let err = config
            .check_on_this_machine(&here(None, &inside))
            .unwrap_err();
        assert!(err.to_string().contains("inside SOURCE"), "{err}");
        let apart = ancestry(&base);
        let other = here(id(&base.join("other")), &apart[1..]);
        assert!(config.check_on_this_machine(&other).is_ok());
        // A container on this kernel: its paths say nothing here, its identities do.
        let container = Here {
            place: src.clone(),
            paths: false,
            ..other.clone()
        };
        assert!(config.check_on_this_machine(&container).is_ok());
        let holding = Here {
            paths: false,
            ..here(docs, &[docs.unwrap()])
        };
        let err = config.check_on_this_machine(&holding).unwrap_err();
        assert!(err.to_string().contains("told by the identity"), "{err}");
        // Its backup directory seen inside SOURCE there, or holding it.
        let backup = |dir: &Path, whole: bool| (ancestry(dir), whole);
        let in_source = Here {
            backup: Some(backup(&src, false)),
            ..container.clone()
        };
        let mut config = config;
        config.backup_dir = Some("/srv/bk".into());
        let err = config.check_on_this_machine(&in_source).unwrap_err();
        assert!(err.to_string().contains("inside SOURCE"), "{err}");
        let holding = Here {
            backup: Some(backup(&base.join("home"), true)),
            ..container.clone()
        };
        let err = config.check_on_this_machine(&holding).unwrap_err();
        assert!(
            err.to_string().contains("inside the backup directory"),
            "{err}"
        );
        let beside = Here {
            backup: Some(backup(&base.join("home"), false)),
            ..container
        };
        assert!(config.check_on_this_machine(&beside).is_ok());
    }
}
