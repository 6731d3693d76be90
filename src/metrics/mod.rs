//! Prometheus metrics (`--metrics ADDR`): counters and gauges fed by the run loop's report (the
//! same calls that keep the status file, so the two cannot disagree), served in Prometheus's
//! text format at `GET /metrics` by a small server of its own ([`serve`]: the request's head
//! only, parsed by `httparse`). Every metric is a family: one pair (the command line) has no
//! label of its own; the pairs of a `--config` process share one endpoint, each series
//! labelled with its `mirror` and `replica`.

mod register;
mod serve;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::error::StartError;
use crate::stats::Counts;
use crate::status::State;

/// A pair's labels (none for the command line's one pair), and one more where a metric has it.
type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Every state the mirror can be in, with its name in the status file.
/// The kinds of change counted in `operations`.
const KINDS: [&str; 6] = [
    "copied", "updated", "created", "removed", "renamed", "linked",
];

/// How a full pass ended, as `passes` counts it.
const OUTCOMES: [&str; 4] = ["ok", "errors", "interrupted", "skipped"];

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

/// Every pair's metrics, in one registry: shared by the run loops (which feed them, each
/// through its [`Metrics`]) and the server thread (which reads).
pub struct All {
    registry: Registry,
    passes: Family<Labels, Counter>,
    pass_end: Family<Labels, FloatGauge>,
    pass_seconds: Family<Labels, FloatGauge>,
    pass_errors: Family<Labels, Gauge>,
    pass_running: Family<Labels, Gauge>,
    errors: Family<Labels, Counter>,
    operations: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    events_applied: Family<Labels, Counter>,
    pending: Family<Labels, Gauge>,
    pending_age: Family<Labels, FloatGauge>,
    /// Since when each pair's oldest pending path has waited.
    oldest_pending: Mutex<HashMap<Labels, Option<Instant>>>,
    failing: Family<Labels, Gauge>,
    lost: Family<Labels, Counter>,
    state: Family<Labels, Gauge>,
    replica_up: Family<Labels, Gauge>,
    source_up: Family<Labels, Gauge>,
}

/// One pair's metrics: its labels in the families of [`All`].
pub struct Metrics {
    all: Arc<All>,
    labels: Labels,
}

impl All {
    /// The families, empty, in a registry of their own (prefix `foldersync_`).
    pub fn new() -> All {
        let mut registry = Registry::with_prefix("foldersync");
        let m = All {
            passes: Family::default(),
            pass_end: Family::default(),
            pass_seconds: Family::default(),
            pass_errors: Family::default(),
            pass_running: Family::default(),
            errors: Family::default(),
            operations: Family::default(),
            bytes: Family::default(),
            events_applied: Family::default(),
            pending: Family::default(),
            pending_age: Family::default(),
            oldest_pending: Mutex::new(HashMap::new()),
            failing: Family::default(),
            lost: Family::default(),
            state: Family::default(),
            replica_up: Family::default(),
            source_up: Family::default(),
            registry: Registry::default(),
        };
        m.register(&mut registry);
        All { registry, ..m }
    }

    /// The metrics of pair `mirror -> replica`, every series at zero.
    pub fn pair(self: &Arc<All>, mirror: &str, replica: &str) -> Arc<Metrics> {
        Metrics::start(
            self.clone(),
            vec![
                ("mirror", mirror.to_string()),
                ("replica", replica.to_string()),
            ],
        )
    }

