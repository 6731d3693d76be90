//! A directory being worked on, and a directory waiting to be walked.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use log::debug;

use super::apply::Run;
use crate::dir::{Dir, Meta};
use crate::error::Logged;
use crate::escape::rel as show;

/// A directory being worked on: SOURCE's and REPLICA's handles, and the attributes REPLICA's
/// must end up with, applied when the last reference goes (the walk has left it, and every copy
/// into it has renamed into place).
pub struct Node<'r> {
    pub rel: PathBuf,
    /// `None` when SOURCE has nothing here (a REPLICA directory that is emptied, not removed).
    pub src: Option<Dir>,
    /// `None` in a dry run, where REPLICA's directory was never made.
    pub dst: Option<Dir>,
    /// SOURCE's directory's metadata: what REPLICA's must match once its contents are done.
    pub want: Option<Meta>,
    /// REPLICA's directory's metadata when it was opened.
    pub have: Option<Meta>,
    /// REPLICA's directory was made in this run.
    pub fresh: bool,
    /// Its files whose size and mtime match are compared byte for byte (it came in whole from
    /// elsewhere: their ctimes say nothing about REPLICA's copies).
    pub verify: bool,
    /// REPLICA's directory has a default ACL, which new files inherit (asked once).
    acl_default: std::sync::OnceLock<bool>,
    /// Entries were made or removed in REPLICA's directory (so its mtime moved), or its
    /// permissions were opened up to make them.
    touched: AtomicBool,
    run: &'r Run<'r>,
}

impl<'r> Node<'r> {
    pub fn new(
        run: &'r Run<'r>,
        rel: PathBuf,
        src: Option<Dir>,
        dst: Option<Dir>,
    ) -> Result<Node<'r>, Logged> {
        let want = match &src {
            Some(d) => {
                let mut want = d.stat().map_err(|e| {
                    run.fail(run.src_err("stat", &rel, e));
                    Logged
                })?;
                run.mark_acl(&crate::dir::xattr::At::Dir(d), &mut want);
                Some(want)
            }
            None => None,
        };
        let have = match &dst {
            Some(d) => Some(d.stat().map_err(|e| {
                run.fail(run.dst_err("stat", &rel, e));
                Logged
            })?),
            None => None,
        };
        Ok(Node {
            rel,
            src,
            dst,
            want,
            have,
            fresh: false,
            verify: false,
            acl_default: std::sync::OnceLock::new(),
            touched: AtomicBool::new(false),
            run,
        })
    }

    /// Whether files made in REPLICA's directory inherit a default ACL.
    pub fn inherits_acl(&self) -> bool {
        *self.acl_default.get_or_init(|| {
            let Some(dst) = &self.dst else { return false };
            let Ok(dir) = dst.dup() else { return false };
            let file = std::fs::File::from(std::os::fd::OwnedFd::from(dir));
            xattr::FileExt::get_xattr(&file, "system.posix_acl_default").is_ok_and(|v| v.is_some())
        })
    }

    /// Nothing is to be done to REPLICA's directory, its attributes included.
    pub fn leave_alone(&mut self) {
        self.want = None;
    }

    /// Notes that REPLICA's directory changed (its mtime is set again at the end).
    pub fn touch(&self) {
        self.touched.store(true, Ordering::Relaxed);
    }

    /// Runs `op`, which makes an entry in REPLICA's directory. Refused for lack of permission
    /// (a read-only directory, and foldersync is not root), the directory is opened up for its
    /// owner and `op` runs again; the directory's own permissions are set back at the end.
    pub fn writable<T>(&self, op: impl Fn() -> io::Result<T>) -> io::Result<T> {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                let (Some(dst), Some(have)) = (&self.dst, &self.have) else {
                    return Err(e);
                };
                // Not ours to open up: the original refusal stands.
                match dst.ensure_writable(have) {
                    Ok(true) => {
                        self.touch();
                        op()
                    }
                    _ => Err(e),
                }
            }
            other => other,
        }
    }
}

impl Drop for Node<'_> {
    fn drop(&mut self) {
        let run = self.run;
        if run.m.stop.is_set() || run.dry_run() {
            return;
        }
        let (Some(dst), Some(want), Some(have)) = (&self.dst, &self.want, &self.have) else {
            return;
        };
        let touched = self.touched.load(Ordering::Relaxed);
        // Its extended attributes and default ACL, compared on every look (listed first: two
        // system calls where neither side has any).
        if run.m.opts.xattrs {
            if let Some(src) = &self.src {
                use crate::dir::xattr::{self, At};
                let (from, to) = (At::Dir(src), At::Dir(dst));
                let result = xattr::read(&from).and_then(|w| {
                    let h = xattr::read(&to)?;
                    xattr::write(&to, &w, &h)
                });
                run.xattrs(result, &self.rel);
            }
        }
        if run.m.opts.fsync && touched {
            if let Err(e) = dst.sync() {
                run.fail(run.dst_err("flush", &self.rel, e));
            }
        }
        let rules = &run.m.opts.rules;
        let differs =
            |now: &Meta| rules.attrs_differ(want, now) || !want.mtime.near(now.mtime, rules.window);
        if !touched && !differs(have) {
            return;
        }
        let result = dst.stat().and_then(|now| {
            if differs(&now) {
                let mut want = *want;
                want.perm = rules.perm_for(&want, (now.uid, now.gid));
                if want.mtime.near(now.mtime, rules.window) {
                    want.mtime = now.mtime;
                }
                dst.set_attrs(&want, &now, rules.owner, rules.perms)?;
            }
            Ok(())
        });
        match result {
            Ok(()) => debug!("set attributes of directory {}", show(&self.rel)),
            Err(e) => run.fail(run.dst_err("set metadata of", &self.rel, e)),
        }
    }
}

/// A directory waiting to be walked.
pub struct Task<'r> {
    pub parent: Arc<Node<'r>>,
    pub name: OsString,
    pub rel: PathBuf,
    /// REPLICA's directory was just made (here is its handle, unless this is a dry run).
    pub made: Option<Option<Dir>>,
    /// SOURCE has nothing here: REPLICA's directory is emptied but kept.
    pub empty: bool,
    /// Walk its contents too (otherwise only its attributes are reconciled).
    pub tree: bool,
    /// Compare the bytes of its files whose size and mtime match (see `Look::verify`).
    pub verify: bool,
}
