//! The pairs of a `--config` process at run time: each on a thread of its own with its own stop,
//! the pairs of one SOURCE on one shared watcher (`watch::shared`); one Ctrl+C or SIGTERM
//! relayed to every pair; SIGHUP reopens the log and reads the configuration again: pairs added
//! start, removed ones are stopped and joined, changed ones (another command line) restart, the
//! others go on untouched, without a pass. A configuration that fails its checks (or a new pair
//! that cannot open) is refused with its reason at ERROR, and nothing running is touched.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{select, Receiver, Sender};
use log::{error, info};

use super::pairs::load_with;
use super::{launch, Opened};
use crate::cli::Args;
use crate::config::file::Pair;
use crate::error::StartError;
use crate::escape::esc;
use crate::exit::Exit;
use crate::status::Board;
use crate::stop::Stop;
use crate::watch::shared::{Shared, Tap};
use crate::watch::Scope;

mod fresh;

/// One pair at work.
struct Pair1 {
    label: String,
    mirror: String,
    argv: String,
    stop: Stop,
    wake: Sender<()>,
    thread: JoinHandle<Exit>,
    /// Its place on the status board (which also names it to the supervisor).
    slot: usize,
    /// Its thread said it ended.
    ended: bool,
    /// Its series in the metrics.
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Its configuration, to start again as it was if what a reload brings in its place fails.
    pair: Pair,
}

/// A watcher shared by the pairs of a mirror. The pairs of one mirror differ only in their
/// REPLICA, so they watch SOURCE alike; a reload that changes a mirror's keys restarts all its
/// pairs, and they start a new one.
struct Hub {
    mirror: String,
    shared: Shared,
}

/// Every pair running, and what a reload needs.
pub(super) struct Running {
    path: PathBuf,
    args_level: Option<log::LevelFilter>,
    board: Option<Arc<Board>>,
    /// What the whole process shares (log, status file, metrics): a reload may not change it.
    process_wide: String,
    /// Every pair's metrics, served at one address.
    metrics: Option<Arc<crate::metrics::All>>,
    pairs: Vec<Pair1>,
    hubs: Vec<Hub>,
    next_slot: usize,
    /// Each pair's thread says its slot here as it ends.
    ended: (Sender<usize>, Receiver<usize>),
    worst: Exit,
    /// The process's stop (Ctrl+C, SIGTERM): once set, a reload under way starts nothing.
    stopping: Stop,
}

/// What every pair of a process shares, as text to compare.
fn process_wide(pairs: &[Pair], metrics: Option<SocketAddr>) -> String {
    pairs.first().map_or_else(String::new, |p| {
        let c = &p.config;
        format!(
            "{:?}",
            (
                &c.log_path,
                &c.status_file,
                c.file_level,
                c.json_log,
                metrics
            )
        )
    })
}

impl Running {
    pub(super) fn new(
        path: &Path,
        args: &Args,
        board: Option<Arc<Board>>,
        pairs: &[Pair],
        (address, metrics): (Option<SocketAddr>, Option<Arc<crate::metrics::All>>),
    ) -> Running {
        Running {
            path: path.to_path_buf(),
            args_level: (args.verbose > 0 || args.quiet > 0).then(|| args.console_level()),
            board,
            process_wide: process_wide(pairs, address),
            metrics,
            pairs: Vec::new(),
            hubs: Vec::new(),
            next_slot: pairs.len(),
            ended: crossbeam_channel::unbounded(),
            worst: Exit::Success,
            stopping: Stop::new(),
        }
    }

    /// The mirrors with more than one watching pair: their pairs share a watcher.
    pub(super) fn sharing(pairs: &[Pair]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut sharing = BTreeSet::new();
        for pair in pairs.iter().filter(|p| p.config.watch) {
            if !seen.insert(pair.mirror.clone()) {
                sharing.insert(pair.mirror.clone());
            }
        }
        sharing
    }

    /// A start-up failure: the process is to end badly.
    pub(super) fn failed(&mut self) {
        self.worst = Exit::Failed;
    }

    /// The tap on the shared watcher of `pair`'s mirror, started if there is none yet.
    fn tap(&mut self, pair: &Pair) -> Result<Tap, StartError> {
        if let Some(hub) = self.hubs.iter().find(|h| h.mirror == pair.mirror) {
            return Ok(hub.shared.tap());
        }
        let c = &pair.config;
        let scope = Scope {
            root: c.source.clone(),
            own: c.own.clone(),
            filter: c.filter.clone(),
        };
        let gather = c.max_delete.is_some();
        let label: Arc<str> = Arc::from(format!("{} (watch)", pair.mirror).as_str());
        let shared = Shared::start(scope, c.timing, gather, label).map_err(|e| {
            StartError::new(format!("cannot start the watcher of {}: {e}", pair.mirror))
        })?;
        let tap = shared.tap();
        self.hubs.push(Hub {
            mirror: pair.mirror.clone(),
            shared,
        });
        Ok(tap)
    }

