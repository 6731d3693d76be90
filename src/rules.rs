//! The rules of comparison both engines follow, from the configuration: what is compared (by
//! bytes with `--checksum`, mtimes within `--modify-window`), and what of an entry's attributes
//! is kept (owner, permission bits, ACLs), with the permission bits a copy may carry.

use std::time::Duration;

use crate::dir::Meta;

/// Files smaller than this are copied rather than searched for as renames (by both engines):
/// a copy costs less than the search and the proof.
pub const RENAME_MIN: u64 = 4096;

/// The rules of comparison, from the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// Compare same-size files by their bytes, not by their mtimes.
    pub checksum: bool,
    /// Ownership is kept (foldersync runs as root, and REPLICA's file system keeps it).
    pub owner: bool,
    /// Permission bits are kept (REPLICA's file system keeps them: FAT does not).
    pub perms: bool,
    /// mtimes this close count as equal (`--modify-window`).
    pub window: Duration,
    /// ACLs are kept (extended attributes are, and REPLICA's file system keeps them). Where
    /// they are not, an entry with an ACL is mirrored owner-only: its mode bits alone would let
    /// read it whom the ACL denies.
    pub acls: bool,
}

impl Rules {
    /// Everything kept, compared exactly.
    #[cfg(test)]
    pub const ALL: Rules = Rules {
        checksum: false,
        owner: true,
        perms: true,
        window: Duration::ZERO,
        acls: true,
    };

    /// The permission bits REPLICA's copy of `src` gets, the copy being owned by `owner` (its
    /// user and group as they are, or are about to be): set-user-ID only where the user is
    /// SOURCE's, set-group-ID only where the group is (`cp -p` does the same). Ownership is
    /// kept when foldersync runs as root; otherwise the copy is the mirror's, and a set-UID
    /// program of someone else's must not become the mirror account's.
    pub fn perm_for(&self, src: &Meta, owner: (u32, u32)) -> u32 {
        let (uid, gid) = if self.owner {
            (src.uid, src.gid)
        } else {
            owner
        };
        let perm = if src.acl && !self.acls {
            src.perm & 0o7700
        } else {
            src.perm
        };
        crate::dir::tree::safe_perm(perm, (src.uid, src.gid), (uid, gid))
    }

    /// Whether an entry's ACL matters to its mode here: permissions are kept, ACLs are not.
    pub fn asks_acl(&self) -> bool {
        self.perms && !self.acls
    }

    /// Whether the attributes that are kept differ: permission bits, ownership.
    pub fn attrs_differ(&self, src: &Meta, dst: &Meta) -> bool {
        (self.perms && self.perm_for(src, (dst.uid, dst.gid)) != dst.perm)
            || (self.owner && (src.uid != dst.uid || src.gid != dst.gid))
    }
}
