//! The command line as the user typed it (clap derive); [`crate::config`] turns it into a validated `Config`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  foldersync --config /etc/foldersync
      run every mirror the *.toml files of /etc/foldersync name (see docs/operations.md)
  foldersync ~/Documents /mnt/backup/Documents
      mirror continuously, full pass every 10 minutes, log to ./sync_log.txt
  foldersync -i 1800 -l /var/log/foldersync.log /srv/data /mnt/mirror/data
      full pass every 30 minutes, log to /var/log/foldersync.log
  foldersync --once /srv/data /mnt/mirror/data
      one full pass, then exit (status 1 if any path failed)
  foldersync --no-watch -i 1h /mnt/nfs/share /srv/mirror
      no watcher (for file systems that send no events): a full pass every hour
  foldersync --status-file /run/foldersync.json /srv/data /mnt/mirror/data
  foldersync status /run/foldersync.json
      keep a status document, and read it (exit 1 when the mirror is unhealthy)

Exit status: 0 success or stopped by Ctrl+C/SIGTERM, 1 a --once pass had errors, 2 bad input.";

/// Keeps REPLICA an exact, one-way mirror of SOURCE.
///
/// A full reconciliation pass runs at start-up and every --interval: it copies new and changed
/// files, creates directories and removes from REPLICA whatever SOURCE lacks. In between, a
/// filesystem watcher carries each change over within a fraction of a second. Every operation is
/// logged to the console and to the log file. Ctrl+C or SIGTERM stops it cleanly.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "foldersync",
    version,
    about,
    long_about,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Directory to mirror from; it is only ever read.
    #[arg(value_name = "SOURCE", required_unless_present = "config")]
    pub source: Option<PathBuf>,

    /// Directory to mirror into; created if missing. Anything in it that SOURCE lacks is removed.
    /// `[USER@]HOST:PATH` is a directory on another machine, reached with ssh and rsync (write
    /// a local path with a colon as `./a:b`).
    #[arg(value_name = "REPLICA", required_unless_present = "config")]
    pub replica: Option<PathBuf>,

    /// Run the mirrors a configuration file names (TOML; a directory: each of its *.toml
    /// files), instead of SOURCE and REPLICA. Options go in the file; only -v and -q may be
    /// given beside it.
    #[arg(long, value_name = "FILE|DIR", conflicts_with_all = ["source", "replica"])]
    pub config: Option<PathBuf>,

    /// Time between full passes: seconds (1800) or a duration (500ms, 30s, 10m, 1h).
    #[arg(
        short,
        long,
        value_name = "DURATION",
        default_value = "600",
        value_parser = parse_interval,
        allow_hyphen_values = true
    )]
    pub interval: Duration,

    /// Log file, appended to. It may live inside SOURCE (it is never mirrored) but not inside REPLICA.
    #[arg(
        short,
        long = "log-path",
        visible_alias = "log_path",
        value_name = "FILE",
        default_value = "sync_log.txt"
    )]
    pub log_path: PathBuf,

    /// Run one full pass, then exit.
    #[arg(long)]
    pub once: bool,

    /// How long the watcher gathers events for a path before the mirror acts on them.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = DEFAULT_DEBOUNCE,
        value_parser = parse_debounce,
        allow_hyphen_values = true
    )]
    pub debounce: Duration,

    /// Do not watch SOURCE for changes: mirror by periodic full passes only.
    #[arg(long)]
    pub no_watch: bool,

    /// Log every operation that would be made, marked "[dry run]", and change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Refuse a pass (or a batch of watcher events) that would remove more than N entries from
    /// REPLICA: it removes none of them and logs an error.
    #[arg(long, value_name = "N")]
    pub max_delete: Option<u64>,

    /// Leave out paths matching PATTERN (gitignore syntax, relative to SOURCE: `*.tmp`, `build/`,
    /// `/top-only`, `**/cache`, `!keep.log`). Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,

    /// Read exclude patterns from FILE, one a line; lines starting with # are comments.
    #[arg(long, value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,

    /// Also remove excluded paths from REPLICA (by default they are left alone there).
    #[arg(long)]
    pub delete_excluded: bool,

    /// Compare files of the same size by content instead of trusting their modification times.
    #[arg(short = 'c', long)]
    pub checksum: bool,

    /// Move every file the mirror would remove or overwrite into DIR, under its path relative to
    /// REPLICA with a timestamp suffix, instead of destroying it. Not inside SOURCE.
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,

    /// Keep at most N versions of each path in the backup directory: the oldest go when a new
    /// one is kept (0 keeps them all).
    #[arg(long, value_name = "N", default_value = "10")]
    pub backup_versions: usize,

    /// Remove versions older than DURATION from the backup directory, after each pass (30d,
    /// 12h, seconds). By default versions are kept whatever their age.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub backup_max_age: Option<Duration>,

    /// Keep a JSON document describing the mirror's state at PATH, replaced atomically (read it
    /// with `foldersync status PATH`). Not inside REPLICA.
    #[arg(long, value_name = "PATH")]
    pub status_file: Option<PathBuf>,

    /// Serve Prometheus metrics over HTTP at http://ADDR/metrics (ADDR is IP:PORT, such as
    /// 127.0.0.1:9108; [::]:9108 for every address). An address that cannot be bound refuses
    /// the start.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// More detail on the console: -v for debug, -vv for trace.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less on the console: -q for warnings and errors only, -qq for errors, -qqq for nothing.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// What the log file records: off, error, warn, info (every operation), debug or trace.
    #[arg(
        long,
        value_name = "LEVEL",
        default_value = "info",
        ignore_case = true,
        value_parser = level_parser()
    )]
    pub log_level: log::LevelFilter,

    /// How log lines are written, in the log file and on the console: text, or json (one
    /// JSON object a line, with the fields of each change for tools).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Allow an empty SOURCE to empty a non-empty REPLICA. Without it, an empty SOURCE (an
    /// unmounted disk, a wiped folder) is refused at start-up and ignored while running.
    #[arg(long)]
    pub allow_empty_source: bool,

    /// Let the first pass into an existing directory that foldersync has not mirrored into
    /// before remove what SOURCE lacks, even when that is most of it (refused otherwise when
    /// it would remove more than half of REPLICA's entries and more than 20).
    #[arg(long)]
    pub adopt_replica: bool,

    /// Where foldersync remembers what it mirrored between runs (default: /var/lib/foldersync
    /// as root, $XDG_STATE_HOME/foldersync or ~/.local/state/foldersync otherwise).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Copy hard links as separate files (by default a file with several names in SOURCE has
    /// the same names, linked, in REPLICA).
    #[arg(long)]
    pub no_hard_links: bool,

    /// Do not copy extended attributes and POSIX ACLs (copied by default).
    #[arg(long)]
    pub no_xattrs: bool,

    /// Count modification times this close as equal, for replicas with coarse timestamps:
    /// 2 for FAT, 0.01 for exFAT (as rsync's --modify-window).
    #[arg(long, value_name = "SECONDS", default_value = "0", value_parser = parse_window)]
    pub modify_window: Duration,

    /// Flush each file to stable storage before it is renamed into place, and each directory
    /// after its entries change, so what was logged as copied survives a power cut.
    #[arg(long)]
    pub fsync: bool,

    /// The ssh command for a remote REPLICA, as rsync's -e: `ssh -p 2222 -i ~/.ssh/mirror`. It
    /// runs in batch mode (no password or host-key prompt) over one shared connection.
    #[arg(short = 'e', long, value_name = "COMMAND")]
    pub rsh: Option<String>,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Commands besides mirroring.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Print the status file of a running mirror (see --status-file) and exit 1 if the mirror is
    /// unhealthy: SOURCE missing, degraded, errors in the last pass, not running, or no update
    /// for two intervals. A SOURCE directory named "status" is written ./status.
    Status {
        /// The status file.
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
}

