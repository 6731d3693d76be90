//! rsync's itemized output turned into foldersync's own log lines and counters. rsync is asked
//! for `%i\t%l\t%b\t%n%L` per change (see [`FORMAT`]); it escapes every unprintable byte of a
//! name but the tab as `\#ooo` (with `LC_ALL=C`, every byte above 127 too), so a newline in a
//! name cannot forge a line, the first three tabs end the fixed fields, and the name is taken back
//! byte for byte. A symlink's ` -> target` or a hard link's ` => other` follows the name with
//! nothing to tell them apart from a name holding the same characters: where that is in doubt,
//! SOURCE is asked which split is true.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::dir::Kind;

/// rsync's `--out-format` for one change. `%b` (the bytes sent, unused) makes rsync print a
/// file's line when the file has been sent rather than when it starts: an interrupted
/// transfer is not reported as a copy.
pub const FORMAT: &str = "%i\t%l\t%b\t%n%L";

/// Tells whether SOURCE has, at the first path, a symlink to the second (`false`) or another
/// name of the same file (`true`).
pub type Split<'a> = &'a dyn Fn(&Path, &Path, bool) -> bool;

pub use crate::change::Change;

/// Reads one line of rsync's output; `None` for lines that are not changes (statistics).
pub fn parse(line: &[u8], split: Split) -> Option<Change> {
    let mut fields = line.splitn(4, |b| *b == b'\t');
    let flags = fields.next()?;
    let length = fields.next()?;
    let _sent = fields.next()?;
    let rest = unescape(fields.next()?);
    if flags.len() != 11 {
        return None;
    }
    if flags.starts_with(b"*deleting") {
        let rel = path_of(&rest);
        // rsync says only whether it was a directory.
        return (!rel.as_os_str().is_empty()).then(|| Change::Removed {
            kind: rest.ends_with(b"/").then_some(Kind::Dir),
            rel,
            kept: None,
            leftover: false,
        });
    }
    let bytes = std::str::from_utf8(length)
        .ok()
        .and_then(|s| s.replace(',', "").parse().ok())
        .unwrap_or(0);
    let fresh = &flags[2..] == b"+++++++++";
    let (kind, what) = (flags[0], flags[1]);
    let linked = kind == b'h' || (kind == b'c' && what == b'L');
    let (name, target) = if linked {
        let arrow: &[u8] = if kind == b'h' { b" => " } else { b" -> " };
        split_link(&rest, arrow, |a, b| split(a, b, kind == b'h'))?
    } else {
        (rest.clone(), Vec::new())
    };
    let rel = path_of(&name);
    if rel.as_os_str().is_empty() {
        // The root itself: its times.
        return None;
    }
    let target = PathBuf::from(OsString::from_vec(target));
    match (kind, what) {
        (b'<' | b'>', b'f') => Some(Change::Copied {
            rel,
            bytes,
            update: !fresh,
            kept: None,
            meta: None,
            open: false,
            appended: false,
        }),
        (b'c', b'd') if fresh => Some(Change::MadeDir { rel }),
        (b'c', b'L') => Some(Change::Symlink {
            rel,
            target,
            update: !fresh,
            meta: None,
        }),
        (b'h', _) => Some(Change::Linked {
            to: path_of(target.as_os_str().as_encoded_bytes()),
            rel,
        }),
        (b'.' | b'c', b'f') => Some(Change::Attrs { rel, meta: None }),
        (b'.', b'L') => Some(Change::SymlinkAttrs { rel, meta: None }),
        (b'.' | b'c', b'd') => Some(Change::DirAttrs { rel, meta: None }),
        _ => None,
    }
}

/// What a survey run's line says of an entry (see [`listed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// In REPLICA, and kept (changed or not).
    Kept,
    /// In REPLICA, and removed.
    Removed,
    /// Not in REPLICA yet.
    New,
}

/// One line of a dry run with every entry itemized (`-ii`): which entry (only a removed one's
/// path is exact: others may carry a link's ` -> target`), and what the pass does to it. The
/// root's own line is left out.
pub fn listed(line: &[u8]) -> Option<(PathBuf, Seen)> {
    let mut fields = line.splitn(4, |b| *b == b'\t');
    let flags = fields.next()?;
    let (_length, _sent) = (fields.next()?, fields.next()?);
    let rel = path_of(&unescape(fields.next()?));
    if flags.len() != 11 || rel.as_os_str().is_empty() {
        return None;
    }
    let seen = if flags.starts_with(b"*deleting") {
        Seen::Removed
    } else if &flags[2..] == b"+++++++++" {
        Seen::New
    } else {
        Seen::Kept
    };
    Some((rel, seen))
}

/// `name<arrow>target`, split where SOURCE agrees (the first arrow if it agrees nowhere).
fn split_link(
    rest: &[u8],
    arrow: &[u8],
    agrees: impl Fn(&Path, &Path) -> bool,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let at: Vec<usize> = rest
        .windows(arrow.len())
        .enumerate()
        .filter(|(_, w)| *w == arrow)
        .map(|(i, _)| i)
        .collect();
    let parts = |i: usize| (rest[..i].to_vec(), rest[i + arrow.len()..].to_vec());
    let first = *at.first()?;
    if at.len() > 1 {
        for &i in &at {
            let (name, target) = parts(i);
            let as_path = |b: &[u8]| PathBuf::from(OsString::from_vec(b.to_vec()));
            if agrees(&as_path(&name), &as_path(&target)) {
                return Some((name, target));
            }
        }
    }
    Some(parts(first))
}

