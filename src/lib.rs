//! foldersync keeps a REPLICA directory an exact, one-way mirror of a SOURCE directory.
//!
//! The binary is a thin wrapper around [`app::main`]; the modules are:
//! [`cli`] (the raw command line), [`config`] (validated settings), [`run`] (the loop: passes and
//! watcher hints), [`watch`] (notify and the debouncer), [`mirror`] (the single-path primitive
//! and the streaming tree walk), [`fsops`] (atomic filesystem operations),
//! [`stats`], [`logging`], [`stop`], [`duration`], [`error`] and [`exit`].

pub mod app;
pub mod cli;
pub mod config;
pub mod duration;
pub mod error;
pub mod exit;
pub mod filter;
pub mod fsops;
pub mod logging;
pub mod mirror;
pub mod progress;
pub mod run;
pub mod stats;
pub mod status;
pub mod stop;
pub mod watch;
