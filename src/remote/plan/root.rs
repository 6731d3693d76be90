//! How a batch keeps the root's times right, decided: a batch that changes entries directly in
//! the root changes the root's times, which rsync sets only for a directory in its list; but
//! rsync's `-d` sends every entry of a root it lists (see [`super::super::send`]). So while the
//! root's other attributes are what was sent before, the root is not listed and the guard sets
//! its mtime once rsync is done (`touch`); otherwise the root is listed.

use super::{Known, Plan, Reads, Rules};

/// The root's part of `plan` (after its renames): nothing if the batch changes nothing in the
/// root; a `touch` while the root's other attributes are as last sent (and nothing at all if
/// the batch changes nothing in the root and its mtime is what REPLICA's root was last given);
/// otherwise the root listed. A batch of only the root's times is left for a moment (once) to
/// the batch with the change in the root that is coming: the watcher names a new entry's
/// parent before the entry.
pub(super) fn root(plan: &mut Plan, known: &Known, rules: &Rules, reads: &mut dyn Reads) {
    let work = &mut plan.work;
    let in_root = |p: &&std::path::PathBuf| p.parent().is_some_and(|d| d.as_os_str().is_empty());
    let listed = work.entries.iter().any(|p| p.as_os_str().is_empty());
    if !listed && !work.entries.iter().chain(&work.trees).any(|p| in_root(&p)) {
        return;
    }
    let (look, mtime) = reads.root();
    let by_touch = rules.files_from && rules.touch && !rules.dry_run;
    if by_touch && look.is_some() && known.root_sent == look && mtime.is_some() {
        work.entries.retain(|p| !p.as_os_str().is_empty());
        // Nothing else in the batch changes the root's entries (which would change its times
        // on the remote side).
        let alone = work.entries.is_empty() && work.trees.is_empty() && plan.renames.is_empty();
        if alone && mtime == known.root_mtime {
            plan.root_waited = Some(false);
            return;
        }
        if alone && !known.root_waited {
            plan.root_waited = Some(true);
            plan.wait_for_root = true;
            return;
        }
        plan.root_waited = Some(false);
        work.touch = mtime;
        work.root_mtime = mtime;
        return;
    }
    if !listed {
        work.entries.push(std::path::PathBuf::new());
    }
    work.root_look = look;
    work.root_mtime = mtime;
}
