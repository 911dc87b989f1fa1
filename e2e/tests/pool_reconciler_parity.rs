//! The simulator's placeholder controller decides as hubpack-placeholder-ctl does: the
//! same pool, configured once in the ctl's YAML and once in a scenario, goes through a
//! class's arrivals; at every reconcile the ctl's `Controller::step` (on `PoolView`s) and
//! the sim's predictive model (on the equivalent `PoolObservation`) must give the same
//! target, the same replicas and the same forecast. Pure: no cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may unwrap

use hubpack_core::headroom::{PlacementObservation, PoolObservation, ScheduledEvent};
use hubpack_core::model::Millis;
use hubpack_placeholder_ctl::config::Config;
use hubpack_placeholder_ctl::decide::Controller;
use hubpack_placeholder_ctl::observe::{PlaceholderPod, PoolView};
use hubpack_placeholder_ctl::sources::{Source, SourcedEvent};
use hubpack_sim::models::placeholders::PlaceholderState;
use hubpack_sim::scenario::{PlaceholderMode, Scenario, SchedulerKind};
use std::collections::BTreeMap;
use std::path::Path;

const S: Millis = 1000;
const MIN: Millis = 60 * S;
const DEPLOYMENT: &str = "hubpack-placeholder-default";

/// The pool as the ctl's config says it: reconcile every 10 s, N = 8, z = 1.64, a
/// 10-minute lead, removal after 5 minutes lower, a 30-minute background half-life.
fn ctl_config() -> Config {
    Config::parse(
        "namespace: hub\n\
         reconcileIntervalSeconds: 10\n\
         placeholders: {scaleDownAfterSeconds: 300}\n\
         background: {halfLifeSeconds: 1800, observedWindowSeconds: 300}\n\
         pools:\n\
         - name: default\n\
         \x20 allNodes: true\n\
         \x20 perUser: {cpu: 500m, memory: 1Gi}\n\
         \x20 usersPerPlaceholder: 8\n\
         \x20 lead: 600\n\
         \x20 headroom: {z: 1.64, minUsers: 0, maxUsers: 10000}\n\
         \x20 freshNode: {allocatable: {cpu: \"16\", memory: 64Gi, pods: \"110\"}}\n",
        "parity",
    )
    .expect("valid ctl config")
}

/// The same pool as a scenario says it, with a class of 60 users at 0:30 over 5 minutes.
fn scenario() -> Scenario {
    Scenario::parse(
        "name: parity\n\
         duration_h: 2\n\
         seeds: 1\n\
         pools:\n\
         \x20 - name: user\n\
         \x20   allocatable: {cpu: 16, memory_gib: 64, pods: 110}\n\
         \x20   daemonset_overhead: {cpu: 0, memory_gib: 0, pods: 0}\n\
         \x20   min_nodes: 1\n\
         \x20   max_nodes: 20\n\
         \x20   initial_nodes: 1\n\
         \x20   boot: {median_s: 240, sigma: 0.2}\n\
         images:\n\
         \x20 - name: quay.io/jupyter/scipy-notebook:2025-01-01\n\
         \x20   pull: {median_s: 180, sigma: 0.3}\n\
         \x20   size_mb: 5000\n\
         profiles:\n\
         \x20 - name: student\n\
         \x20   request: {cpu: 0.5, memory_gib: 1}\n\
         \x20   image: quay.io/jupyter/scipy-notebook:2025-01-01\n\
         \x20   pool: user\n\
         arrivals:\n\
         \x20 - burst: {at_h: 0.5, users: 60, over_min: 5}\n\
         policies:\n\
         \x20 schedulers: [hubpack]\n\
         \x20 placeholders: [predictive]\n\
         predictive:\n\
         \x20 lead_min: 10\n\
         \x20 z: 1.64\n\
         \x20 min_seats: 0\n\
         \x20 max_seats: 10000\n\
         \x20 reconcile_s: 10\n\
         \x20 remove_after_min: 5\n\
         \x20 background_half_life_min: 30\n\
         \x20 users_per_placeholder: 8\n",
        Path::new("parity.yaml"),
    )
    .expect("valid scenario")
}

/// The class as the ctl's sources give it.
fn ctl_events() -> Vec<SourcedEvent> {
    vec![SourcedEvent {
        source: Source::Config,
        pool: "default".into(),
        name: "class".into(),
        event: ScheduledEvent {
            start: 30 * MIN,
            window: 5 * MIN,
            users: 60.0,
            weekly: false,
        },
    }]
}

/// The world both sides look at at `now`: the users (60 of them log in between 0:29 and
/// 0:31, faster than planned, and leave at 1:10), the free warm seats (40 before the
/// class, fewer as users take them, refilled as nodes come), and the placeholders a
/// controller asked for (`replicas`), at most four of them placed.
struct World {
    /// (uid, created, gone).
    users: Vec<(String, Millis, Millis)>,
}

impl World {
    fn new() -> World {
        let users = (0..60)
            .map(|i| (format!("u{i}"), 29 * MIN + i * 2 * S, 70 * MIN))
            .collect();
        World { users }
    }

    fn users_at(&self, now: Millis) -> Vec<(String, Millis)> {
        self.users
            .iter()
            .filter(|(_, c, gone)| *c <= now && now < *gone)
            .map(|(u, c, _)| (u.clone(), *c))
            .collect()
    }

    fn free_warm_seats(&self, now: Millis) -> i64 {
        let refilled = if now > 40 * MIN { 48 } else { 0 };
        (40 - self.users_at(now).len() as i64 + refilled).max(0)
    }

    /// Four of them landed on nodes; the others stay pending.
    fn placed(replicas: usize) -> usize {
        replicas.min(4)
    }

