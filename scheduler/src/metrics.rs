//! Prometheus metrics (prometheus-client), served on `/metrics`, in Prometheus conventions:
//! `hubpack_scheduler_` prefix, base units, `_total` counters, lowercase snake_case label
//! values, one meaning per label.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How a scheduling attempt ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum AttemptResult {
    Scheduled,
    Preempting,
    Unschedulable,
    Error,
    Skipped,
}

impl AttemptResult {
    fn label(self) -> &'static str {
        match self {
            AttemptResult::Scheduled => "scheduled",
            AttemptResult::Preempting => "preempting",
            AttemptResult::Unschedulable => "unschedulable",
            AttemptResult::Error => "error",
            AttemptResult::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// Why something failed, as a lowercase snake_case word (see [`reason_label`]).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// A watched kind, lowercase (`pod`, `node`, `persistentvolumeclaim`, …).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabels {
    pub lane: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
}

/// A reason in lowercase snake_case: `OutOfcpu` → `out_of_cpu`, `NotFound` → `not_found`.
pub fn reason_label(reason: &str) -> String {
    if let Some(rest) = reason.strip_prefix("OutOf") {
        return format!("out_of_{}", rest.to_ascii_lowercase());
    }
    let mut out = String::with_capacity(reason.len() + 4);
    for (i, c) in reason.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The reason label of a failed write: the API's answer by name, else the error's kind.
pub fn write_error_label(e: &crate::error::Error) -> String {
    match e.api_code() {
        Some(404) => "not_found".into(),
        Some(409) => "conflict".into(),
        Some(429) => "too_many_requests".into(),
        Some(c) if c >= 500 => "server_error".into(),
        Some(_) => "rejected".into(),
        None => e.metric_label().to_string(),
    }
}

pub struct Metrics {
    pub attempts: Family<ResultLabels, Counter>,
    /// Time in `decide` alone.
    pub decision_seconds: Histogram,
    /// From the pod's creation to its successful bind.
    pub e2e_seconds: Histogram,
    pub queue_depth: Family<QueueLabels, Gauge>,
    /// Age of the oldest pod waiting in the queue.
    pub oldest_pending_seconds: Gauge,
    pub preemptions: Counter,
    pub victims: Counter,
    /// Preemptions whose victims were not all gone within `preemption.timeoutSeconds`.
    pub preemption_timeouts: Counter,
    /// Evictions still refused (429, a PodDisruptionBudget) after every retry.
    pub evictions_refused: Counter,
    pub bind_errors: Family<ReasonLabels, Counter>,
    pub kubelet_rejections: Family<ReasonLabels, Counter>,
    pub is_leader: Gauge,
    /// Time a write waited for its turn in the rate limiter, by lane.
    pub limiter_wait_seconds: Family<LaneLabels, Histogram>,
    pub watch_errors: Family<KindLabels, Counter>,
    pub watch_relists: Family<KindLabels, Counter>,
    pub build_info: Family<BuildLabels, Gauge>,
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
            oldest_pending_seconds: Gauge::default(),
            preemptions: Counter::default(),
            victims: Counter::default(),
            preemption_timeouts: Counter::default(),
            evictions_refused: Counter::default(),
            bind_errors: Family::default(),
            kubelet_rejections: Family::default(),
            is_leader: Gauge::default(),
            limiter_wait_seconds: Family::new_with_constructor(|| {
                // 1 ms … ~65 s
                Histogram::new(exponential_buckets(0.001, 2.0, 17))
            }),
            watch_errors: Family::default(),
            watch_relists: Family::default(),
            build_info: Family::default(),
        };
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
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
        r.register(
            "oldest_pending_pod_age_seconds",
            "Age of the oldest pod waiting in the scheduling queue",
            m.oldest_pending_seconds.clone(),
        );
        r.register("preemptions", "Preemptions started", m.preemptions.clone());
        r.register(
            "preemption_victims",
            "Placeholders evicted",
            m.victims.clone(),
        );
        r.register(
            "preemption_timeouts",
            "Preemptions abandoned: victims not gone within preemption.timeoutSeconds",
            m.preemption_timeouts.clone(),
        );
        r.register(
            "evictions_refused",
            "Evictions still refused (429, a PodDisruptionBudget) after every retry",
            m.evictions_refused.clone(),
        );
        r.register(
            "bind_errors",
            "Failed binds by reason",
            m.bind_errors.clone(),
        );
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
        r.register(
            "build_info",
            "Build information; always 1",
            m.build_info.clone(),
        );
        m
    }

    pub fn attempt(&self, result: AttemptResult) {
        self.attempts
            .get_or_create(&ResultLabels {
                result: result.label(),
            })
            .inc();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_metrics_are_encoded_with_snake_case_label_values() {
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        m.attempt(AttemptResult::Scheduled);
        m.set_queue_depth(3, 1, 2);
        m.is_leader.set(1);
        m.kubelet_rejections
            .get_or_create(&ReasonLabels {
                reason: reason_label("OutOfcpu"),
            })
            .inc();
        m.watch_relist("PersistentVolumeClaim");
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        for line in [
            "hubpack_scheduler_schedule_attempts_total{result=\"scheduled\"} 1",
            "hubpack_scheduler_queue_depth{queue=\"unschedulable\"} 2",
            "hubpack_scheduler_is_leader 1",
            "hubpack_scheduler_kubelet_rejections_total{reason=\"out_of_cpu\"} 1",
            "hubpack_scheduler_watch_relists_total{kind=\"persistentvolumeclaim\"} 1",
            "hubpack_scheduler_build_info{version=\"0.1.0\"} 1",
            "hubpack_scheduler_preemption_timeouts_total 0",
            "hubpack_scheduler_evictions_refused_total 0",
        ] {
            assert!(out.contains(line), "{line} missing from\n{out}");
        }
    }

    #[test]
    fn reasons_are_snake_case() {
        assert_eq!(reason_label("OutOfmemory"), "out_of_memory");
        assert_eq!(reason_label("NotFound"), "not_found");
        assert_eq!(reason_label("not_leader"), "not_leader");
    }
}
