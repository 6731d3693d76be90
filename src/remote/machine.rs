//! Whether a remote REPLICA is on this very machine, whatever name reached it (`localhost`,
//! `127.0.0.1`, `[::1]`, the host's own name, an alias in `~/.ssh/config`): then it is checked
//! as a local REPLICA would be (see [`crate::config::Config::check_on_this_machine`]), at its
//! path as the remote side resolved it, and by the device and inode of the directories there
//! (which mean the same on both sides of one kernel, whatever mount namespace sshd runs in).
//! Told by the machine id and the boot id the probe read there (a container with an id of its
//! own is another machine); where either side lacks them, by the identity of the deepest
//! existing directory of that path, here and there.

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
    let here = Here {
        place: place.clone(),
        root: probe.id.as_deref().and_then(id),
        ancestry: probe.ancestry.iter().filter_map(|i| id(i)).collect(),
    };
    if let ((Some(m), Some(b)), Some(rm), Some(rb)) = (ids(), &probe.machine, &probe.boot) {
        return (m == *rm && b == *rb).then_some(here);
    }
    let anchor = here.ancestry.first()?;
    (deepest_id(place) == Some(*anchor)).then_some(here)
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
            assert!(this_machine(&probe).is_some());
            probe.boot = Some("another boot".into());
            assert_eq!(this_machine(&probe), None);
        }
        probe.machine = None;
        assert_eq!(this_machine(&probe), None);
        let anchor = deepest_id(&place).unwrap();
        probe.ancestry = vec![format!("{}:{}", anchor.dev, anchor.ino), "x".into()];
        let here = this_machine(&probe).unwrap();
        assert_eq!(here.ancestry, [anchor]);
        assert_eq!(here.place, place.join("not/yet"));
    }
}
