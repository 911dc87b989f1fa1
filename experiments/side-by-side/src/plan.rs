//! A scenario (hubpack-sim's format, at real scale) as the real run needs it: every duration
//! divided by the one compression factor, the stacks' placeholder budgets, and the users'
//! sessions drawn by the simulator's own arrival model (so both see the same users).

use hubpack_e2e::autoscaler::AutoscalerTimings;
use hubpack_e2e::karpenter::{self, KarpenterOptions};
use hubpack_sim::models::arrivals;
use hubpack_sim::scenario::{AutoscalerKind, ConsolidationPolicy, PlaceholderMode, Scenario};
use hubpack_sim::session::Session;
use std::time::Duration;

/// The stacks compared, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// z2jh as shipped: kube-scheduler with z2jh's user-scheduler profile, per-user
    /// placeholders (a StatefulSet at −10), the continuous pre-puller (−5).
    Z2jh,
    /// z2jh as 2i2c tunes it: the same scheduler, one node-sized placeholder.
    Z2jhNuser,
    /// hubpack-scheduler + static N-user placeholders with z2jh's seat budget.
    Hubpack,
    /// hubpack-scheduler + hubpack-placeholder-ctl, sized from the scenario's events.
    HubpackPredictive,
    /// The same controller with its pool's `backend: capacityBuffer`: a CapacityBuffer the
    /// cluster-autoscaler provisions with virtual pods, no placeholder pod.
    HubpackPredictiveBuffer,
}

/// The stacks run when `--stacks` names none.
pub const STACKS: [Stack; 4] = [
    Stack::Z2jh,
    Stack::Z2jhNuser,
    Stack::Hubpack,
    Stack::HubpackPredictive,
];

/// Every stack, in report order (the buffer stack runs when `--stacks` names it).
pub const ALL_STACKS: [Stack; 5] = [
    Stack::Z2jh,
    Stack::Z2jhNuser,
    Stack::Hubpack,
    Stack::HubpackPredictive,
    Stack::HubpackPredictiveBuffer,
];

impl Stack {
    /// The key in the JSON summary.
    pub fn key(self) -> &'static str {
        match self {
            Stack::Z2jh => "z2jh",
            Stack::Z2jhNuser => "z2jh_nuser",
            Stack::Hubpack => "hubpack",
            Stack::HubpackPredictive => "hubpack_predictive",
            Stack::HubpackPredictiveBuffer => "hubpack_predictive_buffer",
        }
    }

    pub fn parse(key: &str) -> Option<Stack> {
        ALL_STACKS.into_iter().find(|s| s.key() == key)
    }

    pub fn is_hubpack(self) -> bool {
        matches!(
            self,
            Stack::Hubpack | Stack::HubpackPredictive | Stack::HubpackPredictiveBuffer
        )
    }

    /// Whether hubpack-placeholder-ctl runs (and makes its own pre-puller).
    pub fn is_predictive(self) -> bool {
        matches!(
            self,
            Stack::HubpackPredictive | Stack::HubpackPredictiveBuffer
        )
    }

    /// Whether the stack needs CapacityBuffers (the CRD, CA's buffer controller and pod
    /// injection).
    pub fn uses_capacity_buffers(self) -> bool {
        self == Stack::HubpackPredictiveBuffer
    }

    /// Why the stack cannot run on `autoscaler`, if it cannot.
    pub fn refused_on(self, autoscaler: AutoscalerKind) -> Option<String> {
        (self.uses_capacity_buffers() && autoscaler == AutoscalerKind::Karpenter).then(|| {
            format!(
                "stack {}: CapacityBuffers on Karpenter are not run by this bench (Karpenter \
                 v1.14.1 serves them only behind its CapacityBuffer feature gate, off by \
                 default, and hubpack-sim models the buffer on cluster-autoscaler only); run \
                 it with --autoscaler cluster-autoscaler",
                self.key()
            )
        })
    }
}

/// Karpenter's settings for a real run, compressed like every other duration.
#[derive(Clone, Debug, PartialEq)]
pub struct KarpenterPlan {
    pub consolidation_policy: ConsolidationPolicy,
    /// `consolidateAfter`, compressed and rounded to whole seconds (the NodePool CRD's unit).
    pub consolidate_after: Duration,
    pub batch_idle: Duration,
    pub batch_max: Duration,
    /// `disruption.budgets[].nodes`, as the scenario writes it (`"10%"`, `"3"`).
    pub budget_nodes: String,
    /// The KWOKNodeClass's registration delay: launch → the Node object exists.
    pub registration_delay: Duration,
    /// The node's boot-delay annotation: registration → Ready.
    pub ready_delay: Duration,
    /// Whether user pods carry `karpenter.sh/do-not-disrupt: "true"`.
    pub user_pods_do_not_disrupt: bool,
}

