//! One rsync run on the remote replica: the shared arguments and a run's own, its changes
//! logged and counted as they come, and what the run's end means for the replica.
//! (`--max-delete`, checked by a dry run first, is [`super::bound`].)

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use log::{debug, error, info, warn};

use super::rsync::{self, Ended, Event, Report};
use super::written::Written;
use super::{itemize, script, written, Remote};
use crate::root::Root;
use crate::stats::{Count, Stats};

/// Said when rsync stops in the middle of a run: it reports a file once it has sent it, and
/// the remote side may not have written the last ones.
const CUT_OFF: &str = "rsync stopped before the end of its run: the files it reported last \
                       may not have reached REPLICA, and are looked at again (with --once, by the next run)";

impl Remote {
    /// Runs rsync with `extra` arguments (and filter `rules`, which come before all others),
    /// logging and counting its changes.
    pub(super) fn run(
        &self,
        source: &Root,
        extra: &[&str],
        rules: &[OsString],
        stdin: Option<Vec<u8>>,
        renames: &[script::Rename],
        stats: &Stats,
    ) -> Report {
        let args = self.run_args(extra, rules);
        self.run_with(source, args, stdin, renames, stats)
    }

    /// Runs rsync with `args` made by [`Remote::run_args`] (see [`Remote::run`]).
    pub(super) fn run_with(
        &self,
        source: &Root,
        mut args: Vec<OsString>,
        stdin: Option<Vec<u8>>,
        renames: &[script::Rename],
        stats: &Stats,
    ) -> Report {
        args.extend(self.backup_args());
        let dry = self.settings.dry_run;
        if !dry {
            args.extend(written::receiver_args().into_iter().map(OsString::from));
        }
        let say = |change: itemize::Change| {
            change.say(dry, stats);
            // A remote copy writes the whole file anew, whatever rsync sent over the wire.
            if let itemize::Change::Copied { bytes, .. } = &change {
                stats.add_bytes(*bytes);
            }
        };
        let split = |name: &Path, target: &Path, hard: bool| agrees(source, name, target, hard);
        let mut renamed = Vec::new();
        let mut copied = std::collections::HashSet::new();
        let mut written = Written::new(!dry);
        let mut report = self
            .invocation(args, stdin, renames, self.touch_after.take(), &split)
            .go(&self.stop, |event| match event {
                Event::Change(change) => {
                    if let itemize::Change::Copied { rel, .. } = &change {
                        copied.insert(rel.clone());
                    }
                    written.sent(change).into_iter().for_each(say)
                }
                Event::Wrote(change) => written.wrote(change).into_iter().for_each(say),
                Event::ReceiverMute => written.unconfirmed().into_iter().for_each(say),
                Event::Skipped(rel) => warn!(
                    "skipped {}: only files, directories and symlinks are mirrored",
                    crate::escape::rel(&rel)
                ),
                Event::MadeParent(i) => {
                    if let Some(dir) = renames.get(i).and_then(|r| r.to.parent()) {
                        stats.add(Count::Created);
                        info!("created directory {}", crate::escape::rel(dir));
                    }
                }
                Event::Renamed(i) => {
                    renamed.push(i);
                    if let Some(r) = renames.get(i) {
                        stats.add(Count::Renamed);
                        info!(
                            "renamed {} -> {}",
                            crate::escape::rel(&r.from),
                            crate::escape::rel(&r.to)
                        );
                    }
                }
                Event::Listed(..) | Event::MadeRoom(..) => {}
            });
        for change in written.not_written() {
            debug!("rsync sent, but the remote side did not write: {change}");
        }
        report.renamed = renamed;
        report.copied = copied;
        report
    }

    /// `--backup-dir` for one run: the suffix is the time, made unique among this process's
    /// runs, so a file replaced twice keeps both versions.
    fn backup_args(&self) -> Vec<OsString> {
        let Some(dir) = &self.settings.backup_dir else {
            return Vec::new();
        };
        let stamp = crate::backup::stamp();
        let mut last = self.last_stamp.borrow_mut();
        let suffix = if last.0 == stamp {
            last.1 += 1;
            format!(".{stamp}-{}", last.1)
        } else {
            *last = (stamp.clone(), 0);
            format!(".{stamp}")
        };
        vec![
            OsString::from("--backup"),
            OsString::from(format!("--backup-dir={dir}")),
            OsString::from(format!("--suffix={suffix}")),
        ]
    }

