//! Prometheus metrics (prometheus-client), served on `/metrics`.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum AttemptResult {
    Scheduled,
    Preempting,
    Unschedulable,
    Error,
    Skipped,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: AttemptResult,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: &'static str,
}

pub struct Metrics {
    pub attempts: Family<ResultLabels, Counter>,
    /// Time in `decide` alone.
    pub decision_seconds: Histogram,
    /// From the pod's creation to its successful bind.
    pub e2e_seconds: Histogram,
    pub queue_depth: Family<QueueLabels, Gauge>,
    pub preemptions: Counter,
    pub victims: Counter,
    pub bind_errors: Family<KindLabels, Counter>,
    pub kubelet_rejections: Family<KindLabels, Counter>,
    pub is_leader: Gauge,
    /// Time a write waited for its turn in the limiter, by lane.
    pub limiter_wait_seconds: Family<LaneLabels, Histogram>,
    pub watch_errors: Family<KindLabels, Counter>,
    pub watch_relists: Family<KindLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabels {
    pub lane: &'static str,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            attempts: Family::default(),
            // 10 µs … ~80 ms
            decision_seconds: Histogram::new(exponential_buckets(1e-5, 2.0, 14)),
            // 10 ms … ~5 min
            e2e_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            queue_depth: Family::default(),
            preemptions: Counter::default(),
            victims: Counter::default(),
            bind_errors: Family::default(),
            kubelet_rejections: Family::default(),
            is_leader: Gauge::default(),
            limiter_wait_seconds: Family::new_with_constructor(|| {
                // 1 ms … ~65 s
                Histogram::new(exponential_buckets(0.001, 2.0, 17))
            }),
            watch_errors: Family::default(),
            watch_relists: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("hubpack_scheduler");
        r.register(
            "schedule_attempts",
            "Scheduling attempts by result",
            m.attempts.clone(),
        );
        r.register(
            "decision_duration_seconds",
            "Time to decide where one pod goes",
            m.decision_seconds.clone(),
        );
        r.register(
            "e2e_scheduling_duration_seconds",
            "From pod creation to a successful bind",
            m.e2e_seconds.clone(),
        );
        r.register(
            "queue_depth",
            "Pods waiting, by queue",
            m.queue_depth.clone(),
        );
        r.register("preemptions", "Preemptions started", m.preemptions.clone());
        r.register(
            "preemption_victims",
            "Placeholders evicted",
            m.victims.clone(),
        );
        r.register("bind_errors", "Failed binds by kind", m.bind_errors.clone());
        r.register(
            "kubelet_rejections",
            "Bound pods the kubelet rejected, by reason",
            m.kubelet_rejections.clone(),
        );
        r.register(
            "is_leader",
            "1 while this replica holds the lease",
            m.is_leader.clone(),
        );
        r.register(
            "write_limiter_wait_seconds",
            "Time an API write waited for its turn in the rate limiter, by lane",
            m.limiter_wait_seconds.clone(),
        );
        r.register(
            "watch_errors",
            "Watch errors (the watch restarts with backoff), by kind",
            m.watch_errors.clone(),
        );
        r.register(
            "watch_relists",
            "Full lists of a watched kind (the first, and each after a watch gap), by kind",
            m.watch_relists.clone(),
        );
        m
    }

    pub fn observe_limiter_wait(&self, lane: &'static str, waited: std::time::Duration) {
        self.limiter_wait_seconds
            .get_or_create(&LaneLabels { lane })
            .observe(waited.as_secs_f64());
    }

    pub fn watch_error(&self, kind: &str) {
        self.watch_errors
            .get_or_create(&KindLabels {
                kind: kind.to_ascii_lowercase(),
            })
            .inc();
    }

    pub fn watch_relist(&self, kind: &str) {
        self.watch_relists
            .get_or_create(&KindLabels {
                kind: kind.to_ascii_lowercase(),
            })
            .inc();
    }

    pub fn attempt(&self, result: AttemptResult) {
        self.attempts.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn set_queue_depth(&self, active: usize, backoff: usize, parked: usize) {
        for (queue, n) in [
            ("active", active),
            ("backoff", backoff),
            ("unschedulable", parked),
        ] {
            self.queue_depth
                .get_or_create(&QueueLabels { queue })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_metrics_are_encoded() {
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        m.attempt(AttemptResult::Scheduled);
        m.set_queue_depth(3, 1, 2);
        m.is_leader.set(1);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        assert!(
            out.contains("hubpack_scheduler_schedule_attempts_total{result=\"Scheduled\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("hubpack_scheduler_queue_depth{queue=\"unschedulable\"} 2"),
            "{out}"
        );
        assert!(out.contains("hubpack_scheduler_is_leader 1"), "{out}");
    }
}
