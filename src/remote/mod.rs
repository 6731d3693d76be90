//! A REPLICA on another machine, with rsync over ssh as the engine and foldersync as the brain:
//! the watcher, the hints, the passes, renames as renames, the guards, the log and the status
//! stay here; the bytes travel by rsync, on one shared ssh connection ([`ssh`]). A full pass is
//! one `rsync --delete`; a batch of hints one or two rsync runs over a `--files-from` list
//! ([`batch`]), with the renames and a check of the remote root made on the remote side just
//! before ([`script`]), and what SOURCE holds looked at through its open directories
//! ([`source`]), sent as [`send`] says; a file is renamed only on proof of its bytes
//! ([`digest`]). What SOURCE moved away waits a moment in case it turns out to be a rename
//! ([`held`]); "copied" is said only for what the remote side wrote ([`written`]).
//! One rsync run and its log lines are [`run`], its `--max-delete` check [`bound`]; rsync's
//! itemized output becomes the usual log lines ([`itemize`]); its exit status decides what
//! happens next ([`rsync`]), and a lost connection or a replaced root stops all writing until
//! a check finds the replica back ([`health`], which also makes this a
//! [`crate::replica::Replica`]).
//! The root is looked at once per connection ([`probe`]): resolved at start-up, never through
//! a symlink after that; a remote machine that is this one is told apart ([`machine`]), and
//! checked as a local REPLICA; a first pass into a directory not mirrored into before is
//! surveyed first ([`survey`]).

mod batch;
mod bound;
mod digest;
mod filters;
mod health;
mod held;
mod identity;
pub mod itemize;
pub mod machine;
mod mounts;
mod pair;
mod plan;
mod probe;
mod proof;
mod replaced;
mod rsync;
mod run;
mod script;
mod send;
mod source;
mod ssh;
mod survey;
mod suspects;
mod work;
mod written;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::StartError;
use crate::filter::Filter;
use crate::own::OwnFiles;
use crate::stop::Stop;

use crate::address::Spec;
use probe::Make;
use ssh::Ssh;

/// What a remote replica is asked to keep, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rsh: String,
    pub dry_run: bool,
    pub max_delete: Option<u64>,
    /// A file system inside SOURCE that holds no data may empty REPLICA's copy of it.
    pub allow_empty_source: bool,
    pub checksum: bool,
    pub owner: bool,
    pub hard_links: bool,
    pub xattrs: bool,
    pub fsync: bool,
    pub window: Duration,
    pub backup_dir: Option<String>,
    pub filter: Filter,
    pub own: Arc<OwnFiles>,
    /// Its `hold_moved`: how long a path SOURCE lacks stays on the remote side, in case it was
    /// renamed; its `settle`: how long a directory made a moment ago waits before it is sent
    /// whole, in case what fills it is being moved in (see [`batch`]).
    pub timing: crate::timing::Timing,
}