    /// An rsync run on this replica: the guard (and the batch's `renames`) before the remote
    /// rsync, which writes into the root the guard checked.
    pub(super) fn invocation<'a>(
        &'a self,
        args: Vec<OsString>,
        stdin: Option<Vec<u8>>,
        renames: &[script::Rename],
        touch: Option<crate::dir::Stamp>,
        split: itemize::Split<'a>,
    ) -> rsync::Invocation<'a> {
        rsync::Invocation {
            args,
            stdin,
            rsync_path: script::guard(
                self.root_path.as_bytes(),
                self.root_id.as_deref(),
                renames,
                touch,
                self.digests.map_or("false", |a| a.tool()),
            ),
            rsh: self.rsh(),
            source: &self.source,
            destination: self.destination(),
            split,
            survey: false,
        }
    }

    /// The run's filter `rules` (first: rsync takes the first rule that matches), the shared
    /// arguments, and the run's own. A run that names what it looks at by rules (`- *` last,
    /// or `- /*`) never carries `--delete-excluded`, which implies `--delete`: everything the
    /// rules leave out would count as excluded, and be removed.
    pub(super) fn run_args(&self, extra: &[&str], rules: &[OsString]) -> Vec<OsString> {
        let by_rules = !rules.is_empty() || extra.iter().any(|a| a.starts_with("--include-from"));
        // The copies of file systems gone from inside SOURCE first of all (see [`super::mounts`]).
        let mut args: Vec<OsString> = self.mounts.rules();
        args.extend(rules.iter().cloned());
        args.extend(
            self.args
                .iter()
                .filter(|a| !(by_rules && *a == "--delete-excluded"))
                .cloned(),
        );
        args.extend(extra.iter().map(OsString::from));
        args
    }

    /// What the end of a run means for the replica; returns whether it went through. With
    /// `repeat`, the run tried again only paths whose failure was said before: its errors are
    /// logged at debug level (and still counted).
    pub(super) fn ended(&mut self, report: &Report, stats: &Stats, repeat: bool) -> bool {
        let said = || crate::escape::text(&report.errors.join("; ")).to_string();
        let level = if repeat {
            log::Level::Debug
        } else {
            log::Level::Error
        };
        match &report.ended {
            Ended::Ok => {
                for line in &report.errors {
                    debug!("rsync said: {}", crate::escape::text(line));
                }
                true
            }
            Ended::Interrupted => false,
            _ if raced(report) => {
                // SOURCE changed under rsync (a file removed, a directory made a file, a path
                // that is no longer what rsync listed): not an error, whatever status rsync
                // chose; the paths are looked at again.
                for line in &report.errors {
                    debug!("{}", crate::escape::text(line));
                }
                info!("some paths changed while rsync read them: they are looked at again");
                false
            }
            Ended::Partial | Ended::Io | Ended::Failed(_) => {
                for line in &report.errors {
                    log::log!(level, "{}", crate::escape::text(line));
                    stats.add(Count::Error);
                }
                if let Ended::Failed(code) = report.ended {
                    log::log!(level, "rsync to {} exited with status {code}", self.spec);
                    stats.add(Count::Error);
                }
                if report.ended != Ended::Partial {
                    log::log!(
                        if repeat {
                            log::Level::Debug
                        } else {
                            log::Level::Warn
                        },
                        "{CUT_OFF}"
                    );
                }
                false
            }
            Ended::Lost => {
                // Said here (a --once run has no later check to say it), counted; the run loop
                // says what follows.
                error!("rsync to {} was cut off: {}", self.spec, said());
                warn!("{CUT_OFF}");
                stats.add(Count::Error);
                self.lose(format!("the connection to {} was lost", self.spec.host));
                false
            }
            Ended::RootChanged => {
                error!(
                    "rsync to {} was not started: its root is not the directory foldersync \
                     started with",
                    self.spec
                );
                stats.add(Count::Error);
                self.lose(format!(
                    "REPLICA {} is not the directory foldersync started with (replaced, \
                     mounted over, a symlink on its way, or its disk unmounted)",
                    self.spec
                ));
                false
            }
        }
    }
}

