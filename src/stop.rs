//! Stopping: Ctrl+C and SIGTERM set a flag that every long loop checks and send a message that
//! wakes the run loop; a second signal exits at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::error::StartError;

/// A cheap, cloneable stop flag.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

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
}

/// Installs the Ctrl+C / SIGTERM handler. The returned receiver gets one message on the first
/// signal; the stop flag is set at the same time. A second signal exits the process at once
/// with [`crate::exit::FORCED`].
pub fn install(stop: &Stop) -> Result<Receiver<()>, StartError> {
    let (tx, rx): (Sender<()>, Receiver<()>) = crossbeam_channel::bounded(1);
    let stop = stop.clone();
    let count = AtomicUsize::new(0);
    ctrlc::set_handler(move || {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            stop.set();
            let _ = tx.try_send(());
        } else {
            log::warn!("second interrupt: exiting at once");
            log::logger().flush();
            std::process::exit(i32::from(crate::exit::FORCED));
        }
    })
    .map_err(|e| StartError::new(format!("cannot install the Ctrl+C handler: {e}")))?;
    Ok(rx)
}
