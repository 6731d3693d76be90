//! Unit tests of the decision: no disk, only values.

mod decide {
    use super::super::*;
    use crate::dir::{Id, Stamp};

    fn meta(kind: Kind, size: u64, mtime: i64, perm: u32) -> Meta {
        let t = Stamp {
            sec: mtime,
            nsec: 5,
        };
        Meta {
            kind,
            perm,
            uid: 1,
            gid: 1,
            size,
            blocks: size / 512 + 1,
            nlink: 1,
            atime: t,
            mtime: t,
            ctime: t,
            id: Id { dev: 1, ino: 1 },
            mount_root: false,
            acl: false,
        }
    }

    fn file(size: u64, mtime: i64, perm: u32) -> Option<Entry> {
        Some(Entry {
            kind: Kind::File,
            meta: Some(meta(Kind::File, size, mtime, perm)),
            target: None,
        })
    }

    fn link(target: &str, mtime: i64) -> Option<Entry> {
        Some(Entry {
            kind: Kind::Symlink,
            meta: Some(meta(Kind::Symlink, 0, mtime, 0o777)),
            target: Some(target.into()),
        })
    }

    fn plan(src: Option<Entry>, dst: Option<Entry>) -> Plan {
        decide(
            &Facts {
                src,
                dst,
                same_bytes: None,
                status_newer: false,
                link: None,
                xattrs_differ: false,
            },
            &Rules::ALL,
        )
    }

    #[test]
    fn new_entries_are_created() {
        assert_eq!(
            plan(file(3, 10, 0o644), None).then,
            Op::Copy { update: false }
        );
        assert_eq!(plan(Some(Entry::of(Kind::Dir)), None).then, Op::MakeDir);
        assert_eq!(
            plan(link("t", 1), None).then,
            Op::Symlink {
                target: "t".into(),
                update: false
            }
        );
    }

    #[test]
    fn extras_and_other_kinds_are_removed_first() {
        let p = plan(None, Some(Entry::of(Kind::Dir)));
        assert_eq!(p.remove, Some(Kind::Dir));
        assert_eq!(p.then, Op::Keep);
        let p = plan(file(1, 1, 0o644), Some(Entry::of(Kind::Dir)));
        assert_eq!(p.remove, Some(Kind::Dir));
        assert_eq!(p.then, Op::Copy { update: false });
        let p = plan(Some(Entry::of(Kind::Special("fifo"))), file(1, 1, 0o644));
        assert_eq!((p.remove, p.skipped), (Some(Kind::File), Some("fifo")));
    }

    #[test]
    fn files_compare_by_size_and_mtime_then_attributes() {
        assert_eq!(plan(file(3, 10, 0o644), file(3, 10, 0o644)), Plan::KEEP);
        assert_eq!(
            plan(file(3, 10, 0o644), file(4, 10, 0o644)).then,
            Op::Copy { update: true }
        );
        assert_eq!(
            plan(file(3, 11, 0o644), file(3, 10, 0o644)).then,
            Op::Copy { update: true }
        );
        assert_eq!(plan(file(3, 10, 0o600), file(3, 10, 0o644)).then, Op::Attrs);
    }

    #[test]
    fn checksum_and_modify_window() {
        let rules = Rules {
            checksum: true,
            ..Rules::ALL
        };
        let facts = |same| Facts {
            src: file(3, 11, 0o644),
            dst: file(3, 10, 0o644),
            same_bytes: Some(same),
            status_newer: false,
            link: None,
            xattrs_differ: false,
        };
        assert!(needs_bytes(
            facts(true).src.as_ref().unwrap(),
            facts(true).dst.as_ref().unwrap(),
            false,
            &rules
        ));
        assert_eq!(decide(&facts(true), &rules).then, Op::Attrs);
        assert_eq!(
            decide(&facts(false), &rules).then,
            Op::Copy { update: true }
        );
        let window = Rules {
            window: Duration::from_secs(2),
            ..Rules::default()
        };
        let facts = Facts {
            src: file(3, 11, 0o644),
            dst: file(3, 10, 0o644),
            same_bytes: None,
            status_newer: false,
            link: None,
            xattrs_differ: false,
        };
        assert_eq!(decide(&facts, &window), Plan::KEEP);
    }

    #[test]
    fn symlinks_compare_by_target() {
        assert_eq!(plan(link("a", 1), link("a", 1)), Plan::KEEP);
        assert_eq!(plan(link("a", 2), link("a", 1)).then, Op::SymlinkAttrs);
        assert_eq!(
            plan(link("b", 1), link("a", 1)).then,
            Op::Symlink {
                target: "b".into(),
                update: true
            }
        );
    }
}