    /// The ctl's view: user pods, free seats, placeholder pods.
    fn view(&self, now: Millis, replicas: usize) -> PoolView {
        let placed = World::placed(replicas);
        PoolView {
            free_warm_seats: [(None, self.free_warm_seats(now))].into(),
            placeholders: (0..replicas)
                .map(|i| PlaceholderPod {
                    name: format!("ph-{i}"),
                    uid: format!("ph-{i}"),
                    zone: None,
                    node: (i < placed).then(|| "n1".to_string()),
                    users_on_node: (i < placed).then_some(0),
                    unschedulable_since: None,
                    deletion_cost: Some(0),
                })
                .collect(),
            user_creations: self.users_at(now),
            ..PoolView::default()
        }
    }

    /// The sim's observation of the same state; `seen` tracks the users already counted.
    fn observation(
        &self,
        now: Millis,
        replicas: usize,
        seen: &mut std::collections::BTreeSet<String>,
    ) -> PoolObservation {
        let users = self.users_at(now);
        let new_arrivals = users
            .iter()
            .filter(|(u, _)| seen.insert(u.clone()))
            .map(|(_, c)| *c)
            .collect();
        PoolObservation {
            new_arrivals,
            user_creations: users.iter().map(|(_, c)| *c).collect(),
            free_warm_seats: [(None, self.free_warm_seats(now))].into(),
            placements: [(
                None,
                PlacementObservation {
                    replicas,
                    placed: World::placed(replicas),
                },
            )]
            .into(),
            ..PoolObservation::default()
        }
    }
}

/// (target, replicas, μ, H) per reconcile, from 0:00 to 1:30 every 10 s.
type Trace = Vec<(Millis, usize, usize, f64, f64)>;

fn ctl_trace(cfg: &Config) -> Trace {
    let world = World::new();
    let sizes = cfg.pool_sizes().expect("sizes");
    let events = ctl_events();
    let mut ctl = Controller::new(cfg);
    let mut replicas = BTreeMap::new();
    let mut out = Vec::new();
    for now in (0..=90 * MIN).step_by(10_000) {
        let current = replicas.get(DEPLOYMENT).copied().unwrap_or(0);
        let view = world.view(now, current);
        let d = ctl.step(now, cfg, &sizes, &[view], &events, &replicas);
        let pool = &d.pools[0];
        let pl = &pool.placements[0];
        assert_eq!(pl.name, DEPLOYMENT);
        replicas.insert(pl.name.clone(), pl.replicas);
        out.push((
            now,
            pl.target,
            pl.replicas,
            pool.forecast.expected,
            pool.forecast.headroom,
        ));
    }
    out
}

fn sim_trace(sc: &Scenario) -> Trace {
    let world = World::new();
    let mut state = PlaceholderState::new(sc, &PlaceholderMode::Predictive, SchedulerKind::Hubpack)
        .expect("placeholders");
    let seats_each = state.seats_each;
    let predictive = state.predictive.as_mut().expect("predictive");
    let mut seen = Default::default();
    let mut replicas = 0;
    let mut out = Vec::new();
    for now in (0..=90 * MIN).step_by(10_000) {
        let obs = world.observation(now, replicas, &mut seen);
        let step = predictive.step(now, seats_each, &obs);
        let pl = &step.placements[0];
        replicas = pl.replicas;
        out.push((now, pl.target, pl.replicas, step.expected, step.headroom));
    }
    out
}

fn assert_same(ctl: &Trace, sim: &Trace) {
    assert_eq!(ctl.len(), sim.len());
    for (c, s) in ctl.iter().zip(sim) {
        assert_eq!(
            (c.0, c.1, c.2),
            (s.0, s.1, s.2),
            "at {} s (time, target, replicas): ctl {c:?}, sim {s:?}",
            c.0 / 1000
        );
        assert!(
            (c.3 - s.3).abs() < 1e-9 && (c.4 - s.4).abs() < 1e-9,
            "at {} s (μ, H): ctl {c:?}, sim {s:?}",
            c.0 / 1000
        );
    }
}

#[test]
fn the_ctl_and_the_sim_decide_alike_through_a_class() {
    let ctl = ctl_trace(&ctl_config());
    let sim = sim_trace(&scenario());
    assert_same(&ctl, &sim);
    // The sequence exercises what it compares: placeholders wanted before the class, the
    // class's arrivals, a target that falls, the hysteresis holding placed placeholders
    // above it, then letting them go.
    assert!(ctl.iter().any(|t| t.1 > 0), "{ctl:?}");
    assert!(ctl.iter().any(|t| t.2 > t.1), "no hysteresis held: {ctl:?}");
    // Pending placeholders above a fallen target go at once, before the hysteresis ends.
    let trimmed = ctl
        .windows(2)
        .any(|w| w[1].1 < w[0].1 && w[1].2 < w[0].2 && w[1].2 > 0);
    assert!(trimmed, "nothing trimmed: {ctl:?}");
    let peak = ctl.iter().map(|t| t.1).max().unwrap_or(0);
    assert!(ctl.iter().any(|t| t.1 < peak && t.2 == t.1), "{ctl:?}");
}

#[test]
fn a_different_z_or_hysteresis_on_one_side_is_caught() {
    let ctl = ctl_trace(&ctl_config());
    let mut z = scenario();
    z.predictive.z = 2.0;
    let mut remove_after = scenario();
    remove_after.predictive.remove_after_min = 10.0;
    for (what, sc) in [("z", z), ("hysteresis", remove_after)] {
        let sim = sim_trace(&sc);
        let caught = std::panic::catch_unwind(|| assert_same(&ctl, &sim)).is_err();
        assert!(
            caught,
            "a different {what} on the sim's side went unnoticed"
        );
    }
}
