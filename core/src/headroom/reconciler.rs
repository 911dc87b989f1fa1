//! The pool reconciler: one pool's placeholder decision per reconcile, with its memory.
//! Arrivals → learned rate → expected users over the lead time → headroom seats →
//! placeholder target per placement → hysteresis → pending placeholders above the target
//! trimmed. hubpack-placeholder-ctl runs it on what it watches, hubpack-sim on its model of
//! the cluster; both get their numbers from [`PoolReconciler::step`].

use super::forecast::{ArrivalForecast, LearnedArrivals, ScheduledEvent};
use super::hysteresis::{Hysteresis, trim_pending_above_target};
use super::lead_time::{LeadTimeConfig, LeadTimeEstimator};
use super::learn::{ArrivalLearner, LearnerConfig, arrived_since};
use super::sizing::{HeadroomConfig, headroom_seats, placeholder_target};
use super::state::{LandedPlaceholder, ReconcilerState};
use crate::model::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// How one pool is reconciled.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcilerConfig {
    pub learner: LearnerConfig,
    pub lead_time: LeadTimeConfig,
    /// A configured lead time; `None`: the learned one.
    pub fixed_lead: Option<Millis>,
    pub headroom: HeadroomConfig,
    /// How long the target must stay lower before placeholders are removed.
    pub scale_down_after: Millis,
    /// The placements that share the headroom equally: zone values, or `[None]`.
    pub zones: Vec<Option<String>>,
}

/// One placement's placeholders as observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlacementObservation {
    /// The count asked for now (a Deployment's `spec.replicas`; 0 before it exists).
    pub replicas: usize,
    /// Those placed on a node.
    pub placed: usize,
}

/// A placeholder pod, as the lead-time learning reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceholderObservation {
    pub uid: String,
    pub node: Option<String>,
    /// When it was marked Unschedulable, while pending.
    pub unschedulable_since: Option<Millis>,
}

/// What the reconciler sees of its pool at one reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolObservation {
    /// Creation times of the user pods seen for the first time.
    pub new_arrivals: Vec<Millis>,
    /// Creation times of every user pod of the pool that exists now.
    pub user_creations: Vec<Millis>,
    /// F per placement: seats on warm nodes neither used by users nor held by
    /// placeholders (missing = 0).
    pub free_warm_seats: BTreeMap<Option<String>, i64>,
    /// The placeholders per placement (missing = none).
    pub placements: BTreeMap<Option<String>, PlacementObservation>,
    /// For learning the lead time from the pods themselves (empty when the caller feeds
    /// samples with [`PoolReconciler::observe_lead_sample`]): the pool's placeholders,
    pub placeholders: Vec<PlaceholderObservation>,
    /// its warm nodes,
    pub warm_nodes: BTreeSet<String>,
    /// when a node turned warm (its pre-puller's Ready transition), where known,
    pub warm_since: BTreeMap<String, Millis>,
    /// and its nodes' creation times.
    pub node_created: BTreeMap<String, Millis>,
}

/// μ over the lead time, the headroom H and the target per placement.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetForecast {
    /// μ: users expected within the lead time.
    pub expected: f64,
    /// H = μ + z·√μ clamped.
    pub headroom: f64,
    /// Placeholders wanted per placement, before hysteresis.
    pub targets: Vec<(Option<String>, usize)>,
}

/// The targets of `forecast` at `now` over `lead`: H shared equally by the `zones`, each
/// zone's share less its free warm seats, in placeholders of `seats_each` users.
pub fn forecast_targets(
    forecast: &ArrivalForecast,
    now: Millis,
    lead: Millis,
    headroom: &HeadroomConfig,
    zones: &[Option<String>],
    free_warm_seats: &BTreeMap<Option<String>, i64>,
    seats_each: i64,
) -> TargetForecast {
    let expected = forecast.expected_arrivals(now, lead);
    let seats = headroom_seats(expected, headroom);
    let share = seats / zones.len().max(1) as f64;
    let targets = zones
        .iter()
        .map(|z| {
            let free = free_warm_seats.get(z).copied().unwrap_or(0);
            (z.clone(), placeholder_target(share, free, seats_each))
        })
        .collect();
    TargetForecast {
        expected,
        headroom: seats,
        targets,
    }
}

