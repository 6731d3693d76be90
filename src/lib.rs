//! foldersync keeps a REPLICA directory an exact, one-way mirror of a SOURCE directory.
//!
//! The binary is a thin wrapper around [`app::main`]. The data flows top to bottom:
//! [`cli`] (the raw command line) → [`config`] (validated settings, and [`own`]: foldersync's
//! own files) → [`app`] (roots opened, REPLICA made, [`logging`], [`stop`]) → [`daemon`] (the
//! run loop, fed by [`watch`]) → [`replica`] (the seam, and [`replica::open`], which turns a
//! config into one) → [`mirror`] (a local REPLICA) or [`remote`] (one over rsync and ssh) →
//! [`dir`] (every file system call, beneath an open directory). What both engines share:
//! [`rules`] (what is compared and kept), [`backup`] (what is kept of what is replaced),
//! [`address`] (`[USER@]HOST:PATH`), [`mount_points`] (file systems mounted inside SOURCE).
//! Besides: [`root`], [`filter`], [`status`], [`progress`], [`stats`], [`escape`],
//! [`duration`], [`error`] and [`exit`]; [`journal`] (console lines for the systemd journal).

pub(crate) mod address;
pub mod app;
pub(crate) mod backup;
pub(crate) mod change;
pub mod cli;
pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod data;
pub(crate) mod dir;
pub(crate) mod duration;
pub(crate) mod error;
pub(crate) mod escape;
pub(crate) mod exit;
pub(crate) mod filter;
pub(crate) mod journal;
pub(crate) mod label;
pub(crate) mod log_json;
pub(crate) mod logging;
pub mod manual;
pub(crate) mod metrics;
pub(crate) mod mirror;
pub(crate) mod mount_points;
pub(crate) mod own;
pub(crate) mod progress;
pub(crate) mod remote;
pub(crate) mod replica;
pub(crate) mod root;
pub(crate) mod rules;
pub(crate) mod state;
pub(crate) mod stats;
pub(crate) mod status;
pub(crate) mod stop;
pub(crate) mod timing;
pub(crate) mod watch;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex. A poisoned lock means a thread panicked while holding it: that panic is the
/// bug, and is reported as such. The data behind these locks (queues and counters updated by
/// whole items) stays usable, so the work it holds is carried on rather than dropped.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
