//! The look at REPLICA's root on the remote machine, once per connection: a small POSIX `sh`
//! script with every name passed inside single quotes ([`super::ssh::quote`]). At start-up it
//! resolves the path as given (symlinks followed, as a local REPLICA's path is resolved once);
//! from then on it is given that resolved path and refuses a symlink anywhere on it, and it
//! makes a root that is gone again only where its parent is the very directory it was. It
//! changes nothing else: a refused start-up leaves the remote side as it was.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::Output;

use super::ssh::Ssh;

/// Looks at REPLICA's root (`$1`). `$2` says whether to make it if it is missing: `1` with its
/// parents (start-up), `parent:DEV:INO` alone and only if its parent is that directory (made
/// again while running), anything else not. With a backup directory (`$3`, absolute), says
/// where it really is: holding the root, or inside it (and where), and the identities of the
/// directories on its way. With `$4` = 1, the path is the one resolved at start-up, and a
/// symlink anywhere on it refuses it. Paths come back in hexadecimal, every byte as it is.
/// Also says which machine this is (`/etc/machine-id` and the boot id), so that this machine
/// is recognised under any name, and what tells the root from another directory in its place
/// (its birth time and its file system's id).
pub const PROBE: &str = r#"root=$1
if command -v rsync >/dev/null 2>&1; then echo "rsync $(rsync --version | head -n 1)"; else echo norsync; fi
if [ "$(printf x | b2sum 2>/dev/null)" = "0909377ad35110cafb2909e185672b7f2728d1f5094f8ad68d6fac6274bf1f499485a80ea364c04ed006d29459ea3cb7c600280e2f83e032529906f88ae30d0a  -" ]; then echo b2sum; fi
if [ "$(printf x | sha256sum 2>/dev/null)" = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881  -" ]; then echo sha256sum; fi
echo "machine $(cat /etc/machine-id 2>/dev/null || cat /var/lib/dbus/machine-id 2>/dev/null)"
echo "boot $(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
hex() { printf %s "$1" | od -An -v -tx1 | tr -d ' \n'; echo; }
phys() { P=$(cd -P -- "$1" && pwd -P && echo .) || return 1; P=${P%.}; P=${P%?}; }
real() {
  b=$1 rest=
  while [ ! -d "$b" ]; do
    [ -L "$b" ] && return 2
    case $b in */*) rest="/${b##*/}$rest"; b=${b%/*}; [ -n "$b" ] || b=/;; *) rest="/$b$rest"; b=.;; esac
  done
  phys "$b" || return 1
  [ "$P" = / ] && P=
  R=$P$rest B=$b
}
nolink() { p=$1; while [ -n "$p" ] && [ "$p" != / ]; do [ -L "$p" ] && return 1; case $p in */*) p=${p%/*};; *) p=;; esac; done; }
if [ "$4" = 1 ] && ! nolink "$root"; then echo symlink; exit 0; fi
real "$root"; case $? in 0) ;; 2) echo dangling; exit 0;; *) exit 1;; esac
anc() { (cd -P -- "$1" && while :; do stat -c %d:%i . | tr '\n' ' '; [ "$(pwd -P)" = / ] && break; cd -P .. || break; done); }
want=$R
echo "where $(hex "$want")"
echo "ancestry $(anc "$B")"
if [ -n "$3" ]; then
  real "$3" || exit 1
  echo "backup-ancestry $(anc "$B")"
  [ -z "$rest" ] && echo backup-whole
  case "$want/" in "$R"/*) echo backup-holds; exit 0;; esac
  case "$R" in "$want"/*) echo "backup-in $(hex "${R#"$want"/}")";; esac
fi
if [ ! -e "$root" ] && [ ! -L "$root" ]; then
  up=$(dirname -- "$root")
  [ -d "$up" ] && [ ! -L "$up" ] && echo "parent $(stat -c %d:%i -- "$up")"
  case $2 in
    1) mkdir -p -- "$root" || exit 1;;
    parent:*) { [ -d "$up" ] && [ ! -L "$up" ] && [ "$(stat -c %d:%i -- "$up")" = "${2#parent:}" ] && mkdir -- "$root"; } || { echo missing; exit 0; };;
    *) echo missing; exit 0;;
  esac
  echo made
fi
if [ ! -d "$root" ]; then echo notdir; exit 0; fi
cd -P -- "$root" || exit 1
phys . || exit 1
here=$P
echo "where $(hex "$here")"
{ [ -n "$HOME" ] && phys "$HOME"; } || P=
if [ "$here" = / ]; then echo isroot; exit 0; fi
if [ "$here" = "$P" ]; then echo ishome; exit 0; fi
echo "id $(stat -c %d:%i .)"
echo "born $(stat -c %.9W . 2>/dev/null || stat -c %W . 2>/dev/null):$(stat -f -c %i . 2>/dev/null)"
echo "parent $(stat -c %d:%i ..)"
if mountpoint -q "$here" 2>/dev/null; then echo mountroot; fi
if [ -n "$(ls -A .)" ]; then echo content; fi
"#;

/// Whether the remote `touch` sets a time to the nanosecond (`-d @SECONDS.FRACTION`), tried on
/// a temporary file of its own. Run only once the start-up guards have passed: it writes in
/// the remote temporary directory, which may be REPLICA itself.
pub const TOUCH: &str = r#"t=$(mktemp 2>/dev/null) && { touch -m -d @1000000000.5 "$t" 2>/dev/null && [ "$(stat -c %Y "$t")" = 1000000000 ] && echo touch; rm -f "$t"; }
"#;

/// What the probe found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Probe {
    pub made: bool,
    pub missing: bool,
    /// `device:inode` of the root.
    pub id: Option<String>,
    /// What tells the root from another directory at the same place with the same device and
    /// inode (the root of another file system mounted there, a directory made anew): its birth
    /// time and its file system's id, `BIRTH:FSID`, as the remote `stat` says them.
    pub born: Option<String>,
    /// `device:inode` of the directory that holds the root.
    pub parent: Option<String>,
    /// Where the root is, as the remote machine resolved it (symlinks followed; as far as it
    /// exists, the missing rest appended).
    pub place: Option<PathBuf>,
    /// `device:inode` of the deepest directory of `place` that exists, then of each directory
    /// above it up to `/`.
    pub ancestry: Vec<String>,
    /// The remote machine's `/etc/machine-id`, and the id of its current boot.
    pub machine: Option<String>,
    pub boot: Option<String>,
    pub content: bool,
    /// The root is a mount point (another file system, or a bind mount), where `mountpoint`
    /// (util-linux, BusyBox) can tell.
    pub mount_root: bool,
    /// The remote rsync's `--version` first line.
    pub rsync: Option<String>,
    /// Where the backup directory is inside the root.
    pub backup_in: Option<PathBuf>,
    /// `device:inode` of the backup directory's deepest existing directory and of those above
    /// it, and whether that is the backup directory itself (it exists).
    pub backup_ancestry: Option<(Vec<String>, bool)>,
    /// `b2sum` and `sha256sum` are there, and say what they should: files may be renamed on
    /// proof of their bytes.
    pub b2sum: bool,
    pub sha256sum: bool,
    /// Why the root cannot be used.
    pub refused: Option<&'static str>,
}

/// What the probe may do about a missing root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Make<'a> {
    No,
    /// With its parents (at start-up).
    WithParents,
    /// Alone, and only if its parent is this directory (`device:inode`).
    In(&'a str),
}

/// Runs the probe on `path`: as given at start-up (`resolved` false), or the path resolved
/// then, with no symlink allowed on it.
pub fn run(
    ssh: &Ssh,
    host: &str,
    path: &OsStr,
    make: Make,
    backup: Option<&str>,
    resolved: bool,
) -> Result<Probe, String> {
    let make = match make {
        Make::No => "0".to_string(),
        Make::WithParents => "1".to_string(),
        Make::In(parent) => format!("parent:{parent}"),
    };
    let args = [
        path,
        OsStr::new(&make),
        OsStr::new(backup.unwrap_or("")),
        OsStr::new(if resolved { "1" } else { "0" }),
    ];
    let out = ssh
        .script(PROBE, &args)
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    if out.status.code() == Some(255) {
        return Err(format!(
            "cannot reach {host}: {}",
            crate::escape::text(String::from_utf8_lossy(&out.stderr).trim())
        ));
    }
    parse(&out)
}

pub fn parse(out: &Output) -> Result<Probe, String> {
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim();
        return Err(if err.is_empty() {
            format!("the remote side exited with {}", out.status)
        } else {
            crate::escape::text(err).to_string()
        });
    }
    let mut probe = Probe::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        read_line(&mut probe, line);
    }
    if probe.refused.is_none() && !probe.missing && probe.id.is_none() {
        return Err(
            "the remote side could not say what REPLICA's root is (is `stat -c` there?)".into(),
        );
    }
    Ok(probe)
}

fn read_line(probe: &mut Probe, line: &str) {
    let word = |w: &str| Some(w.trim().to_string()).filter(|w| !w.is_empty());
    match line {
        "made" => probe.made = true,
        "missing" => probe.missing = true,
        "content" => probe.content = true,
        "mountroot" => probe.mount_root = true,
        "backup-whole" => {
            if let Some((_, whole)) = &mut probe.backup_ancestry {
                *whole = true;
            }
        }
        "b2sum" => probe.b2sum = true,
        "sha256sum" => probe.sha256sum = true,
        "notdir" => probe.refused = Some("is not a directory"),
        "dangling" => probe.refused = Some("is a symlink to a missing directory"),
        "symlink" => {
            probe.refused = Some(
                "is a symlink now, or has one on its way (it was resolved at start-up, and is \
                 never followed through a symlink after that)",
            )
        }
        "isroot" => probe.refused = Some("is the remote root directory"),
        "ishome" => probe.refused = Some("is the remote home directory"),
        "norsync" => probe.refused = Some("is on a machine without rsync"),
        "backup-holds" => {
            probe.refused =
                Some("is the backup directory or inside it: the mirror would remove what it keeps")
        }
        _ => {
            let Some((key, value)) = line.split_once(' ') else {
                return;
            };
            match key {
                "id" => probe.id = word(value),
                "parent" => probe.parent = word(value),
                "born" => probe.born = word(value),
                "backup-ancestry" => {
                    let ids = value.split_whitespace().map(str::to_string).collect();
                    probe.backup_ancestry = Some((ids, false));
                }
                "ancestry" => {
                    probe.ancestry = value.split_whitespace().map(str::to_string).collect()
                }
                "machine" => probe.machine = word(value),
                "boot" => probe.boot = word(value),
                "where" => probe.place = unhex(value).map(PathBuf::from),
                "backup-in" => probe.backup_in = unhex(value).map(PathBuf::from),
                "rsync" => probe.rsync = word(value),
                _ => {}
            }
        }
    }
}

/// A path written by `od -tx1`: two hexadecimal digits a byte.
fn unhex(text: &str) -> Option<OsString> {
    let text = text.trim().as_bytes();
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes: Option<Vec<u8>> = text
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? * 16 + digit(pair[1])?))
        .collect();
    bytes.map(OsString::from_vec)
}

/// Whether the remote `touch` keeps nanoseconds (see [`TOUCH`]).
pub fn touch_works(ssh: &Ssh) -> bool {
    ssh.script(TOUCH, &[])
        .is_ok_and(|out| out.status.success() && out.stdout.starts_with(b"touch"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The probe, run here by `sh` on a scratch tree.
    fn probe(args: &[&OsStr]) -> Probe {
        let out = Command::new("sh")
            .arg("-c")
            .arg(PROBE)
            .arg("probe")
            .args(args)
            .output()
            .unwrap();
        parse(&out).unwrap()
    }

    #[test]
    fn the_probe_resolves_once_then_follows_no_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let real = base.join("real\nname");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, base.join("link")).unwrap();
        let link = base.join("link");
        let o = |p: &std::path::Path| p.as_os_str().to_os_string();
        let (zero, one, none) = (OsStr::new("0"), OsStr::new("1"), OsStr::new(""));
        let given = probe(&[&o(&link), zero, none, zero]);
        assert_eq!(given.refused, None);
        assert_eq!(given.place.as_deref(), Some(real.as_path()));
        assert!(given.id.is_some() && given.parent.is_some() && given.machine.is_some());
        // The root, its parent, ... up to `/`.
        assert_eq!(given.ancestry.first(), given.id.as_ref());
        assert_eq!(given.ancestry.get(1), given.parent.as_ref());
        assert_eq!(given.ancestry.len(), real.ancestors().count());
        let strict = probe(&[&o(&link), zero, none, one]);
        assert!(strict.refused.is_some_and(|r| r.contains("symlink")));
        let above = probe(&[&o(&link.join("x")), zero, none, one]);
        assert!(above.refused.is_some_and(|r| r.contains("symlink")));
        // Missing: made again only in the parent it had.
        let sub = real.join("sub");
        let other = format!("parent:{}", "1:1");
        let refused = probe(&[&o(&sub), OsStr::new(&other), none, one]);
        assert!(refused.missing && !sub.exists());
        let make = format!("parent:{}", given.id.unwrap());
        let made = probe(&[&o(&sub), OsStr::new(&make), none, one]);
        assert!(made.made && sub.is_dir(), "{made:?}");
        assert_eq!(made.place.as_deref(), Some(sub.as_path()));
    }

    #[test]
    fn the_probe_writes_nothing_unless_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::write(dir.join("f"), b"x").unwrap();
        let look = || {
            let m = std::fs::metadata(&dir).unwrap();
            use std::os::unix::fs::MetadataExt;
            (
                m.mode(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            )
        };
        let before = look();
        let out = Command::new("sh")
            .arg("-c")
            .arg(PROBE)
            .arg("probe")
            .arg(&dir)
            .args(["0", "", "0"])
            .env("TMPDIR", &dir)
            .current_dir(&dir)
            .output()
            .unwrap();
        let probe = parse(&out).unwrap();
        assert!(probe.content && probe.id.is_some());
        assert_eq!(look(), before);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn hex_paths() {
        assert_eq!(
            unhex("610a62ff"),
            Some(OsString::from_vec(b"a\nb\xff".to_vec()))
        );
        assert_eq!(unhex("6"), None);
        assert_eq!(unhex("zz"), None);
    }
}