/// One placement's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementStep {
    pub zone: Option<String>,
    /// Placeholders the forecast asks for now.
    pub target: usize,
    /// The count after hysteresis.
    pub held: usize,
    /// The count to set: `held` less the pending placeholders above `target`.
    pub replicas: usize,
    pub free_warm_seats: i64,
    /// Why, in words.
    pub reason: String,
}

impl PlacementStep {
    /// Pending placeholders dropped because they are above the target.
    pub fn trimmed(&self) -> usize {
        self.held - self.replicas
    }
}

/// One pool's decision at one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStep {
    /// The lead time used.
    pub lead: Millis,
    /// What was learned from the arrivals, as the forecast used it.
    pub learned: LearnedArrivals,
    pub expected: f64,
    pub headroom: f64,
    pub placements: Vec<PlacementStep>,
    /// Lead-time samples taken at this step (ms).
    pub lead_samples: Vec<Millis>,
}

/// One pool's reconciler and its memory across reconciles.
#[derive(Debug, Clone)]
pub struct PoolReconciler {
    config: ReconcilerConfig,
    arrivals: ArrivalLearner,
    lead: LeadTimeEstimator,
    /// The scheduled events and what was learned at the last step.
    forecast: ArrivalForecast,
    hysteresis: BTreeMap<Option<String>, Hysteresis>,
    /// Pending placeholder uid → when it was marked Unschedulable, until it is bound.
    waiting: BTreeMap<String, Millis>,
    /// Placeholder uid → the new node it was bound to, until that node is warm: kept when
    /// the placeholder is evicted meanwhile (a burst takes seats on nodes still pulling),
    /// so the slow scale-ups of a burst are not left out of the quantile.
    landed: BTreeMap<String, LandedPlaceholder>,
    /// Placeholders whose wait has been judged (landed on a new node, or on one that already
    /// existed): a pod never moves, so each yields at most one sample, even when its
    /// Unschedulable condition outlives its binding.
    judged: BTreeSet<String>,
    /// When a node was first seen warm (used when no pre-puller reports it).
    first_seen_warm: BTreeMap<String, Millis>,
}

impl PoolReconciler {
    pub fn new(config: ReconcilerConfig) -> PoolReconciler {
        PoolReconciler {
            arrivals: ArrivalLearner::new(config.learner.clone()),
            lead: LeadTimeEstimator::new(config.lead_time.clone()),
            forecast: ArrivalForecast::default(),
            hysteresis: BTreeMap::new(),
            waiting: BTreeMap::new(),
            landed: BTreeMap::new(),
            judged: BTreeSet::new(),
            first_seen_warm: BTreeMap::new(),
            config,
        }
    }

    pub fn config(&self) -> &ReconcilerConfig {
        &self.config
    }

    /// The lead time used now: configured, or learned.
    pub fn lead(&self) -> Millis {
        self.config
            .fixed_lead
            .unwrap_or_else(|| self.lead.lead_time())
    }

    /// Whether the lead time is learned (no configured one).
    pub fn learns_lead(&self) -> bool {
        self.config.fixed_lead.is_none()
    }

    pub fn lead_estimator(&self) -> &LeadTimeEstimator {
        &self.lead
    }

    /// Starts the background from `rate` users per ms until arrivals have been observed
    /// (see [`Ewma::assume_rate`](super::Ewma::assume_rate)).
    pub fn assume_background(&mut self, rate: f64) {
        self.arrivals.assume_background(rate);
    }

    /// The last step's time (None before the first).
    pub fn last_step(&self) -> Option<Millis> {
        self.arrivals.last_step()
    }

    /// The learned background (rate and weekly shape) without the live window: what a
    /// forecast for another day can use.
    pub fn background(&self) -> LearnedArrivals {
        let learned = self
            .arrivals
            .learned(self.arrivals.last_step().unwrap_or(0));
        LearnedArrivals {
            rate: learned.rate,
            weekly_profile: learned.weekly_profile,
            ..LearnedArrivals::default()
        }
    }

