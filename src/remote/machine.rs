//! Whether a remote REPLICA is on this very machine, whatever name reached it (`localhost`,
//! `127.0.0.1`, `[::1]`, the host's own name, an alias in `~/.ssh/config`): then its path, as
//! the remote side resolved it, is checked as a local REPLICA's would be (see
//! [`crate::config::Config::check_on_this_machine`]). Told by the machine id and the boot id
//! the probe read there (a container that shares neither is another machine, with file systems
//! of its own); where either side lacks them, by the identity of the deepest existing directory
//! of that path, here and there.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::probe::Probe;

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

/// Where REPLICA is on this machine, if the probe found it on this machine.
pub fn this_machine(probe: &Probe) -> Option<PathBuf> {
    let place = probe.place.as_ref()?;
    if let ((Some(m), Some(b)), Some(rm), Some(rb)) = (ids(), &probe.machine, &probe.boot) {
        return (m == *rm && b == *rb).then(|| place.clone());
    }
    let anchor = probe.anchor.as_deref()?;
    (deepest_id(place).as_deref() == Some(anchor)).then(|| place.clone())
}

/// `device:inode` of the deepest directory of `path` that exists here.
fn deepest_id(path: &Path) -> Option<String> {
    path.ancestors()
        .filter_map(|p| std::fs::metadata(p).ok())
        .find(|m| m.is_dir())
        .map(|m| format!("{}:{}", m.dev(), m.ino()))
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
            anchor: Some("1:1".into()),
            ..Probe::default()
        };
        if machine.is_some() && boot.is_some() {
            assert_eq!(this_machine(&probe), probe.place.clone());
            probe.boot = Some("another boot".into());
            assert_eq!(this_machine(&probe), None);
        }
        probe.machine = None;
        assert_eq!(this_machine(&probe), None);
        probe.anchor = deepest_id(&place);
        assert_eq!(this_machine(&probe), probe.place.clone());
    }
}
