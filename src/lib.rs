//! foldersync keeps a REPLICA directory an exact, one-way mirror of a SOURCE directory.
//!
//! The binary is a thin wrapper around [`app::main`]. The data flows top to bottom:
//! [`cli`] (the raw command line) → [`config`] (validated settings, and [`own`]: foldersync's
//! own files) → [`app`] (roots opened, REPLICA made, [`logging`], [`stop`]) → [`daemon`] (the
//! run loop, fed by [`watch`]) → [`replica`] (the seam, and [`replica::open`], which turns a
//! config into one) → [`mirror`] (a local REPLICA) or [`remote`] (one over rsync and ssh) →
//! [`dir`] (every file system call, beneath an open directory). What both engines share:
//! [`rules`] (what is compared and kept), [`backup`] (what is kept of what is replaced),
//! [`address`] (`[USER@]HOST:PATH`). Besides: [`root`], [`filter`], [`status`], [`progress`],
//! [`stats`], [`escape`], [`duration`], [`error`] and [`exit`].

pub mod address;
pub mod app;
pub mod backup;
pub mod change;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod data;
pub mod dir;
pub mod duration;
pub mod error;
pub mod escape;
pub mod exit;
pub mod filter;
pub mod logging;
pub mod mirror;
pub mod own;
pub mod progress;
pub mod remote;
pub mod replica;
pub mod root;
pub mod rules;
pub mod state;
pub mod stats;
pub mod status;
pub mod stop;
pub mod watch;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex. A poisoned lock means a thread panicked while holding it: that panic is the
/// bug, and is reported as such. The data behind these locks (queues and counters updated by
/// whole items) stays usable, so the work it holds is carried on rather than dropped.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
