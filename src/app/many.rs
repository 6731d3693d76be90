//! `foldersync --config`: every (mirror, replica) pair the configuration names, run in one
//! process, each as the single pair of the command line runs, on a thread of its own. Start-up
//! of every pair is checked before anything is made for any; then what each needs is made
//! (local replicas first, then the one log, then remote roots) and taken back if any is
//! refused. Each pair's log lines carry its label (`crate::label`); one Ctrl+C or SIGTERM stops
//! them all; the process exits with the worst of their statuses.

use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::{engine::Engine, init_log, launch, make, open, Made, Opened};
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
    let mut pairs = file::load(path)?;
    if args.verbose > 0 || args.quiet > 0 {
        for pair in &mut pairs {
            pair.config.console_level = args.console_level();
        }
    }
    let stop = Stop::new();
    let board = match pairs.first().and_then(|p| p.config.status_file.as_ref()) {
        None => None,
        Some(status) => Some(
            Board::new(status, pairs.len(), pairs[0].config.own.clone()).map_err(|e| {
                StartError::new(format!("cannot use status file {}: {e}", esc(status)))
            })?,
        ),
    };
    let mut opened = Vec::new();
    for (index, pair) in pairs.iter().enumerate() {
        let mut one = open(&pair.config, &stop).map_err(|e| pair.error(e))?;
        if let (Some(board), Some(status)) = (&board, one.status.take()) {
            one.status = Some(status.on_board(board.clone(), index, &pair.mirror));
        }
        opened.push(one);
    }
    let mut made = Made::default();
    let made_roots = match make_all(&pairs, &mut opened, &mut made) {
        Ok(made_roots) => made_roots,
        Err(e) => {
            made.undo();
            return Err(e);
        }
    };
    let stop_rx = stop::install(&stop)?;
    let receivers = fan_out(stop_rx, pairs.len());
    log::info!(
        "running {} mirrors, {} pairs, from {}",
        count_mirrors(&pairs),
        pairs.len(),
        esc(path)
    );
    Ok(run_all(&pairs, opened, made_roots, &stop, receivers))
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

/// One receiver per pair, each told when the process is asked to stop.
fn fan_out(stop_rx: Receiver<()>, count: usize) -> Vec<Receiver<()>> {
    let (senders, receivers): (Vec<Sender<()>>, Vec<Receiver<()>>) =
        (0..count).map(|_| crossbeam_channel::bounded(1)).unzip();
    let relay = std::thread::Builder::new()
        .name("stop".into())
        .spawn(move || {
            if stop_rx.recv().is_ok() {
                for tx in &senders {
                    let _ = tx.try_send(());
                }
            }
        });
    if let Err(e) = relay {
        // Each pair still checks the stop flag between passes and batches.
        log::warn!("cannot start the thread that relays Ctrl+C to every mirror: {e}");
    }
    receivers
}

/// Runs every pair on a thread of its own until all have ended; returns the worst exit status.
fn run_all(
    pairs: &[Pair],
    opened: Vec<Opened>,
    made_roots: Vec<bool>,
    stop: &Stop,
    receivers: Vec<Receiver<()>>,
) -> Exit {
    std::thread::scope(|scope| {
        let mut running = Vec::new();
        let mut worst = Exit::Success;
        let all = pairs.iter().zip(opened).zip(made_roots).zip(receivers);
        for (((pair, one), made_root), rx) in all {
            let pair_stop = stop.clone();
            let label: Arc<str> = Arc::from(pair.label.as_str());
            let spawned = std::thread::Builder::new()
                .name(format!("mirror {}", pair.mirror))
                .spawn_scoped(scope, move || {
                    crate::label::set(Some(label));
                    launch(&pair.config, one, made_root, pair_stop, rx)
                });
            match spawned {
                Ok(handle) => running.push(handle),
                Err(e) => {
                    log::error!("cannot start mirror {}: {e}; stopping", pair.label);
                    stop.set();
                    worst = Exit::Failed;
                }
            }
        }
        running
            .into_iter()
            .map(|h| h.join().unwrap_or(Exit::Failed))
            .fold(worst, |a, b| if b.code() > a.code() { b } else { a })
    })
}

fn count_mirrors(pairs: &[Pair]) -> usize {
    let mut names: Vec<&str> = pairs.iter().map(|p| p.mirror.as_str()).collect();
    names.dedup();
    names.len()
}