fn path_of(name: &[u8]) -> PathBuf {
    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    let trimmed = if trimmed == b"." { b"" } else { trimmed };
    PathBuf::from(OsString::from_vec(trimmed.to_vec()))
}

/// The entry named by rsync's `skipping non-regular file "NAME"` (asked for by
/// `--info=nonreg`).
pub fn skipped(line: &[u8]) -> Option<PathBuf> {
    let name = line
        .strip_prefix(b"skipping non-regular file \"")?
        .strip_suffix(b"\"")?;
    Some(path_of(&unescape(name)))
}

/// Takes rsync's `\#ooo` escapes back to the bytes they stand for.
pub fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\\' && text.get(i + 1) == Some(&b'#') && i + 5 <= text.len() {
            let digits = &text[i + 2..i + 5];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 5;
                    continue;
                }
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// The number in rsync's `Number of files: 1,234 (reg: ...)` statistics line.
pub fn files_in_stats(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"Number of files: ")?;
    let digits: String = rest
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b',')
        .filter(|b| b.is_ascii_digit())
        .map(|b| char::from(*b))
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_changes() {
        let c = |s: &[u8]| parse(s, &|_, _, _| false);
        assert_eq!(
            c(b"<f+++++++++\t2\t0\tnew\\#012line"),
            Some(Change::Copied {
                rel: PathBuf::from("new\nline"),
                bytes: 2,
                update: false,
                kept: None,
                meta: None,
                open: false,
                appended: false,
            })
        );
        assert_eq!(
            c(b"<f.st......\t1,024\t0\td/b").map(|c| c.to_string()),
            Some("updated d/b (1024 bytes)".into())
        );
        assert_eq!(
            c(b"cd+++++++++\t4096\t0\td1/").map(|c| c.to_string()),
            Some("created directory d1".into())
        );
        assert_eq!(
            c(b"cL+++++++++\t1\t0\tlink -> a b").map(|c| c.to_string()),
            Some("created symlink link -> a b".into())
        );
        assert_eq!(
            c(b"*deleting  \t0\t0\tgone/").map(|c| c.to_string()),
            Some("removed directory gone".into())
        );
        assert_eq!(
            c(b"hf+++++++++\t3\t0\tx/q => p").map(|c| c.to_string()),
            Some("linked x/q to p".into())
        );
        assert_eq!(
            c(b".f...p.....\t3\t0\tsecret").map(|c| c.to_string()),
            Some("updated attributes of secret".into())
        );
        assert_eq!(c(b".d..t......\t4096\t0\t./"), None);
        assert_eq!(
            c(b"<f+++++++++\t2\t0\ta\ttab").map(|c| c.to_string()),
            Some("copied a\\ttab (2 bytes)".into())
        );
        assert_eq!(c(b"Number of files: 3 (reg: 2)"), None);
    }

    #[test]
    fn escapes_come_back_as_bytes() {
        assert_eq!(unescape(b"a\\#011b\\#377"), b"a\tb\xff");
        assert_eq!(unescape(b"back\\slash \\#9x"), b"back\\slash \\#9x");
        let line = parse(b">f+++++++++\t1\t0\t\\#033[31mred", &|_, _, _| false)
            .unwrap()
            .to_string();
        assert_eq!(line, "copied \\x1b[31mred (1 bytes)");
    }

    #[test]
    fn arrows_in_names_are_settled_by_source() {
        // SOURCE has a symlink named `a -> b` pointing to `c`.
        let source = |name: &Path, target: &Path, _hard: bool| {
            name == Path::new("a -> b") && target == Path::new("c")
        };
        let change = parse(b"cL+++++++++\t1\t0\ta -> b -> c", &source).unwrap();
        assert_eq!(
            change,
            Change::Symlink {
                rel: "a -> b".into(),
                target: "c".into(),
                update: false,
                meta: None,
            }
        );
    }

    #[test]
    fn survey_lines() {
        assert_eq!(
            listed(b"*deleting  \t0\t0\tgone/"),
            Some((PathBuf::from("gone"), Seen::Removed))
        );
        assert_eq!(
            listed(b".L         \t4\t0\tln -> same").map(|l| l.1),
            Some(Seen::Kept)
        );
        assert_eq!(
            listed(b".f         \t2\t0\tsame").map(|l| l.1),
            Some(Seen::Kept)
        );
        assert_eq!(
            listed(b"cd+++++++++\t4096\t0\ttc/").map(|l| l.1),
            Some(Seen::New)
        );
        assert_eq!(listed(b".d         \t4096\t0\t./"), None);
        assert_eq!(listed(b"skipping non-regular file \"fifo\""), None);
    }

    #[test]
    fn statistics() {
        assert_eq!(
            files_in_stats(b"Number of files: 12,345 (reg: 1)"),
            Some(12345)
        );
        assert_eq!(files_in_stats(b"Number of created files: 2"), None);
    }
}