    /// What has been learned, as plain data (a checkpoint).
    pub fn state(&self) -> ReconcilerState {
        ReconcilerState {
            learner: self.arrivals.state(),
            lead_samples: self.lead.samples(),
            lower_since: self
                .hysteresis
                .iter()
                .filter_map(|(zone, h)| Some((zone.clone(), h.lower_since()?)))
                .collect(),
            waiting: self.waiting.clone(),
            landed: self.landed.clone(),
            judged: self.judged.clone(),
            first_seen_warm: self.first_seen_warm.clone(),
        }
    }

    /// Continues from `state` (see [`state`](Self::state)), under this reconciler's own
    /// config: samples beyond its window are forgotten, timers of placements it does not
    /// have are dropped.
    pub fn restore(&mut self, state: &ReconcilerState) {
        self.arrivals.restore(&state.learner);
        let mut lead = LeadTimeEstimator::new(self.config.lead_time.clone());
        for sample in &state.lead_samples {
            lead.observe(*sample);
        }
        self.lead = lead;
        let remove_after = self.config.scale_down_after;
        for (zone, since) in &state.lower_since {
            if self.config.zones.contains(zone) {
                self.hysteresis
                    .entry(zone.clone())
                    .or_insert_with(|| Hysteresis::new(remove_after))
                    .resume(Some(*since));
            }
        }
        self.waiting = state.waiting.clone();
        self.landed = state.landed.clone();
        self.judged = state.judged.clone();
        self.first_seen_warm = state.first_seen_warm.clone();
    }

    /// One lead-time sample measured by the caller (a scale-up from a placeholder's
    /// Unschedulable mark to its node warm).
    pub fn observe_lead_sample(&mut self, sample: Millis) {
        self.lead.observe(sample);
    }

    /// One reconcile: learn from `obs` and the pool's scheduled `events`, forecast over the
    /// lead time, and decide each placement's count for placeholders of `seats_each` users.
    pub fn step(
        &mut self,
        now: Millis,
        events: &[ScheduledEvent],
        seats_each: i64,
        obs: &PoolObservation,
    ) -> PoolStep {
        if self.forecast.events != events {
            self.forecast.events = events.to_vec();
        }
        self.arrivals
            .observe(now, &obs.new_arrivals, &self.forecast.events);
        // A class that logs in faster than its window plans is not expected twice.
        self.forecast.learned = LearnedArrivals {
            arrived_since: arrived_since(
                &self.forecast.events,
                now,
                obs.user_creations.iter().copied(),
            ),
            ..self.arrivals.learned(now)
        };
        let lead_samples = self.learn_lead(obs, now);
        let lead = self.lead();
        let f = forecast_targets(
            &self.forecast,
            now,
            lead,
            &self.config.headroom,
            &self.config.zones,
            &obs.free_warm_seats,
            seats_each,
        );
        let mut placements = Vec::new();
        for (zone, target) in &f.targets {
            let seen = obs.placements.get(zone).copied().unwrap_or_default();
            let remove_after = self.config.scale_down_after;
            let h = self
                .hysteresis
                .entry(zone.clone())
                .or_insert_with(|| Hysteresis::new(remove_after));
            let held = h.step(seen.replicas, *target, now);
            let replicas = trim_pending_above_target(held, *target, seen.placed);
            let free = obs.free_warm_seats.get(zone).copied().unwrap_or(0);
            let reason = format!(
                "target {target} placeholder(s) of {seats_each} users: expected {mu:.1} users within the {lead_s:.0} s lead time, headroom {h:.1}, {free} free warm seat(s){held_note}",
                mu = f.expected,
                lead_s = lead as f64 / 1000.0,
                h = f.headroom,
                held_note = if replicas > *target {
                    format!(
                        "; keeping {replicas} until the target has been lower for {} s",
                        remove_after as f64 / 1000.0
                    )
                } else {
                    String::new()
                },
            );
            placements.push(PlacementStep {
                zone: zone.clone(),
                target: *target,
                held,
                replicas,
                free_warm_seats: free,
                reason,
            });
        }
        PoolStep {
            lead,
            learned: self.forecast.learned.clone(),
            expected: f.expected,
            headroom: f.headroom,
            placements,
            lead_samples,
        }
    }

