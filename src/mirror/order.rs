//! A round's change lines in path order, whatever thread made the change and whenever: while
//! walkers and copy workers run, each line waits until no path still at work can come before
//! it, then is said. What is at work is known by its path: a directory waiting on the stack or
//! being walked (its whole subtree may yet be said), a copy handed to a worker. The paths at
//! work are few (the walk goes in path order, see [`super::stack`]), so the lines that wait are
//! about as many as those the walkers and workers are ahead of the slowest; past [`WAITING`]
//! the first are said anyway (their order may then differ from run to run). Counting, the dry
//! view and warnings and errors never wait: only the log lines of changes do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::change::Change;

/// At most this many change lines wait (a few MiB); past it the first are said early.
pub const WAITING: usize = 16_384;

/// The lines of one round that wait for their turn, and the paths still at work.
#[derive(Debug, Default)]
pub struct Order {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Paths at work, each with how many times: nothing at or after the first may be said.
    open: BTreeMap<PathBuf, usize>,
    /// Lines waiting, by path and then by when they came, each with whether it is a dry run's.
    waiting: BTreeMap<(PathBuf, u64), (Change, bool)>,
    came: u64,
    /// More than [`WAITING`] lines waited once: said early (told once, at debug level).
    early: bool,
}

impl Order {
    /// `rel` is at work: its lines and its subtree's wait until [`Order::close`].
    pub fn open(&self, rel: &Path) {
        *crate::lock(&self.state)
            .open
            .entry(rel.to_path_buf())
            .or_default() += 1;
    }

    /// `rel`'s work is done: the lines no path at work comes before are said.
    pub fn close(&self, rel: &Path) {
        let mut state = crate::lock(&self.state);
        if let Some(n) = state.open.get_mut(rel) {
            *n -= 1;
            if *n == 0 {
                state.open.remove(rel);
            }
        }
        state.release();
    }

    /// Says `change`'s line now, or when its turn comes.
    pub fn say(&self, change: Change, dry_run: bool) {
        let mut state = crate::lock(&self.state);
        let came = state.came;
        state.came += 1;
        state
            .waiting
            .insert((change.at().to_path_buf(), came), (change, dry_run));
        state.release();
        if state.waiting.len() > WAITING {
            state.early();
        }
    }

    /// Says every line still waiting (the end of the walk).
    pub fn flush(&self) {
        let mut state = crate::lock(&self.state);
        state.open.clear();
        state.release();
    }
}

impl State {
    /// Says the waiting lines that come before every path at work, in their order.
    fn release(&mut self) {
        while let Some(first) = self.waiting.first_entry() {
            if self
                .open
                .first_key_value()
                .is_some_and(|(at_work, _)| first.key().0 >= *at_work)
            {
                break;
            }
            let (change, dry_run) = first.remove();
            change.log(dry_run);
        }
    }

    /// Too many lines wait: the first half are said now.
    fn early(&mut self) {
        if !self.early {
            self.early = true;
            log::debug!("more than {WAITING} change lines waited for their turn: said early");
        }
        while self.waiting.len() > WAITING / 2 {
            let Some((_, (change, dry_run))) = self.waiting.pop_first() else {
                break;
            };
            change.log(dry_run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(rel: &str) -> Change {
        Change::MadeDir { rel: rel.into() }
    }

    fn waiting(order: &Order) -> Vec<String> {
        let state = crate::lock(&order.state);
        (state.waiting.keys())
            .map(|(p, _)| p.display().to_string())
            .collect()
    }

    #[test]
    fn lines_wait_for_the_paths_at_work_before_them() {
        let order = Order::default();
        order.open(Path::new(""));
        order.say(made("b"), false);
        order.open(Path::new("a"));
        order.open(Path::new("c"));
        order.close(Path::new(""));
        // "b" waits for "a"'s subtree.
        assert_eq!(waiting(&order), ["b"]);
        order.say(made("a/x"), false);
        order.say(made("c/y"), false);
        order.say(made("a"), false);
        assert_eq!(waiting(&order), ["a", "a/x", "b", "c/y"]);
        order.close(Path::new("a"));
        // "c" is still at work: its line waits, those before it were said.
        assert_eq!(waiting(&order), ["c/y"]);
        order.close(Path::new("c"));
        assert!(waiting(&order).is_empty());
    }

    #[test]
    fn a_path_at_work_twice_holds_until_both_are_done() {
        let order = Order::default();
        order.open(Path::new("a"));
        order.open(Path::new("a"));
        order.say(made("a/x"), false);
        order.close(Path::new("a"));
        assert_eq!(waiting(&order), ["a/x"]);
        order.close(Path::new("a"));
        assert!(waiting(&order).is_empty());
    }

    #[test]
    fn parents_come_before_children_and_names_in_byte_order() {
        let mut keys: Vec<PathBuf> = ["d.txt", "d/x", "d", "c/z", "e"]
            .iter()
            .map(PathBuf::from)
            .collect();
        keys.sort();
        let keys: Vec<_> = keys.iter().map(|k| k.display().to_string()).collect();
        assert_eq!(keys, ["c/z", "d", "d/x", "d.txt", "e"]);
    }

    #[test]
    fn too_many_waiting_lines_are_said_early() {
        let order = Order::default();
        order.open(Path::new(""));
        for i in 0..=WAITING {
            order.say(made(&format!("d/{i}")), false);
        }
        assert_eq!(waiting(&order).len(), WAITING / 2);
        order.flush();
        assert!(waiting(&order).is_empty());
    }
}