/// The shortest `--interval`: below it a pass would follow a pass with no rest.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest `--debounce`: the debouncer's thread ticks four times per debounce period.
pub const MIN_DEBOUNCE: Duration = Duration::from_millis(1);

fn parse_window(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(0.0) => Ok(Duration::ZERO),
        _ => crate::duration::parse(text),
    }
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    at_least(text, MIN_INTERVAL)
}

fn parse_debounce(text: &str) -> Result<Duration, String> {
    at_least(text, MIN_DEBOUNCE)
}

fn at_least(text: &str, min: Duration) -> Result<Duration, String> {
    let d = crate::duration::parse(text)?;
    if d < min {
        return Err(format!(
            "'{text}' is too short: at least {}",
            crate::duration::show(min)
        ));
    }
    Ok(d)
}

/// The log levels, offered by completions and checked by clap.
fn level_parser() -> impl clap::builder::TypedValueParser<Value = log::LevelFilter> {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(["off", "error", "warn", "info", "debug", "trace"])
        .try_map(|text| text.parse::<log::LevelFilter>())
}

impl Args {
    /// The console's level: INFO, moved up by -v and down by -q.
    pub fn console_level(&self) -> log::LevelFilter {
        use log::LevelFilter::*;
        const LEVELS: [log::LevelFilter; 6] = [Off, Error, Warn, Info, Debug, Trace];
        let index = 3 + i32::from(self.verbose) - i32::from(self.quiet);
        LEVELS[index.clamp(0, 5) as usize]
    }
}

/// The default `--debounce`; README explains the measurement behind it.
pub const DEFAULT_DEBOUNCE: &str = "50ms";

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn status_is_a_subcommand() {
        let args = Args::try_parse_from(["foldersync", "status", "/run/fs.json"]).unwrap();
        assert!(matches!(args.command, Some(Command::Status { .. })));
        let args = Args::try_parse_from(["foldersync", "./status", "rep"]).unwrap();
        assert!(args.command.is_none());
        assert!(Args::try_parse_from(["foldersync", "only-one"]).is_err());
    }

    #[test]
    fn old_spelling_of_log_path_is_accepted() {
        let args = Args::try_parse_from(["foldersync", "a", "b", "--log_path", "x.log"]).unwrap();
        assert_eq!(args.log_path, PathBuf::from("x.log"));
    }

    #[test]
    fn console_level_moves_with_verbose_and_quiet() {
        let level = |args: &[&str]| {
            let mut all = vec!["foldersync", "a", "b"];
            all.extend_from_slice(args);
            Args::try_parse_from(all).unwrap().console_level()
        };
        assert_eq!(level(&[]), log::LevelFilter::Info);
        assert_eq!(level(&["-v"]), log::LevelFilter::Debug);
        assert_eq!(level(&["-q"]), log::LevelFilter::Warn);
        assert_eq!(level(&["-qqqq"]), log::LevelFilter::Off);
        assert!(Args::try_parse_from(["foldersync", "a", "b", "--log-level", "loud"]).is_err());
    }

    #[test]
    fn negative_interval_reaches_our_parser() {
        let err = Args::try_parse_from(["foldersync", "a", "b", "-i", "-5"]).unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
        for (flag, tiny) in [("-i", "1e-9"), ("--debounce", "1e-9"), ("-i", "10ms")] {
            let err = Args::try_parse_from(["foldersync", "a", "b", flag, tiny]).unwrap_err();
            assert!(err.to_string().contains("too short"), "{err}");
        }
    }
}
