//! The run loop's side of the watcher: starting it, taking in its messages, and what lost
//! events and changes of the mount table call for.

use std::path::{Path, PathBuf};

use log::{info, warn};

use super::{Daemon, MAX_PENDING};
use crate::replica::Look;
use crate::status::State;
use crate::watch::{Hint, WatchMsg, Watcher};

impl Daemon<'_> {
    /// The other paths of `path` inside SOURCE: a directory bind-mounted inside SOURCE is one
    /// directory at two paths, and its events name one of them.
    pub(super) fn aliases(&self, path: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for below in &self.mounts {
            let Some(original) = &below.alias_of else {
                continue;
            };
            if let Ok(rest) = path.strip_prefix(original) {
                out.push(below.rel.join(rest));
            }
            if let Ok(rest) = path.strip_prefix(&below.rel) {
                out.push(original.join(rest));
            }
        }
        out
    }

    /// The mount table changed: where a file system came or went inside SOURCE is looked at
    /// as a whole (one gone is an error there, see `mirror::mounts`), and SOURCE is watched
    /// anew (the new one's directories had no watch).
    pub(super) fn mounts_changed(&mut self) {
        let now = crate::config::mounts::below(&self.source.root.path);
        if now == self.mounts {
            return;
        }
        let changed: Vec<PathBuf> = now
            .iter()
            .filter(|b| !self.mounts.contains(b))
            .chain(self.mounts.iter().filter(|b| !now.contains(b)))
            .map(|b| b.rel.clone())
            .collect();
        info!(
            "file systems were mounted or unmounted inside SOURCE: {}",
            changed
                .iter()
                .map(|p| crate::escape::rel(p).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for rel in changed {
            self.pending.add(rel, Look::TREE);
        }
        self.mounts = now;
        if self.watcher.is_some() {
            self.watcher = None;
            self.start_watcher();
        }
    }

    pub(super) fn start_watcher(&mut self) {
        self.mounts = crate::config::mounts::below(&self.source.root.path);
        let gather_removals = self.config.max_delete.is_some();
        match Watcher::start(self.scope.clone(), self.config.timing, gather_removals) {
            Ok(watcher) => self.watcher = Some(watcher),
            Err(e) => {
                warn!(
                    "watching SOURCE failed ({}); mirroring by periodic passes only",
                    crate::escape::text(&e.to_string())
                );
                self.report
                    .degrade(format!("no watcher ({e}): periodic passes only"));
            }
        }
    }

    pub(super) fn absorb(&mut self, msg: WatchMsg) {
        match msg {
            WatchMsg::Hints(hints) => {
                for hint in hints {
                    match hint {
                        Hint::Path(path, look) => {
                            for alias in self.aliases(&path) {
                                self.pending.add(alias, look);
                            }
                            self.pending.add(path, look);
                        }
                        Hint::Rename(from, to) => {
                            for alias in self.aliases(&from).into_iter().chain(self.aliases(&to)) {
                                self.pending.add(alias, Look::TREE);
                            }
                            self.pending.rename(from, to);
                        }
                        Hint::Rescan => self.lost("the watcher asked for a rescan".into()),
                        Hint::RootGone => {
                            self.check(false);
                        }
                    }
                }
                if self.pending.len() > MAX_PENDING {
                    info!("more than {MAX_PENDING} paths waiting: a full pass takes them over");
                    self.pending.clear();
                    self.schedule.want_pass(false);
                }
            }
            WatchMsg::Lost(why) => self.lost(why),
            WatchMsg::Mounts => self.mounts_changed(),
            WatchMsg::Trouble { message, degraded } => {
                warn!("{message}");
                if let Some(why) = degraded {
                    self.report.degrade(why);
                    self.report.rest();
                }
            }
        }
    }

    /// Events were lost: the watch is made anew before the next full pass, which comes as soon
    /// as the rescan spacing allows, and until it ends the status says the mirror is catching up.
    pub(super) fn lost(&mut self, why: String) {
        if self.lost.is_none() {
            warn!("events were lost ({why}): SOURCE is watched anew and a full pass catches up");
        }
        self.lost_count += 1;
        self.lost = Some(why);
        self.schedule.want_pass(true);
        self.report.state(State::Degraded, self.catching_up());
    }

    /// The reason the status gives while a pass catches up after lost events.
    pub(super) fn catching_up(&self) -> Option<String> {
        self.lost
            .as_ref()
            .map(|why| format!("events were lost ({why}); a full pass is catching up"))
    }
}
