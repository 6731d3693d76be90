//! The mount table, watched: inotify reports no mount, so a file system mounted inside SOURCE
//! while watching would stay unwatched (and one unmounted unnoticed) until the next pass. The
//! kernel marks `/proc/self/mountinfo` readable with priority (`POLLPRI`) whenever the table
//! changes; a thread of the watcher's sleeps in `poll` on it (and on an `eventfd` that ends it),
//! and says `WatchMsg::Mounts` on each change. Idle, it costs nothing.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::thread::{self, JoinHandle};

use crossbeam_channel::Sender;
use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};

use super::WatchMsg;

/// The thread watching the mount table.
pub struct MountWatch {
    wake: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl MountWatch {
    /// Starts watching; `None` where the mount table cannot be watched (no `/proc`): then
    /// mounts are met by the passes only.
    pub fn start(out: Sender<WatchMsg>) -> Option<MountWatch> {
        let table = File::open("/proc/self/mountinfo").ok()?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC).ok()?;
        let woken = wake.try_clone().ok()?;
        let thread = thread::Builder::new()
            .name("mounts".into())
            .spawn(crate::label::carry(move || watch(&table, &woken, &out)))
            .ok()?;
        Some(MountWatch {
            wake,
            thread: Some(thread),
        })
    }
}

fn watch(table: &File, wake: &OwnedFd, out: &Sender<WatchMsg>) {
    loop {
        let mut fds = [
            PollFd::new(table, PollFlags::PRI | PollFlags::ERR),
            PollFd::new(wake, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
        if !fds[1].revents().is_empty() {
            return;
        }
        let changed = fds[0].revents();
        if changed.intersects(PollFlags::PRI | PollFlags::ERR) {
            // The change is acknowledged by reading the table again from its start.
            let _ = std::io::Read::read_to_end(&mut &*table, &mut Vec::new());
            let _ = rustix::fs::seek(table, rustix::fs::SeekFrom::Start(0));
            // A full channel drops it: the watcher then says the loss, and the full pass that
            // follows looks at every mount point.
            if let Err(crossbeam_channel::TrySendError::Disconnected(_)) =
                out.try_send(WatchMsg::Mounts)
            {
                return;
            }
        }
    }
}

impl Drop for MountWatch {
    fn drop(&mut self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
