//! Whether a remote REPLICA is on this very machine, whatever name reached it (`localhost`,
//! `127.0.0.1`, `[::1]`, the host's own name, an alias in `~/.ssh/config`, a container on this
//! kernel): then it is checked as a local REPLICA would be (see
//! [`crate::config::Config::check_on_this_machine`]), by the device and inode of the
//! directories there, which mean the same on both sides of one kernel, whatever mount namespace
//! or machine id sshd has; and by its path as the remote side resolved it where the paths mean
//! the same too. Told by the boot id the probe read there (one kernel, one boot id): with the
//! same boot id and the same machine id, paths count as well; with the same boot id and another
//! machine id (a container, a systemd-nspawn machine), or none, only identities do. Where
//! either side lacks a boot id, by the identity of the deepest existing directory of that path,
//! here and there.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::probe::Probe;
use crate::dir::Id;

/// A remote REPLICA on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Here {
    /// Its path as the remote side resolved it.
    pub place: PathBuf,
    /// The root's identity, if it exists.
    pub root: Option<Id>,
    /// The identities of the deepest existing directory of `place` and of those above it.
    pub ancestry: Vec<Id>,
    /// Paths mean the same on both sides (the same machine id, or the path found to lead to
    /// the same directory here): `place` may be compared by path too.
    pub paths: bool,
    /// The backup directory, where there is one: the identities of its deepest existing
    /// directory and of those above it, and whether that is the backup directory itself.
    pub backup: Option<(Vec<Id>, bool)>,
}

/// This machine's id and boot id, as the probe reads the remote machine's.
pub fn ids() -> (Option<String>, Option<String>) {
    let read = |paths: &[&str]| {
        paths
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().to_string())
            .find(|s| !s.is_empty())
    };
    (
        read(&["/etc/machine-id", "/var/lib/dbus/machine-id"]),
        read(&["/proc/sys/kernel/random/boot_id"]),
    )
}

/// The remote REPLICA, if the probe found it on this machine.
pub fn this_machine(probe: &Probe) -> Option<Here> {
    let place = probe.place.as_ref()?;
    let mut here = Here {
        place: place.clone(),
        root: probe.id.as_deref().and_then(id),
        ancestry: ids_of(&probe.ancestry),
        paths: true,
        backup: probe
            .backup_ancestry
            .as_ref()
            .map(|(a, whole)| (ids_of(a), *whole)),
    };
    let (machine, boot) = ids();
    if let (Some(b), Some(rb)) = (boot, &probe.boot) {
        // One kernel: its devices and inodes are the same on both sides.
        here.paths = machine.is_some() && machine == probe.machine;
        return (b == *rb).then_some(here);
    }
    let anchor = here.ancestry.first()?;
    (deepest_id(place) == Some(*anchor)).then_some(here)
}

/// The identities the probe wrote, each `DEV:INO`.
fn ids_of(list: &[String]) -> Vec<Id> {
    list.iter().filter_map(|i| id(i)).collect()
}

/// `DEV:INO` as the probe writes it.
fn id(text: &str) -> Option<Id> {
    let (dev, ino) = text.split_once(':')?;
    Some(Id {
        dev: dev.parse().ok()?,
        ino: ino.parse().ok()?,
    })
}

/// The identity of the deepest directory of `path` that exists here.
fn deepest_id(path: &Path) -> Option<Id> {
    path.ancestors()
        .filter_map(|p| std::fs::metadata(p).ok())
        .find(|m| m.is_dir())
        .map(|m| Id {
            dev: m.dev(),
            ino: m.ino(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_by_its_ids_or_by_a_directory() {
        let (machine, boot) = ids();
        let tmp = tempfile::tempdir().unwrap();
        let place = std::fs::canonicalize(tmp.path()).unwrap();
        let mut probe = Probe {
            place: Some(place.join("not/yet")),
            machine: machine.clone(),
            boot: boot.clone(),
            ancestry: vec!["1:1".into()],
            ..Probe::default()
        };
        if machine.is_some() && boot.is_some() {
            assert!(this_machine(&probe).is_some_and(|h| h.paths));
            // A container on this kernel: identities only.
            probe.machine = Some("another machine".into());
            assert!(this_machine(&probe).is_some_and(|h| !h.paths));
            probe.boot = Some("another boot".into());
            assert_eq!(this_machine(&probe), None);
        }
        probe.boot = None;
        assert_eq!(this_machine(&probe), None);
        let anchor = deepest_id(&place).unwrap();
        probe.ancestry = vec![format!("{}:{}", anchor.dev, anchor.ino), "x".into()];
        let here = this_machine(&probe).unwrap();
        assert_eq!(here.ancestry, [anchor]);
        assert_eq!(here.place, place.join("not/yet"));
    }
}
