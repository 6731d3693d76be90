//! Renames in SOURCE mirrored as renames in REPLICA, so the replica keeps the same inode and
//! nothing is copied again. Only done when the rename's result can be checked: SOURCE no longer
//! has the old name, REPLICA still has it, and what REPLICA holds there matches what SOURCE now
//! has at the new name. Both paths are reconciled afterwards in any case.

use std::path::Path;

use log::debug;

use super::act::Acted;
use super::change::{Change, Would};
use super::dry_view::{self, look};
use super::plan::Entry;
use super::round::Round;
use crate::dir::{Dir, Kind};
use crate::escape::rel as show;

/// Mirrors the rename of `from` to `to` (both relative). Returns whether REPLICA was renamed.
pub fn rename(run: &Round, from: &Path, to: &Path) -> bool {
    let m = run.m;
    let plain = |p: &Path| {
        !p.as_os_str().is_empty()
            && !m.own().in_source(p)
            && !m.own().in_replica(p)
            && !m.own().leads_to_own(p)
            && !m.excluded(p, false)
            && !m.excluded(p, true)
    };
    if !plain(from) || !plain(to) || to.starts_with(from) {
        return false;
    }
    let (Some(from_parent), Some(from_name), Some(to_parent), Some(to_name)) =
        (from.parent(), from.file_name(), to.parent(), to.file_name())
    else {
        return false;
    };
    let open = |root: &Dir, rel: &Path| root.open_beneath(rel).ok();
    let src = &run.source.dir;
    let (Some(src_from), Some(src_to)) = (open(src, from_parent), open(src, to_parent)) else {
        return false;
    };
    let (Ok(None), Ok(Some(now))) = (src_from.stat_at(from_name), look(&src_to, to_name)) else {
        return false;
    };
    let Some(root) = m.root_dir() else {
        return false;
    };
    let (dst_from, dst_to) = (open(root, from_parent), open(root, to_parent));
    // Without a dry run's view, both directories must be on disk.
    if run.m.dry_view.is_none() && (dst_from.is_none() || dst_to.is_none()) {
        return false;
    }
    let Ok(Some(old)) = dry_view::stat(run.m.dry_view.as_ref(), dst_from.as_ref(), from_name, from)
    else {
        return false;
    };
    if now.meta.is_none() || old.meta.is_none() {
        return false;
    }
    let matches = now.kind == old.kind
        && match now.kind {
            // A file's bytes must be proven the same first: the new name takes the old one
            // when the walk meets it, where it would otherwise be copied (see orphans).
            Kind::File => {
                run.expect(from, to);
                return false;
            }
            Kind::Symlink => now.target == old.target,
            Kind::Dir => true,
            Kind::Special(_) => false,
        };
    matches && rename_now(run, (dst_from.as_ref(), from), (dst_to.as_ref(), to), old)
}

/// Renames REPLICA's `from` (in its directory `dst_from`) to `to`, keeping what it overwrites
/// with `--backup-dir`; a dry run only says so. Returns whether it was (or would be) done.
fn rename_now(
    run: &Round,
    (dst_from, from): (Option<&Dir>, &Path),
    (dst_to, to): (Option<&Dir>, &Path),
    old: Entry,
) -> bool {
    let (Some(from_name), Some(to_name)) = (from.file_name(), to.file_name()) else {
        return false;
    };
    if let Some(view) = &run.m.dry_view {
        let mut view = crate::lock(view);
        view.set(to.to_path_buf(), Would::Is(old));
        view.set(from.to_path_buf(), Would::Gone);
    }
    // What the rename overwrites is kept; a rename that fails leaves the copy to the walk.
    let renamed = run.attempt(
        dst_from,
        |dst_from| {
            let dst_to =
                dst_to.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
            run.move_entry((dst_from, from_name), (dst_to, to_name), to, true)
        },
        |_| Change::Renamed {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        },
    );
    match renamed {
        Ok(acted) => !matches!(acted, Acted::Failed),
        Err(e) => {
            debug!(
                "cannot rename {} to {} ({e}); copying instead",
                show(from),
                show(to)
            );
            false
        }
    }
}
