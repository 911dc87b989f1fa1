//! The `capacityBuffer` backend: the predictive controller writes the replicas of one
//! CapacityBuffer instead of running placeholder pods, and cluster-autoscaler provisions for
//! the buffer's virtual pods (`--capacity-buffer-pod-injection-enabled`): at every scan it
//! injects `replicas` pods shaped as the N-user placeholder after the real pending ones,
//! packs them onto free room first and adds nodes for the rest; its scale-down reads the
//! same snapshot, so a node holding part of the buffer is not empty. Nothing is ever
//! preempted: users take free room, and the next scan re-injects the chunks they displaced.
//!
//! The controller's side is hubpack-placeholder-ctl's: the chunks the autoscaler can pack
//! onto warm free room hold those seats (`chunks_on_warm_nodes`), a raise is written only
//! once wanted for its `bufferRaiseGraceSeconds`, taken as the scenario's
//! `hubpack.placeholder_grace_s` (`hold_raise`), a drop at once. No placeholder pod is
//! ever Unschedulable, so `lead_min: auto` learns nothing (as live).

use crate::clock::secs;
use crate::models::Sim;
use crate::scenario::PlaceholderMode;
use hubpack_core::headroom::buffer::{chunks_on_warm_nodes, hold_raise};
use hubpack_core::headroom::{PlacementObservation, PoolObservation};
use hubpack_core::model::{Millis, Resources};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone)]
pub struct BufferState {
    /// `spec.replicas` as last written.
    pub replicas: usize,
    /// Since when a raise has been held back.
    raising_since: Option<Millis>,
    /// The most replicas ever written (a run's summary).
    pub peak_replicas: usize,
    /// Writes of `spec.replicas` (the controller's API writes for the buffer).
    pub writes: usize,
}

impl BufferState {
    pub fn for_mode(mode: &PlaceholderMode) -> Option<BufferState> {
        matches!(mode, PlaceholderMode::PredictiveBuffer).then(BufferState::default)
    }
}

impl Sim<'_> {
    /// The buffer's virtual pods in `pool` as CA injects them (none without a buffer).
    pub(crate) fn buffer_chunks(&self, pool: usize) -> Vec<(Resources, bool)> {
        let ph = &self.placeholders;
        match &ph.buffer {
            Some(b) if ph.pool == pool => vec![(ph.request.clone(), true); b.replicas],
            _ => Vec::new(),
        }
    }

    /// One reconcile of a buffer pool: hubpack-core's pool reconciler on the view the live
    /// controller builds for a buffer, and the replicas it writes.
    pub(crate) fn reconcile_buffer(&mut self, now: Millis) {
        let seats_each = self.placeholders.seats_each;
        let Some(current) = self.placeholders.buffer.as_ref().map(|b| b.replicas) else {
            return;
        };
        let free = self.free_warm_seats(now);
        let (held, left) = chunks_on_warm_nodes(current, free, seats_each);
        let new_arrivals = std::mem::take(&mut self.placeholders.new_user_pods);
        let obs = PoolObservation {
            new_arrivals,
            user_creations: self.live_user_creations(),
            free_warm_seats: BTreeMap::from([(None, left)]),
            placements: BTreeMap::from([(
                None,
                PlacementObservation {
                    replicas: current,
                    placed: held,
                },
            )]),
            ..PoolObservation::default()
        };
        let Some(p) = self.placeholders.predictive.as_mut() else {
            return;
        };
        let step = p.step(now, seats_each, &obs);
        let decided: usize = step.placements.iter().map(|pl| pl.replicas).sum();
        let Some(b) = self.placeholders.buffer.as_mut() else {
            return;
        };
        // The controller's `bufferRaiseGraceSeconds`, set like hubpack-scheduler's grace.
        let grace = secs(self.sc.hubpack.placeholder_grace_s);
        let (written, raising) = hold_raise(current, decided, b.raising_since, now, grace);
        b.raising_since = raising;
        if written != b.replicas {
            b.replicas = written;
            b.writes += 1;
            b.peak_replicas = b.peak_replicas.max(written);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use crate::cluster_state::{NodePhase, PodKind};
    use crate::models::Sim;
    use crate::scenario::{PlaceholderMode, PolicySpec, Scenario, SchedulerKind};
    use crate::test_support::{put, scenario, sim, warm_node};

    const MIN: i64 = 60_000;

    fn buffered(sc: &Scenario) -> Sim<'_> {
        sim(
            sc,
            SchedulerKind::Hubpack,
            PlaceholderMode::PredictiveBuffer,
        )
    }

    #[test]
    fn the_autoscaler_adds_nodes_for_the_chunks_that_do_not_fit_and_no_pod_is_created() {
        let sc = scenario("predictive: {users_per_placeholder: 15}");
        let mut s = buffered(&sc);
        s.run_until(0);
        let full = warm_node(&mut s, 0);
        put(&mut s, full, PodKind::User(0), 15.0, 0);
        // Two 15-user chunks (15 CPU each): one node each.
        s.placeholders.buffer.as_mut().unwrap().replicas = 2;
        s.on_autoscaler_scan(MIN);
        assert_eq!(s.autoscaler.scale_ups, 2);
        assert_eq!(s.placeholders.created, 0);
        assert!(
            s.cluster
                .pods
                .iter()
                .all(|p| p.kind != PodKind::Placeholder)
        );
    }

    #[test]
    fn a_node_holding_the_buffer_stays_and_goes_once_the_buffer_is_zero() {
        let sc = scenario(
            "predictive: {users_per_placeholder: 10, min_seats: 0, max_seats: 0}\n\
             autoscaler: {scale_down_delay_after_add_min: 0}",
        );
        let mut s = buffered(&sc);
        s.run_until(0);
        let node = warm_node(&mut s, 0);
        s.placeholders.buffer.as_mut().unwrap().replicas = 1;
        // The reconciler would lower it (nothing forecast): hold it by hand.
        for t in (0..30).map(|m| m * MIN) {
            s.placeholders.buffer.as_mut().unwrap().replicas = 1;
            s.on_autoscaler_scan(t);
        }
        assert_eq!(s.cluster.nodes[node].phase, NodePhase::Ready);
        assert_eq!(s.autoscaler.scale_ups, 0, "the chunk fits the empty node");
        for t in (30..45).map(|m| m * MIN) {
            s.placeholders.buffer.as_mut().unwrap().replicas = 0;
            s.on_autoscaler_scan(t);
        }
        assert_eq!(s.cluster.nodes[node].phase, NodePhase::Deleted);
    }

    #[test]
    fn the_class_burst_starts_warm_from_a_buffer_without_any_placeholder_pod_or_eviction() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/class-burst.yaml");
        let sc = Scenario::load(&path).unwrap();
        let policy = PolicySpec {
            scheduler: SchedulerKind::Hubpack,
            placeholders: PlaceholderMode::PredictiveBuffer,
            prepull: true,
        };
        let mut s = Sim::new(&sc, policy, 0).unwrap();
        s.run_until(s.end);
        let b = s.placeholders.buffer.clone().unwrap();
        assert!(b.peak_replicas >= 5, "the forecast asked for nodes: {b:?}");
        assert_eq!(s.placeholders.created, 0);
        let waits: Vec<i64> = s
            .users
            .iter()
            .filter_map(|u| Some(u.ready? - u.session.arrival))
            .collect();
        assert_eq!(waits.len(), 300);
        let slow = waits.iter().filter(|&&w| w > 30_000).count();
        assert_eq!(slow, 0, "every user started warm");
    }
}
