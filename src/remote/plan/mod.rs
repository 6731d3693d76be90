//! What a remote batch will do, decided from values: the hinted paths with their looks, what
//! SOURCE holds at each now ([`Source`]), what runs sent before and what is held ([`Known`]),
//! the renames seen and the settings ([`Rules`]), into a [`Plan`]. No disk, no ssh, no clock:
//! the few reads a decision may need on the way (a file's digest, the names inside a new
//! directory, the root's attributes) are asked of [`Reads`], only when the decision needs them.
//! [`super::batch`] gathers the facts, carries the plan out and sends it ([`super::send`]).

mod compare;
mod root;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::script::Rename;
use super::work::{sent_key, RootLook, Sent, Work};
use crate::dir::{Kind, Meta, Stamp};
use crate::replica::{Batch, Look};
pub use compare::{changed, named};

/// At most this many renames seen in SOURCE ride on one batch's remote command line.
const MAX_RENAMES: usize = 256;
/// At most this many candidate renames of held paths per batch.
const MAX_CLAIMS: usize = 128;

/// What SOURCE holds now at the paths a batch looks at (the root at the empty path); a path
/// not in it is one SOURCE lacks.
#[derive(Debug, Default, Clone)]
pub struct Source {
    pub metas: HashMap<PathBuf, Meta>,
}

impl Source {
    pub fn meta(&self, rel: &Path) -> Option<Meta> {
        self.metas.get(rel).copied()
    }

    pub fn kind(&self, rel: &Path) -> Option<Kind> {
        self.meta(rel).map(|m| m.kind)
    }
}

/// What the remote replica knows from earlier batches, as far as a plan looks at it.
pub struct Known<'a> {
    /// What runs that went through sent (see [`Sent`]).
    pub sent: &'a HashMap<PathBuf, Sent>,
    /// The paths held back, oldest first.
    pub held: Vec<PathBuf>,
    /// What of the root the last run that listed it sent, and the mtime REPLICA's root was
    /// last given.
    pub root_sent: Option<RootLook>,
    pub root_mtime: Option<Stamp>,
    /// A batch of only the root's times was left for a moment.
    pub root_waited: bool,
}

/// What the settings (and the clock, read once) make of a batch.
pub struct Rules<'a> {
    /// What SOURCE moved away is held back (not when the run loop clears what is due).
    pub hold: bool,
    pub dry_run: bool,
    /// Runs compare by content afterwards what rsync's quick check may pass over.
    pub comparing: bool,
    pub hard_links: bool,
    /// Batches go as `--files-from` lists (else as include filters).
    pub files_from: bool,
    /// The remote side sets the root's mtime itself (`touch`).
    pub touch: bool,
    /// How long a directory made a moment ago waits before it is sent whole.
    pub settle: Duration,
    pub now: SystemTime,
    /// Whether a path is mirrored at all (not foldersync's own, not excluded); `true` for a
    /// directory.
    pub wanted: &'a dyn Fn(&Path, bool) -> bool,
}

/// The reads a decision may need on the way, each asked only when it is needed.
pub trait Reads {
    /// What the remote side must find at a rename's old name to rename it into SOURCE's file
    /// `rel` (its size and digest); `None` if that cannot be had.
    fn proof(&mut self, rel: &Path) -> Option<String>;
    /// Entries near the top of SOURCE's new directory `tree`, and whether each is a directory.
    fn inside(&mut self, tree: &Path) -> Vec<(PathBuf, bool)>;
    /// What a held entry must be to be taken for SOURCE's `rel`; `None` if not worth a search.
    fn fingerprint(&mut self, rel: &Path) -> Option<String>;
    /// What of SOURCE's root a run that lists it sends, and its mtime.
    fn root(&mut self) -> (Option<RootLook>, Option<Stamp>);
}

/// What a batch will do.
#[derive(Debug, Default)]
pub struct Plan {
    /// The whole replica is looked at: a full pass instead of the batch.
    pub whole: bool,
    /// Every path is tried again because it failed before: its failures were said already.
    pub repeat: bool,
    /// The paths sent alone (those SOURCE lacks among them are removed), and those sent whole
    /// with `--delete`.
    pub work: Work,
    /// Files and symlinks left out: sent before as SOURCE still has them.
    pub skipped: Vec<PathBuf>,
    /// New directories that wait to settle before they are sent whole.
    pub settle: Vec<PathBuf>,
    /// Paths SOURCE moved away, held back in case they were renamed.
    pub hold: Vec<PathBuf>,
    /// Directories rsync's quick check is not trusted with (moved in, taken by a rename).
    pub doubt: Vec<PathBuf>,
    /// Renames the remote side makes first: those seen in SOURCE, then held paths taken.
    pub renames: Vec<Rename>,
    /// A changed file has other names, which only a full pass links again.
    pub other_names: bool,
    /// The batch is only the root's times, left for a moment (once): it is tried again.
    pub wait_for_root: bool,
    /// The new value of the remote replica's `root_waited`, where the plan changed it.
    pub root_waited: Option<bool>,
}

