//! What names a remote REPLICA's root in the record of the mirror (see [`crate::state`]): the
//! remote machine's id, the root's device and inode, and what tells it from another directory
//! at the same place with the same numbers (the root of any file system mounted at one mount
//! point has the same inode, and often the same device number): its birth time and its file
//! system's id, as the probe read them. And whether the root is a mount point, which the record
//! keeps too, so that a disk not mounted at the next start is noticed before its mount point
//! is filled.

use super::Remote;

impl Remote {
    /// `MACHINE:DEV:INO:BIRTH:FSID` (without the machine where the remote side has no id).
    pub(super) fn fingerprint(&self) -> Option<String> {
        let id = self.root_id.as_ref()?;
        let born = self.root_born.as_deref().unwrap_or("");
        Some(match &self.machine {
            Some(machine) => format!("{machine}:{id}:{born}"),
            None => format!("{id}:{born}"),
        })
    }

    /// Whether the root is a mount point: `mountpoint` said so, or it is on another device
    /// than the directory that holds it.
    pub(super) fn is_mount_root(&self) -> bool {
        let device = |id: &Option<String>| {
            id.as_deref()
                .and_then(|i| i.split_once(':'))
                .map(|d| d.0.to_string())
        };
        self.root_id.is_some()
            && (self.mount_root
                || (self.parent_id.is_some() && device(&self.root_id) != device(&self.parent_id)))
    }
}
