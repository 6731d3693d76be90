//! The pair a thread works for, when one process runs several (`--config`): a label such as
//! `www -> web2:/srv/www`, set on the pair's thread and carried into every thread it starts
//! ([`carry`]), that the logger puts before each line. With one pair there is none, and the
//! lines are as they always were.

use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    static LABEL: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Marks the calling thread's log lines with `label`.
pub fn set(label: Option<Arc<str>>) {
    LABEL.with(|l| *l.borrow_mut() = label);
}

/// The calling thread's label.
pub fn current() -> Option<Arc<str>> {
    LABEL.with(|l| l.borrow().clone())
}

/// `f`, to be run on another thread with the calling thread's label: wrap every closure a pair's
/// thread hands to a new thread (`spawn(label::carry(move || ...))`).
pub fn carry<T>(f: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let label = current();
    move || {
        set(label);
        f()
    }
}

/// Writes `[label] ` into `line` if the calling thread has a label.
pub fn prefix(line: &mut String) {
    LABEL.with(|l| {
        if let Some(label) = l.borrow().as_deref() {
            line.push('[');
            line.push_str(label);
            line.push_str("] ");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_into_a_new_thread() {
        set(Some(Arc::from("www -> /b")));
        let seen = std::thread::spawn(carry(|| {
            let mut line = String::new();
            prefix(&mut line);
            line
        }))
        .join()
        .unwrap();
        assert_eq!(seen, "[www -> /b] ");
        let bare = std::thread::spawn(current).join().unwrap();
        assert!(bare.is_none(), "not without carry");
        set(None);
    }
}