impl Plan {
    /// Whether the plan sends nothing and renames nothing.
    pub fn is_empty(&self) -> bool {
        let w = &self.work;
        w.entries.is_empty() && w.trees.is_empty() && self.renames.is_empty() && w.touch.is_none()
    }

    /// The entries SOURCE lacks, removed by the batch.
    #[cfg(test)]
    pub fn removed(&self) -> impl Iterator<Item = &PathBuf> {
        let gone = &self.work.gone;
        self.work.entries.iter().filter(move |p| gone.contains(*p))
    }
}

/// Decides what `batch` will do.
pub fn decide(
    batch: &Batch,
    source: &Source,
    known: &Known,
    rules: &Rules,
    reads: &mut dyn Reads,
) -> Plan {
    let paths = &batch.paths;
    let mut plan = Plan {
        repeat: !paths.is_empty() && paths.iter().all(|(p, _)| batch.retries.contains(p)),
        whole: (paths.iter()).any(|(p, look)| p.as_os_str().is_empty() && look.tree),
        ..Plan::default()
    };
    if plan.whole {
        return plan;
    }
    plan.work = sort(source, paths, rules);
    let sent = |p: &PathBuf| {
        (source.meta(p))
            .is_some_and(|m| m.kind != Kind::Dir && known.sent.get(p) == Some(&sent_key(&m)))
    };
    let (skipped, entries) = std::mem::take(&mut plan.work.entries)
        .into_iter()
        .partition(sent);
    (plan.skipped, plan.work.entries) = (skipped, entries);
    if rules.comparing {
        let verify = plan.work.verify.iter();
        plan.doubt = verify
            .filter(|p| source.kind(p) == Some(Kind::Dir))
            .cloned()
            .collect();
        plan.doubt.sort();
    }
    // rsync's -H links only the names in one run's list: another name of a changed file is
    // left as it was until a full pass.
    plan.other_names = rules.hard_links
        && (plan.work.entries.iter()).any(|p| {
            source
                .meta(p)
                .is_some_and(|m| m.kind == Kind::File && m.nlink > 1)
        });
    if !rules.dry_run {
        renames(&mut plan, &batch.renames, source, known, rules, reads);
    }
    root::root(&mut plan, known, rules, reads);
    plan
}

/// The batch's paths sorted into entries and trees, without what the mirror leaves out; a path
/// whose parent is no longer a directory stands for that parent.
fn sort(source: &Source, paths: &[(PathBuf, Look)], rules: &Rules) -> Work {
    let mut work = Work::default();
    for (rel, look) in paths {
        let kind = source.kind(rel);
        let (rel, lifted) = match kind {
            None => {
                let up = nearest_kept(|p| source.kind(p), rel);
                let lifted = up != *rel;
                (up, lifted)
            }
            Some(_) => (rel.clone(), false),
        };
        let is_dir = kind == Some(Kind::Dir);
        if !(rules.wanted)(&rel, is_dir) {
            continue;
        }
        if look.moved && !lifted {
            work.moved.insert(rel.clone());
        }
        if look.verify && !lifted {
            work.verify.insert(rel.clone());
        }
        if look.tree && is_dir && !rel.as_os_str().is_empty() {
            work.trees.push(rel);
        } else {
            work.entries.push(rel);
        }
    }
    // A missing path inside another missing path that is listed goes with it (rsync would
    // find its parent gone, and call that a vanished file).
    work.gone = (work.entries.iter())
        .filter(|p| source.kind(p).is_none())
        .cloned()
        .collect();
    let gone = &work.gone;
    work.entries
        .retain(|p| !p.ancestors().skip(1).any(|a| gone.contains(a)));
    work
}

/// A path SOURCE lacks because one of its parents is no longer a directory stands for that
/// parent (rsync would fail to look at it, rather than take it as missing).
pub fn nearest_kept(mut kind: impl FnMut(&Path) -> Option<Kind>, rel: &Path) -> PathBuf {
    let mut lifted = None;
    for up in rel.ancestors().skip(1) {
        match kind(up) {
            _ if up.as_os_str().is_empty() => break,
            Some(Kind::Dir) => break,
            Some(_) => lifted = Some(up.to_path_buf()),
            None => {}
        }
    }
    lifted.unwrap_or_else(|| rel.to_path_buf())
}

