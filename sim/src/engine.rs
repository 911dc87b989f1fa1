//! The event loop of one run: one scenario, one policy, one seed, single-threaded and
//! deterministic. The world it runs ([`Sim`]) and the handlers for each of its parts live in
//! [`crate::models`]; this file builds the world, dispatches its events to the handlers and
//! owns the scheduling pass that calls the policy.

use crate::clock::{Agenda, secs};
use crate::cluster_state::{ClusterState, NodeId, PodId, PodKind};
use crate::events::Event;
use crate::models::Sim;
use crate::models::arrivals::{self, ArrivalError};
use crate::models::autoscaler::AutoscalerState;
use crate::models::placeholders::{PlaceholderError, PlaceholderState};
use crate::outcome::{RunCounters, RunResult, Sample, UserRun};
use crate::policy::{Placement, scheduler_for};
use crate::scenario::{AutoscalerKind, PolicySpec, Scenario, SchedulerKind};
use crate::session::Session;
use hubpack_core::model::{ImageName, Millis};
use hubpack_core::policy::PolicyConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Arrivals(#[from] ArrivalError),
    #[error(transparent)]
    Placeholders(#[from] PlaceholderError),
}

impl<'a> Sim<'a> {
    pub fn new(sc: &'a Scenario, policy: PolicySpec, seed: u64) -> Result<Sim<'a>, RunError> {
        let sessions: Vec<Session> = arrivals::generate(sc, seed)?;
        let image_names = sc
            .images
            .iter()
            .map(|i| ImageName::normalize(&i.name))
            .collect();
        let image_sizes = sc.images.iter().map(|i| i.size_mb).collect();
        let pool_names = sc.pools.iter().map(|p| p.name.clone()).collect();
        let daemonsets = sc
            .pools
            .iter()
            .map(|p| p.daemonset_overhead.to_resources())
            .collect();
        let cluster = ClusterState::new(
            image_names,
            image_sizes,
            pool_names,
            daemonsets,
            policy.scheduler == SchedulerKind::Hubpack,
        );
        let placeholders = PlaceholderState::new(sc, &policy.placeholders, policy.scheduler)?;
        let mut sim = Sim {
            sc,
            scheduler: scheduler_for(policy.scheduler),
            policy,
            agenda: Agenda::default(),
            cluster,
            rng: ChaCha8Rng::seed_from_u64(seed),
            users: sessions.into_iter().map(UserRun::new).collect(),
            active_spawns: 0,
            users_unbound: 0,
            schedule_queued: false,
            autoscaler: AutoscalerState::default(),
            karpenter: Default::default(),
            placeholders,
            samples: Vec::new(),
            end: secs(sc.duration_h * 3600.0),
            warm_settle: PolicyConfig::default().warm_settle_ms,
            misfits: 0,
            passes_at: (-1, 0),
        };
        sim.start();
        Ok(sim)
    }

    fn start(&mut self) {
        self.start_pools();
        for (i, u) in self.users.iter().enumerate() {
            self.agenda.at(u.session.arrival, Event::Arrival(i));
        }
        self.start_placeholders();
        match self.sc.autoscaler.kind {
            AutoscalerKind::ClusterAutoscaler => self.agenda.at(0, Event::AutoscalerScan),
            AutoscalerKind::Karpenter => self.agenda.at(0, Event::KarpenterDisruption),
        }
        self.agenda.at(0, Event::Sample);
    }

    /// Runs to the scenario's end.
    pub fn run(mut self) -> RunResult {
        self.run_until(self.end);
        self.into_outcome()
    }

    fn into_outcome(self) -> RunResult {
        let counters = RunCounters {
            events: self.events_processed(),
            misfits: self.misfits,
            peak_nodes: self.autoscaler.peak_nodes,
            scale_ups: self.autoscaler.scale_ups,
            scale_downs: self.autoscaler.scale_downs,
            servers_evicted: self.karpenter.users_evicted,
        };
        let warm_start = secs(self.sc.hub.spawn_overhead_s + self.sc.hub.container_start_s);
        RunResult::collect(
            self.policy,
            self.end,
            warm_start,
            &self.users,
            &self.cluster,
            self.samples,
            counters,
        )
    }

    /// Records the cluster into the time series and plans the next sample.
    fn on_sample(&mut self, now: Millis) {
        self.samples.push(Sample::observe(&self.cluster, now));
        let every = secs(self.sc.sample_s).max(1000);
        self.agenda.at(now + every, Event::Sample);
    }

    /// Handles every event up to and including `t` (tests step a run with it).
    pub fn run_until(&mut self, t: Millis) {
        while self.agenda.peek_time().is_some_and(|at| at <= t) {
            if let Some((now, event)) = self.agenda.pop() {
                self.handle(now, event);
            }
        }
    }

    fn handle(&mut self, now: Millis, event: Event) {
        match event {
            Event::Arrival(u) => self.on_arrival(u, now),
            Event::SpawnRetry(u) => self.try_spawn(u, now),
            Event::PodCreate { user, attempt } => self.on_pod_create(user, attempt, now),
            Event::StartTimeout { user, attempt } => self.on_start_timeout(user, attempt, now),
            Event::NodeReady(n) => self.on_node_ready(n, now),
            Event::NodeSettled(_) => self.request_schedule(now),
            Event::ImagePulled { node, image } => self.on_image_pulled(node, image, now),
            Event::PodReady(p) => self.on_pod_ready(p, now),
            Event::Cull(p) => self.on_cull(p, now),
            Event::Schedule => self.schedule_pass(now),
            Event::AutoscalerScan => self.on_autoscaler_scan(now),
            Event::KarpenterBatch => self.on_karpenter_batch(now),
            Event::KarpenterDisruption => self.on_karpenter_disruption(now),
            Event::PlaceholderReconcile => self.on_placeholder_reconcile(now),
            Event::PlaceholderSurplusCheck => self.on_placeholder_surplus_check(now),
            Event::PlaceholderGraceOver => self.request_schedule(now),
            Event::Sample => self.on_sample(now),
        }
    }

    /// Offers every pending pod, in queue order, to the scheduler once.
    fn schedule_pass(&mut self, now: Millis) {
        self.schedule_queued = false;
        let pending: Vec<PodId> = self.cluster.pending().collect();
        for pod in pending {
            if !self.cluster.pods[pod].alive || self.cluster.pods[pod].node.is_some() {
                continue;
            }
            match self.scheduler.place(&self.cluster, pod, now) {
                Placement::Bind(node) => self.bind_if_fits(pod, node, now),
                Placement::Preempt { node, victims } => {
                    for v in victims {
                        self.evict_placeholder(v, now);
                    }
                    // The scheduler binds only once it observes the victims' deletions;
                    // the sim observes them at once.
                    self.bind_if_fits(pod, node, now);
                }
                Placement::Unschedulable => self.mark_unschedulable(pod, now),
            }
        }
    }

    /// Binds where the policy chose, after checking the sim's own accounting agrees it
    /// fits: a disagreement is a bug in a model, counted and reported rather than hidden.
    fn bind_if_fits(&mut self, pod: PodId, node: NodeId, now: Millis) {
        if self.cluster.pods[pod]
            .requests()
            .fits_in(&self.cluster.nodes[node].free())
        {
            self.bind(pod, node, now);
        } else {
            tracing::warn!(
                pod = %self.cluster.pods[pod].core.key,
                node = %self.cluster.nodes[node].name,
                "the policy placed a pod where it does not fit"
            );
            self.misfits += 1;
            self.mark_unschedulable(pod, now);
        }
    }

    /// PodScheduled=False/Unschedulable, which the autoscaler acts on; hubpack-scheduler
    /// holds it back for a placeholder within its grace.
    fn mark_unschedulable(&mut self, pod: PodId, now: Millis) {
        if self.cluster.pods[pod].hold_unschedulable_until <= now {
            let newly = !self.cluster.pods[pod].unschedulable;
            self.cluster.mark_unschedulable(pod, now);
            if newly {
                self.karpenter_saw_unschedulable(now);
            }
        }
    }

    fn bind(&mut self, pod: PodId, node: NodeId, now: Millis) {
        self.cluster.bind(pod, node, now);
        if let PodKind::User(u) = self.cluster.pods[pod].kind {
            self.on_user_bound(u, pod, node, now);
        }
    }

    pub fn events_processed(&self) -> u64 {
        self.agenda.processed()
    }
}

/// Runs one (policy, seed) to completion.
pub fn run_one(sc: &Scenario, policy: PolicySpec, seed: u64) -> Result<RunResult, RunError> {
    let mut r = Sim::new(sc, policy, seed)?.run();
    r.seed = seed;
    Ok(r)
}