/// A REPLICA reached over ssh.
pub struct Remote {
    spec: Spec,
    ssh: Ssh,
    settings: Settings,
    /// SOURCE with a trailing slash, as rsync's source argument.
    source: OsString,
    /// The arguments every run shares.
    args: Vec<OsString>,
    /// `--files-from` with `--delete-missing-args` works with this pair of rsyncs; if not,
    /// batches use include filters.
    files_from: bool,
    /// The root's `device:inode`, once known.
    root_id: Option<String>,
    /// The root's birth time and file system id (see [`identity`]).
    root_born: Option<String>,
    /// The root's path as the remote side resolved it at start-up (absolute, symlinks followed
    /// then, as a local REPLICA's path is): every later look and run goes there, and a symlink
    /// anywhere on it refuses it (see [`probe`] and [`script::guard`]).
    root_path: OsString,
    /// The `device:inode` of the directory that holds the root: a root that is gone is made
    /// again only in that very directory.
    parent_id: Option<String>,
    /// The root was a mount point when last looked at: gone, it is never made again.
    mount_root: bool,
    /// The remote machine's id (for the record of what was mirrored), and where REPLICA is when
    /// that machine is this one (see [`machine`]).
    machine: Option<String>,
    here: Option<machine::Here>,
    /// The remote rsync compares times to the nanosecond (3.1.3 and later).
    nanoseconds: bool,
    /// The remote rsync can say what it removes and why (3.1.0 and later, see [`bound`]).
    says_deletions: bool,
    /// Whether REPLICA holds anything (as last seen).
    content: bool,
    problem: Option<String>,
    next_try: Instant,
    backoff: Duration,
    /// The digest the remote machine can compute (`b2sum`, else `sha256sum`): a file is renamed
    /// there on proof of its bytes (without either, files are never renamed, only directories).
    digests: Option<digest::Alg>,
    /// The remote `touch` sets a root's mtime to the nanosecond: a batch that changes entries
    /// of the root sets its times that way rather than by listing it (see [`send`]).
    touch: bool,
    /// What of SOURCE's root (all but its times) the last run that listed the root sent.
    root_sent: Option<work::RootLook>,
    /// The files and symlinks runs that went through sent, as SOURCE had them then.
    sent: HashMap<PathBuf, work::Sent>,
    /// What rsync's quick check is not trusted with (see [`proof`]).
    proof: proof::Proof,
    /// SOURCE's root mtime that REPLICA's root was last given (by a run that went through).
    root_mtime: Option<crate::dir::Stamp>,
    /// A batch of only the root's times was left for a moment (see [`plan`]).
    root_waited: bool,
    /// The root's mtime to set after the next run (see [`script::guard`]).
    touch_after: std::cell::Cell<Option<crate::dir::Stamp>>,
    /// What the batches run between the run loop's own (by `tick`) leave for it.
    leftover: crate::replica::Outcome,
    /// Removals held back, in case they were renames.
    held: held::Held,
    /// The file systems mounted inside SOURCE, and those whose copies are kept (see [`mounts`]).
    mounts: mounts::SourceMounts,
    /// New directories waiting to settle before they are sent whole, and until when.
    settling: Vec<(PathBuf, Instant)>,
    /// Where the backup directory is inside REPLICA (as the remote side resolved it): left
    /// out of the mirror, never removed.
    backup_in: Option<PathBuf>,
    /// The last backup suffix given, and how many runs used its second.
    last_stamp: std::cell::RefCell<(String, u32)>,
    stop: Stop,
}

impl Remote {
    /// Connects, looks at the remote root and tries the rsync pair. Everything that fails here
    /// is a start-up error: nothing has been made yet.
    pub fn connect(
        spec: Spec,
        source: &Path,
        settings: Settings,
        stop: Stop,
    ) -> Result<Remote, StartError> {
        let fail = |msg: String| StartError::new(format!("REPLICA {spec}: {msg}"));
        let local = std::process::Command::new("rsync")
            .arg("--version")
            .output()
            .map_err(|e| fail(format!("cannot run rsync here: {e}")))?;
        let local_version = String::from_utf8_lossy(&local.stdout)
            .lines()
            .next()
            .and_then(script::version);
        let mut ssh = Ssh::new(&settings.rsh, spec.destination(), stop.clone()).map_err(fail)?;
        ssh.connect().map_err(fail)?;
        let path = OsStr::new(&spec.path);
        let backup = settings.backup_dir.as_deref();
        let probe = probe::run(&ssh, &spec.host, path, Make::No, backup, false).map_err(fail)?;
        if let Some(why) = probe.refused {
            return Err(fail(format!("the remote path {why}")));
        }
        let Some(place) = probe.place.clone() else {
            return Err(fail(
                "the remote side could not say where the path leads".into(),
            ));
        };
        let remote_version = probe.rsync.as_deref().and_then(script::version);
        if settings.fsync && remote_version.is_none_or(|v| v < (3, 2, 4)) {
            return Err(fail(
                "--fsync needs rsync 3.2.4 or later on the remote machine".into(),
            ));
        }
        if local_version.is_none_or(|v| v < (3, 1, 0)) {
            return Err(fail("rsync 3.1.0 or later is needed here".into()));
        }
        let mut source_arg = source.as_os_str().to_os_string();
        source_arg.push("/");
        let mut remote = Remote {
            args: Vec::new(),
            source: source_arg,
            files_from: true,
            root_id: probe.id.clone(),
            root_born: probe.born.clone(),
            root_path: place.into_os_string(),
            parent_id: probe.parent.clone(),
            mount_root: probe.mount_root,
            machine: probe.machine.clone(),
            here: machine::this_machine(&probe),
            nanoseconds: remote_version.is_some_and(|v| v >= (3, 1, 3)),
            says_deletions: remote_version.is_some_and(|v| v >= (3, 1, 0)),
            content: probe.content,
            problem: None,
            next_try: Instant::now(),
            backoff: crate::timing::REMOTE_BACKOFF_FIRST,
            digests: digest::Alg::of(&probe),
            // Learnt once the start-up guards have passed (see [`Remote::try_pair`]).
            touch: false,
            root_sent: None,
            sent: HashMap::new(),
            proof: Default::default(),
            root_mtime: None,
            root_waited: false,
            touch_after: Default::default(),
            leftover: Default::default(),
            held: held::Held::new(settings.timing.hold_moved()),
            mounts: Default::default(),
            settling: Vec::new(),
            last_stamp: Default::default(),
            backup_in: probe.backup_in.clone(),
            spec,
            ssh,
            settings,
            stop,
        };
        remote.args = remote.shared_args(true);
        Ok(remote)
    }

