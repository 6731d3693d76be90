//! A round's change lines in path order, whatever thread made the change and whenever: while
//! walkers and copy workers run, each line waits until no path still at work can come before
//! it, then is said. What is at work is known by its path: a directory waiting on the stack or
//! being walked (its whole subtree may yet be said), a copy handed to a worker. The paths at
//! work are few (the walk goes in path order, see [`super::stack`]), so the lines that wait are
//! about as many as those the walkers and workers are ahead of the slowest; past [`WAITING`]
//! the first are said anyway (their order may then differ from run to run). Counting, the dry
//! view and warnings and errors never wait: only the log lines of changes do.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use crate::change::Change;

/// At most this many change lines wait (a few MiB); past it the first are said early.
pub const WAITING: usize = 16_384;

/// The lines of one round that wait for their turn, and the paths still at work.
#[derive(Debug, Default)]
pub struct Order {
    state: Mutex<State>,
    /// Held while released lines are written, taken before `state` is let go: lines leave in
    /// their order, and walkers wait for the state only as long as it takes to sort, not to log.
    print: Mutex<()>,
}

/// A path as bytes that sort as its components do: the separator is the lowest byte (a name
/// never holds a NUL), so a directory comes right before what is inside it (`d`, `d/x`,
/// `d.txt`), and comparing two is one `memcmp`, not a walk of their components.
type Key = Vec<u8>;

fn key(rel: &Path) -> Key {
    use std::os::unix::ffi::OsStrExt;
    (rel.as_os_str().as_bytes().iter())
        .map(|&b| if b == b'/' { 0 } else { b })
        .collect()
}

#[derive(Debug, Default)]
struct State {
    /// Paths at work, each with how many times: nothing at or after the first may be said.
    open: BTreeMap<Key, usize>,
    /// Lines waiting, by path and then by when they came, each with whether it is a dry run's.
    waiting: BTreeMap<(Key, u64), (Change, bool)>,
    came: u64,
    /// More than [`WAITING`] lines waited once: said early (told once, at debug level).
    early: bool,
}

impl Order {
    /// `rel` is at work: its lines and its subtree's wait until [`Order::close`].
    pub fn open(&self, rel: &Path) {
        *crate::lock(&self.state).open.entry(key(rel)).or_default() += 1;
    }

    /// `rel`'s work is done: the lines no path at work comes before are said.
    pub fn close(&self, rel: &Path) {
        let mut state = crate::lock(&self.state);
        let rel = key(rel);
        if let Some(n) = state.open.get_mut(&rel) {
            *n -= 1;
            if *n == 0 {
                state.open.remove(&rel);
            }
        }
        let out = state.release();
        self.print(state, out);
    }

    /// Writes the lines released, in their order, after letting the state go.
    fn print(&self, state: std::sync::MutexGuard<'_, State>, out: Vec<(Change, bool)>) {
        if out.is_empty() {
            return;
        }
        let _print = crate::lock(&self.print);
        drop(state);
        for (change, dry_run) in out {
            change.log(dry_run);
        }
    }

    /// Says `change`'s line now, or when its turn comes.
    pub fn say(&self, change: Change, dry_run: bool) {
        let mut state = crate::lock(&self.state);
        let came = state.came;
        state.came += 1;
        state
            .waiting
            .insert((key(change.at()), came), (change, dry_run));
        let mut out = state.release();
        if state.waiting.len() > WAITING {
            out.extend(state.early());
        }
        self.print(state, out);
    }

    /// Says every line still waiting (the end of the walk).
    pub fn flush(&self) {
        let mut state = crate::lock(&self.state);
        state.open.clear();
        let out = state.release();
        self.print(state, out);
    }
}

impl State {
    /// Says the waiting lines that come before every path at work, in their order.
    fn release(&mut self) -> Vec<(Change, bool)> {
        let mut out = Vec::new();
        while let Some(first) = self.waiting.first_entry() {
            if self
                .open
                .first_key_value()
                .is_some_and(|(at_work, _)| first.key().0 >= *at_work)
            {
                break;
            }
            out.push(first.remove());
        }
        out
    }

    /// Too many lines wait: the first half are said now.
    fn early(&mut self) -> Vec<(Change, bool)> {
        if !self.early {
            self.early = true;
            log::debug!("more than {WAITING} change lines waited for their turn: said early");
        }
        let mut out = Vec::new();
        while self.waiting.len() > WAITING / 2 {
            let Some((_, line)) = self.waiting.pop_first() else {
                break;
            };
            out.push(line);
        }
        out
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
            .map(|(k, _)| {
                let path: Vec<u8> = k.iter().map(|&b| if b == 0 { b'/' } else { b }).collect();
                String::from_utf8_lossy(&path).into_owned()
            })
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
        let mut keys: Vec<Key> = ["d.txt", "d/x", "d", "c/z", "e", "d/x/y", "d-"]
            .iter()
            .map(|p| key(Path::new(p)))
            .collect();
        keys.sort();
        let keys: Vec<_> = (keys.iter())
            .map(|k| String::from_utf8_lossy(k).replace('\0', "/"))
            .collect();
        assert_eq!(keys, ["c/z", "d", "d/x", "d/x/y", "d-", "d.txt", "e"]);
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
