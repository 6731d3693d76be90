//! What rsync's quick check cannot be trusted with on a remote replica. rsync takes a file of
//! the same size and mtime as the same file; equal size and mtime is a hint, never proof of
//! equal bytes. Two facts decide which files are compared by content (`--checksum`) instead:
//!
//! - **The mark**: when the last full pass that went through began (this machine's clock,
//!   less [`MARGIN`]). A file whose ctime is earlier has not changed since: that pass (or,
//!   before it, the one it trusted) left REPLICA's copy as SOURCE has it. A file whose ctime is
//!   later may have been rewritten in place with its size and mtime kept: if rsync's quick
//!   check sends nothing for it, it is compared. Without any pass on record (a REPLICA
//!   foldersync has no record of, a record lost or unreadable), the mark is the epoch: the
//!   first pass compares every file rsync does not send, once.
//! - **The unproven directories**: a directory REPLICA holds by a rename foldersync made on a
//!   hint (a held directory taken by the names inside it), or that came into SOURCE whole from
//!   elsewhere, holds files whose ctimes say nothing about REPLICA's copies at those paths.
//!   Every file in it is compared when it is next sent, or by the next pass.
//!
//! Both are kept in the record of the mirror ([`crate::state::Proof`]): the mark by each pass,
//! the unproven directories as soon as they change, before the run that makes them, so that a
//! run stopped or killed in between leaves them to the next start.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::debug;

use crate::dir::Stamp;
use crate::state::{Loaded, Record, State};

/// How far before a pass began its mark is put: a file system's clock for ctimes lags the
/// wall clock by up to a tick, and keeps whole seconds on some file systems.
pub const MARGIN: Duration = Duration::from_secs(2);
/// Past this many unproven directories, the whole replica is unproven.
const MAX_UNPROVEN: usize = 1000;

/// What the remote replica knows of what its runs compared.
#[derive(Debug, Default)]
pub struct Proof {
    /// See the module's documentation; `None` before any pass on record.
    pub mark: Option<Stamp>,
    unproven: BTreeSet<PathBuf>,
    /// Where the unproven directories are written as soon as they change (none in a dry run).
    keeper: Option<State>,
}

/// The mark of a pass that begins at `now`.
pub fn mark_at(now: SystemTime) -> Stamp {
    let at = now.checked_sub(MARGIN).unwrap_or(UNIX_EPOCH);
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => Stamp {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        },
        Err(_) => Stamp::default(),
    }
}

impl Proof {
    /// Takes what the record says of this REPLICA (`recorded`: `None` if it says nothing of
    /// it), and writes later changes to the record in `state` (`write`: not in a dry run). A
    /// mark later than now says this machine's clock went back since: every file whose ctime
    /// is later than the epoch is then compared, once.
    pub fn keep(&mut self, state: Option<&State>, recorded: Option<&Record>, write: bool) {
        let now = mark_at(SystemTime::now() + MARGIN);
        let since = recorded.and_then(|r| r.proof.since);
        self.mark = Some(match since.map(|(sec, nsec)| Stamp { sec, nsec }) {
            Some(mark) if mark <= now => mark,
            Some(_) => {
                debug!("the last pass's mark is in the future: every file is compared");
                Stamp::default()
            }
            // No pass on record (a record lost or unreadable, an adopted REPLICA, a first
            // run): nothing vouches for what REPLICA holds, so the first pass compares every
            // file rsync's quick check passes over, once.
            None => Stamp::default(),
        });
        if let Some(r) = recorded {
            self.unproven = r.proof.unproven.clone();
        }
        self.keeper = state.filter(|_| write).cloned();
    }

    /// The proof as the record keeps it.
    pub fn record(&self) -> crate::state::Proof {
        crate::state::Proof {
            since: self.mark.map(|m| (m.sec, m.nsec)),
            unproven: self.unproven.clone(),
        }
    }

    /// A pass that began with `mark` went through, its comparisons too.
    pub fn passed(&mut self, mark: Stamp) {
        self.mark = Some(mark);
        if !self.unproven.is_empty() {
            self.unproven.clear();
            self.save();
        }
    }

    /// Whether REPLICA's entry at `rel` lies in an unproven directory.
    pub fn unproven(&self, rel: &Path) -> bool {
        !self.unproven.is_empty() && rel.ancestors().any(|a| self.unproven.contains(a))
    }

    pub fn any_unproven(&self) -> bool {
        !self.unproven.is_empty()
    }

