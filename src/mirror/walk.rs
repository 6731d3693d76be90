//! The walk: a sorted merge-join of SOURCE's and REPLICA's listings, one directory at a time,
//! on every core. Directories wait on a shared stack (depth first, so what waits is bounded by
//! the tree's width times its depth), file copies go to a bounded pool of workers, and a
//! directory's attributes are set once the walk has left it and every copy into it is done.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Sender;
use log::debug;

use super::dir_pair::{DirPair, DirTask};
use super::dry_view;
use super::plan;
use super::round::Round;
use super::stack::Stack;
use crate::dir::{self, Kind};
use crate::escape::rel as show;
use crate::replica::Look;
use crate::stats::Count;

/// A file waiting for a copy worker. It holds its directory's node, so the directory's
/// attributes are set only after the copy has renamed into it.
pub struct CopyJob<'r> {
    pub node: Arc<DirPair<'r>>,
    pub name: OsString,
    pub rel: PathBuf,
    pub update: bool,
    /// The source, opened by the walker, and its metadata.
    pub opened: (std::fs::File, crate::dir::Meta),
    /// The replica's file as the walk found it, for an update.
    pub dst: Option<crate::dir::Meta>,
}

/// One walker's view of the run: the run, the shared stack and the copy queue.
#[derive(Clone)]
pub struct Walk<'s, 'r> {
    pub run: &'r Round<'r>,
    work: &'s Stack<'r>,
    /// `None` where the walk runs alone, copying everything itself.
    copies: Option<Sender<CopyJob<'r>>>,
}

impl<'r> CopyJob<'r> {
    pub fn run(self, run: &Round) {
        run.copy(
            &self.node,
            &self.name,
            &self.rel,
            self.update,
            Some(self.opened),
            self.dst,
        );
    }

    /// Runs a copy a worker took from the queue: its path is no longer at work after.
    pub fn run_queued(self, run: &Round) {
        let rel = self.rel.clone();
        self.run(run);
        run.order.close(&rel);
    }
}

impl<'s, 'r> Walk<'s, 'r> {
    /// A walker over `stack`, handing large copies to `copies` (or, without, making them).
    pub fn new(
        run: &'r Round<'r>,
        stack: &'s Stack<'r>,
        copies: Option<Sender<CopyJob<'r>>>,
    ) -> Walk<'s, 'r> {
        Walk {
            run,
            work: stack,
            copies,
        }
    }

    /// Walks directories from the stack until none are left and none can come.
    pub fn run_stack(&self) {
        self.work.close();
        self.work.run(|task| self.task(task));
    }

    /// Hands a copy to a worker, or (up to `inline` bytes, or walking alone) makes it here.
    pub(super) fn hand(&self, job: CopyJob<'r>, inline: u64) {
        match &self.copies {
            Some(copies) if job.opened.1.size > inline => {
                // At work until a worker is done with it: the lines after it wait.
                self.run.order.open(&job.rel);
                if let Err(unsent) = copies.send(job) {
                    unsent.into_inner().run_queued(self.run);
                }
            }
            _ => job.run(self.run),
        }
    }

    /// Walks directories from the stack as one of several walkers.
    pub fn help(&self) {
        self.work.run(|task| self.task(task));
    }

    /// A directory for a walker to take: at work (its subtree's lines wait) until it is walked.
    pub fn push(&self, task: DirTask<'r>) {
        self.run.order.open(&task.rel);
        self.work.push(task);
    }

    /// Opens a directory that waited on the stack, then walks it.
    fn task(&self, task: DirTask<'r>) {
        let rel = task.rel.clone();
        self.walk_task(task);
        self.run.order.close(&rel);
    }

    fn walk_task(&self, task: DirTask<'r>) {
        if self.run.m.stop.is_set() {
            return;
        }
        let tree = task.tree;
        let verify = task.verify;
        if let Some(mut node) = self.open(task) {
            node.verify = verify;
            let node = Arc::new(node);
            if tree {
                self.walk(&node);
            }
            self.run.dir_done(&node);
        }
    }

