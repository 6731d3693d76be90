//! Gathering what a decision needs: the metadata of files and symlinks on both sides, link
//! targets, and for `--checksum` the comparison of bytes. Only what the kinds call for is
//! looked at, so an unchanged pass stays with one `statx` per file and side.

use std::ffi::OsStr;
use std::path::Path;

use super::dir_pair::DirPair;
use super::dry_view::{self, look};
use super::plan::{self, Entry, Facts};
use super::round::Round;
use crate::dir::compare::{self, Compared};
use crate::dir::{self, Kind, Meta};

impl Round<'_> {
    /// Gathers what the decision needs for `name`, given the kinds the listings found. `None`
    /// if a failure was logged.
    pub(super) fn facts(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
        (src, dst): (Option<Kind>, Option<Kind>),
        verify: bool,
    ) -> Option<Facts> {
        let run = self;
        let needs_meta = |k: Option<Kind>, other: Option<Kind>| match k {
            Some(Kind::Symlink) => true,
            Some(Kind::File) => other == Some(Kind::File),
            _ => false,
        };
        let mut src = match (&node.src, src) {
            (Some(dir), Some(kind)) if needs_meta(Some(kind), dst) => look(dir, name)
                .map_err(|e| run.fail(run.src_err("stat", rel, e)))
                .ok()?,
            (_, kind) => kind.map(Entry::of),
        };
        if let (Some(dir), Some(Entry { meta: Some(m), .. })) = (&node.src, src.as_mut()) {
            run.mark_acl_at(dir, name, m);
        }
        let dst = if run.m.dry_view.is_some() || needs_meta(dst, src.as_ref().map(|e| e.kind)) {
            dry_view::stat(run.m.dry_view.as_ref(), node.dst.as_ref(), name, rel)
                .map_err(|e| run.fail(run.dst_err("stat", rel, e)))
                .ok()?
        } else {
            dst.map(Entry::of)
        };
        let status_newer = match (&src, &dst) {
            (Some(Entry { meta: Some(s), .. }), Some(Entry { meta: Some(d), .. })) => {
                run.m.opts.ctimes && status_newer(s, d)
            }
            _ => false,
        };
        let same_bytes = match (&src, &dst) {
            // A dry run's own copy of this very SOURCE file (the view recorded SOURCE's inode),
            // unchanged since (the same status change time): its bytes are SOURCE's.
            (Some(Entry { meta: Some(s), .. }), Some(Entry { meta: Some(d), .. }))
                if run.m.dry_view.is_some() && s.id == d.id && s.ctime == d.ctime =>
            {
                Some(true)
            }
            (Some(s), Some(d))
                if plan::needs_bytes(s, d, status_newer || verify, &run.m.opts.rules) =>
            {
                let size = s.meta.map_or(0, |m| m.size);
                Some(same_bytes(run, node, name, rel, size)?)
            }
            _ => None,
        };
        let xattrs_differ = self.xattrs_differ(node, name, rel, (&src, &dst));
        let link = match &src {
            Some(Entry {
                kind: Kind::File,
                meta: Some(s),
                ..
            }) if run.m.opts.hard_links && s.nlink > 1 => {
                run.m.known.note(s.id, rel);
                Some(run.links.role(s, rel))
            }
            _ => None,
        };
        Some(Facts {
            src,
            dst,
            same_bytes,
            status_newer,
            link,
            xattrs_differ,
        })
    }

    /// Whether the extended attributes (and ACLs) of the file or symlink `name` differ between
    /// the sides; a failure to read them is said (once, where the file system keeps none).
    fn xattrs_differ(
        &self,
        node: &DirPair,
        name: &OsStr,
        rel: &Path,
        (src, dst): (&Option<Entry>, &Option<Entry>),
    ) -> bool {
        match (src, dst, &node.src, &node.dst) {
            (Some(s), Some(d), Some(sd), Some(dd))
                if self.m.opts.xattrs
                    && s.kind == d.kind
                    && matches!(s.kind, Kind::File | Kind::Symlink) =>
            {
                match crate::dir::xattr::differ(sd, name, dd, name) {
                    Ok(differ) => differ,
                    Err(e) if dir::is_absent(&e) => false,
                    Err(e) => {
                        self.xattrs(Err(e), rel);
                        false
                    }
                }
            }
            _ => false,
        }
    }
}

/// Whether SOURCE's and REPLICA's files `name` (`size` bytes each) hold the same bytes.
/// `None` if the comparison failed (logged) or was stopped.
pub(super) fn same_bytes(
    run: &Round,
    node: &DirPair,
    name: &OsStr,
    rel: &Path,
    size: u64,
) -> Option<bool> {
    let (Some(s), Some(d)) = (&node.src, &node.dst) else {
        return Some(false);
    };
    let stop = || run.m.stop.is_set();
    // Compared while no writer is at work (a lease), else not taken as the same.
    let compared = s.open_file(name).and_then(|a| {
        let before = dir::meta_of(&a)?;
        if before.size != size {
            return Ok(Compared::Differ);
        }
        d.open_file(name)
            .and_then(|b| compare::same_data_undisturbed(&a, &before, &b, &stop))
    });
    match compared {
        Ok(Compared::Same) => Some(true),
        Ok(Compared::Differ) => Some(false),
        Ok(Compared::Stopped) => None,
        Err(e) => {
            run.fail(run.src_err("compare", rel, e));
            None
        }
    }
}

/// Whether SOURCE's entry changed status after foldersync last wrote REPLICA's (a rename, a
/// re-link, a rewrite that kept size and mtime). A ctime in the future (a clock ahead of ours,
/// on a network file system) says nothing, and is not taken as a change.
fn status_newer(src: &Meta, dst: &Meta) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 + 1)
        .unwrap_or(i64::MAX);
    src.changed_after(dst) && src.ctime.sec <= now
}
