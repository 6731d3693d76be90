//! The directories a walk has yet to go through: a stack shared by the walker threads, which
//! end when it is empty and nothing more can come.

use std::sync::{Condvar, Mutex};

use super::dir_pair::DirTask;

/// Directories waiting to be walked, shared by the walker threads.
#[derive(Default)]
pub struct Stack<'r> {
    state: Mutex<WorkState<'r>>,
    changed: Condvar,
}

#[derive(Default)]
struct WorkState<'r> {
    stack: Vec<DirTask<'r>>,
    /// Directories pushed and not yet finished (being walked or waiting).
    unfinished: usize,
    /// No more directories will come from outside the walkers.
    closed: bool,
}

impl<'r> Stack<'r> {
    pub fn push(&self, task: DirTask<'r>) {
        let mut state = crate::lock(&self.state);
        state.stack.push(task);
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
                    if let Some(task) = state.stack.pop() {
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
