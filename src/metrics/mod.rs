//! Prometheus metrics (`--metrics ADDR`): counters and gauges fed by the run loop's report (the
//! same calls that keep the status file, so the two cannot disagree), served in Prometheus's
//! text format at `GET /metrics` by a small HTTP server of our own ([`serve`]).

mod serve;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::error::StartError;
use crate::stats::Counts;
use crate::status::State;

type Label = [(&'static str, &'static str); 1];
type FloatGauge = Gauge<f64, AtomicU64>;

/// Every state the mirror can be in, with its name in the status file.
const STATES: [(State, &str); 8] = [
    (State::Watching, "watching"),
    (State::PeriodicOnly, "periodic-only"),
    (State::Passing, "passing"),
    (State::SourceMissing, "source-missing"),
    (State::ReplicaMissing, "replica-missing"),
    (State::Degraded, "degraded"),
    (State::Stopped, "stopped"),
    (State::Finished, "finished"),
];

/// The metrics, shared by the run loop (which feeds them) and the server thread (which reads).
pub struct Metrics {
    registry: Registry,
    passes: Family<Label, Counter>,
    pass_end: FloatGauge,
    pass_seconds: FloatGauge,
    pass_errors: Gauge,
    pass_running: Gauge,
    errors: Counter,
    operations: Family<Label, Counter>,
    bytes: Counter,
    events_applied: Counter,
    pending: Gauge,
    pending_age: FloatGauge,
    oldest_pending: Mutex<Option<Instant>>,
    failing: Gauge,
    lost: Counter,
    state: Family<Label, Gauge>,
    replica_up: Gauge,
    source_up: Gauge,
}

impl Metrics {
    /// The metrics, all at zero, in a registry of their own (prefix `foldersync_`).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("foldersync");
        let m = Metrics {
            passes: Family::default(),
            pass_end: FloatGauge::default(),
            pass_seconds: FloatGauge::default(),
            pass_errors: Gauge::default(),
            pass_running: Gauge::default(),
            errors: Counter::default(),
            operations: Family::default(),
            bytes: Counter::default(),
            events_applied: Counter::default(),
            pending: Gauge::default(),
            pending_age: FloatGauge::default(),
            oldest_pending: Mutex::new(None),
            failing: Gauge::default(),
            lost: Counter::default(),
            state: Family::default(),
            replica_up: Gauge::default(),
            source_up: Gauge::default(),
            registry: Registry::default(),
        };
        m.register(&mut registry);
        let m = Metrics { registry, ..m };
        m.state(State::Passing);
        m.pass_running(true);
        m
    }

    /// Puts every metric in `r`, with its help text.
    fn register(&self, r: &mut Registry) {
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

    /// The mirror's state now.
    pub fn state(&self, state: State) {
        for (s, name) in STATES {
            self.state
                .get_or_create(&[("state", name)])
                .set(i64::from(s == state));
        }
        self.replica_up
            .set(i64::from(state != State::ReplicaMissing));
        self.source_up.set(i64::from(state != State::SourceMissing));
    }

    pub fn pass_running(&self, running: bool) {
        self.pass_running.set(i64::from(running));
    }

    /// What waits, and since when the oldest of it.
    pub fn pending(&self, pending: u64, oldest: Option<Instant>) {
        self.pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
        *crate::lock(&self.oldest_pending) = oldest;
    }

    pub fn failing(&self, count: u64) {
        self.failing.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn lost(&self) {
        self.lost.inc();
    }

    /// What a pass or a batch changed.
    fn counts(&self, counts: &Counts) {
        for (kind, n) in [
            ("copied", counts.copied),
            ("updated", counts.updated),
            ("created", counts.created),
            ("removed", counts.removed),
            ("renamed", counts.renamed),
            ("linked", counts.linked),
        ] {
            self.operations.get_or_create(&[("kind", kind)]).inc_by(n);
        }
        self.bytes.inc_by(counts.bytes);
        self.errors.inc_by(counts.errors);
    }

    /// A batch of watcher hints was applied.
    pub fn applied(&self, paths: u64, counts: &Counts) {
        self.events_applied.inc_by(paths);
        self.counts(counts);
    }

    /// A full pass ended (or was skipped).
    pub fn pass(&self, seconds: f64, counts: &Counts, outcome: &'static str) {
        self.passes.get_or_create(&[("outcome", outcome)]).inc();
        self.pass_running.set(0);
        let now = SystemTime::now().duration_since(UNIX_EPOCH);
        self.pass_end
            .set(now.map(|d| d.as_secs_f64()).unwrap_or(0.0));
        self.pass_seconds.set(seconds);
        self.pass_errors
            .set(i64::try_from(counts.errors).unwrap_or(i64::MAX));
        self.counts(counts);
    }

    /// The text Prometheus reads.
    pub fn render(&self) -> String {
        let oldest = *crate::lock(&self.oldest_pending);
        self.pending_age
            .set(oldest.map_or(0.0, |t| t.elapsed().as_secs_f64()));
        let mut text = String::new();
        // Writing into a String fails only if an encoder does, which ours do not.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The address's socket, bound at start-up: an address that cannot be used refuses the start.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .map_err(|e| StartError::new(format!("cannot serve metrics on {addr}: {e} (--metrics)")))
}

/// Serves new metrics on `listener` from a thread of its own, for the life of the process.
pub fn serve(listener: TcpListener) -> Result<Arc<Metrics>, StartError> {
    let metrics = Arc::new(Metrics::new());
    let served = metrics.clone();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || serve::accept(&listener, &served))
        .map_err(|e| StartError::new(format!("cannot serve metrics: {e}")))?;
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_it_was_fed() {
        let m = Metrics::new();
        let counts = Counts {
            copied: 3,
            bytes: 300,
            errors: 1,
            ..Counts::default()
        };
        m.pass(1.5, &counts, "errors");
        m.state(State::ReplicaMissing);
        let text = m.render();
        for line in [
            "foldersync_passes_total{outcome=\"errors\"} 1",
            "foldersync_operations_total{kind=\"copied\"} 3",
            "foldersync_written_bytes_total 300",
            "foldersync_last_pass_duration_seconds 1.5",
            "foldersync_last_pass_errors 1",
            "foldersync_replica_up 0",
            "foldersync_state{state=\"replica-missing\"} 1",
            "foldersync_pending_oldest_age_seconds 0.0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