/// Whether a run failed only because SOURCE changed under rsync: each of its messages says so.
/// rsync exits 23 or 24 then, or 2 or 4 when the list it read is no longer a tree ("invalid path
/// from sender": a directory listed, then a file by the time its entries were read).
pub(super) fn raced(report: &Report) -> bool {
    let aborted = report
        .errors
        .iter()
        .any(|l| l.starts_with("ABORTING due to invalid path from sender: "));
    let status = match report.ended {
        Ended::Partial => true,
        Ended::Failed(2 | 4) => aborted,
        _ => false,
    };
    status && report.errors.iter().all(|l| vanished(l))
}

/// Whether rsync's message says only that a SOURCE path went away, or changed kind, while it
/// was read.
fn vanished(line: &str) -> bool {
    let gone =
        line.ends_with("No such file or directory (2)") || line.ends_with("Not a directory (20)");
    let changed = gone || line.ends_with("Is a directory (21)");
    // The sending side reads SOURCE: what it cannot find there has changed.
    if line.starts_with("rsync: [sender] ") && changed {
        return true;
    }
    if line.starts_with("WARNING: parent dir is absent in the file list: ")
        || line.starts_with("ABORTING due to invalid path from sender: ")
        || (line.contains(" failed verification -- update discarded")
            && (line.starts_with("WARNING: ") || line.starts_with("ERROR: ")))
    {
        return true;
    }
    line.starts_with("file has vanished: ")
        || line.starts_with("rsync warning: some files vanished before they could be transferred")
        || line
            .starts_with("rsync error: some files/attrs were not transferred (see previous errors)")
        || line.starts_with("rsync error: protocol incompatibility (code 2)")
        || line.starts_with("rsync error: requested action not supported (code 4)")
}

/// Whether SOURCE has a symlink at `name` pointing to `target` (or, `hard`, another name
/// `target` of the same file): which of several ` -> ` in rsync's line ends the name.
fn agrees(source: &Root, name: &Path, target: &Path, hard: bool) -> bool {
    let open = |rel: &Path| {
        let (parent, file) = (rel.parent()?, rel.file_name()?);
        Some((source.dir.open_beneath(parent).ok()?, file.to_os_string()))
    };
    let Some((dir, file)) = open(name) else {
        return false;
    };
    if hard {
        let id =
            |d: &crate::dir::Dir, f: &std::ffi::OsStr| d.stat_at(f).ok().flatten().map(|m| m.id);
        let other = open(target);
        return match (id(&dir, &file), other) {
            (Some(a), Some((d2, f2))) => id(&d2, &f2) == Some(a),
            _ => false,
        };
    }
    dir.read_link(&file).is_ok_and(|t| t == target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ended: Ended, errors: &[&str]) -> Report {
        Report {
            ended,
            errors: errors.iter().map(|e| e.to_string()).collect(),
            files: None,
            renamed: Vec::new(),
            copied: Default::default(),
        }
    }

    #[test]
    fn source_races_whatever_the_status() {
        let aborted = [
            "ABORTING due to invalid path from sender: d/x",
            "rsync error: protocol incompatibility (code 2) at generator.c(1715) [Receiver=3.5.0]",
        ];
        assert!(raced(&report(Ended::Failed(2), &aborted)));
        let flist = [
            "ABORTING due to invalid path from sender: d/x",
            "rsync error: requested action not supported (code 4) at flist.c(2985) [Receiver]",
        ];
        assert!(raced(&report(Ended::Failed(4), &flist)));
        let vanished = [
            "file has vanished: \"/src/a\"",
            "rsync: [sender] send_files failed to open \"/src/b\": No such file or directory (2)",
            "rsync warning: some files vanished before they could be transferred (code 24)",
        ];
        assert!(raced(&report(Ended::Partial, &vanished)));
        // A protocol error that is no race, and a race beside a real failure.
        let protocol = ["rsync error: protocol incompatibility (code 2) at compat.c(614)"];
        assert!(!raced(&report(Ended::Failed(2), &protocol)));
        let full = [
            "file has vanished: \"/src/a\"",
            "rsync: [receiver] write failed on \"b\": No space left on device (28)",
        ];
        assert!(!raced(&report(Ended::Partial, &full)));
        assert!(!raced(&report(Ended::Io, &vanished)));
    }
}
