//! `foldersync --config`: every (mirror, replica) pair the configuration names, run in one
//! process, each as the single pair of the command line runs, on a thread of its own. Start-up
//! of every pair is checked before anything is made for any; then what each needs is made
//! (local replicas first, then the one log, then remote roots) and taken back if any is
//! refused. Each pair's log lines carry its label (`crate::label`); the pairs of one SOURCE
//! share one watcher (`watch::shared`); they run under `reload::Running`, which stops them all
//! on Ctrl+C or SIGTERM, reloads the configuration on SIGHUP, and exits with the worst status.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::reload::Running;
use super::{engine::Engine, init_log, make, open, Made, Opened};
use crate::cli::Args;
use crate::config::file::{self, Pair};
use crate::error::StartError;
use crate::escape::esc;
use crate::exit::Exit;
use crate::status::Board;
use crate::stop::{self, Stop};

/// The options the command line may give beside `--config`: the console's verbosity.
const BESIDE_CONFIG: &[&str] = &["config", "verbose", "quiet"];

/// Runs every pair of the configuration at `path`; `args` is the command line (only -v and
/// -q may be given beside `--config`, and they set the console's level).
pub fn run(path: &Path, args: &Args) -> Result<Exit, StartError> {
    refuse_options_beside()?;
    let (pairs, metrics) = load(path, args)?;
    let board = match pairs.first().and_then(|p| p.config.status_file.as_ref()) {
        None => None,
        Some(status) => Some(
            Board::new(status, pairs.len(), pairs[0].config.own.clone()).map_err(|e| {
                StartError::new(format!("cannot use status file {}: {e}", esc(status)))
            })?,
        ),
    };
    let stops: Vec<Stop> = pairs.iter().map(|_| Stop::new()).collect();
    let mut opened = Vec::new();
    for (index, (pair, stop)) in pairs.iter().zip(&stops).enumerate() {
        opened.push(open_pair(pair, stop, board.as_ref(), index)?);
    }
    // One endpoint for every pair, bound before anything is made.
    let listener = metrics.map(crate::metrics::bind).transpose()?;
    let mut made = Made::default();
    let made_roots = match make_all(&pairs, &mut opened, &mut made) {
        Ok(made_roots) => made_roots,
        Err(e) => {
            made.undo();
            return Err(e);
        }
    };
    let stop = Stop::new();
    let (reload_tx, reload_rx) = crossbeam_channel::bounded(1);
    let stop_rx = stop::install(&stop, Some(reload_tx))?;
    log::info!(
        "running {} mirrors, {} pairs, from {}",
        count_mirrors(&pairs),
        pairs.len(),
        esc(path)
    );
    let all = match listener {
        None => None,
        Some(listener) => {
            let all = Arc::new(crate::metrics::All::new());
            crate::metrics::serve_all(listener, all.clone())?;
            Some(all)
        }
    };
    let mut running = Running::new(path, args, board, &pairs, (metrics, all));
    let shares = Running::sharing(&pairs);
    let all = pairs.into_iter().zip(opened).zip(made_roots).zip(stops);
    for (index, (((pair, one), made_root), stop)) in all.enumerate() {
        let shared = shares.contains(&pair.mirror);
        if let Err(e) = running.start(pair, one, made_root, stop, index, shared) {
            log::error!("{e}; stopping");
            running.failed();
            break;
        }
    }
    Ok(running.run(&stop, &stop_rx, &reload_rx))
}

/// The configuration's pairs, with the console's level from -v and -q, and the address of the
/// metrics (the process's one endpoint, taken out of every pair's configuration).
pub(super) fn load(
    path: &Path,
    args: &Args,
) -> Result<(Vec<Pair>, Option<SocketAddr>), StartError> {
    let level = (args.verbose > 0 || args.quiet > 0).then(|| args.console_level());
    load_with(path, level)
}

