//! The directories a walk has yet to go through, shared by the walker threads, which end when
//! none is left and nothing more can come. The first by path is taken first: the walk goes
//! depth first in path order (parents before children, names in byte order), so what waits is
//! bounded by the tree's width times its depth, and the change lines, said in path order (see
//! [`super::order`]), seldom wait long.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex};

use super::dir_pair::DirTask;

/// Directories waiting to be walked, shared by the walker threads.
#[derive(Default)]
pub struct Stack<'r> {
    state: Mutex<WorkState<'r>>,
    changed: Condvar,
}

/// A directory waiting, ordered by its path.
struct ByPath<'r>(DirTask<'r>);

impl PartialEq for ByPath<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.rel == other.0.rel
    }
}

impl Eq for ByPath<'_> {}

impl PartialOrd for ByPath<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByPath<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rel.cmp(&other.0.rel)
    }
}

#[derive(Default)]
struct WorkState<'r> {
    /// The first path on top.
    stack: BinaryHeap<Reverse<ByPath<'r>>>,
    /// Directories pushed and not yet finished (being walked or waiting).
    unfinished: usize,
    /// No more directories will come from outside the walkers.
    closed: bool,
}

impl<'r> Stack<'r> {
    pub fn push(&self, task: DirTask<'r>) {
        let mut state = crate::lock(&self.state);
        state.stack.push(Reverse(ByPath(task)));
        state.unfinished += 1;
        self.changed.notify_one();
    }

    pub fn close(&self) {
        crate::lock(&self.state).closed = true;
        self.changed.notify_all();
    }

    /// Walks directories until there are none left and none can come.
    pub fn run(&self, mut walk: impl FnMut(DirTask<'r>)) {
        loop {
            let task = {
                let mut state = crate::lock(&self.state);
                loop {
                    if let Some(Reverse(ByPath(task))) = state.stack.pop() {
                        break task;
                    }
                    if state.closed && state.unfinished == 0 {
                        return;
                    }
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            };
            walk(task);
            let mut state = crate::lock(&self.state);
            state.unfinished -= 1;
            if state.unfinished == 0 {
                self.changed.notify_all();
            }
        }
    }
}