/// The one kwok instance type of the real Karpenter runs: `s-8x-amd64-linux` (8 CPU,
/// 32 GiB, 128 pods), the class burst's node. kwok's types are c- (2 GiB per CPU), s- (4)
/// and m- (8) at 1, 2, 4, 8, 16, 32, 48… CPUs.
pub const KARPENTER_INSTANCE_TYPE: &str = "s-8x-amd64-linux";

/// kwok's instance types reserve this much for the kubelet (`kubeReserved` in
/// `kwok/cloudprovider/helpers.go`): a Karpenter node's allocatable is its capacity less it.
pub const KWOK_KUBE_RESERVED_CPU: f64 = 0.1;
pub const KWOK_KUBE_RESERVED_MEMORY_GIB: f64 = 10.0 / 1024.0;

/// The share of a node's boot spent before its Node object exists (the machine boots, its
/// kubelet registers); the rest it is registered and NotReady. Clouds register a node most
/// of the way into its boot.
pub const KARPENTER_REGISTRATION_SHARE: f64 = 0.75;

/// A boot split into (registration delay, ready delay): the registration in whole seconds
/// (the KWOKNodeClass's unit), the ready delay the rest to the millisecond.
pub fn split_boot(boot: Duration) -> (Duration, Duration) {
    let ms = boot.as_millis() as u64;
    let registration =
        ((ms as f64 * KARPENTER_REGISTRATION_SHARE / 1000.0).round() as u64 * 1000).min(ms);
    (
        Duration::from_millis(registration),
        Duration::from_millis(ms - registration),
    )
}

/// Karpenter's own loops (the disruption pass, a command's re-validation, the nomination
/// window's floor) are constants of its code, not settings: on the compressed real cluster
/// they run at wall-clock pace, so at the scenario's scale they take `f` times as long. The
/// simulator gets them so (the real cluster is unaffected: they are not knobs).
pub fn karpenter_loops_at_scale(sc: &mut Scenario, f: f64) {
    let k = &mut sc.autoscaler.karpenter;
    k.disruption_poll_s *= f;
    k.validation_delay_s *= f;
    k.nomination_min_s *= f;
}

impl KarpenterPlan {
    /// The scenario's `autoscaler.karpenter` compressed by `f`, the pool's boot split.
    pub fn new(sc: &Scenario, boot: Duration, f: f64) -> Result<KarpenterPlan, String> {
        let k = &sc.autoscaler.karpenter;
        k.validate()?;
        let (registration_delay, ready_delay) = split_boot(boot);
        Ok(KarpenterPlan {
            consolidation_policy: k.consolidation_policy,
            consolidate_after: Duration::from_secs((k.consolidate_after_s / f).round() as u64),
            batch_idle: dur(k.batch_idle_s, f),
            batch_max: dur(k.batch_max_s, f),
            budget_nodes: k.budget_nodes.to_string(),
            registration_delay,
            ready_delay,
            user_pods_do_not_disrupt: k.user_pods_do_not_disrupt,
        })
    }

    /// The harness's options: one `user` NodePool of [`KARPENTER_INSTANCE_TYPE`], its CPU
    /// limit `max_new_nodes` nodes.
    pub fn options(&self, max_new_nodes: usize, node_cpu: f64) -> KarpenterOptions {
        KarpenterOptions {
            node_pools: vec!["user".into()],
            consolidation_policy: match self.consolidation_policy {
                ConsolidationPolicy::WhenEmpty => karpenter::ConsolidationPolicy::WhenEmpty,
                ConsolidationPolicy::WhenEmptyOrUnderutilized => {
                    karpenter::ConsolidationPolicy::WhenEmptyOrUnderutilized
                }
            },
            consolidate_after: self.consolidate_after,
            disruption_budget: self.budget_nodes.clone(),
            batch_idle_duration: self.batch_idle,
            batch_max_duration: self.batch_max,
            registration_delay: self.registration_delay,
            ready_delay: self.ready_delay,
            instance_types: vec![KARPENTER_INSTANCE_TYPE.into()],
            cpu_limit: (max_new_nodes as f64 * node_cpu).ceil() as u32,
            // The buffer stack is not run on Karpenter (see `Stack::refused_on`).
            capacity_buffers: false,
        }
    }
}

