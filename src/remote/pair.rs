//! What the rsync pair here and on the remote machine can do, tried once the start-up guards
//! have passed: deletion by a `--files-from` list, ACLs and extended attributes, and a remote
//! `touch` that keeps nanoseconds.

use std::ffi::OsString;
use std::path::Path;

use log::warn;

use super::rsync::Ended;
use super::{probe, Remote};

impl Remote {
    /// Tries a `--files-from` run with `--delete-missing-args` on a name that exists nowhere,
    /// without changing anything: the rsync pair must take it (rsync 3.4.3 and some distribution
    /// builds refuse it), and the remote one must keep ACLs and extended attributes if asked.
    /// Also learns whether the remote `touch` keeps nanoseconds (see [`probe::TOUCH`]).
    pub fn try_pair(&mut self) {
        if !self.settings.dry_run {
            self.touch = probe::touch_works(&self.ssh);
        }
        if self.root_id.is_none() {
            // Nothing to try it on (a dry run of a REPLICA still to be made).
            return;
        }
        for _ in 0..2 {
            let mut args = self.args.clone();
            args.extend(
                [
                    "--dry-run",
                    "-d",
                    "--files-from=-",
                    "--from0",
                    "--delete-missing-args",
                ]
                .iter()
                .map(OsString::from),
            );
            let name = format!(".foldersync-probe-{}", std::process::id());
            let split = |_: &Path, _: &Path, _: bool| false;
            let stdin = Some(format!("{name}\0").into_bytes());
            let report = self
                .invocation(args, stdin, &[], None, &split)
                .go(&self.stop, |_| {});
            if report.ended == Ended::Ok {
                return;
            }
            let said = report.errors.join("; ");
            if self.settings.xattrs && (said.contains("ACL") || said.contains("xattr")) {
                warn!(
                    "rsync on {} keeps no ACLs or extended attributes ({}): they are not mirrored",
                    self.spec.host,
                    crate::escape::text(&said)
                );
                self.args = self.shared_args(false);
                continue;
            }
            warn!(
                "rsync here and on {} cannot delete by a --files-from list ({}): watcher \
                 batches use include filters instead",
                self.spec.host,
                crate::escape::text(&said)
            );
            self.files_from = false;
            return;
        }
    }
}
