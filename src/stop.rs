//! Signals. Ctrl+C and SIGTERM (through `ctrlc`) set a flag that every long loop checks and
//! send a message that wakes the run loop; a second one exits at once. SIGHUP reopens the log
//! file (and with `--config` re-reads the configuration, see `app::reload`), as log rotation expects (and says so to systemd, see `daemon::notify`): it is blocked
//! in every thread and read from a `signalfd` by a thread of its own, so it never stops the
//! mirror.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;

use crate::error::StartError;
use crate::timing::SAME_REQUEST;

/// Makes the process `cmd` starts (ssh, rsync) get SIGTERM when foldersync ends, however it
/// ends (SIGKILL and the OOM killer included), so no child goes on writing REPLICA beside a
/// restarted foldersync. The signal comes when the thread that started it ends: start children
/// from the run loop's thread.
pub fn die_with_us(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the child between fork and exec, and only makes two system
    // calls (prctl, getppid), which are async-signal-safe, touching no memory but its copy of
    // `parent`.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?;
            // The parent may have died before the call: then nothing would signal.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::other("foldersync ended"));
            }
            Ok(())
        });
    }
}

/// A cheap, cloneable stop flag, and whether a reload of the configuration set it (the pair
/// left the configuration or changed) rather than the user.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>, Arc<AtomicBool>);

impl Stop {
    pub fn new() -> Self {
        Stop::default()
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Stops a pair a reload removed or changed.
    pub fn set_by_reload(&self) {
        self.1.store(true, Ordering::Relaxed);
        self.set();
    }

    pub fn by_reload(&self) -> bool {
        self.1.load(Ordering::Relaxed)
    }
}

/// The signals no thread takes the usual way: SIGHUP (read from a signalfd) and SIGIO (sent
/// when a file lease is broken; the copy notices by asking for the lease, not by the signal).
fn blocked_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGHUP);
    set.add(Signal::SIGIO);
    set
}

/// Blocks SIGHUP and SIGIO in the calling thread and every thread it starts later. Call it
/// first thing in `main`.
pub fn hold_signals() -> Result<(), StartError> {
    blocked_signals()
        .thread_block()
        .map_err(|e| StartError::new(format!("cannot block signals: {e}")))
}

/// Installs the Ctrl+C / SIGTERM handler and the SIGHUP reader. The returned receiver gets one
/// message on the first stop signal; the stop flag is set at the same time. A second one exits
/// the process at once with [`crate::exit::Exit::Forced`]. With `reload` (`--config`), SIGHUP
/// is handed to it (whoever reads it reopens the log and reloads), instead of reopening the log
/// here.
pub fn install(stop: &Stop, reload: Option<Sender<()>>) -> Result<Receiver<()>, StartError> {
    let (tx, rx): (Sender<()>, Receiver<()>) = crossbeam_channel::bounded(1);
    let stop = stop.clone();
    let count = AtomicUsize::new(0);
    let mut first: Option<std::time::Instant> = None;
    ctrlc::set_handler(move || {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            first = Some(std::time::Instant::now());
            stop.set();
            let _ = tx.try_send(());
        } else if first.is_some_and(|t| t.elapsed() < SAME_REQUEST) {
            // One signal sent to the process and to its group (as timeout(1) does) arrives
            // twice: one request.
        } else {
            // No progress line left on the terminal.
            if let Some(multi) = crate::logging::progress() {
                let _ = multi.clear();
            }
            log::warn!("second interrupt: exiting at once");
            log::logger().flush();
            std::process::exit(i32::from(crate::exit::Exit::Forced.code()));
        }
    })
    .map_err(|e| StartError::new(format!("cannot install the Ctrl+C handler: {e}")))?;

    let mut hup = SigSet::empty();
    hup.add(Signal::SIGHUP);
    let fd = SignalFd::new(&hup)
        .map_err(|e| StartError::new(format!("cannot watch for SIGHUP: {e}")))?;
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || loop {
            match fd.read_signal() {
                Ok(Some(_)) if reload.is_some() => {
                    if let Some(tx) = &reload {
                        let _ = tx.try_send(());
                    }
                }
                Ok(Some(_)) => {
                    crate::daemon::notify::reloading(|| match crate::logging::reopen() {
                        Ok(()) => log::info!("reopened the log file (SIGHUP)"),
                        Err(e) => log::error!("cannot reopen the log file after SIGHUP: {e}"),
                    })
                }
                Ok(None) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return,
            }
        })
        .map_err(|e| StartError::new(format!("cannot start the SIGHUP thread: {e}")))?;
    Ok(rx)
}
