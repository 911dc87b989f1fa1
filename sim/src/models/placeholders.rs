//! Placeholders as a Deployment: `desired` pause pods at priority −10 that never preempt;
//! an evicted one is replaced at once by a Pending pod (which is what makes the autoscaler
//! add a node). The count is fixed (`per-user K`, `n-user N×K`) or set by the predictive
//! controller from hubpack-core's headroom sizing.
//!
//! Surplus replacements: hubpack-scheduler holds back a pending placeholder's
//! Unschedulable condition for `hubpack.placeholder_grace_s` after its creation; the
//! controller, reacting to the eviction after `predictive.reaction_s`, recomputes its
//! target and lowers the replicas if a pending placeholder is surplus (the ReplicaSet
//! deletes the newest unscheduled pods first). Within the grace, only a wanted placeholder
//! is ever marked Unschedulable, and only that one can make the autoscaler add a node.
//! kube-scheduler has no grace: a surplus replacement is visible to the autoscaler until
//! the controller drops it.

use crate::clock::{MINUTE, secs};
use crate::cluster_state::{NodeId, PodId, PodKind};
use crate::events::Event;
use crate::models::Sim;
use crate::models::arrivals::scheduled_events;
use crate::scenario::{PlaceholderMode, Scenario, SchedulerKind};
use hubpack_core::headroom::{
    HeadroomConfig, HeadroomError, LeadTimeConfig, LearnerConfig, PlacementObservation,
    PoolObservation, PoolReconciler, PoolStep, ReconcilerConfig, ScheduledEvent,
    placeholder_request, removal_order, seats_in, seats_per_placeholder, trim_pending_above_target,
    validate_placeholder,
};
use hubpack_core::model::{Millis, Pod, PodRole, PreemptionPolicy, Resources};
use hubpack_core::policy::warmth::images_warm;
use std::collections::BTreeMap;

const PLACEHOLDER_PRIORITY: i32 = -10;
/// Window of the live observed arrival rate (the forecast's floor), the controller's
/// default `background.observedWindowSeconds`.
const OBSERVED_WINDOW: Millis = 5 * MINUTE;

/// A placeholder size the autoscaler could never make room for, said once, in the units
/// people write.
#[derive(Debug, thiserror::Error)]
pub enum PlaceholderError {
    #[error(
        "pool {pool}: one user ({request}) does not fit on a fresh node, which has {fresh} \
         after DaemonSets (short of {short}); use a larger node type (pools[{pool}].allocatable) \
         or a smaller request (profiles[0].request)"
    )]
    UserDoesNotFit {
        pool: String,
        request: String,
        fresh: String,
        short: String,
    },
    #[error(
        "pool {pool}: a placeholder for {seats} users ({request}) does not fit on a fresh node, \
         which has {fresh} after DaemonSets (short of {short}); use at most {fit} users per \
         placeholder or a larger node type"
    )]
    PlaceholderTooLarge {
        pool: String,
        seats: i64,
        fit: i64,
        request: String,
        fresh: String,
        short: String,
    },
    #[error(
        "predictive-buffer needs autoscaler kind cluster-autoscaler: Karpenter v1.14 serves \
         CapacityBuffers only behind its CapacityBuffer feature gate, which the simulator does \
         not model; use predictive (placeholder pods) with Karpenter"
    )]
    BufferNeedsClusterAutoscaler,
}

