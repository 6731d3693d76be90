//! What runs on the remote machine before rsync: a small POSIX `sh` snippet, with every name
//! passed inside single quotes ([`super::ssh::quote`]). The guard that runs before every remote
//! rsync (as its `--rsync-path`) checks that the root is still the same directory, reached
//! without a symlink, and makes the batch's renames, so a batch costs one ssh session. (The
//! look at the root once per connection is [`super::probe`].)

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::rsync::{MADE_PARENT, RENAMED, ROOT_CHANGED};
use super::ssh::quote;
use crate::dir::Stamp;

/// A rename for the remote side to make: `from` to `to` (relative to the root), if what is at
/// `from` is still what SOURCE now has at `to`.
#[derive(Debug, Clone)]
pub struct Rename {
    pub from: PathBuf,
    pub to: PathBuf,
    /// `d` for a directory; `d:N` for one of N entries; `f:SIZE:SHA256` for a file, whose
    /// bytes the remote side checks before it renames (equal size and mtime prove nothing).
    pub what: String,
}

/// `fs_mv N FROM TO WHAT` renames if FROM is WHAT (a file's digest compared after its size;
/// the last digest is kept, as the claims on one held file come together); refuses names with
/// a symlink among their parents, so a rename never goes through a link.
const RENAME_FUNCTIONS: &str = r#"fs_safe() { d=$1; while :; do case $d in */*) d=${d%/*}; [ -L "$d" ] && return 1;; *) return 0;; esac; done; }
fs_sum() { [ "$1" = "$fs_last" ] && return 0; fs_last=$1; fs_hex=$(SUMTOOL < "$1") || fs_hex=; fs_hex=${fs_hex%% *}; }
fs_mv() {
  fs_safe "$2" && fs_safe "$3" || return 0
  { [ -L "$2" ] || [ ! -e "$2" ] || [ -e "$3" ] || [ -L "$3" ]; } && return 0
  case $4 in
    d) [ -d "$2" ] || return 0;;
    d:*) [ -d "$2" ] && [ "$(ls -A -- "$2" | wc -l)" -eq "${4#d:}" ] || return 0;;
    f:*:*) w=${4#f:}
      [ -f "$2" ] && [ "$(stat -c %s -- "$2")" = "${w%%:*}" ] || return 0
      fs_sum "$2"; [ -n "$fs_hex" ] && [ "$fs_hex" = "${w#*:}" ] || return 0;;
    *) return 0;;
  esac
  case $3 in */*) [ -d "${3%/*}" ] || { mkdir -p -- "${3%/*}" && echo "MADE$1" >&2; } || return 0;; esac
  fs_last=
  mv -- "$2" "$3" && echo "MARK$1" >&2
  return 0
}
"#;

/// The command that runs on the remote side before rsync. With the root's `id` known, the
/// shell checks that no part of the root's path (resolved at start-up, absolute) is a symlink,
/// moves into the root and checks that it is still that directory, makes the renames,
/// and starts rsync there: rsync is given `.` as its destination, so what it writes is the
/// directory just checked, whatever its path names by then. With `touch`, the root's mtime is
/// set to it once rsync is done (rsync's status is kept). Without an id (a dry run of a root
/// still to be made) rsync is given the root's path, and there is nothing to rename.
/// `tool` is the remote command that computes the digest in a file's `what` (see
/// [`super::digest::Alg`]).
pub fn guard(
    root: &[u8],
    id: Option<&str>,
    renames: &[Rename],
    touch: Option<Stamp>,
    tool: &str,
) -> Vec<u8> {
    let mut s: Vec<u8> = Vec::new();
    let Some(id) = id else {
        s.extend_from_slice(b"rsync");
        return s;
    };
    if !renames.is_empty() {
        let functions = RENAME_FUNCTIONS
            .replace("SUMTOOL", tool)
            .replace("MARK", &String::from_utf8_lossy(RENAMED))
            .replace("MADE", &String::from_utf8_lossy(MADE_PARENT));
        s.extend_from_slice(functions.as_bytes());
    }
    s.extend_from_slice(NO_LINK);
    s.extend_from_slice(b"{ fs_nolink ");
    s.extend(quote(root));
    s.extend_from_slice(b" && cd -P -- ");
    s.extend(quote(root));
    s.extend_from_slice(b" 2>/dev/null && [ \"$(stat -c %d:%i .)\" = ");
    s.extend(quote(id.as_bytes()));
    s.extend_from_slice(b" ]; } || { echo ");
    s.extend_from_slice(ROOT_CHANGED);
    s.extend_from_slice(b" >&2; exit 99; }\n");
    if let Some(t) = touch {
        // rsync appends its own arguments to this command: the function takes them.
        s.extend_from_slice(
            format!(
                "fs_rsync() {{ rsync \"$@\"; fs_s=$?; touch -c -m -d @{}.{:09} . 2>/dev/null; \
                 exit $fs_s; }}\n",
                t.sec, t.nsec
            )
            .as_bytes(),
        );
    }
    for (i, r) in renames.iter().enumerate() {
        s.extend_from_slice(format!("fs_mv {i} ").as_bytes());
        s.extend(quote(r.from.as_os_str().as_bytes()));
        s.push(b' ');
        s.extend(quote(r.to.as_os_str().as_bytes()));
        s.push(b' ');
        s.extend(quote(r.what.as_bytes()));
        s.push(b'\n');
    }
    s.extend_from_slice(if touch.is_some() {
        b"fs_rsync"
    } else {
        b"rsync"
    });
    s
}

/// `fs_nolink PATH` fails if PATH, or any directory on the way to it, is a symlink.
const NO_LINK: &[u8] = b"fs_nolink() { fs_p=$1; while [ -n \"$fs_p\" ] && [ \"$fs_p\" != / ]; do \
[ -L \"$fs_p\" ] && return 1; case $fs_p in */*) fs_p=${fs_p%/*};; *) fs_p=;; esac; done; }\n";

/// The remote rsync's version (from its `--version` line): (major, minor, patch).
pub fn version(line: &str) -> Option<(u32, u32, u32)> {
    let v = line
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)?;
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let mut next = || parts.next().and_then(|p| p.parse().ok());
    Some((next()?, next().unwrap_or(0), next().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn versions() {
        assert_eq!(
            version("rsync  version 3.5.0  protocol version 32"),
            Some((3, 5, 0))
        );
        assert_eq!(version("rsync  version v3.2.7 protocol"), Some((3, 2, 7)));
        assert_eq!(version("nonsense"), None);
    }

    /// The guard and the renames, run here by `sh` on a scratch tree.
    #[test]
    fn the_guard_renames_only_what_it_should() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("d/in")).unwrap();
        std::fs::write(root.join("f"), b"12345").unwrap();
        std::fs::write(root.join("it's\nodd"), b"x").unwrap();
        std::os::unix::fs::symlink("/", root.join("link")).unwrap();
        let id = {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(&root).unwrap();
            format!("{}:{}", m.dev(), m.ino())
        };
        // sha256 of "12345" and of "12346".
        let sum = "5994471abb01112afcc18159f6cc74b4f511b99806da59b3caf5a9c173cacfc5";
        let other = "bd9a7e1a9a3e5de8ac4e4ee4b0ac06a4a8d6d5ad8ab0f8c0a0c4a5c5c7f29b4b";
        let renames = vec![
            Rename {
                from: "f".into(),
                to: "h".into(),
                what: format!("f:5:{other}"),
            },
            Rename {
                from: "f".into(),
                to: "g".into(),
                what: format!("f:5:{sum}"),
            },
            Rename {
                from: "d".into(),
                to: "e".into(),
                what: "d".into(),
            },
            Rename {
                from: "it's\nodd".into(),
                to: "e/$(touch pwned)".into(),
                what: "f:1:0".into(),
            },
            Rename {
                from: "e/in".into(),
                to: "old-style".into(),
                what: "5:0".into(),
            },
            Rename {
                from: "link/etc".into(),
                to: "stolen".into(),
                what: "d".into(),
            },
        ];
        let mut script = guard(
            root.as_os_str().as_bytes(),
            Some(&id),
            &renames,
            None,
            "sha256sum",
        );
        // Stand-in for the remote rsync.
        script.extend_from_slice(b" --version >/dev/null; echo ran; pwd -P");
        let out = Command::new("sh")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(&script))
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("foldersync-renamed 0"), "other bytes: {err}");
        assert!(err.contains("foldersync-renamed 1"), "{err}");
        assert!(err.contains("foldersync-renamed 2"), "{err}");
        assert!(!err.contains("foldersync-renamed 3"), "other bytes: {err}");
        assert!(
            !err.contains("foldersync-renamed 4"),
            "size and mtime are no proof: {err}"
        );
        assert!(
            !err.contains("foldersync-renamed 5"),
            "through a symlink: {err}"
        );
        // rsync starts in the root it checked.
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        let here = root.canonicalize().unwrap();
        assert_eq!(said, format!("ran\n{}\n", here.display()));
        assert!(root.join("g").exists() && root.join("e/in").exists());
        assert!(!tmp.path().join("pwned").exists() && !root.join("pwned").exists());
        assert!(!root.join("stolen").exists());

        let run = |root: &std::path::Path, id: &str| {
            let script = guard(
                root.as_os_str().as_bytes(),
                Some(id),
                &[],
                None,
                "sha256sum",
            );
            Command::new("sh")
                .arg("-c")
                .arg(std::ffi::OsStr::from_bytes(&script))
                .output()
                .unwrap()
        };
        let out = run(&root, "1:2");
        assert_eq!(out.status.code(), Some(99));
        assert!(String::from_utf8_lossy(&out.stderr).contains("foldersync-root-changed"));
        // The root moved and a symlink to it put in its place, or one above it: the same
        // directory, but never reached through a link.
        let moved = base.join("moved");
        std::fs::rename(&root, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &root).unwrap();
        assert_eq!(run(&root, &id).status.code(), Some(99));
        std::fs::create_dir(base.join("up")).unwrap();
        std::os::unix::fs::symlink(&moved, base.join("up/root")).unwrap();
        std::os::unix::fs::symlink(base.join("up"), base.join("link")).unwrap();
        assert_eq!(run(&base.join("link/root"), &id).status.code(), Some(99));
        assert_ne!(run(&moved, &id).status.code(), Some(99), "the check passes");
    }
}
