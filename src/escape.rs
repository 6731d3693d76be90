//! Escaping of names and paths for output: no file name can forge a log line, move the cursor,
//! or look like another name.
//!
//! Printable text is kept as it is. A backslash becomes `\\`; `\n`, `\r` and `\t` keep their
//! usual escapes; other control characters (C0, DEL, C1), the Unicode line and paragraph
//! separators and the bidirectional overrides become `\u{..}` (C0 and DEL as `\x..`); bytes that
//! are not valid UTF-8 become `\xNN`. So every distinct name prints distinctly, on one line.

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Shows a path (or any name) escaped: `format!("{}", esc(path))`.
pub fn esc<P: AsRef<OsStr> + ?Sized>(path: &P) -> Escaped<'_> {
    Escaped(path.as_ref().as_bytes())
}

/// Shows a relative path escaped, with the root (the empty path) as `.`.
pub fn rel(path: &Path) -> Escaped<'_> {
    if path.as_os_str().is_empty() {
        Escaped(b".")
    } else {
        Escaped(path.as_os_str().as_bytes())
    }
}

/// Escapes free text that may hold names (an error message from elsewhere, say).
pub fn text(s: &str) -> Escaped<'_> {
    Escaped(s.as_bytes())
}

/// A byte string shown escaped.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(&'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Most names are printable ASCII without a backslash: written whole.
        if self.0.iter().all(|b| plain_ascii(*b) && *b != b'\\') {
            // Printable ASCII is UTF-8.
            return f.write_str(std::str::from_utf8(self.0).map_err(|_| fmt::Error)?);
        }
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    '\0'..='\x1f' | '\x7f' => write!(f, "\\x{:02x}", c as u32)?,
                    c if needs_escape(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
                    c => f.write_char(c)?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A byte that is a printable ASCII character (a space included), shown as it is.
fn plain_ascii(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

/// Characters other than C0 and DEL that must not reach a terminal or a log raw, or that would
/// make one name look like another: C1 controls (among them the single-character CSI), the line
/// and paragraph separators, the bidirectional marks, embeddings, overrides and isolates that
/// reorder what is shown, characters that show nothing (zero-width spaces and joiners, the soft
/// hyphen, the byte-order mark, variation selectors, tag characters, Hangul fillers), and spaces
/// other than the plain one.
fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{80}'..='\u{a0}'
            | '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{2000}'..='\u{200f}'
            | '\u{2028}'..='\u{202f}'
            | '\u{205f}'..='\u{206f}'
            | '\u{3000}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fffb}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

/// Replaces raw control characters in an already formatted line (the last line of defence in
/// the logger: a message that forgot to escape a name still stays on one line). Backslashes are
/// left alone, so text escaped by [`esc`] is unchanged.
pub fn controls(line: &str) -> std::borrow::Cow<'_, str> {
    if line.bytes().all(plain_ascii) || !line.chars().any(|c| c.is_control() || needs_escape(c)) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn show(bytes: &[u8]) -> String {
        esc(OsStr::from_bytes(bytes)).to_string()
    }

    #[test]
    fn plain_names_are_unchanged() {
        assert_eq!(show(b"a/b c/d\xc3\xa9.txt"), "a/b c/dé.txt");
        assert_eq!(rel(Path::new("")).to_string(), ".");
    }

    #[test]
    fn controls_backslashes_and_bad_utf8_are_escaped() {
        assert_eq!(
            show(b"evil\n2026 [ERROR] x"),
            "evil\\n2026 [ERROR] x",
            "a newline cannot start a new log line"
        );
        assert_eq!(show(b"a\x1b[31mred\r\x07"), "a\\x1b[31mred\\r\\x07");
        assert_eq!(show(b"back\\slash"), "back\\\\slash");
        assert_eq!(show(b"bad\xff\xfe"), "bad\\xff\\xfe");
        assert_eq!(show("c1\u{9b}31m".as_bytes()), "c1\\u{9b}31m");
        assert_eq!(show("rtl\u{202e}txt.exe".as_bytes()), "rtl\\u{202e}txt.exe");
        assert_eq!(show("zw\u{200b}j".as_bytes()), "zw\\u{200b}j");
        assert_eq!(show("nb\u{a0}sp".as_bytes()), "nb\\u{a0}sp");
        assert_eq!(show("tag\u{e0041}".as_bytes()), "tag\\u{e0041}");
    }

    #[test]
    fn distinct_names_print_distinctly() {
        // A literal backslash-x sequence and the byte it spells differ once escaped.
        assert_ne!(show(b"\\xff"), show(b"\xff"));
        assert_ne!(show(b"a\\nb"), show(b"a\nb"));
    }

    #[test]
    fn the_loggers_net_keeps_lines_whole() {
        assert_eq!(controls("copied a\nb"), "copied a\\nb");
        assert_eq!(controls("already \\n escaped"), "already \\n escaped");
        assert!(matches!(controls("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