/// What one real run needs from the scenario, already compressed.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub compression: f64,
    /// The scenario's span, compressed.
    pub duration: Duration,
    pub node_cpu: f64,
    pub node_memory_gib: f64,
    pub node_pods: i64,
    pub initial_nodes: usize,
    pub max_nodes: usize,
    pub boot: Duration,
    pub image: String,
    pub pull: Duration,
    pub user_cpu: f64,
    pub user_memory_gib: f64,
    pub spawn_limit: usize,
    pub throttle_retry: [Duration; 2],
    pub spawn_retry: Duration,
    pub start_timeout: Duration,
    pub spawn_overhead: Duration,
    pub max_attempts: u32,
    pub cull_timeout: Duration,
    pub cull_interval: Duration,
    pub autoscaler: AutoscalerTimings,
    /// Which autoscaler the runs use (the scenario's `autoscaler.kind`).
    pub autoscaler_kind: AutoscalerKind,
    /// Karpenter's settings (used when `autoscaler_kind` is Karpenter).
    pub karpenter: KarpenterPlan,
    /// z2jh's per-user placeholders (and hubpack's static seat budget).
    pub per_user_seats: usize,
    /// Users on a fresh node (a node-sized placeholder's seats).
    pub seats_per_node: usize,
    pub predictive_lead: Duration,
    /// The headroom's z (the scenario's `predictive.z`): the controller and the simulator
    /// size the same H = μ + z·√μ.
    pub predictive_z: f64,
    pub reconcile: Duration,
    pub remove_after: Duration,
    pub background_half_life: Duration,
    pub placeholder_grace_s: u64,
    /// Scheduled events (start after the run's t0, arrival window, users), compressed.
    pub events: Vec<(Duration, Duration, f64)>,
}

fn dur(seconds: f64, f: f64) -> Duration {
    Duration::from_secs_f64((seconds / f).max(0.0))
}

impl Plan {
    pub fn new(sc: &Scenario, compression: f64) -> Result<Plan, String> {
        let f = compression;
        let pool = sc.pools.first().ok_or("the scenario has no pool")?;
        let image = sc.images.first().ok_or("the scenario has no image")?;
        let profile = sc.profiles.first().ok_or("the scenario has no profile")?;
        let per_user_seats = sc
            .policies
            .placeholders
            .iter()
            .find_map(|p| match p {
                PlaceholderMode::PerUser { k } => Some(*k),
                _ => None,
            })
            .ok_or("policies.placeholders needs a per_user entry: z2jh's seat budget")?;
        let free = |total: f64, ds: f64, per: f64| ((total - ds) / per).floor();
        let seats_per_node = free(
            pool.allocatable.cpu,
            pool.daemonset_overhead.cpu,
            profile.request.cpu,
        )
        .min(free(
            pool.allocatable.memory_gib,
            pool.daemonset_overhead.memory_gib,
            profile.request.memory_gib,
        ))
        .max(1.0) as usize;
        let a = &sc.autoscaler;
        let p = &sc.predictive;
        let lead_min = p
            .lead_min
            .minutes()
            .ok_or("predictive.lead_min must be minutes for the side-by-side bench")?;
        let events = arrivals::scheduled_events(sc)
            .into_iter()
            .map(|e| {
                (
                    dur(e.start as f64 / 1000.0, f),
                    dur(e.window as f64 / 1000.0, f),
                    e.users,
                )
            })
            .collect();
        let h = &sc.hub;
        let boot = dur(pool.boot.median_s, f);
        Ok(Plan {
            name: sc.name.clone(),
            compression: f,
            duration: dur(sc.duration_h * 3600.0, f),
            node_cpu: pool.allocatable.cpu,
            node_memory_gib: pool.allocatable.memory_gib,
            node_pods: pool.allocatable.pods,
            initial_nodes: pool.initial_nodes,
            max_nodes: pool.max_nodes,
            boot,
            image: image.name.clone(),
            pull: dur(image.pull.median_s, f),
            user_cpu: profile.request.cpu,
            user_memory_gib: profile.request.memory_gib,
            spawn_limit: h.concurrent_spawn_limit,
            throttle_retry: [
                dur(h.spawn_throttle_retry_range_s[0], f),
                dur(h.spawn_throttle_retry_range_s[1], f),
            ],
            spawn_retry: dur(h.spawn_retry_s, f),
            start_timeout: dur(h.start_timeout_s, f),
            spawn_overhead: dur(h.spawn_overhead_s, f),
            max_attempts: h.max_attempts,
            cull_timeout: dur(h.cull_timeout_min * 60.0, f),
            cull_interval: dur(h.cull_interval_min * 60.0, f),
            autoscaler: AutoscalerTimings {
                scan_interval: dur(a.scan_interval_s, f),
                scale_down_unneeded_time: dur(a.scale_down_unneeded_min * 60.0, f),
                scale_down_delay_after_add: dur(a.scale_down_delay_after_add_min * 60.0, f),
                scale_down_delay_after_delete: dur(a.scan_interval_s, f),
                scale_down_delay_after_failure: dur(180.0, f),
                unremovable_node_recheck_timeout: dur(
                    a.unremovable_node_recheck_timeout_min * 60.0,
                    f,
                ),
                max_node_provision_time: dur(900.0, f).max(Duration::from_secs(60)),
                expendable_pods_priority_cutoff: a.expendable_pods_priority_cutoff,
            },
            autoscaler_kind: a.kind,
            karpenter: KarpenterPlan::new(sc, boot, f)?,
            per_user_seats,
            seats_per_node,
            predictive_lead: dur(lead_min * 60.0, f),
            predictive_z: p.z,
            reconcile: dur(p.reconcile_s, f),
            remove_after: dur(p.remove_after_min * 60.0, f),
            background_half_life: dur(p.background_half_life_min * 60.0, f),
            placeholder_grace_s: (sc.hubpack.placeholder_grace_s / f).round().max(0.0) as u64,
            events,
        })
    }