/// The renames for the remote side to try before the batch's runs: those seen in SOURCE, and
/// (with `hold`) what is held taken by what is new. A directory taken for a new one by the
/// names inside is unproven (see [`super::proof`]) and goes whole.
fn renames(
    plan: &mut Plan,
    seen: &[(PathBuf, PathBuf)],
    source: &Source,
    known: &Known,
    rules: &Rules,
    reads: &mut dyn Reads,
) {
    plan.renames = seen_renames(seen, source, rules, reads);
    if rules.hold {
        settle(plan, source, rules);
        hold_moved(plan, known);
        let mut held = known.held.clone();
        held.extend(
            plan.hold
                .iter()
                .filter(|p| !known.held.contains(p))
                .cloned(),
        );
        if !held.is_empty() {
            let newcomers = newcomers(&plan.work, rules, reads);
            let wanted: Vec<(PathBuf, String)> = (newcomers.into_iter())
                .filter_map(|to| Some((to.clone(), reads.fingerprint(&to)?)))
                .collect();
            plan.renames.extend(claims(&held, &wanted));
        }
    }
    let claimed: Vec<PathBuf> = (plan.renames.iter())
        .filter(|m| m.what.starts_with("d:"))
        .map(|m| m.to.clone())
        .collect();
    let work = &mut plan.work;
    for to in &claimed {
        if !work.trees.iter().any(|t| to.starts_with(t)) {
            work.entries.retain(|p| p != to);
            work.trees.push(to.clone());
        }
    }
    if rules.comparing {
        plan.doubt.extend(claimed);
    }
}

/// The renames seen in SOURCE that it bears out: the old name gone, the new one a directory,
/// or a file whose bytes the remote side is to find at the old name; never to or from a name
/// the mirror leaves out.
fn seen_renames(
    seen: &[(PathBuf, PathBuf)],
    source: &Source,
    rules: &Rules,
    reads: &mut dyn Reads,
) -> Vec<Rename> {
    let bears_out = |(from, to): &&(PathBuf, PathBuf)| {
        !from.as_os_str().is_empty() && source.meta(from).is_none() && {
            let is_dir = source.kind(to) == Some(Kind::Dir);
            (rules.wanted)(from, is_dir) && (rules.wanted)(to, is_dir)
        }
    };
    (seen.iter().filter(bears_out))
        .filter_map(|(from, to)| {
            let what = match source.kind(to)? {
                Kind::File => reads.proof(to)?,
                Kind::Dir => "d".to_string(),
                _ => return None,
            };
            let (from, to) = (from.clone(), to.clone());
            Some(Rename { from, to, what })
        })
        .take(MAX_RENAMES)
        .collect()
}

/// A directory made a moment ago may be about to be filled by a move (`mkdir new && mv big
/// new/`), whose events come in a later batch: sent whole now, what is moved in would be
/// copied rather than renamed. It waits to settle (once), then goes whole.
fn settle(plan: &mut Plan, source: &Source, rules: &Rules) {
    let fresh = |t: &PathBuf| {
        source.meta(t).is_some_and(|m| {
            let changed = UNIX_EPOCH + Duration::new(m.ctime.sec.max(0) as u64, m.ctime.nsec);
            (rules.now.duration_since(changed)).is_ok_and(|age| age < rules.settle)
        })
    };
    let (settle, trees) = std::mem::take(&mut plan.work.trees)
        .into_iter()
        .partition(fresh);
    (plan.settle, plan.work.trees) = (settle, trees);
}

/// What SOURCE moved away (and no rename of this batch takes) is held, in case the other half
/// of the rename comes in a later batch; a path held already stays held. Whatever else SOURCE
/// lacks stays in the list, and is removed now.
fn hold_moved(plan: &mut Plan, known: &Known) {
    let renamed: HashSet<&Path> = plan.renames.iter().map(|m| m.from.as_path()).collect();
    let work = &mut plan.work;
    let (held, kept) = std::mem::take(&mut work.entries)
        .into_iter()
        .partition(|p: &PathBuf| {
            !renamed.contains(p.as_path())
                && work.gone.contains(p)
                && (work.moved.contains(p) || known.held.contains(p))
        });
    (plan.hold, work.entries) = (held, kept);
}

/// How deep inside a new directory entries are offered to what is held.
pub const NEWCOMER_DEPTH: usize = 2;

/// The paths of the batch that might be what is held, under another name: its entries, its
/// new directories and what these hold near their top (`mkdir new; mv old new/`).
fn newcomers(work: &Work, rules: &Rules, reads: &mut dyn Reads) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = work.entries.iter().chain(&work.trees).cloned().collect();
    for tree in &work.trees {
        let inside = reads.inside(tree).into_iter();
        out.extend(
            inside
                .filter(|(p, is_dir)| (rules.wanted)(p, *is_dir))
                .map(|(p, _)| p),
        );
    }
    out
}

/// Renames for the remote side to try: each held path to each newcomer that could be it (with
/// what it must be, see [`Reads::fingerprint`]). The remote side makes only those whose old
/// name still holds such an entry (the same bytes, for a file) and whose new name is free.
/// Sorted by held path, so that the remote side hashes each candidate once.
pub fn claims(held: &[PathBuf], newcomers: &[(PathBuf, String)]) -> Vec<Rename> {
    let mut out = Vec::new();
    for from in held {
        for (to, what) in newcomers {
            if out.len() >= MAX_CLAIMS {
                return out;
            }
            if from != to && !to.starts_with(from) {
                let (from, to, what) = (from.clone(), to.clone(), what.clone());
                out.push(Rename { from, to, what });
            }
        }
    }
    out
}