    /// `dirs` are unproven now (written to the record at once).
    pub fn doubt<'a>(&mut self, dirs: impl IntoIterator<Item = &'a PathBuf>) {
        let before = self.unproven.clone();
        for dir in dirs {
            add(&mut self.unproven, dir);
        }
        if self.unproven != before {
            self.save();
        }
    }

    /// REPLICA's `from` was renamed to `to`: what was unproven there moved with it.
    pub fn renamed(&mut self, from: &Path, to: &Path) {
        if !self.unproven.iter().any(|u| u.starts_with(from)) {
            return;
        }
        let (moved, kept): (BTreeSet<PathBuf>, BTreeSet<PathBuf>) =
            std::mem::take(&mut self.unproven)
                .into_iter()
                .partition(|u| u.starts_with(from));
        self.unproven = kept;
        for u in moved {
            match u.strip_prefix(from) {
                Ok(rest) if !rest.as_os_str().is_empty() => add(&mut self.unproven, &to.join(rest)),
                _ => add(&mut self.unproven, to),
            }
        }
        self.save();
    }

    /// The directories `trees` were sent whole, and every file in them that rsync did not
    /// write was compared: nothing in them is unproven any more.
    pub fn proven(&mut self, trees: &[PathBuf]) {
        let before = self.unproven.len();
        self.unproven
            .retain(|u| !trees.iter().any(|t| u.starts_with(t)));
        if self.unproven.len() != before {
            self.save();
        }
    }

    /// Writes the unproven directories into the record, keeping the rest of it: the run loop
    /// makes the record before the first pass, and writes the whole of it after each pass.
    fn save(&self) {
        let Some(state) = &self.keeper else { return };
        let Loaded::Record(mut record) = state.load() else {
            return;
        };
        record.proof.unproven = self.unproven.clone();
        if let Err(e) = state.save(&record) {
            debug!("cannot write the record of what is unproven: {e}");
        }
    }
}

/// Adds `dir` to `set`, unless a directory holding it is there; what it holds goes. Past
/// [`MAX_UNPROVEN`], the root stands for them all.
fn add(set: &mut BTreeSet<PathBuf>, dir: &Path) {
    if dir.ancestors().any(|a| set.contains(a)) {
        return;
    }
    set.retain(|u| !u.starts_with(dir));
    set.insert(dir.to_path_buf());
    if set.len() > MAX_UNPROVEN {
        set.clear();
        set.insert(PathBuf::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&str]) -> BTreeSet<PathBuf> {
        paths.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn a_directory_holding_another_stands_for_it() {
        let mut s = set(&["a/b", "c"]);
        add(&mut s, Path::new("a/b/c"));
        assert_eq!(s, set(&["a/b", "c"]));
        add(&mut s, Path::new("a"));
        assert_eq!(s, set(&["a", "c"]));
        for i in 0..MAX_UNPROVEN {
            add(&mut s, Path::new(&format!("d{i}")));
        }
        assert_eq!(s, set(&[""]), "too many: the whole replica");
    }

    #[test]
    fn what_is_unproven_follows_renames_and_goes_once_compared() {
        let mut p = Proof::default();
        p.doubt(&[PathBuf::from("app-1.1/lib"), PathBuf::from("other")]);
        assert!(p.unproven(Path::new("app-1.1/lib/x.so")));
        assert!(!p.unproven(Path::new("app-1.1/bin/app")));
        p.renamed(Path::new("app-1.1"), Path::new("current"));
        p.renamed(Path::new("other"), Path::new("else"));
        assert_eq!(p.record().unproven, set(&["current/lib", "else"]));
        assert_eq!(
            serde_json::to_string(&p.record().unproven).unwrap(),
            r#"["current/lib","else"]"#
        );
        assert!(p.unproven(Path::new("current/lib/x.so")));
        assert!(!p.unproven(Path::new("app-1.1/lib/x.so")));
        p.proven(&[PathBuf::from("current")]);
        assert!(!p.unproven(Path::new("current/lib/x.so")));
        assert!(p.unproven(Path::new("else/f")));
        p.passed(Stamp { sec: 5, nsec: 0 });
        assert!(!p.any_unproven());
        assert_eq!(p.record().since, Some((5, 0)));
    }

    #[test]
    fn a_mark_is_before_the_pass_and_one_from_the_future_is_not_trusted() {
        let t = UNIX_EPOCH + Duration::new(100, 5);
        assert_eq!(mark_at(t), Stamp { sec: 98, nsec: 5 });
        assert_eq!(mark_at(UNIX_EPOCH), Stamp::default());
        let tmp = tempfile::tempdir().unwrap();
        let state = State::new(tmp.path().to_path_buf(), Path::new("/s"), Path::new("h:/r"));
        let mut record = state.fresh();
        record.proof.since = Some((i64::MAX / 2, 0));
        record.proof.unproven = set(&["app"]);
        state.save(&record).unwrap();
        let mut p = Proof::default();
        p.keep(Some(&state), Some(&record), true);
        assert_eq!(p.mark, Some(Stamp::default()));
        assert!(p.unproven(Path::new("app/f")));
        // Written back as soon as it changes.
        p.proven(&[PathBuf::from("app")]);
        let Loaded::Record(read) = state.load() else {
            panic!("no record")
        };
        assert!(read.proof.unproven.is_empty());
    }
}
