//! A REPLICA on another machine, written `[USER@]HOST:PATH` as scp and rsync write it: parsed
//! and checked before anything runs. A path whose first colon comes after a slash, or that
//! starts with `/` or `./`, is local (`./a:b`). PATH is absolute or relative to the remote home;
//! one that names `/` or the home itself is refused, since the mirror removes from REPLICA
//! whatever SOURCE lacks (lsyncd #481, #668).

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;

/// A remote REPLICA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub user: Option<String>,
    pub host: String,
    /// The path on the remote machine, normalized: no `.` components, no trailing slash.
    pub path: String,
}

impl Spec {
    /// `[user@]host`, as ssh takes it.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.user {
            Some(user) => write!(f, "{user}@{host}:{}", self.path),
            None => write!(f, "{host}:{}", self.path),
        }
    }
}

/// Whether `arg` names a remote REPLICA, and if so, what it names. `None`: a local path.
pub fn parse(arg: &OsStr) -> Option<Result<Spec, String>> {
    let bytes = arg.as_bytes();
    if bytes.starts_with(b"/") || bytes.starts_with(b"./") || bytes.starts_with(b"../") {
        return None;
    }
    let (host_part, path) = if bytes.starts_with(b"[") {
        // [v6 address]:path, or [user@v6]:path
        let close = bytes.iter().position(|b| *b == b']')?;
        if bytes.get(close + 1) != Some(&b':') {
            return None;
        }
        (&bytes[1..close], &bytes[close + 2..])
    } else {
        let colon = bytes.iter().position(|b| *b == b':')?;
        if bytes[..colon].contains(&b'/') {
            return None;
        }
        (&bytes[..colon], &bytes[colon + 1..])
    };
    Some(build(host_part, path))
}

fn build(host_part: &[u8], path: &[u8]) -> Result<Spec, String> {
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| "a remote REPLICA must be valid UTF-8".to_string())
    };
    let host_part = text(host_part)?;
    let path = text(path)?;
    let (user, host) = match host_part.rsplit_once('@') {
        Some((user, host)) => (Some(user.to_string()), host.to_string()),
        None => (None, host_part),
    };
    let word_ok = |w: &str| {
        !w.is_empty()
            && !w.starts_with('-')
            && !w.chars().any(|c| c.is_whitespace() || c.is_control())
            && !w.contains(['\'', '"', '\\', '`', '$'])
    };
    if !word_ok(&host) {
        return Err(format!(
            "remote REPLICA: '{}' is not a host name",
            crate::escape::text(&host)
        ));
    }
    if let Some(user) = &user {
        if !word_ok(user) || user.contains('@') {
            return Err(format!(
                "remote REPLICA: '{}' is not a user name",
                crate::escape::text(user)
            ));
        }
    }
    Ok(Spec {
        user,
        host,
        path: check_path(&path)?,
    })
}

/// The remote path, normalized; refused if it is empty, `/`, the home directory, leaves it
/// with `..`, or holds a control character.
fn check_path(path: &str) -> Result<String, String> {
    let shown = crate::escape::text(path);
    if path.chars().any(char::is_control) {
        return Err(format!(
            "remote REPLICA path '{shown}' holds a control character"
        ));
    }
    if path.starts_with(':') {
        return Err(format!(
            "REPLICA '{shown}': HOST::PATH names an rsync daemon's module; foldersync reaches \
             REPLICA over ssh: write HOST:PATH"
        ));
    }
    if path.contains(['*', '?', '[', '\\']) {
        return Err(format!(
            "remote REPLICA path '{shown}' holds a wildcard or a backslash (* ? [ \\), which \
             rsync would expand on the remote side into other directories; rename the directory"
        ));
    }
    if path.starts_with('~') {
        return Err(format!(
            "remote REPLICA path '{shown}': write it relative to the remote home without ~ \
             (host:backup), or absolute (host:/srv/backup)"
        ));
    }
    let absolute = path.starts_with('/');
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "remote REPLICA path '{shown}' holds '..': write the path it leads to"
                ))
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        let what = if absolute {
            "the remote root directory"
        } else {
            "the remote home directory"
        };
        return Err(format!(
            "remote REPLICA path '{shown}' is {what}: everything in it that SOURCE lacks would \
             be removed; name a directory of its own"
        ));
    }
    let joined = parts.join("/");
    Ok(if absolute {
        format!("/{joined}")
    } else {
        joined
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Result<Spec, String>> {
        parse(OsStr::new(s))
    }

    #[test]
    fn local_paths_stay_local() {
        for s in ["/srv/rep", "./a:b", "../x:y", "rep", "a/b:c", "dir/"] {
            assert!(p(s).is_none(), "{s}");
        }
    }

    #[test]
    fn remote_forms() {
        let spec = p("backup@nas:/srv/mirror/").unwrap().unwrap();
        assert_eq!(spec.user.as_deref(), Some("backup"));
        assert_eq!(spec.host, "nas");
        assert_eq!(spec.path, "/srv/mirror");
        assert_eq!(spec.to_string(), "backup@nas:/srv/mirror");
        let spec = p("nas:mirror/./docs").unwrap().unwrap();
        assert_eq!((spec.user, spec.path.as_str()), (None, "mirror/docs"));
        let spec = p("[::1]:/m").unwrap().unwrap();
        assert_eq!(spec.host, "::1");
        assert_eq!(spec.to_string(), "[::1]:/m");
    }

    #[test]
    fn dangerous_paths_are_refused() {
        for s in [
            "nas:",
            "nas:/",
            "nas://",
            "nas:.",
            "nas:./",
            "nas:/.",
            "nas:~",
            "nas:~/x",
            "nas:a/../..",
            "nas:a/..",
            "-oProxyCommand=x:/m",
            "nas:a\nb",
            "u ser@nas:/m",
            "@nas:/m",
            "a'b:/m",
            "nas::module",
            "nas:/srv/rep[1]",
            "nas:/roo?",
            "nas:*",
            "nas:/a\\b",
        ] {
            assert!(matches!(p(s), Some(Err(_))), "{s:?} was accepted");
        }
    }
}