    /// Opens both sides of a directory, refusing what would lead outside the roots: a SOURCE
    /// directory that is REPLICA itself, a REPLICA directory that is SOURCE or a mount point.
    pub fn open(&self, task: DirTask<'r>) -> Option<DirPair<'r>> {
        let run = self.run;
        let parent = &task.parent;
        let src = match (&parent.src, task.empty) {
            (Some(dir), false) => match dir.open_dir(&task.name) {
                Ok(d) => Some(d),
                // Changed since it was listed: the next look at this path sorts it out.
                Err(e) if dir::is_not_a_dir(&e) => return None,
                Err(e) => {
                    run.fail(run.src_err("open directory", &task.rel, e).tree());
                    return None;
                }
            },
            _ => None,
        };
        // inotify takes paths shorter than PATH_MAX: deeper directories are not watched.
        const WATCHABLE: usize = 4096;
        if run.m.opts.requeue
            && run.source.path.as_os_str().len() + 1 + task.rel.as_os_str().len() >= WATCHABLE
        {
            run.unwatchable
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let fresh = task.made.is_some();
        let dst = match (task.made, &parent.dst) {
            (Some(made), _) => made,
            (None, Some(dir)) => match dir.open_dir(&task.name) {
                Ok(d) => Some(d),
                Err(e) if dir::is_not_a_dir(&e) => return None,
                Err(e) => {
                    run.fail(run.dst_err("open directory", &task.rel, e).tree());
                    return None;
                }
            },
            (None, None) => None,
        };
        let mut node = run.pair(task.rel, src, dst)?;
        node.fresh = fresh;
        run.usable(node)
    }

    /// Reconciles a directory that exists on both sides: a merge-join of the sorted listings.
    pub fn walk(&self, node: &Arc<DirPair<'r>>) {
        let run = self.run;
        let src_list = match &node.src {
            Some(dir) => match dir.list() {
                Ok(list) => list,
                // A source directory that cannot be listed removes nothing.
                Err(e) if dir::is_absent(&e) => {
                    debug!("{} vanished during the pass", show(&node.rel));
                    return;
                }
                Err(e) => return run.fail(run.src_err("read directory", &node.rel, e).tree()),
            },
            None => Vec::new(),
        };
        let dst_list = match dry_view::list(run.m.dry_view.as_ref(), node.dst.as_ref(), &node.rel) {
            Ok(list) => list,
            Err(e) => return run.fail(run.dst_err("read directory", &node.rel, e).tree()),
        };
        let mut src_iter = src_list.into_iter().peekable();
        let mut dst_iter = dst_list.into_iter().peekable();
        loop {
            if run.m.stop.is_set() {
                return;
            }
            let (name, src_kind, dst_kind) = match (src_iter.peek(), dst_iter.peek()) {
                (None, None) => break,
                (Some(s), Some(d)) if s.0 == d.0 => {
                    let (Some((n, s)), Some((_, d))) = (src_iter.next(), dst_iter.next()) else {
                        break;
                    };
                    (n, Some(s), Some(d))
                }
                (Some(s), Some(d)) if s.0 > d.0 => match dst_iter.next() {
                    Some((n, d)) => (n, None, Some(d)),
                    None => break,
                },
                (Some(_), _) => match src_iter.next() {
                    Some((n, s)) => (n, Some(s), None),
                    None => break,
                },
                (None, Some(_)) => match dst_iter.next() {
                    Some((n, d)) => (n, None, Some(d)),
                    None => break,
                },
            };
            let look = Look {
                verify: node.verify,
                ..Look::TREE
            };
            self.entry(node, &name, src_kind, dst_kind, look);
        }
    }

    /// Makes one REPLICA entry match SOURCE's, given the kinds the listings (or lstat) found.
    /// A directory's contents are mirrored too with a tree look, and always when it is new.
    pub fn entry(
        &self,
        node: &Arc<DirPair<'r>>,
        name: &OsStr,
        src: Option<Kind>,
        dst: Option<Kind>,
        look: Look,
    ) {
        let run = self.run;
        let m = run.m;
        let rel = node.rel.join(name);
        if m.own().in_source(&rel) || m.own().in_replica(&rel) {
            return;
        }
        // An excluded entry is not descended into on either side, and is left alone in
        // REPLICA unless --delete-excluded.
        if m.opts
            .filter
            .excludes(&rel, matches!(src.or(dst), Some(Kind::Dir)))
        {
            if let Some(kind) = dst.filter(|_| m.opts.filter.delete_excluded) {
                if run.remove(node.dst.as_ref(), name, &rel, kind, false) {
                    node.touch();
                }
            }
            return;
        }
        run.stats.add(Count::Checked);
        let Some(facts) = run.facts(node, name, &rel, (src, dst), look.verify) else {
            return;
        };
        let plan = plan::decide(&facts, &m.opts.rules);
        // A REPLICA directory that leads to foldersync's own (a backup directory) is emptied of
        // everything else, and kept.
        if plan.remove == Some(Kind::Dir) && m.own().leads_to_own(&rel) {
            self.push(DirTask {
                parent: Arc::clone(node),
                name: name.to_os_string(),
                rel,
                made: None,
                empty: facts.src.is_none(),
                tree: true,
                verify: false,
            });
            return;
        }
        self.carry(node, name, rel, plan, &facts, look);
    }
}
