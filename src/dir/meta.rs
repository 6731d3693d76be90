//! What foldersync knows of an entry: its kind, and a snapshot of its metadata taken with
//! `statx` (never following a symlink).

use std::time::Duration;

use rustix::fs::{AtFlags, FileType, Statx, StatxAttributes, StatxFlags, Timespec, Timestamps};
use std::io;
use std::os::fd::AsFd;

/// The kinds of entries the mirror knows about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Fifo, socket or device: never mirrored.
    Special(&'static str),
}

impl Kind {
    pub fn of(ft: FileType) -> Option<Kind> {
        Some(match ft {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Special("fifo"),
            FileType::Socket => Kind::Special("socket"),
            FileType::CharacterDevice => Kind::Special("character device"),
            FileType::BlockDevice => Kind::Special("block device"),
            FileType::Unknown => return None,
        })
    }

    pub fn from_mode(mode: u32) -> Kind {
        Kind::of(FileType::from_raw_mode(mode)).unwrap_or(Kind::Special("unknown file type"))
    }

    /// The noun used in log lines.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Special(name) => name,
        }
    }
}

/// A point in time as the file system keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Stamp {
    pub sec: i64,
    pub nsec: u32,
}

impl Stamp {
    /// Whether two stamps are within `window` of each other (rsync's `--modify-window`).
    pub fn near(self, other: Stamp, window: Duration) -> bool {
        if window.is_zero() {
            return self == other;
        }
        let a = i128::from(self.sec) * 1_000_000_000 + i128::from(self.nsec);
        let b = i128::from(other.sec) * 1_000_000_000 + i128::from(other.nsec);
        (a - b).unsigned_abs() <= window.as_nanos()
    }
}

/// A snapshot of an entry's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// 512-byte blocks allocated: fewer than the size needs means holes.
    pub blocks: u64,
    pub nlink: u64,
    pub atime: Stamp,
    pub mtime: Stamp,
    pub ctime: Stamp,
    pub id: Id,
    /// The root of a mount (a mount point, bind mounts included).
    pub mount_root: bool,
    /// It has an access ACL that REPLICA will not carry (set by the mirror where that matters:
    /// see `Rules::perm_for`).
    pub acl: bool,
}

/// An inode's identity: device and inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    pub dev: u64,
    pub ino: u64,
}

impl Meta {
    pub fn from_statx(x: &Statx) -> Meta {
        let stamp = |t: &rustix::fs::StatxTimestamp| Stamp {
            sec: t.tv_sec,
            nsec: t.tv_nsec,
        };
        let mount_root = x.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
            && x.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
        Meta {
            kind: Kind::from_mode(u32::from(x.stx_mode)),
            perm: u32::from(x.stx_mode) & 0o7777,
            uid: x.stx_uid,
            gid: x.stx_gid,
            size: x.stx_size,
            blocks: x.stx_blocks,
            nlink: u64::from(x.stx_nlink),
            atime: stamp(&x.stx_atime),
            mtime: stamp(&x.stx_mtime),
            ctime: stamp(&x.stx_ctime),
            id: Id {
                dev: rustix::fs::makedev(x.stx_dev_major, x.stx_dev_minor),
                ino: x.stx_ino,
            },
            mount_root,
            acl: false,
        }
    }

    /// Same size and modification time (within `window`): the contents are taken as equal.
    pub fn same_stamp(&self, other: &Meta, window: Duration) -> bool {
        self.size == other.size && self.mtime.near(other.mtime, window)
    }

    /// Whether the entry's status changed after `other`'s did: `other` being the replica's copy,
    /// whose ctime is the moment foldersync last wrote it (where REPLICA's file system keeps
    /// ctimes, which its probe finds out), this means SOURCE's entry was renamed, re-linked,
    /// re-permissioned or rewritten since, even if its size and mtime look the same. The mtimes
    /// play no part: a file dated in the future has a real ctime too.
    /// Equal ctimes count as a change: the kernel stamps ctimes from a clock that ticks every
    /// few milliseconds, so a change made in the tick REPLICA's copy was written in looks no
    /// later than the copy. Such a copy is compared once more and marked checked (its ctime
    /// then moves on).
    /// A ctime with no nanoseconds comes from a file system that keeps whole seconds (ext4 with
    /// small inodes, ext3, FAT, many FUSE file systems): it is compared to the second, or a
    /// change made later in the second of the copy would look older than the copy.
    pub fn changed_after(&self, other: &Meta) -> bool {
        if self.ctime.nsec == 0 {
            self.ctime.sec >= other.ctime.sec
        } else {
            self.ctime >= other.ctime
        }
    }
}

/// The metadata of an open file or directory.
pub fn meta_of(fd: impl AsFd) -> io::Result<Meta> {
    let x = rustix::fs::statx(fd, c"", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)?;
    Ok(Meta::from_statx(&x))
}

/// The access and modification times of `meta`, for `utimensat` and `futimens`.
pub fn timestamps(meta: &Meta) -> Timestamps {
    let t = |s: Stamp| Timespec {
        tv_sec: s.sec,
        tv_nsec: i64::from(s.nsec) as _,
    };
    Timestamps {
        last_access: t(meta.atime),
        last_modification: t(meta.mtime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_within_a_window() {
        let a = Stamp { sec: 10, nsec: 0 };
        let b = Stamp {
            sec: 11,
            nsec: 999_999_999,
        };
        assert!(!a.near(b, Duration::ZERO));
        assert!(a.near(a, Duration::ZERO));
        assert!(a.near(b, Duration::from_secs(2)));
        assert!(!a.near(b, Duration::from_secs(1)));
        assert!(b.near(a, Duration::from_secs(2)));
    }
}
