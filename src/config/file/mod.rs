//! `foldersync --config FILE|DIR`: a TOML file (or every `*.toml` of a directory, in sorted
//! order) naming mirrors, each with a SOURCE, one or more replicas and any option of the command
//! line, with the top-level keys as shared defaults. Each (mirror, replica) pair becomes the
//! command line that would say the same and is checked by `Config::from_args`, as that command
//! line would be; then the pairs are checked against each other (`across`). Every mistake is an
//! error naming the file and line of what is wrong; nothing is created here.

mod across;
mod argv;
mod parse;

use std::path::{Path, PathBuf};

pub use parse::Place;

use super::Config;
use crate::error::StartError;
use crate::escape::esc;
use parse::{Key, Mirror, Parsed};

/// One (mirror, replica) pair, checked: what runs as one single-pair mirror.
#[derive(Clone)]
pub struct Pair {
    pub mirror: String,
    /// `NAME -> REPLICA` (escaped as every name: two replicas never share it): what marks its
    /// log lines, and what a reload knows the pair by.
    pub label: String,
    pub config: Config,
    pub at: Places,
    /// The command line it was built as, with the exclude patterns it read: a reload restarts a
    /// pair whose line (or an `exclude-from` file of it) changed.
    pub argv: String,
    /// That command line: to check the pair again as it was written (see `app::reload`).
    pub args: crate::cli::Args,
}

/// Where a pair's parts were written.
#[derive(Clone)]
pub struct Places {
    /// The mirror's `[mirror.NAME]` header.
    pub mirror: Place,
    pub source: Place,
    pub replica: Place,
    /// Its keys, the defaults it took included.
    pub keys: Vec<Key>,
}

impl Places {
    /// Where key `name` was written, else the mirror's header.
    pub fn key(&self, name: &str) -> &Place {
        self.keys
            .iter()
            .find(|k| k.name == name)
            .map_or(&self.mirror, |k| &k.at)
    }
}

impl Pair {
    /// A start-up error of this pair, at the line of what it names (its replica's, else).
    pub fn error(&self, e: StartError) -> StartError {
        let msg = e.to_string();
        let shown = esc(&self.config.given.1).to_string();
        let pair = if msg.contains(&shown) {
            String::new()
        } else {
            format!(" (REPLICA {shown})")
        };
        place_of(&msg, &self.at).error(Some(&self.mirror), format_args!("{msg}{pair}"))
    }
}

/// Reads the configuration at `path` (a file, or a directory of `*.toml` files) and checks
/// every pair, alone and against the others.
pub fn load(path: &Path) -> Result<Vec<Pair>, StartError> {
    let files = files(path)?;
    let mut top: Vec<Key> = Vec::new();
    let mut mirrors: Vec<Mirror> = Vec::new();
    for file in &files {
        let text = read(file).map_err(|e| {
            StartError::new(format!("cannot read configuration file {}: {e}", esc(file)))
        })?;
        let Parsed {
            top: keys,
            mirrors: more,
        } = parse::parse(file, &text)?;
        for key in keys {
            if let Some(first) = top.iter().find(|k| k.name == key.name) {
                return Err(key.at.error(
                    None,
                    format_args!(
                        "`{}` is set again (first at {}): set each top-level key in one file",
                        key.name, first.at
                    ),
                ));
            }
            top.push(key);
        }
        for m in more {
            if let Some(first) = mirrors.iter().find(|f| f.name == m.name) {
                return Err(m.at.error(
                    Some(&m.name),
                    format_args!(
                        "defined twice, first at {}: give each mirror its own name",
                        first.at
                    ),
                ));
            }
            mirrors.push(m);
        }
    }
    if mirrors.is_empty() {
        return Err(StartError::new(format!(
            "{}: no mirror: add a [mirror.NAME] table with source and replicas",
            esc(path)
        )));
    }
    let mut pairs = Vec::new();
    for m in &mirrors {
        pairs.extend(mirror_pairs(&top, m)?);
    }
    across::check(&pairs)?;
    Ok(pairs)
}

/// The longest configuration file read.
const FILE_MAX: u64 = 1 << 20;

/// A configuration file's text: a regular file only (a FIFO would hang start-up, a device
/// could be endless), of at most [`FILE_MAX`] bytes.
fn read(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    file.take(FILE_MAX + 1).read_to_string(&mut text)?;
    if text.len() as u64 > FILE_MAX {
        return Err(std::io::Error::other(format!(
            "longer than {} KiB",
            FILE_MAX >> 10
        )));
    }
    Ok(text)
}

/// The files to read: `path` itself, or the `*.toml` files of a directory, sorted by name.
fn files(path: &Path) -> Result<Vec<PathBuf>, StartError> {
    let cannot = |e: std::io::Error| {
        StartError::new(format!("cannot read configuration {}: {e}", esc(path)))
    };
    let path = std::path::absolute(path).map_err(cannot)?;
    if !std::fs::metadata(&path).map_err(cannot)?.is_dir() {
        return Ok(vec![path]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
        .map_err(cannot)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(StartError::new(format!(
            "configuration directory {} holds no *.toml file",
            esc(&path)
        )));
    }
    Ok(files)
}

/// A mirror's pairs, one per replica, each checked as its command line would be.
fn mirror_pairs(top: &[Key], m: &Mirror) -> Result<Vec<Pair>, StartError> {
    let name = Some(m.name.as_str());
    let Some(source) = &m.source else {
        return Err(m.at.error(
            name,
            "no source: add source = \"/path/to/dir\" to the mirror's table",
        ));
    };
    if m.replicas.is_empty() {
        return Err(m.at.error(
            name,
            "no replica: add replicas = [\"/path\", \"host:/path\"] to the mirror's table",
        ));
    }
    argv::check_mirror_keys(m)?;
    let mut pairs = Vec::new();
    for replica in &m.replicas {
        let built = argv::build(top, m, source, replica)?;
        let at = Places {
            mirror: m.at.clone(),
            source: source.1.clone(),
            replica: replica.1.clone(),
            keys: built.keys,
        };
        let args = built.args.clone();
        let config = Config::from_args(built.args).map_err(|e| {
            let msg = e.to_string();
            place_of(&msg, &at).error(name, msg)
        })?;
        // The patterns read from `exclude-from` files too: an edited file changes the pair.
        let argv = format!("{args:?} {:?}", config.filter.lines());
        pairs.push(Pair {
            mirror: m.name.clone(),
            label: format!("{} -> {}", m.name, esc(&replica.0)),
            config,
            at,
            argv,
            args,
        });
    }
    Ok(pairs)
}

/// The key an error of `Config::from_args` is about: the first thing its message names.
fn place_of<'p>(msg: &str, at: &'p Places) -> &'p Place {
    let mut marks: Vec<(usize, &Place)> = Vec::new();
    for key in &at.keys {
        if let Some(i) = msg.find(&format!("--{}", key.name)) {
            marks.push((i, &key.at));
        }
    }
    let words = [
        ("SOURCE", &at.source),
        ("REPLICA", &at.replica),
        ("log file", at.key("log-path")),
        ("status file", at.key("status-file")),
        ("backup directory", at.key("backup-dir")),
        ("state directory", at.key("state-dir")),
        ("exclude", at.key("exclude-from")),
    ];
    for (word, place) in words {
        if let Some(i) = msg.find(word) {
            marks.push((i, place));
        }
    }
    marks
        .into_iter()
        .min_by_key(|(i, _)| *i)
        .map_or(&at.mirror, |(_, p)| p)
}
