//! Console lines for the systemd journal. When stderr is the journal's stream (`JOURNAL_STREAM`
//! names its device and inode, see systemd.exec(5)), each console line starts with its syslog
//! priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug and trace, as sd-daemon(3)
//! describes) and carries no timestamp or level text: the journal keeps both. Elsewhere the
//! console is `simplelog`'s, unchanged.

use std::io::{self, Write};
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};
use simplelog::{Config, SharedLogger};

/// Whether stderr is the journal's stream: `JOURNAL_STREAM` is `DEVICE:INODE` (decimal) and
/// names the file stderr is. A stderr redirected elsewhere by a child's parent keeps the
/// variable but not the stream, and gets plain lines.
pub fn is_stderr() -> bool {
    static IS: OnceLock<bool> = OnceLock::new();
    *IS.get_or_init(|| {
        let Some(named) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let Ok(stat) = rustix::fs::fstat(io::stderr()) else {
            return false;
        };
        names(&named.to_string_lossy(), stat.st_dev, stat.st_ino)
    })
}

/// Whether `JOURNAL_STREAM`'s value `named` is the device and inode given.
fn names(named: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = named.split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// The priority prefix of a line at `level`.
pub fn priority(level: Level) -> &'static str {
    match level {
        Level::Error => "<3>",
        Level::Warn => "<4>",
        Level::Info => "<6>",
        Level::Debug | Level::Trace => "<7>",
    }
}

/// The prefix of a line written straight to stderr at `level`: its priority for the journal,
/// nothing elsewhere.
pub fn prefix(level: Level) -> &'static str {
    if is_stderr() {
        priority(level)
    } else {
        ""
    }
}

/// The console logger for the journal: `<N>message`, one line per record, written whole.
pub struct Console {
    level: LevelFilter,
    /// Only records whose target starts with it (the watcher's crates log chatter of their own).
    allow: &'static str,
}

impl Console {
    pub fn new(level: LevelFilter, allow: &'static str) -> Box<Console> {
        Box::new(Console { level, allow })
    }
}

impl Log for Console {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level && metadata.target().starts_with(self.allow)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!("{}{}\n", priority(record.level()), record.args());
        // One write per line, so lines of several threads never interleave; a console that
        // cannot be written has nowhere to say so.
        let _ = io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = io::stderr().flush();
    }
}

impl SharedLogger for Console {
    fn level(&self) -> LevelFilter {
        self.level
    }

    fn config(&self) -> Option<&Config> {
        None
    }

    fn as_log(self: Box<Self>) -> Box<dyn Log> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_is_named_by_device_and_inode() {
        assert!(names("2049:1234", 2049, 1234));
        assert!(!names("2049:1234", 2049, 1235));
        assert!(!names("2049:1234", 2050, 1234));
        assert!(!names("2049", 2049, 1234));
        assert!(!names("x:1234", 2049, 1234));
        assert!(!names("", 0, 0));
    }

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(priority(Level::Error), "<3>");
        assert_eq!(priority(Level::Warn), "<4>");
        assert_eq!(priority(Level::Info), "<6>");
        assert_eq!(priority(Level::Debug), "<7>");
        assert_eq!(priority(Level::Trace), "<7>");
    }
}