mod status {
    use super::super::*;
    use crate::dir::{Id, Stamp};

    fn file(ctime: i64) -> Option<Entry> {
        let t = Stamp { sec: 10, nsec: 0 };
        Some(Entry {
            kind: Kind::File,
            meta: Some(Meta {
                kind: Kind::File,
                perm: 0o644,
                uid: 0,
                gid: 0,
                size: 3,
                blocks: 8,
                nlink: 1,
                atime: t,
                mtime: t,
                ctime: Stamp {
                    sec: ctime,
                    nsec: 0,
                },
                id: Id { dev: 1, ino: 2 },
                mount_root: false,
                acl: false,
            }),
            target: None,
        })
    }

    /// Two files of the same size and mtime swapped by renames: their ctimes moved after
    /// REPLICA's copies were written, so their bytes are compared.
    #[test]
    fn a_newer_status_asks_for_the_bytes() {
        let (src, dst) = (file(30), file(20));
        let rules = Rules::default();
        assert!(src
            .as_ref()
            .unwrap()
            .meta
            .unwrap()
            .changed_after(&dst.as_ref().unwrap().meta.unwrap()));
        assert!(needs_bytes(
            src.as_ref().unwrap(),
            dst.as_ref().unwrap(),
            true,
            &rules
        ));
        assert!(!needs_bytes(
            src.as_ref().unwrap(),
            dst.as_ref().unwrap(),
            false,
            &rules
        ));
        let facts = |same| Facts {
            src: src.clone(),
            dst: dst.clone(),
            same_bytes: Some(same),
            status_newer: true,
            link: None,
            xattrs_differ: false,
        };
        assert_eq!(
            decide(&facts(false), &rules).then,
            Op::Copy { update: true }
        );
        assert_eq!(decide(&facts(true), &rules).then, Op::Verified);
    }
}

mod links {
    use super::super::*;
    use crate::dir::{Id, Stamp};

    fn file(ino: u64) -> Option<Entry> {
        let t = Stamp { sec: 10, nsec: 0 };
        Some(Entry {
            kind: Kind::File,
            meta: Some(Meta {
                kind: Kind::File,
                perm: 0o644,
                uid: 0,
                gid: 0,
                size: 3,
                blocks: 8,
                nlink: 2,
                atime: t,
                mtime: t,
                ctime: t,
                id: Id { dev: 9, ino },
                mount_root: false,
                acl: false,
            }),
            target: None,
        })
    }

    fn facts(dst: Option<Entry>, link: Role) -> Facts {
        Facts {
            src: file(1),
            dst,
            same_bytes: None,
            status_newer: false,
            link: Some(link),
            xattrs_differ: false,
        }
    }

    #[test]
    fn a_replica_file_with_a_name_foldersync_did_not_give_it_is_replaced() {
        let rules = Rules::ALL;
        let mut dst = file(60);
        if let Some(Entry { meta: Some(m), .. }) = dst.as_mut() {
            m.nlink = 2;
            m.perm = 0o600;
        }
        let facts = Facts {
            src: file(1).map(|mut e| {
                if let Some(m) = e.meta.as_mut() {
                    m.nlink = 1;
                }
                e
            }),
            dst,
            same_bytes: None,
            status_newer: false,
            link: None,
            xattrs_differ: false,
        };
        assert_eq!(decide(&facts, &rules).then, Op::Copy { update: true });
    }

    #[test]
    fn followers_link_to_the_leaders_copy() {
        let rules = Rules::default();
        let follow = |replica| Role::Follow {
            to: "lead".into(),
            replica,
        };
        let r = Id { dev: 9, ino: 50 };
        assert_eq!(
            decide(&facts(None, follow(Some(r))), &rules).then,
            Op::Link { to: "lead".into() }
        );
        assert_eq!(
            decide(&facts(None, follow(None)), &rules).then,
            Op::LinkLater { to: "lead".into() }
        );
        assert_eq!(
            decide(&facts(file(50), follow(Some(r))), &rules),
            Plan::KEEP
        );
        assert_eq!(
            decide(&facts(file(51), follow(Some(r))), &rules).then,
            Op::Link { to: "lead".into() }
        );
        assert_eq!(decide(&facts(file(51), Role::Lead), &rules), Plan::KEEP);
    }
}
