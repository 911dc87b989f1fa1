//! Prometheus metrics (prometheus-client), served on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

pub type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub pool: String,
    pub source: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlacementLabels {
    pub pool: String,
    pub zone: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InputLabels {
    /// `calendar/<name>`, `configmap/<ns>/<name>`, `pod/<ns>/<name>`.
    pub source: String,
    pub field: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CalendarLabels {
    pub calendar: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BufferConditionLabels {
    pub pool: String,
    pub buffer: String,
    pub condition: String,
    pub status: String,
}

pub struct Metrics {
    pub forecast_users: Family<SourceLabels, FloatGauge>,
    pub headroom_target_users: Family<PoolLabels, FloatGauge>,
    pub free_warm_seats: Family<PoolLabels, Gauge>,
    pub placeholders_desired: Family<PlacementLabels, Gauge>,
    pub placeholders_ready: Family<PlacementLabels, Gauge>,
    pub placeholders_pending: Family<PlacementLabels, Gauge>,
    /// Placeholders the forecast asked for beyond the pool's `maxNodes` cost guard.
    pub placeholders_capped: Family<PlacementLabels, Gauge>,
    pub lead_time_seconds: Family<PoolLabels, FloatGauge>,
    pub lead_time_samples: Family<PoolLabels, Gauge>,
    /// Bad input currently present, by source and field (1 while present).
    pub bad_input: Family<InputLabels, Gauge>,
    pub errors: Family<KindLabels, Counter>,
    /// Feed answers refused because they were not iCalendar (the last good copy kept).
    pub calendar_rejected: Family<CalendarLabels, Counter>,
    /// Owned objects deleted because no configured pool wants them, by kind.
    pub objects_deleted: Family<KindLabels, Counter>,
    pub reconciles: Counter,
    pub is_leader: Gauge,
    /// Unix time (s) of the last checkpoint this replica wrote (0: none).
    pub checkpoint_written: Gauge,
    pub buffer_condition: Family<BufferConditionLabels, Gauge>,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            forecast_users: Family::default(),
            headroom_target_users: Family::default(),
            free_warm_seats: Family::default(),
            placeholders_desired: Family::default(),
            placeholders_ready: Family::default(),
            placeholders_pending: Family::default(),
            placeholders_capped: Family::default(),
            lead_time_seconds: Family::default(),
            lead_time_samples: Family::default(),
            bad_input: Family::default(),
            errors: Family::default(),
            calendar_rejected: Family::default(),
            objects_deleted: Family::default(),
            reconciles: Counter::default(),
            is_leader: Gauge::default(),
            checkpoint_written: Gauge::default(),
            buffer_condition: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("hubpack_placeholder_ctl");
        r.register(
            "forecast_users",
            "Users expected within the lead time, per source",
            m.forecast_users.clone(),
        );
        r.register(
            "headroom_target_users",
            "Headroom H = mu + z*sqrt(mu), clamped, in users",
            m.headroom_target_users.clone(),
        );
        r.register(
            "free_warm_seats",
            "Seats on warm nodes neither used by users nor held by placeholders",
            m.free_warm_seats.clone(),
        );
        r.register(
            "placeholders_desired",
            "Placeholder replicas set on the Deployment",
            m.placeholders_desired.clone(),
        );
        r.register(
            "placeholders_ready",
            "Placeholders bound to a node",
            m.placeholders_ready.clone(),
        );
        r.register(
            "placeholders_pending",
            "Placeholders not yet bound",
            m.placeholders_pending.clone(),
        );
        r.register(
            "placeholders_capped",
            "Placeholders asked for beyond the pool's maxNodes cost guard (0: not capped)",
            m.placeholders_capped.clone(),
        );
        r.register(
            "lead_time_seconds",
            "Lead time in use (configured, or learned with lead: auto)",
            m.lead_time_seconds.clone(),
        );
        r.register(
            "lead_time_samples",
            "Scale-up waits in the learning window",
            m.lead_time_samples.clone(),
        );
        r.register(
            "bad_input",
            "Input the controller could not use, by source and field (1 while present)",
            m.bad_input.clone(),
        );
        r.register("errors", "Errors by kind", m.errors.clone());
        r.register(
            "calendar_rejected",
            "Calendar feed answers that were not iCalendar (the last good copy is kept)",
            m.calendar_rejected.clone(),
        );
        r.register(
            "objects_deleted",
            "Owned objects deleted because no configured pool wants them, by kind",
            m.objects_deleted.clone(),
        );
        r.register("reconciles", "Reconciles carried out", m.reconciles.clone());
        r.register(
            "is_leader",
            "1 while this replica holds the lease",
            m.is_leader.clone(),
        );
        r.register(
            "checkpoint_written_timestamp_seconds",
            "Unix time of the last checkpoint of the learned state this replica wrote (0: none)",
            m.checkpoint_written.clone(),
        );
        r.register(
            "buffer_condition",
            "A capacityBuffer pool's CapacityBuffer status conditions as the autoscaler wrote them (1 per present condition and status)",
            m.buffer_condition.clone(),
        );
        m
    }
}