    /// The targets now from what the last [`step`](Self::step) learned, learning nothing:
    /// a reaction to a pod event between reconciles.
    pub fn targets_now(
        &self,
        now: Millis,
        seats_each: i64,
        free_warm_seats: &BTreeMap<Option<String>, i64>,
    ) -> TargetForecast {
        forecast_targets(
            &self.forecast,
            now,
            self.lead(),
            &self.config.headroom,
            &self.config.zones,
            free_warm_seats,
            seats_each,
        )
    }

    /// Samples the wait of each placeholder that was Unschedulable and then was bound to a
    /// node created after that moment, once the node is warm: warm time − Unschedulable
    /// time. The sample is taken even when the placeholder is gone by then (a user evicted
    /// it from the node still pulling): the node's warm time says how long the scale-up took.
    fn learn_lead(&mut self, obs: &PoolObservation, now: Millis) -> Vec<Millis> {
        for node in &obs.warm_nodes {
            self.first_seen_warm.entry(node.clone()).or_insert(now);
        }
        self.first_seen_warm
            .retain(|n, _| obs.node_created.contains_key(n));
        let alive: BTreeSet<&str> = obs.placeholders.iter().map(|p| p.uid.as_str()).collect();
        for p in &obs.placeholders {
            if self.judged.contains(&p.uid) {
                continue;
            }
            if let Some(t0) = p.unschedulable_since {
                self.waiting.entry(p.uid.clone()).or_insert(t0);
            }
            let (Some(node), Some(&t0)) = (p.node.as_deref(), self.waiting.get(&p.uid)) else {
                continue;
            };
            self.waiting.remove(&p.uid);
            self.judged.insert(p.uid.clone());
            if obs.node_created.get(node).is_some_and(|c| *c < t0) {
                // It waited, but for a node that already existed: not a scale-up.
                continue;
            }
            self.landed.insert(
                p.uid.clone(),
                LandedPlaceholder {
                    node: node.to_string(),
                    since: t0,
                },
            );
        }
        self.waiting.retain(|uid, _| alive.contains(uid.as_str()));
        self.judged.retain(|uid| alive.contains(uid.as_str()));
        // A wait longer than twice the bound says nothing the bound does not.
        let give_up = 2 * self.config.lead_time.max.max(self.config.lead_time.min);
        let mut samples = Vec::new();
        let (lead, warm_seen) = (&mut self.lead, &self.first_seen_warm);
        self.landed.retain(|uid, landed| {
            let node = landed.node.as_str();
            let warm_at = obs
                .warm_since
                .get(node)
                .or_else(|| warm_seen.get(node))
                .copied()
                .filter(|_| obs.warm_nodes.contains(node));
            if let Some(t1) = warm_at {
                let sample = (t1 - landed.since).max(0);
                lead.observe(sample);
                samples.push(sample);
                return false;
            }
            // Keep it while its node exists (or, unknown yet, while it does), not forever.
            (obs.node_created.contains_key(node) || alive.contains(uid.as_str()))
                && now - landed.since <= give_up
        });
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Millis = 1000;
    const MIN: Millis = 60 * S;

    fn reconciler(fixed_lead: Option<Millis>) -> PoolReconciler {
        PoolReconciler::new(ReconcilerConfig {
            learner: LearnerConfig {
                half_life: 30 * MIN,
                observed_window: 5 * MIN,
                min_span: 10 * S,
                weekly_profile: false,
            },
            lead_time: LeadTimeConfig {
                initial: 10 * MIN,
                min_samples: 1,
                reaction: 0,
                min: S,
                ..LeadTimeConfig::default()
            },
            fixed_lead,
            headroom: HeadroomConfig {
                z: 0.0,
                min_seats: 0.0,
                max_seats: 10_000.0,
            },
            scale_down_after: 5 * MIN,
            zones: vec![None],
        })
    }

    fn class() -> Vec<ScheduledEvent> {
        vec![ScheduledEvent {
            start: 10 * MIN,
            window: 5 * MIN,
            users: 40.0,
            weekly: false,
        }]
    }

    fn seen(replicas: usize, placed: usize, free: i64) -> PoolObservation {
        PoolObservation {
            free_warm_seats: [(None, free)].into(),
            placements: [(None, PlacementObservation { replicas, placed })].into(),
            ..PoolObservation::default()
        }
    }

    #[test]
    fn a_class_within_the_lead_time_is_covered_less_the_free_seats() {
        let mut r = reconciler(Some(10 * MIN));
        let step = r.step(5 * MIN, &class(), 8, &seen(0, 0, 8));
        // The class falls in [5, 15) min: μ = 40, less 8 free seats, in 8-user pods.
        assert!((step.expected - 40.0).abs() < 1e-9, "{}", step.expected);
        assert_eq!(step.placements[0].target, 4);
        assert_eq!(step.placements[0].replicas, 4);
    }

    #[test]
    fn a_lower_target_drops_pending_placeholders_at_once_and_placed_ones_later() {
        let mut r = reconciler(Some(10 * MIN));
        assert_eq!(
            r.step(5 * MIN, &class(), 4, &seen(0, 0, 0)).placements[0].target,
            10
        );
        // Nothing expected after the class: held at 10 by the hysteresis, the 8 pending
        // trimmed.
        let step = r.step(20 * MIN, &class(), 4, &seen(10, 2, 0));
        let pl = &step.placements[0];
        assert_eq!(
            (pl.target, pl.held, pl.replicas, pl.trimmed()),
            (0, 10, 2, 8)
        );
        let later = r.step(25 * MIN, &class(), 4, &seen(2, 2, 0));
        assert_eq!(later.placements[0].replicas, 0);
    }

    #[test]
    fn a_placeholder_that_waited_for_a_new_node_is_a_lead_time_sample() {
        let mut r = reconciler(None);
        let pending = PlaceholderObservation {
            uid: "p".into(),
            node: None,
            unschedulable_since: Some(MIN),
        };
        let mut obs = seen(1, 0, 0);
        obs.placeholders = vec![pending.clone()];
        assert!(r.step(2 * MIN, &[], 1, &obs).lead_samples.is_empty());
        obs.placeholders = vec![PlaceholderObservation {
            node: Some("n".into()),
            unschedulable_since: None,
            ..pending
        }];
        obs.node_created = [("n".to_string(), 2 * MIN)].into();
        obs.warm_nodes = ["n".to_string()].into();
        obs.warm_since = [("n".to_string(), 5 * MIN)].into();
        let step = r.step(6 * MIN, &[], 1, &obs);
        assert_eq!(step.lead_samples, vec![4 * MIN]);
        assert_eq!(step.lead, r.lead());
        assert!(r.lead_estimator().is_learned());
    }

    #[test]
    fn a_placeholder_evicted_before_its_node_is_warm_is_still_a_sample() {
        let mut r = reconciler(None);
        let mut obs = seen(1, 0, 0);
        obs.placeholders = vec![PlaceholderObservation {
            uid: "p".into(),
            node: None,
            unschedulable_since: Some(MIN),
        }];
        r.step(2 * MIN, &[], 1, &obs);
        // Bound to the new node while it still pulls...
        obs.placeholders[0].node = Some("n".into());
        obs.placeholders[0].unschedulable_since = None;
        obs.node_created = [("n".to_string(), 2 * MIN)].into();
        assert!(r.step(3 * MIN, &[], 1, &obs).lead_samples.is_empty());
        // ... evicted by a user before the node is warm: the node's warm time still counts.
        obs.placeholders.clear();
        assert!(r.step(4 * MIN, &[], 1, &obs).lead_samples.is_empty());
        obs.warm_nodes = ["n".to_string()].into();
        obs.warm_since = [("n".to_string(), 7 * MIN)].into();
        assert_eq!(r.step(8 * MIN, &[], 1, &obs).lead_samples, vec![6 * MIN]);
        // Once only.
        assert!(r.step(9 * MIN, &[], 1, &obs).lead_samples.is_empty());
        // A node removed before it was warm yields nothing, and is forgotten.
        let mut obs = seen(1, 0, 0);
        obs.placeholders = vec![PlaceholderObservation {
            uid: "q".into(),
            node: None,
            unschedulable_since: Some(10 * MIN),
        }];
        r.step(10 * MIN, &[], 1, &obs);
        obs.placeholders[0].node = Some("m".into());
        obs.node_created = [("m".to_string(), 11 * MIN)].into();
        r.step(12 * MIN, &[], 1, &obs);
        assert_eq!(r.state().landed.len(), 1);
        obs.placeholders.clear();
        obs.node_created.clear();
        r.step(13 * MIN, &[], 1, &obs);
        assert!(r.state().landed.is_empty());
    }

    #[test]
    fn a_bound_placeholder_whose_unschedulable_condition_stays_is_one_sample() {
        let mut r = reconciler(None);
        let mut obs = seen(1, 0, 0);
        obs.placeholders = vec![PlaceholderObservation {
            uid: "p".into(),
            node: None,
            unschedulable_since: Some(MIN),
        }];
        r.step(2 * MIN, &[], 1, &obs);
        // Bound, its condition not (yet) updated: still says Unschedulable since 1 min.
        obs.placeholders[0].node = Some("n".into());
        obs.node_created = [("n".to_string(), 2 * MIN)].into();
        obs.warm_nodes = ["n".to_string()].into();
        obs.warm_since = [("n".to_string(), 4 * MIN)].into();
        assert_eq!(r.step(5 * MIN, &[], 1, &obs).lead_samples, vec![3 * MIN]);
        for at in [6 * MIN, 7 * MIN] {
            assert!(r.step(at, &[], 1, &obs).lead_samples.is_empty(), "at {at}");
        }
        // Nor after a restart.
        let mut again = reconciler(None);
        again.restore(&r.state());
        assert!(again.step(8 * MIN, &[], 1, &obs).lead_samples.is_empty());
        assert_eq!(again.lead_estimator().sample_count(), 1);
    }

    #[test]
    fn a_restored_reconciler_decides_as_the_first_would_have() {
        let mut first = reconciler(None);
        let mut obs = seen(0, 0, 0);
        obs.placeholders = vec![PlaceholderObservation {
            uid: "p".into(),
            node: None,
            unschedulable_since: Some(MIN),
        }];
        first.step(2 * MIN, &[], 1, &obs);
        obs.placeholders[0].node = Some("n".into());
        obs.node_created = [("n".to_string(), 2 * MIN)].into();
        obs.warm_nodes = ["n".to_string()].into();
        obs.warm_since = [("n".to_string(), 4 * MIN)].into();
        obs.new_arrivals = vec![4 * MIN; 6];
        first.step(5 * MIN, &[], 1, &obs);
        assert_eq!(first.lead(), 3 * MIN, "learned, not the configured 10 min");
        // The target drops: the hysteresis timer starts at 6 min.
        obs.new_arrivals.clear();
        let held = first.step(6 * MIN, &[], 1, &seen(5, 5, 0));
        assert_eq!(held.placements[0].replicas, 5);
        let mut second = reconciler(None);
        second.restore(&first.state());
        assert_eq!(second.state(), first.state());
        assert_eq!(second.lead(), first.lead());
        for at in [7 * MIN, 10 * MIN, 11 * MIN + 1] {
            let a = first.step(at, &[], 1, &seen(5, 5, 0));
            let b = second.step(at, &[], 1, &seen(5, 5, 0));
            assert_eq!(a, b, "at {at}");
        }
        assert_eq!(
            second.step(12 * MIN, &[], 1, &seen(5, 5, 0)).placements[0].replicas,
            first.step(12 * MIN, &[], 1, &seen(5, 5, 0)).placements[0].replicas
        );
    }

    #[test]
    fn zones_share_the_headroom() {
        let mut r = reconciler(Some(10 * MIN));
        r.config.zones = vec![Some("a".into()), Some("b".into())];
        let mut obs = seen(0, 0, 0);
        obs.free_warm_seats = [(Some("a".to_string()), 100)].into();
        let step = r.step(5 * MIN, &class(), 4, &obs);
        let targets: Vec<usize> = step.placements.iter().map(|p| p.target).collect();
        assert_eq!(targets, vec![0, 5]);
    }
}