    /// The sessions of run `seed`, compressed: (arrival after t0, active time after Ready).
    pub fn sessions(sc: &Scenario, seed: u64, f: f64) -> Result<Vec<(Duration, Duration)>, String> {
        let sessions: Vec<Session> = arrivals::generate(sc, seed).map_err(|e| e.to_string())?;
        Ok(sessions
            .iter()
            .map(|s| {
                (
                    dur(s.arrival as f64 / 1000.0, f),
                    dur(s.active as f64 / 1000.0, f),
                )
            })
            .collect())
    }

    /// hubpack's static placeholders, `per_user_seats` seats in all: (pods, users each).
    /// N is the largest divisor of a fresh node's seats that is at most half of them (15 →
    /// 5), not the whole node: cluster-autoscaler's scheduling simulation hands each
    /// upcoming node to a pending user first (round robin, users outrank placeholders), so a
    /// node-sized placeholder pending beside as many users as there are upcoming nodes gets
    /// a new node every loop (`sim::models::autoscaler::filter_out_schedulable`). With
    /// N ≤ half a node, one user on an upcoming node still leaves room for it.
    pub fn static_n_user(&self) -> (usize, usize) {
        let n = self.seats_per_node;
        let each = (1..=(n / 2).max(1))
            .rev()
            .find(|d| n.is_multiple_of(*d))
            .unwrap_or(1);
        (self.per_user_seats.div_ceil(each).max(1), each)
    }

    /// A fresh user node's allocatable (CPU, GiB): the scenario's node, less kwok's
    /// `kubeReserved` on Karpenter's instance type.
    pub fn fresh_node(&self) -> (f64, f64) {
        match self.autoscaler_kind {
            AutoscalerKind::ClusterAutoscaler => (self.node_cpu, self.node_memory_gib),
            AutoscalerKind::Karpenter => (
                self.node_cpu - KWOK_KUBE_RESERVED_CPU,
                self.node_memory_gib - KWOK_KUBE_RESERVED_MEMORY_GIB,
            ),
        }
    }

    /// DaemonSet pods' CPU a fresh node's scheduling counts (millicores): the kube-proxy
    /// DaemonSet's, and on cluster-autoscaler its node templates' own kube-proxy pod too.
    pub fn fresh_node_daemon_cpu_m(&self) -> u32 {
        match self.autoscaler_kind {
            AutoscalerKind::ClusterAutoscaler => 200,
            AutoscalerKind::Karpenter => 100,
        }
    }

    pub fn gib(&self, g: f64) -> String {
        format!("{}Mi", (g * 1024.0).round() as i64)
    }

    pub fn cpu(&self, c: f64) -> String {
        format!("{}m", (c * 1000.0).round() as i64)
    }
}
