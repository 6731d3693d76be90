//! Every metric put in the registry, with its name and help text.

use prometheus_client::registry::{Registry, Unit};

use super::All;

impl All {
    /// Puts every metric in `r`, with its help text.
    pub(super) fn register(&self, r: &mut Registry) {
        let m = self;
        r.register(
            "passes",
            "Full passes ended, by outcome (ok, errors, interrupted, skipped)",
            m.passes.clone(),
        );
        r.register(
            "last_pass_end_timestamp_seconds",
            "When the last full pass ended (unix time)",
            m.pass_end.clone(),
        );
        r.register_with_unit(
            "last_pass_duration",
            "How long the last full pass took",
            Unit::Seconds,
            m.pass_seconds.clone(),
        );
        r.register(
            "last_pass_errors",
            "Paths that failed in the last full pass",
            m.pass_errors.clone(),
        );
        r.register(
            "pass_running",
            "1 while a full pass runs",
            m.pass_running.clone(),
        );
        self.register_work(r);
    }

    /// The metrics of changes, hints and health.
    fn register_work(&self, r: &mut Registry) {
        let m = self;
        r.register(
            "errors",
            "Paths that failed, in passes and batches of watcher events",
            m.errors.clone(),
        );
        r.register(
            "operations",
            "Changes made to REPLICA, by kind (copied, updated, created, removed, renamed, linked)",
            m.operations.clone(),
        );
        r.register_with_unit(
            "written",
            "File data written into REPLICA",
            Unit::Bytes,
            m.bytes.clone(),
        );
        r.register(
            "events_applied",
            "Paths the watcher brought up to date",
            m.events_applied.clone(),
        );
        r.register(
            "pending_paths",
            "Paths waiting for the worker (watcher hints, retries)",
            m.pending.clone(),
        );
        r.register_with_unit(
            "pending_oldest_age",
            "How long the oldest waiting hint has waited (0 when none waits)",
            Unit::Seconds,
            m.pending_age.clone(),
        );
        r.register(
            "failing_paths",
            "Paths failing now, tried again until they succeed",
            m.failing.clone(),
        );
        r.register(
            "watch_lost_events",
            "Times the watcher lost events (queue overflow, rescan): a full pass caught up",
            m.lost.clone(),
        );
        r.register(
            "state",
            "The mirror's state, as in the status file: 1 for the current one",
            m.state.clone(),
        );
        r.register(
            "replica_up",
            "1 while REPLICA is usable, 0 while it is missing or replaced",
            m.replica_up.clone(),
        );
        r.register(
            "source_up",
            "1 while SOURCE may be mirrored, 0 while it is missing, unreadable or empty",
            m.source_up.clone(),
        );
    }
}
