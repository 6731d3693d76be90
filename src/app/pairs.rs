//! A configuration's pairs, loaded and opened: what `--config` does at start-up and on each
//! reload ([`super::many`], [`super::reload`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::{open, Opened};
use crate::cli::Args;
use crate::config::file::{self, Pair};
use crate::error::StartError;
use crate::status::Board;
use crate::stop::Stop;

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