/// As [`load`], with the console's level `level` if given.
pub(super) fn load_with(
    path: &Path,
    level: Option<log::LevelFilter>,
) -> Result<(Vec<Pair>, Option<SocketAddr>), StartError> {
    let mut pairs = file::load(path)?;
    let metrics = pairs.first().and_then(|p| p.config.metrics);
    for pair in &mut pairs {
        adjust(pair, level);
    }
    Ok((pairs, metrics))
}

/// A pair's configuration as the process runs it: the metrics are the process's, the console's
/// level `level` if given.
fn adjust(pair: &mut Pair, level: Option<log::LevelFilter>) {
    pair.config.metrics = None;
    if let Some(level) = level {
        pair.config.console_level = level;
    }
}

/// `pair` checked again from the command line it was built as: what its checks found on disk
/// (REPLICA to be made, the paths resolved) may have changed since.
pub(super) fn recheck(pair: &Pair, level: Option<log::LevelFilter>) -> Result<Pair, StartError> {
    let mut pair = pair.clone();
    pair.config = crate::config::Config::from_args(pair.args.clone()).map_err(|e| pair.error(e))?;
    adjust(&mut pair, level);
    Ok(pair)
}

/// Opens one pair (every check that makes nothing), its status on the board at `index`.
pub(super) fn open_pair(
    pair: &Pair,
    stop: &Stop,
    board: Option<&Arc<Board>>,
    index: usize,
) -> Result<Opened, StartError> {
    let mut one = open(&pair.config, stop).map_err(|e| pair.error(e))?;
    if let (Some(board), Some(status)) = (board, one.status.take()) {
        one.status = Some(status.on_board(board.clone(), index, &pair.mirror));
    }
    Ok(one)
}

/// Refuses options on the command line beside `--config` (but -v and -q): they go in the file.
fn refuse_options_beside() -> Result<(), StartError> {
    use clap::parser::ValueSource;
    use clap::CommandFactory;
    let command = Args::command();
    let Ok(matches) = command.clone().try_get_matches() else {
        return Ok(());
    };
    for id in matches.ids() {
        let name = id.as_str();
        let is_arg = command.get_arguments().any(|a| a.get_id() == id);
        if !is_arg
            || BESIDE_CONFIG.contains(&name)
            || matches.value_source(name) != Some(ValueSource::CommandLine)
        {
            continue;
        }
        let long = name.replace('_', "-");
        return Err(StartError::new(format!(
            "--{long} given with --config: put it in the configuration file (as `{long} = ...` \
             at the top for every mirror, or in a [mirror.NAME] table); only -v and -q may be \
             given beside --config"
        )));
    }
    Ok(())
}

/// Makes what every pair needs: the local ones first, then the one log, then remote roots (a
/// remote root is made last: nothing on this machine fails after it). Returns whether each
/// pair's REPLICA was made.
fn make_all(
    pairs: &[Pair],
    opened: &mut [Opened],
    made: &mut Made,
) -> Result<Vec<bool>, StartError> {
    let mut made_roots = vec![false; pairs.len()];
    let is_local = |o: &Opened| matches!(o.target, Engine::Local(_));
    for (i, (pair, one)) in pairs.iter().zip(opened.iter_mut()).enumerate() {
        if is_local(one) {
            made_roots[i] = make(&pair.config, one, made, false).map_err(|e| pair.error(e))?;
        }
    }
    if let Some(first) = pairs.first() {
        init_log(&first.config, made)?;
    }
    for (i, (pair, one)) in pairs.iter().zip(opened.iter_mut()).enumerate() {
        if !is_local(one) {
            made_roots[i] = make(&pair.config, one, made, false).map_err(|e| pair.error(e))?;
        }
    }
    Ok(made_roots)
}

pub(super) fn count_mirrors(pairs: &[Pair]) -> usize {
    let mut names: Vec<&str> = pairs.iter().map(|p| p.mirror.as_str()).collect();
    names.dedup();
    names.len()
}