    /// Makes the remote root if it is missing (not in a dry run).
    /// Returns whether it was made (in a dry run: whether it would be).
    pub fn make_root(&mut self) -> Result<bool, StartError> {
        if self.root_id.is_some() {
            return Ok(false);
        }
        if self.settings.dry_run {
            return Ok(true);
        }
        let backup = self.settings.backup_dir.as_deref();
        let (ssh, host) = (&self.ssh, &self.spec.host);
        let probe = probe::run(ssh, host, &self.root_path, Make::WithParents, backup, true)
            .map_err(|e| StartError::new(format!("cannot create REPLICA {}: {e}", self.spec)))?;
        let moved = probe.place.as_deref() != Some(Path::new(&self.root_path));
        let why = probe
            .refused
            .or(moved.then_some("is not where it was a moment ago"));
        if let Some(why) = why {
            return Err(StartError::new(format!(
                "REPLICA {}: the remote path {why}",
                self.spec
            )));
        }
        self.root_id = probe.id;
        self.root_born = probe.born;
        self.parent_id = probe.parent;
        self.mount_root = probe.mount_root;
        if probe.backup_in != self.backup_in {
            // Where the backup directory is, now that the root exists.
            self.backup_in = probe.backup_in;
            self.args = self.shared_args(true);
        }
        Ok(probe.made)
    }

    /// The arguments every run shares: what is kept, what is left out, the safety options.
    fn shared_args(&self, acls: bool) -> Vec<OsString> {
        self.shared_args_for(acls, self.nanoseconds)
    }

    fn shared_args_for(&self, acls: bool, nanoseconds: bool) -> Vec<OsString> {
        let s = &self.settings;
        // -s: the remote path and options travel inside rsync's protocol, never through the
        // remote shell, whatever the rsync versions or RSYNC_OLD_ARGS say (with old-style
        // arguments, `host:/a b` would be split and `/a` written).
        let mut a: Vec<OsString> = [
            "-s",
            "-lpt",
            "--numeric-ids",
            "--timeout=120",
            "--info=nonreg",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let mut add = |x: &str| a.push(OsString::from(x));
        if s.owner {
            add("-og");
        }
        if s.hard_links {
            add("-H");
        }
        if s.xattrs && acls {
            add("-AX");
        }
        add("--sparse");
        if s.checksum {
            add("--checksum");
        }
        if s.fsync {
            add("--fsync");
        }
        if !s.window.is_zero() {
            add(&format!(
                "--modify-window={}",
                s.window.as_secs_f64().ceil() as u64
            ));
        } else if nanoseconds {
            // Times equal to the nanosecond, as a local mirror compares them: by default rsync
            // takes two times in the same second as equal, and then leaves a directory or a
            // symlink made in that second with the time it was made at.
            add("--modify-window=-1");
        }
        if s.filter.delete_excluded {
            add("--delete-excluded");
        }
        if s.dry_run {
            add("--dry-run");
        }
        for rule in filters::rules(&s.filter, &s.own, self.backup_in.as_deref()) {
            let mut arg = OsString::from("--filter=");
            arg.push(rule);
            a.push(arg);
        }
        a
    }

    /// rsync's destination argument: `host:.` where the guard (see [`script::guard`]) has
    /// moved into the root it checked; `host:path/` only while the root is still to be made
    /// (a dry run), which [`spec`] keeps free of wildcards that rsync would expand.
    fn destination(&self) -> OsString {
        let mut destination = OsString::from(self.spec.destination());
        destination.push(":");
        if self.root_id.is_some() {
            destination.push(".");
        } else {
            destination.push(&self.spec.path);
            destination.push("/");
        }
        destination
    }

    /// Where REPLICA is when the remote machine turned out to be this one: to be checked as a
    /// local REPLICA would be.
    pub fn on_this_machine(&self) -> Option<&machine::Here> {
        self.here.as_ref()
    }

    fn rsh(&self) -> String {
        self.ssh.rsync_rsh()
    }
}