    /// The text Prometheus reads.
    pub fn render(&self) -> String {
        for (labels, oldest) in crate::lock(&self.oldest_pending).iter() {
            self.pending_age
                .get_or_create(labels)
                .set(oldest.map_or(0.0, |t| t.elapsed().as_secs_f64()));
        }
        let mut text = String::new();
        // Writing into a String fails only if an encoder does, which ours do not.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

impl Default for All {
    fn default() -> Self {
        All::new()
    }
}

impl Metrics {
    /// One pair's metrics, unlabelled, in a registry of their own (the command line's).
    pub fn new() -> Arc<Metrics> {
        Metrics::start(Arc::new(All::new()), Vec::new())
    }

    fn start(all: Arc<All>, labels: Labels) -> Arc<Metrics> {
        let m = Metrics { all, labels };
        m.state(State::Passing);
        m.pass_running(true);
        m.pending(0, None);
        for f in [
            &m.all.errors,
            &m.all.bytes,
            &m.all.events_applied,
            &m.all.lost,
        ] {
            let _ = f.get_or_create(&m.labels);
        }
        let _ = m.all.failing.get_or_create(&m.labels);
        Arc::new(m)
    }

    /// Its labels and one more.
    fn with(&self, name: &'static str, value: &str) -> Labels {
        let mut labels = self.labels.clone();
        labels.push((name, value.to_string()));
        labels
    }

    /// Its series go (a reload removed the pair).
    pub fn forget(&self) {
        let a = &self.all;
        for f in [&a.errors, &a.bytes, &a.events_applied, &a.lost] {
            f.remove(&self.labels);
        }
        for f in [
            &a.pass_errors,
            &a.pass_running,
            &a.pending,
            &a.failing,
            &a.replica_up,
        ] {
            f.remove(&self.labels);
        }
        for f in [&a.pass_end, &a.pass_seconds, &a.pending_age] {
            f.remove(&self.labels);
        }
        a.source_up.remove(&self.labels);
        crate::lock(&a.oldest_pending).remove(&self.labels);
        for (_, name) in STATES {
            a.state.remove(&self.with("state", name));
        }
        for kind in KINDS {
            a.operations.remove(&self.with("kind", kind));
        }
        for outcome in OUTCOMES {
            a.passes.remove(&self.with("outcome", outcome));
        }
    }

    /// The mirror's state now.
    pub fn state(&self, state: State) {
        for (s, name) in STATES {
            self.all
                .state
                .get_or_create(&self.with("state", name))
                .set(i64::from(s == state));
        }
        let a = &self.all;
        a.replica_up
            .get_or_create(&self.labels)
            .set(i64::from(state != State::ReplicaMissing));
        a.source_up
            .get_or_create(&self.labels)
            .set(i64::from(state != State::SourceMissing));
    }

    pub fn pass_running(&self, running: bool) {
        self.all
            .pass_running
            .get_or_create(&self.labels)
            .set(i64::from(running));
    }

    /// What waits, and since when the oldest of it.
    pub fn pending(&self, pending: u64, oldest: Option<Instant>) {
        self.all
            .pending
            .get_or_create(&self.labels)
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        crate::lock(&self.all.oldest_pending).insert(self.labels.clone(), oldest);
    }

    pub fn failing(&self, count: u64) {
        self.all
            .failing
            .get_or_create(&self.labels)
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn lost(&self) {
        self.all.lost.get_or_create(&self.labels).inc();
    }

    /// What a pass or a batch changed.
    fn counts(&self, counts: &Counts) {
        let n = [
            counts.copied,
            counts.updated,
            counts.created,
            counts.removed,
            counts.renamed,
            counts.linked,
        ];
        for (kind, n) in KINDS.into_iter().zip(n) {
            self.all
                .operations
                .get_or_create(&self.with("kind", kind))
                .inc_by(n);
        }
        self.all
            .bytes
            .get_or_create(&self.labels)
            .inc_by(counts.bytes);
        self.all
            .errors
            .get_or_create(&self.labels)
            .inc_by(counts.errors);
    }

    /// A batch of watcher hints was applied.
    pub fn applied(&self, paths: u64, counts: &Counts) {
        self.all
            .events_applied
            .get_or_create(&self.labels)
            .inc_by(paths);
        self.counts(counts);
    }

    /// A full pass ended (or was skipped).
    pub fn pass(&self, seconds: f64, counts: &Counts, outcome: &'static str) {
        let a = &self.all;
        a.passes.get_or_create(&self.with("outcome", outcome)).inc();
        self.pass_running(false);
        let now = SystemTime::now().duration_since(UNIX_EPOCH);
        a.pass_end
            .get_or_create(&self.labels)
            .set(now.map(|d| d.as_secs_f64()).unwrap_or(0.0));
        a.pass_seconds.get_or_create(&self.labels).set(seconds);
        a.pass_errors
            .get_or_create(&self.labels)
            .set(i64::try_from(counts.errors).unwrap_or(i64::MAX));
        self.counts(counts);
    }

    /// The text Prometheus reads (all pairs').
    #[cfg(test)]
    pub fn render(&self) -> String {
        self.all.render()
    }
}

/// The address's socket, bound at start-up: an address that cannot be used refuses the start.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .map_err(|e| StartError::new(format!("cannot serve metrics on {addr}: {e} (--metrics)")))
}

/// Serves new metrics (of one pair, unlabelled) on `listener` from a thread of its own, for the
/// life of the process.
pub fn serve(listener: TcpListener) -> Result<Arc<Metrics>, StartError> {
    let metrics = Metrics::new();
    serve_all(listener, metrics.all.clone())?;
    Ok(metrics)
}

/// Serves `all` on `listener` from a thread of its own, for the life of the process.
pub fn serve_all(listener: TcpListener, all: Arc<All>) -> Result<(), StartError> {
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || serve::accept(&listener, &all))
        .map_err(|e| StartError::new(format!("cannot serve metrics: {e}")))?;
    Ok(())
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

    /// Several pairs on one endpoint: each family once, each series labelled with its pair; a
    /// pair forgotten leaves no series.
    #[test]
    fn pairs_labelled_in_one_registry() {
        let all = Arc::new(All::new());
        let a = all.pair("www", "/backup/www");
        let b = all.pair("www", "web2:/srv/www");
        a.pass(
            0.5,
            &Counts {
                copied: 2,
                ..Counts::default()
            },
            "ok",
        );
        b.state(State::ReplicaMissing);
        let text = all.render();
        for line in [
            "foldersync_operations_total{mirror=\"www\",replica=\"/backup/www\",kind=\"copied\"} 2",
            "foldersync_replica_up{mirror=\"www\",replica=\"web2:/srv/www\"} 0",
            "foldersync_replica_up{mirror=\"www\",replica=\"/backup/www\"} 1",
            "foldersync_passes_total{mirror=\"www\",replica=\"/backup/www\",outcome=\"ok\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert_eq!(
            text.matches("# TYPE foldersync_replica_up ").count(),
            1,
            "{text}"
        );
        b.forget();
        assert!(!all.render().contains("web2"), "{}", all.render());
    }
}
