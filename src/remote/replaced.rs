//! What rsync replaces by an entry of another kind, as its receiver says in its debug lines:
//! rsync itemizes such a replacement as a new entry, never as a deletion, so these lines are
//! the only way a survey or `--max-delete` can count it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::itemize::unescape;

/// Asks rsync's receiver, the remote one, to say each entry it removes, and why (see
/// [`made_room`]); rsync does not hand `--debug` on to the remote side by itself.
pub const SAY_DELETIONS: &str = "--remote-option=--debug=del2";

/// rsync's `DEL_FOR_FILE`, `DEL_FOR_DIR`, `DEL_FOR_SYMLINK`, `DEL_FOR_DEVICE` and
/// `DEL_FOR_SPECIAL`: the entry is removed to make room for one of another kind.
const MAKE_ROOM: u32 = 0xf8;

/// The entry a `delete_item` line of rsync's (see [`SAY_DELETIONS`]) says is removed to make
/// room for an entry of another kind; `None` for other lines.
pub fn made_room(line: &[u8]) -> Option<PathBuf> {
    let rest = line.strip_prefix(b"delete_item(")?;
    // The name may hold `) mode=` too: the last one ends it.
    let at = rest
        .windows(7)
        .rposition(|w| w == b") mode=")
        .filter(|i| *i > 0)?;
    let (name, tail) = (&rest[..at], std::str::from_utf8(&rest[at + 7..]).ok()?);
    let (mode, flags) = tail.split_once(" flags=")?;
    u32::from_str_radix(mode, 8).ok()?;
    let flags: u32 = flags.trim().parse().ok()?;
    if flags & MAKE_ROOM == 0 {
        return None;
    }
    let rel = PathBuf::from(OsString::from_vec(unescape(name)));
    (rel.as_os_str() != ".").then_some(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_rsync_makes_room_for() {
        let dir = made_room(b"delete_item(d) mode=40755 flags=10");
        assert_eq!(dir, Some(PathBuf::from("d")));
        let odd = made_room(b"delete_item(we\\#012ird) mode=x) mode=100644 flags=18");
        assert_eq!(odd, Some(PathBuf::from("we\nird) mode=x")));
        // A removal of its own (said by `*deleting` too), and other lines.
        assert_eq!(made_room(b"delete_item(d/f0) mode=100644 flags=4"), None);
        assert_eq!(made_room(b"delete_in_dir(.)"), None);
        assert_eq!(made_room(b"delete_item() mode=100644 flags=8"), None);
    }
}