    /// Runs `pair` on a thread of its own (on its mirror's shared watcher if `shared`).
    pub(super) fn start(
        &mut self,
        pair: Pair,
        mut opened: Opened,
        made_root: bool,
        stop: Stop,
        slot: usize,
        shared: bool,
    ) -> Result<(), StartError> {
        let replica = pair.label.split_once(" -> ").map_or("", |(_, r)| r);
        opened.served = self
            .metrics
            .as_ref()
            .map(|all| all.pair(&pair.mirror, replica));
        let metrics = opened.served.clone();
        let tap = if shared { Some(self.tap(&pair)?) } else { None };
        let (wake, woken) = crossbeam_channel::bounded(1);
        let label: Arc<str> = Arc::from(pair.label.as_str());
        let (mirror, argv, name) = (pair.mirror.clone(), pair.argv.clone(), pair.label.clone());
        let ended = self.ended.0.clone();
        let pair_stop = stop.clone();
        let kept = pair.clone();
        let thread = std::thread::Builder::new()
            .name(format!("mirror {}", pair.mirror))
            .spawn(move || {
                crate::label::set(Some(label));
                let exit = launch(&pair.config, opened, made_root, pair_stop, woken, tap);
                let _ = ended.send(slot);
                exit
            })
            .map_err(|e| StartError::new(format!("cannot start mirror {name}: {e}")))?;
        self.pairs.push(Pair1 {
            label: name,
            mirror,
            argv,
            stop,
            wake,
            thread,
            slot,
            ended: false,
            metrics,
            pair: kept,
        });
        Ok(())
    }

    /// Waits for a stop (relayed to every pair), a reload, or the end of every pair; returns
    /// the worst exit status.
    pub(super) fn run(
        mut self,
        stop: &Stop,
        stop_rx: &Receiver<()>,
        reload: &Receiver<()>,
    ) -> Exit {
        let ended = self.ended.1.clone();
        self.stopping = stop.clone();
        while !stop.is_set() && self.pairs.iter().any(|p| !p.ended) {
            select! {
                recv(stop_rx) -> _ => break,
                recv(reload) -> _ => crate::daemon::notify::reloading(|| {
                    match crate::logging::reopen() {
                        Ok(()) => info!("reopened the log file (SIGHUP)"),
                        Err(e) => error!("cannot reopen the log file after SIGHUP: {e}"),
                    }
                    self.reload();
                }),
                recv(ended) -> slot => {
                    for pair in self.pairs.iter_mut().filter(|p| Ok(p.slot) == slot) {
                        pair.ended = true;
                    }
                }
            }
        }
        let all = std::mem::take(&mut self.pairs);
        self.stop(all, false);
        self.worst
    }

    /// Asks `pairs` to stop, and waits for them; `forget`: they leave the status document.
    fn stop(&mut self, pairs: Vec<Pair1>, forget: bool) {
        for pair in &pairs {
            if forget {
                pair.stop.set_by_reload();
            } else {
                pair.stop.set();
            }
            let _ = pair.wake.try_send(());
        }
        for pair in pairs {
            let exit = pair.thread.join().unwrap_or(Exit::Failed);
            if exit.code() > self.worst.code() {
                self.worst = exit;
            }
            if forget {
                self.take_off_board([pair.slot]);
                if let Some(m) = &pair.metrics {
                    m.forget();
                }
            }
        }
    }

    /// Reads the configuration again and brings the running pairs in line with it.
    fn reload(&mut self) {
        if self.stopping.is_set() {
            return;
        }
        info!(
            "reading the configuration {} again (SIGHUP)",
            esc(&self.path)
        );
        let (mut pairs, address) = match load_with(&self.path, self.args_level) {
            Ok(loaded) => loaded,
            Err(e) => return refused(&e),
        };
        if process_wide(&pairs, address) != self.process_wide {
            return refused(
                &"the log, the status file and the metrics' address are the whole process's: \
                  restart the service to change them",
            );
        }
        let shares = Self::sharing(&pairs);
        let is_running = |p: &Pair, r: &Pair1| p.label == r.label;
        let (gone, kept): (Vec<Pair1>, Vec<Pair1>) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|r| !pairs.iter().any(|p| is_running(p, r) && p.argv == r.argv));
        self.pairs = kept;
        pairs.retain(|p| !self.pairs.iter().any(|r| is_running(p, r)));
        let Some(fresh) = self.open_fresh(pairs, &gone) else {
            self.pairs.extend(gone);
            return;
        };
        let changed = fresh.iter().filter(|f| f.before.is_some()).count();
        let removed = gone.len();
        for pair in &gone {
            info!(
                "stopping {}: {}",
                pair.label,
                fresh::why_stopped(&fresh, pair)
            );
        }
        self.stop(gone, true);
        // A mirror with no pair left untouched has new keys (or is gone): a new watcher.
        let untouched: BTreeSet<&String> = self.pairs.iter().map(|r| &r.mirror).collect();
        self.hubs.retain(|h| untouched.contains(&h.mirror));
        let [added, restarted, failed] = self.bring_all(fresh, &shares);
        info!(
            "configuration reloaded: {} mirrors, {} pairs running ({added} added, {restarted} \
             restarted, {} removed{})",
            count_mirrors_running(&self.pairs),
            self.pairs.len(),
            removed.saturating_sub(changed),
            if failed > 0 {
                format!(", {failed} could not start")
            } else {
                String::new()
            }
        );
    }

    fn take_off_board(&self, slots: impl IntoIterator<Item = usize>) {
        if let Some(board) = &self.board {
            for slot in slots {
                board.remove(slot);
            }
        }
    }
}

/// Says a configuration is refused, and why.
fn refused(why: &dyn std::fmt::Display) {
    error!("the configuration is refused, the running mirrors go on as they were: {why}");
}

fn count_mirrors_running(pairs: &[Pair1]) -> usize {
    pairs
        .iter()
        .map(|p| &p.mirror)
        .collect::<BTreeSet<_>>()
        .len()
}