impl PlaceholderError {
    fn of(pool: &str, seats: i64, fit: i64, e: HeadroomError) -> PlaceholderError {
        let (HeadroomError::UserDoesNotFit(m) | HeadroomError::PlaceholderTooLarge(m)) = &e;
        let fresh = crate::scenario::human(&(&m.allocatable - &m.daemonsets));
        let request = crate::scenario::human(&m.request);
        let short = m
            .short
            .iter()
            .map(|r| format!("{r:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(", ");
        match e {
            HeadroomError::UserDoesNotFit(_) => PlaceholderError::UserDoesNotFit {
                pool: pool.to_string(),
                request,
                fresh,
                short,
            },
            HeadroomError::PlaceholderTooLarge(_) => PlaceholderError::PlaceholderTooLarge {
                pool: pool.to_string(),
                seats,
                fit,
                request,
                fresh,
                short,
            },
        }
    }
}

/// The predictive controller: hubpack-core's pool reconciler, run on the scenario's
/// scheduled events.
pub struct Predictive {
    reconciler: PoolReconciler,
    events: Vec<ScheduledEvent>,
    /// A surplus check is due (set on eviction, cleared when it runs).
    check_queued: bool,
}

/// How the simulated controller reconciles its pool, from the scenario (the controller's
/// defaults where the scenario has no setting).
pub fn reconciler_config(sc: &Scenario) -> ReconcilerConfig {
    let p = &sc.predictive;
    ReconcilerConfig {
        learner: LearnerConfig {
            half_life: secs(p.background_half_life_min * 60.0),
            observed_window: OBSERVED_WINDOW,
            min_span: secs(p.reconcile_s),
            weekly_profile: false,
        },
        lead_time: LeadTimeConfig {
            initial: secs(p.lead_initial_min * 60.0),
            quantile: p.lead_quantile,
            // The controller's reconcile interval and the scheduler's grace.
            reaction: secs(p.reconcile_s + sc.hubpack.placeholder_grace_s),
            ..LeadTimeConfig::default()
        },
        fixed_lead: p.lead_min.minutes().map(|m| secs(m * 60.0)),
        headroom: HeadroomConfig {
            z: p.z,
            min_seats: p.min_seats,
            max_seats: p.max_seats,
        },
        scale_down_after: secs(p.remove_after_min * 60.0),
        zones: vec![None],
    }
}

impl Predictive {
    pub fn new(sc: &Scenario) -> Predictive {
        Predictive {
            reconciler: PoolReconciler::new(reconciler_config(sc)),
            events: scheduled_events(sc),
            check_queued: false,
        }
    }

    /// One reconcile of the controller on `obs`, for placeholders of `seats_each` users.
    pub fn step(&mut self, now: Millis, seats_each: i64, obs: &PoolObservation) -> PoolStep {
        self.reconciler.step(now, &self.events, seats_each, obs)
    }
}

pub struct PlaceholderState {
    /// Placeholders serve the first profile's pool, sized in its mean user.
    pub pool: usize,
    pub per_user: Resources,
    pub request: Resources,
    pub seats_each: i64,
    /// −10, or the users' 0 when z2jh runs without `podPriority` (users cannot preempt).
    pub priority: i32,
    pub desired: usize,
    pub live: Vec<PodId>,
    pub created: usize,
    /// Creation times of the user pods created since the controller's last reconcile.
    pub new_user_pods: Vec<Millis>,
    pub predictive: Option<Predictive>,
    /// The CapacityBuffer the controller writes instead of placeholder pods.
    pub buffer: Option<crate::models::buffer::BufferState>,
}

impl PlaceholderState {
    /// `scheduler`: z2jh's own placeholder settings (`placeholder:` in the scenario, from
    /// `--z2jh-values`) apply to the kube-scheduler policies; hubpack's chart always runs
    /// them at −10, sized in users.
    pub fn new(
        sc: &Scenario,
        mode: &PlaceholderMode,
        scheduler: SchedulerKind,
    ) -> Result<PlaceholderState, PlaceholderError> {
        let profile = &sc.profiles[0];
        let pool = sc.pool_index(&profile.pool).unwrap_or(0);
        let spec = &sc.pools[pool];
        let alloc = spec.allocatable.to_resources();
        let ds = spec.daemonset_overhead.to_resources();
        let per_user = mean_user(sc, pool);
        let fit = seats_in(&(&alloc - &ds), &per_user);
        let node_worth = || {
            seats_per_placeholder(&alloc, &ds, &per_user)
                .map_err(|e| PlaceholderError::of(&spec.name, 1, fit, e))
        };
        let (seats_each, desired) = match mode {
            PlaceholderMode::None => (1, 0),
            PlaceholderMode::PerUser { k } => (1, *k),
            PlaceholderMode::NUser { n, k } => (n.map_or_else(node_worth, Ok)?, *k),
            PlaceholderMode::Predictive | PlaceholderMode::PredictiveBuffer => (
                sc.predictive
                    .users_per_placeholder
                    .map_or_else(node_worth, Ok)?,
                0,
            ),
        };
        let seats_each = seats_each.max(1);
        let mut request = placeholder_request(&per_user, seats_each);
        let z2jh_chart = scheduler != SchedulerKind::Hubpack;
        if let (PlaceholderMode::PerUser { .. }, Some(r), true) =
            (mode, &sc.placeholder.request, z2jh_chart)
        {
            request = r.to_resources().with_pods(1);
        }
        validate_placeholder(&alloc, &ds, &request)
            .map_err(|e| PlaceholderError::of(&spec.name, seats_each, fit, e))?;
        if matches!(mode, PlaceholderMode::PredictiveBuffer)
            && sc.autoscaler.kind == crate::scenario::AutoscalerKind::Karpenter
        {
            return Err(PlaceholderError::BufferNeedsClusterAutoscaler);
        }
        let predictive = mode.is_predictive().then(|| Predictive::new(sc));
        Ok(PlaceholderState {
            pool,
            per_user,
            request,
            seats_each,
            priority: match sc.placeholder.priority {
                Some(p) if z2jh_chart => p,
                _ => PLACEHOLDER_PRIORITY,
            },
            desired,
            live: Vec::new(),
            created: 0,
            new_user_pods: Vec::new(),
            predictive,
            buffer: crate::models::buffer::BufferState::for_mode(mode),
        })
    }
}

/// The user a placeholder seat stands for: the arrival-weighted mean request of the
/// profiles in `pool` (rounded up), the first profile's if weights are all 0.
pub fn mean_user(sc: &Scenario, pool: usize) -> Resources {
    let in_pool: Vec<&crate::scenario::ProfileSpec> = sc
        .profiles
        .iter()
        .filter(|p| sc.pool_index(&p.pool) == Some(pool))
        .collect();
    let total: f64 = in_pool.iter().map(|p| p.weight.max(0.0)).sum();
    if total <= 0.0 || in_pool.len() < 2 {
        return sc.profiles[0].request.to_resources().with_pods(1);
    }
    let (cpu, mem) = in_pool.iter().fold((0.0, 0.0), |(c, m), p| {
        let w = p.weight.max(0.0) / total;
        (c + w * p.request.cpu, m + w * p.request.memory_gib)
    });
    crate::scenario::ResourceSpec {
        cpu: (cpu * 1000.0).ceil() / 1000.0,
        memory_gib: (mem * 1024.0).ceil() / 1024.0,
        pods: 0,
        // A seat must hold any of the pool's users: the most of each extended resource.
        extended: in_pool.iter().fold(Default::default(), |mut e, p| {
            for (k, v) in &p.request.extended {
                let x: &mut i64 = e.entry(k.clone()).or_default();
                *x = (*x).max(*v);
            }
            e
        }),
    }
    .to_resources()
    .with_pods(1)
}

impl Sim<'_> {
    pub(crate) fn start_placeholders(&mut self) {
        self.scale_placeholders(0);
        if self.placeholders.predictive.is_some() {
            self.agenda.at(0, Event::PlaceholderReconcile);
        }
    }

    fn new_placeholder(&mut self, now: Millis) {
        let ph = &mut self.placeholders;
        ph.created += 1;
        let mut core = Pod::simple(
            &format!("hub/user-placeholder-{}", ph.created),
            PodRole::Placeholder,
            ph.priority,
            ph.request.clone(),
            now,
        );
        core.preemption_policy = PreemptionPolicy::Never;
        let pool = ph.pool;
        let id = self
            .cluster
            .create_pod(PodKind::Placeholder, pool, None, core, now);
        if self.policy.scheduler == SchedulerKind::Hubpack {
            let grace = secs(self.sc.hubpack.placeholder_grace_s);
            if grace > 0 {
                self.cluster.pods[id].hold_unschedulable_until = now + grace;
                self.agenda.at(now + grace, Event::PlaceholderGraceOver);
            }
        }
        self.placeholders.live.push(id);
    }

    /// Brings the live count to `desired`: create Pending ones, or delete pending ones and
    /// then those on the nodes with the fewest users.
    fn scale_placeholders(&mut self, now: Millis) {
        while self.placeholders.live.len() < self.placeholders.desired {
            self.new_placeholder(now);
        }
        let excess = self
            .placeholders
            .live
            .len()
            .saturating_sub(self.placeholders.desired);
        if excess > 0 {
            // Newest first among equals, as a ReplicaSet picks: a fresh replacement before
            // an older pending placeholder.
            let newest_first: Vec<PodId> = self.placeholders.live.iter().rev().copied().collect();
            let users_on: Vec<Option<usize>> = newest_first
                .iter()
                .map(|&p| {
                    self.cluster.pods[p]
                        .node
                        .map(|n| self.cluster.nodes[n].users)
                })
                .collect();
            let order = removal_order(&users_on);
            let doomed: Vec<PodId> = order[..excess].iter().map(|&i| newest_first[i]).collect();
            for pod in doomed {
                self.cluster.delete_pod(pod, now);
            }
            self.placeholders
                .live
                .retain(|&p| self.cluster.pods[p].alive);
            self.request_schedule(now);
        }
        self.request_schedule(now);
    }

    /// A placeholder was preempted or its node removed: the Deployment replaces it, and the
    /// predictive controller looks at the replacement after its reaction time.
    pub(crate) fn evict_placeholder(&mut self, pod: PodId, now: Millis) {
        self.cluster.delete_pod(pod, now);
        self.placeholders.live.retain(|&p| p != pod);
        self.scale_placeholders(now);
        if let Some(p) = self.placeholders.predictive.as_mut()
            && !p.check_queued
        {
            p.check_queued = true;
            let at = now + secs(self.sc.predictive.reaction_s);
            self.agenda.at(at, Event::PlaceholderSurplusCheck);
        }
    }

    /// The controller's reaction to a pod event: recompute the target and drop pending
    /// placeholders above it at once (hubpack-core's `trim_pending_above_target`, as the
    /// live controller does). Within hubpack-scheduler's grace the autoscaler never saw
    /// them; with kube-scheduler it may have, if its scan fell in between.
    pub(crate) fn on_placeholder_surplus_check(&mut self, now: Millis) {
        let Some(target) = self.predictive_target(now) else {
            return;
        };
        if let Some(p) = self.placeholders.predictive.as_mut() {
            p.check_queued = false;
        }
        self.drop_pending_above(target, now);
    }

    /// Lowers `desired` so that no pending placeholder exceeds `target`.
    fn drop_pending_above(&mut self, target: usize, now: Millis) {
        let placed = self
            .placeholders
            .live
            .iter()
            .filter(|&&id| self.cluster.pods[id].node.is_some())
            .count();
        let keep = trim_pending_above_target(self.placeholders.desired, target, placed);
        if keep < self.placeholders.desired {
            self.placeholders.desired = keep;
            self.scale_placeholders(now);
        }
    }

    /// The target the controller computes now, without learning from it: μ over the
    /// lead time, H = μ + z·√μ, minus free warm seats, in placeholders.
    fn predictive_target(&self, now: Millis) -> Option<usize> {
        let p = self.placeholders.predictive.as_ref()?;
        let free = BTreeMap::from([(None, self.free_warm_seats(now))]);
        let f = p
            .reconciler
            .targets_now(now, self.placeholders.seats_each, &free);
        Some(f.targets.iter().map(|(_, n)| n).sum())
    }

    /// `lead_min: auto`: a node turned warm for the placeholders' image; if a pending
    /// placeholder's scale-up added it, that is one sample, from the placeholder's
    /// Unschedulable mark to now (as the live controller measures: Unschedulable or
    /// TriggeredScaleUp → node warm), whether or not users have evicted it since.
    pub(crate) fn learn_lead_time(&mut self, node: NodeId, now: Millis) {
        let Some(p) = self.placeholders.predictive.as_mut() else {
            return;
        };
        if !p.reconciler.learns_lead() {
            return;
        }
        let n = &mut self.cluster.nodes[node];
        if let Some(trigger) = n.lead_trigger.take() {
            p.reconciler
                .observe_lead_sample(now.max(n.ready_at + self.warm_settle) - trigger);
        }
    }

    /// The learned (or configured) lead time now.
    pub fn lead_time(&self) -> Option<Millis> {
        self.placeholders
            .predictive
            .as_ref()
            .map(|p| p.reconciler.lead())
    }

    /// The predictive controller's periodic reconcile: μ over the lead time from the
    /// calendar + learned background (+ observed floor), H = μ + z·√μ, minus free warm seats.
    pub(crate) fn on_placeholder_reconcile(&mut self, now: Millis) {
        if self.placeholders.buffer.is_some() {
            self.reconcile_buffer(now);
            let every = secs(self.sc.predictive.reconcile_s).max(1);
            self.agenda.at(now + every, Event::PlaceholderReconcile);
            return;
        }
        let Some(obs) = self.placeholder_observation(now) else {
            return;
        };
        let seats_each = self.placeholders.seats_each;
        let Some(p) = self.placeholders.predictive.as_mut() else {
            return;
        };
        let step = p.step(now, seats_each, &obs);
        for placement in &step.placements {
            self.placeholders.desired = placement.held;
            self.scale_placeholders(now);
            // Pending placeholders above the target go at once, as the controller drops them.
            if placement.replicas < self.placeholders.desired {
                self.placeholders.desired = placement.replicas;
                self.scale_placeholders(now);
            }
        }
        let every = secs(self.sc.predictive.reconcile_s).max(1);
        self.agenda.at(now + every, Event::PlaceholderReconcile);
    }

    /// What the controller sees of its pool at a reconcile (the user pods created since the
    /// last one are taken); `None` without the predictive controller.
    fn placeholder_observation(&mut self, now: Millis) -> Option<PoolObservation> {
        self.placeholders.predictive.as_ref()?;
        let free = self.free_warm_seats(now);
        let new_arrivals = std::mem::take(&mut self.placeholders.new_user_pods);
        let pods = &self.cluster.pods;
        let live = &self.placeholders.live;
        let placed = live.iter().filter(|&&id| pods[id].node.is_some()).count();
        let user_creations = self.live_user_creations();
        Some(PoolObservation {
            new_arrivals,
            user_creations,
            free_warm_seats: BTreeMap::from([(None, free)]),
            placements: BTreeMap::from([(
                None,
                PlacementObservation {
                    replicas: live.len(),
                    placed,
                },
            )]),
            ..PoolObservation::default()
        })
    }

    /// The creation times of the user pods that exist.
    pub(crate) fn live_user_creations(&self) -> Vec<Millis> {
        let pods = &self.cluster.pods;
        self.users
            .iter()
            .filter_map(|u| u.pod)
            .map(|id| &pods[id])
            .filter(|pod| pod.alive)
            .map(|pod| pod.created)
            .collect()
    }

    /// F: seats on warm nodes of the placeholders' pool neither used by users nor held by
    /// placeholders (free capacity only), limited by pod slots.
    pub(crate) fn free_warm_seats(&self, now: Millis) -> i64 {
        let ph = &self.placeholders;
        let image = self.sc.image_index(&self.sc.profiles[0].image);
        self.cluster
            .ready_nodes()
            .filter(|(_, n)| {
                n.pool == ph.pool
                    && images_warm(false, PodRole::User, image.as_slice(), |&i| {
                        n.has_image(i, now)
                    })
            })
            .map(|(_, n)| seats_in(&n.free(), &ph.per_user))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use crate::cluster_state::PodKind;
    use crate::scenario::{PlaceholderMode, SchedulerKind};
    use crate::test_support::{put, scenario, sim, warm_node};

    /// Between the periodic reconciles (60 s, 90 s), just before the 70 s autoscaler scan.
    const EVICT: i64 = 69_500;

    /// Two 2-user placeholders placed on a full warm node at 1 s; at `EVICT` a user evicts
    /// one and takes its room. Nothing is forecast, so the replacement is surplus.
    /// Returns (replacement ever marked Unschedulable, replacement alive at 89 s,
    /// scale-ups by 89 s).
    fn evict_with(reaction_s: f64, scheduler: SchedulerKind) -> (bool, bool, usize) {
        let sc = scenario(&format!(
            "predictive: {{users_per_placeholder: 2, reaction_s: {reaction_s}}}\n\
             autoscaler: {{scale_down_enabled: false}}\nhubpack: {{placeholder_grace_s: 5}}"
        ));
        let mut s = sim(&sc, scheduler, PlaceholderMode::Predictive);
        s.run_until(0);
        let node = warm_node(&mut s, 0);
        put(&mut s, node, PodKind::User(0), 11.5, 0);
        s.placeholders.desired = 2;
        s.scale_placeholders(1_000);
        s.run_until(1_000);
        assert!(
            s.placeholders
                .live
                .iter()
                .all(|&p| s.cluster.pods[p].node.is_some())
        );
        s.run_until(EVICT - 1);
        let victim = s.placeholders.live[0];
        s.evict_placeholder(victim, EVICT);
        put(&mut s, node, PodKind::User(1), 2.0, EVICT);
        let replacement = s.cluster.pods.len() - 2;
        assert_eq!(s.cluster.pods[replacement].kind, PodKind::Placeholder);
        let mut marked = false;
        for t in (EVICT..=89_000).step_by(500) {
            s.run_until(t);
            marked |= s.cluster.pods[replacement].unschedulable;
        }
        (
            marked,
            s.cluster.pods[replacement].alive,
            s.autoscaler.scale_ups,
        )
    }

    #[test]
    fn a_surplus_replacement_is_dropped_within_the_grace_and_never_reaches_the_autoscaler() {
        // Held back until 74.5 s; the controller drops it at 70.5 s; the 70 s scan saw
        // nothing.
        assert_eq!(evict_with(1.0, SchedulerKind::Hubpack), (false, false, 0));
    }

    #[test]
    fn a_controller_slower_than_the_grace_lets_the_autoscaler_add_a_node() {
        // Reaction 20 s > grace 5 s: marked at 74.5 s, a node added at the 80 s scan,
        // before the controller looks at 89.5 s.
        assert_eq!(evict_with(20.0, SchedulerKind::Hubpack), (true, true, 1));
    }

    #[test]
    fn kube_scheduler_has_no_grace() {
        // Marked at once at 69.5 s: the 70 s scan adds a node before the controller drops
        // the replacement at 70.5 s.
        assert_eq!(evict_with(1.0, SchedulerKind::Z2jh), (true, false, 1));
    }
}
