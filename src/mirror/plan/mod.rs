//! Deciding what one entry needs: from what SOURCE and REPLICA hold at a name, a [`Plan`]. Pure:
//! no disk, no dry run, no logging; [`super::apply`] carries the plan out.

use std::path::PathBuf;
use std::time::Duration;

use super::links::Role;
use crate::dir::{Kind, Meta};

/// What one side holds at a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Its metadata, where the decision needs it (files and symlinks on both sides).
    pub meta: Option<Meta>,
    /// A symlink's target.
    pub target: Option<PathBuf>,
}

impl Entry {
    pub fn of(kind: Kind) -> Entry {
        Entry {
            kind,
            meta: None,
            target: None,
        }
    }
}

/// Everything the decision looks at.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub src: Option<Entry>,
    pub dst: Option<Entry>,
    /// Whether both files have the same bytes, when [`needs_bytes`] asked for a comparison.
    pub same_bytes: Option<bool>,
    /// SOURCE's entry changed status (its ctime) after foldersync last wrote REPLICA's: renamed,
    /// re-linked or rewritten, even if its size and mtime look the same.
    pub status_newer: bool,
    /// For a name of a SOURCE inode with more than one link (when hard links are kept): whether
    /// it carries the content, or follows another name's copy.
    pub link: Option<Role>,
    /// The extended attributes (and ACLs) that are kept differ.
    pub xattrs_differ: bool,
}

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

/// What to do with one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Nothing.
    Keep,
    /// Create the directory (and then mirror everything below it).
    MakeDir,
    /// A directory on both sides: mirror its contents; its attributes follow them.
    Walk,
    /// Copy the file; `update` when it replaces REPLICA's older version.
    Copy { update: bool },
    /// The file's bytes are the same: set its permissions, owner and times.
    Attrs,
    /// Create the symlink, or re-point it (`update`).
    Symlink { target: PathBuf, update: bool },
    /// The symlink points the same way: set its owner and times.
    SymlinkAttrs,
    /// The file's status changed in SOURCE, but its bytes and attributes are the same: mark
    /// REPLICA's copy as checked (its ctime moves), so it is not compared again.
    Verified,
    /// Another name of the same SOURCE inode carries the content: make this one a hard link
    /// to its copy at `to`.
    Link { to: PathBuf },
    /// As `Link`, once the copy at `to` is in place (it is being made).
    LinkLater { to: PathBuf },
}

/// A decision: what REPLICA's entry must lose first, and what happens then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// REPLICA's entry goes first (SOURCE lacks it, or has another kind there).
    pub remove: Option<Kind>,
    pub then: Op,
    /// SOURCE holds a fifo, socket or device here, which is never mirrored.
    pub skipped: Option<&'static str>,
}

impl Plan {
    pub const KEEP: Plan = Plan {
        remove: None,
        then: Op::Keep,
        skipped: None,
    };

    fn then(op: Op) -> Plan {
        Plan {
            remove: None,
            then: op,
            skipped: None,
        }
    }
}

/// Whether deciding needs the two files' bytes compared first: with `--checksum` for files of
/// the same size, and for files that look the same but whose status changed in SOURCE since
/// REPLICA's copy was written (two files of the same size and mtime swapped by renames).
pub fn needs_bytes(src: &Entry, dst: &Entry, status_newer: bool, rules: &Rules) -> bool {
    match (src.kind, dst.kind, &src.meta, &dst.meta) {
        (Kind::File, Kind::File, Some(s), Some(d)) => {
            (rules.checksum && s.size == d.size) || (status_newer && s.same_stamp(d, rules.window))
        }
        _ => false,
    }
}

/// Decides what REPLICA's entry needs so that it matches SOURCE's.
pub fn decide(facts: &Facts, rules: &Rules) -> Plan {
    let (src, skipped) = match &facts.src {
        Some(Entry {
            kind: Kind::Special(what),
            ..
        }) => (None, Some(*what)),
        other => (other.as_ref(), None),
    };
    let mut plan = match (src, &facts.dst) {
        (None, None) => Plan::KEEP,
        (None, Some(dst)) => Plan {
            remove: Some(dst.kind),
            ..Plan::KEEP
        },
        (Some(src), None) => Plan::then(follow(facts).unwrap_or_else(|| create(src))),
        (Some(src), Some(dst)) if src.kind != dst.kind => Plan {
            remove: Some(dst.kind),
            ..Plan::then(follow(facts).unwrap_or_else(|| create(src)))
        },
        (Some(_), Some(dst)) if facts.link.as_ref().is_some_and(|r| *r != Role::Lead) => {
            let same = matches!(
                (&facts.link, &dst.meta),
                (Some(Role::Follow { replica: Some(r), .. }), Some(d)) if d.id == *r
            );
            if same {
                Plan::KEEP
            } else {
                Plan::then(follow(facts).unwrap_or(Op::Keep))
            }
        }
        (Some(src), Some(dst)) => Plan::then(update(src, dst, facts, rules)),
    };
    plan.skipped = skipped;
    plan
}

/// A name that follows another name's copy: a link to it, now or once it is made.
fn follow(facts: &Facts) -> Option<Op> {
    match &facts.link {
        Some(Role::Follow {
            to,
            replica: Some(_),
        }) => Some(Op::Link { to: to.clone() }),
        Some(Role::Follow { to, replica: None }) => Some(Op::LinkLater { to: to.clone() }),
        _ => None,
    }
}

fn create(src: &Entry) -> Op {
    match src.kind {
        Kind::File => Op::Copy { update: false },
        Kind::Dir => Op::MakeDir,
        Kind::Symlink => match &src.target {
            Some(target) => Op::Symlink {
                target: target.clone(),
                update: false,
            },
            None => Op::Keep,
        },
        Kind::Special(_) => Op::Keep,
    }
}

/// Both sides hold the same kind.
fn update(src: &Entry, dst: &Entry, facts: &Facts, rules: &Rules) -> Op {
    match src.kind {
        Kind::Dir => Op::Walk,
        Kind::File => {
            let (Some(s), Some(d)) = (&src.meta, &dst.meta) else {
                return Op::Keep;
            };
            let same = match facts.same_bytes {
                Some(same) => s.size == d.size && same,
                None => s.same_stamp(d, rules.window),
            };
            // REPLICA's file has names that foldersync did not give it (a hard link someone made
            // to a file elsewhere): it is replaced, never changed in place, or the change would
            // reach the other name too.
            let names = if facts.link.is_some() { s.nlink } else { 1 };
            if !same || d.nlink > names {
                Op::Copy { update: true }
            } else if rules.attrs_differ(s, d)
                || !s.mtime.near(d.mtime, rules.window)
                || facts.xattrs_differ
            {
                Op::Attrs
            } else if facts.status_newer {
                Op::Verified
            } else {
                Op::Keep
            }
        }
        Kind::Symlink => {
            let (Some(s), Some(d)) = (&src.meta, &dst.meta) else {
                return Op::Keep;
            };
            match (&src.target, &dst.target) {
                (Some(a), Some(b)) if a == b && d.nlink <= 1 => {
                    let owner = rules.owner && (s.uid != d.uid || s.gid != d.gid);
                    if owner || !s.mtime.near(d.mtime, rules.window) || facts.xattrs_differ {
                        Op::SymlinkAttrs
                    } else {
                        Op::Keep
                    }
                }
                (Some(target), _) => Op::Symlink {
                    target: target.clone(),
                    update: true,
                },
                (None, _) => Op::Keep,
            }
        }
        Kind::Special(_) => Op::Keep,
    }
}

#[cfg(test)]
mod tests;
