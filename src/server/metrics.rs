//! `GET /metrics`: Prometheus metrics in the OpenMetrics text format, with Prometheus naming
//! (`cordon_` prefix, counters end in `_total`, durations in `_seconds`). Labels are bounded
//! sets (source, outcome, playbook id, action id, state): never a finding id, an ARN or an
//! account, which are unbounded and attacker-chosen.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cordon_engine::actions;
use cordon_engine::run::{RunState, StepState};
use cordon_engine::runner::Observer;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    source: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlaybookLabels {
    playbook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    playbook: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    playbook: String,
    action: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    playbook: String,
    action: &'static str,
}

/// Buckets from 0.5 ms to about 4.6 h, doubling: containment calls take milliseconds to
/// seconds, steps with retries and approvals minutes to hours.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 25))
}

/// Buckets for the time from an event's arrival to its first containment call: from 78 us to
/// about 5.8 h, each sqrt(2) times the last (half a doubling), with one bound at exactly 5 ms.
/// The target for this time is p99 <= 5 ms (`bench/serve.sh` checks it against the
/// 5 ms bucket), and the finer steps read a quantile to within 41% instead of 100%; hours
/// remain for runs whose containment waits for an approval.
fn containment_histogram() -> Histogram {
    Histogram::new((-12..=44).map(|k| 0.005 * 2f64.powf(f64::from(k) / 2.0)))
}

/// The server's metrics; also the runner's [`Observer`].
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    runs_created: Family<PlaybookLabels, Counter>,
    runs_settled: Family<RunLabels, Counter>,
    steps: Family<StepLabels, Histogram, fn() -> Histogram>,
    first_action: Family<ActionLabels, Histogram, fn() -> Histogram>,
    queue_depth: Gauge,
    /// When each run's finding arrived, until its first containment call (or until it settles).
    received: Mutex<HashMap<String, Instant>>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cordon");
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events_received",
            "Events delivered (HTTP or SQS), by source and outcome",
            events.clone(),
        );
        let runs_created = Family::<PlaybookLabels, Counter>::default();
        registry.register(
            "runs_created",
            "Runs created, by playbook",
            runs_created.clone(),
        );
        let runs_settled = Family::<RunLabels, Counter>::default();
        registry.register(
            "runs_settled",
            "Runs that stopped being driven, by playbook and state (finished, waiting for approval, released)",
            runs_settled.clone(),
        );
        let steps: Family<StepLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(seconds_histogram);
        registry.register(
            "step_duration_seconds",
            "Step duration, all attempts, by playbook, action and final state",
            steps.clone(),
        );
        let first_action: Family<ActionLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(containment_histogram);
        registry.register(
            "time_to_first_containment_seconds",
            "Time from the event's arrival to its run's first containment call, by playbook and action",
            first_action.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Runs admitted and not yet settled",
            queue_depth.clone(),
        );
        Metrics {
            registry,
            events,
            runs_created,
            runs_settled,
            steps,
            first_action,
            queue_depth,
            received: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one delivered event. `source` and `outcome` are the bounded labels of
    /// [`cordon_engine::intake::Delivery`].
    pub fn event(&self, source: &'static str, outcome: &'static str) {
        self.events
            .get_or_create(&EventLabels { source, outcome })
            .inc();
    }

    /// The metrics as OpenMetrics text, with the queue depth read now.
    pub fn encode(&self, queue_depth: usize) -> String {
        self.queue_depth
            .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn received(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Observer for Metrics {
    fn run_created(&self, run_id: &str, playbook: &str, received: Instant) {
        self.runs_created
            .get_or_create(&PlaybookLabels {
                playbook: playbook.to_string(),
            })
            .inc();
        self.received().insert(run_id.to_string(), received);
    }

    fn action_started(&self, run_id: &str, playbook: &str, action: &str) {
        let Some(a) = actions::find(action).filter(|a| a.meta().undo.is_some()) else {
            return;
        };
        if let Some(received) = self.received().remove(run_id) {
            self.first_action
                .get_or_create(&ActionLabels {
                    playbook: playbook.to_string(),
                    action: a.meta().id,
                })
                .observe(received.elapsed().as_secs_f64());
        }
    }

    fn step_finished(&self, playbook: &str, action: &str, state: StepState, elapsed: Duration) {
        let action = actions::find(action).map_or("unknown", |a| a.meta().id);
        self.steps
            .get_or_create(&StepLabels {
                playbook: playbook.to_string(),
                action,
                state: state.as_str(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn run_settled(&self, run_id: &str, playbook: &str, state: RunState) {
        self.received().remove(run_id);
        self.runs_settled
            .get_or_create(&RunLabels {
                playbook: playbook.to_string(),
                state: state.as_str(),
            })
            .inc();
    }
}
