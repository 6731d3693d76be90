//! "copied" and "updated" are said, and counted, only for what the remote side wrote. rsync's
//! itemized lines come from the sending side, which reports a file once it has sent it, whether
//! or not the receiver could write it (a read-only remote, a full disk). So the receiving rsync
//! is asked to log too (`--log-file` on its standard error, which the guard's ssh session hands
//! back): it logs a file after writing its data, and never a file it could not create. A copy is
//! said when the receiver's line for it comes; a copy the sender reported and the receiver did
//! not is said at debug level only. Where the remote rsync cannot log (it says so), the sender's
//! lines are taken as before.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use super::itemize::{self, Change};

/// Marks the receiver's lines among everything else on the remote side's standard error.
pub const MARK: &[u8] = b"foldersync-wrote\t";

/// The remote rsync's options that make it log what it wrote, as `--remote-option`s.
pub fn receiver_args() -> [String; 2] {
    [
        "--remote-option=--log-file=/dev/stderr".to_string(),
        format!(
            "--remote-option=--log-file-format={}{}",
            String::from_utf8_lossy(MARK),
            itemize::FORMAT
        ),
    ]
}

/// The receiver's line for a file it wrote (its log line holds the mark, then the format).
pub fn wrote(line: &[u8], split: itemize::Split) -> Option<Change> {
    let at = line.windows(MARK.len()).position(|w| w == MARK)?;
    match itemize::parse(&line[at + MARK.len()..], split)? {
        c @ Change::Copied { .. } => Some(c),
        _ => None,
    }
}

/// Another line of the receiver's log (`YYYY/MM/DD HH:MM:SS [PID] ...`, or one with the mark
/// for something other than a file written): its messages come through rsync's own channel as
/// well, once is enough.
pub fn log_line(line: &[u8]) -> bool {
    if line.windows(MARK.len()).any(|w| w == MARK) {
        return true;
    }
    let shape = b"dddd/dd/dd dd:dd:dd [";
    line.len() > shape.len()
        && line.iter().zip(shape).all(|(b, s)| match s {
            b'd' => b.is_ascii_digit(),
            s => b == s,
        })
}

/// Whether the remote rsync says it cannot write its log.
pub fn cannot_log(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    text.contains("failed to open log-file") || text.starts_with("Ignoring --log-file option")
}

/// The copies of one run, between the sender's report and the receiver's.
#[derive(Debug)]
pub struct Written {
    /// The receiver's lines are awaited (not in a dry run, and while the receiver can log).
    confirm: bool,
    /// Sent, not yet written.
    sent: BTreeMap<PathBuf, Change>,
    /// Written (each is said once: a file sent twice, after a failed check, is one copy).
    done: HashSet<PathBuf>,
}

impl Written {
    pub fn new(confirm: bool) -> Written {
        Written {
            confirm,
            sent: BTreeMap::new(),
            done: HashSet::new(),
        }
    }

    /// A change the sender reported: what is to be said of it now.
    pub fn sent(&mut self, change: Change) -> Option<Change> {
        match &change {
            Change::Copied { rel, .. } if self.confirm => {
                if !self.done.contains(rel) {
                    self.sent.insert(rel.clone(), change);
                }
                None
            }
            _ => Some(change),
        }
    }

    /// A file the receiver wrote: what is to be said of it now.
    pub fn wrote(&mut self, change: Change) -> Option<Change> {
        let Change::Copied { rel, .. } = &change else {
            return None;
        };
        if !self.confirm || !self.done.insert(rel.clone()) {
            return None;
        }
        self.sent.remove(rel);
        Some(change)
    }

    /// The receiver cannot log: the copies sent so far, and those to come, are said as sent.
    pub fn unconfirmed(&mut self) -> Vec<Change> {
        self.confirm = false;
        std::mem::take(&mut self.sent).into_values().collect()
    }

    /// The end of the run: the copies sent and never written.
    pub fn not_written(self) -> Vec<Change> {
        self.sent.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copied(name: &str) -> Change {
        Change::Copied {
            rel: name.into(),
            bytes: 1,
            update: false,
            kept: None,
            meta: None,
            open: false,
            appended: false,
        }
    }

    #[test]
    fn a_copy_is_said_when_the_receiver_wrote_it() {
        let split = |_: &std::path::Path, _: &std::path::Path, _: bool| false;
        let line = b"2026/12/06 11:05:09 [10770] foldersync-wrote\t>f+++++++++\t1\t0\ta\\#012b";
        assert_eq!(wrote(line, &split), Some(copied("a\nb")));
        assert!(log_line(b"2026/12/06 11:05:09 [10770] receiving file list"));
        assert!(!log_line(b"rsync: [receiver] mkstemp failed"));
        let mut w = Written::new(true);
        assert_eq!(w.sent(copied("a")), None);
        assert_eq!(w.sent(copied("b")), None);
        let dir = Change::MadeDir { rel: "d".into() };
        assert_eq!(w.sent(dir.clone()), Some(dir));
        assert_eq!(w.wrote(copied("a")), Some(copied("a")));
        assert_eq!(w.wrote(copied("a")), None, "once");
        assert_eq!(w.not_written(), vec![copied("b")]);
        let mut w = Written::new(true);
        assert_eq!(w.sent(copied("a")), None);
        assert_eq!(w.unconfirmed(), vec![copied("a")]);
        assert_eq!(w.sent(copied("b")), Some(copied("b")));
    }
}
