//! The hub and forecast parts of the model, each against what JupyterHub, z2jh and the
//! calendar do (the autoscaler and image-pull parts are unit tests in src/models/).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::models::arrivals::{generate, scheduled_events};
use hubpack_sim::scenario::{HubSpec, PlaceholderMode, SchedulerKind};

#[test]
fn jupyterhub_429_retry_after_is_30_to_60_s() {
    // Spawn limit 1, 6 users within 1 s, instant cluster: everyone after the first is
    // refused and comes back 30-60 s later (the model once retried every 10 s).
    let sc = common::small(
        2.0,
        0.0,
        0.0,
        "  - burst: {at_h: 0.5, users: 6, over_min: 0.01}",
        "hub:\n  concurrent_spawn_limit: 1\n  session: {median_s: 600, sigma: 0}",
    );
    let r = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::None, 0);
    let mut waits: Vec<f64> = r.users.iter().map(|u| u.wait_s.unwrap()).collect();
    waits.sort_by(f64::total_cmp);
    assert_eq!(waits[0], r.warm_start_s);
    for w in &waits[1..] {
        assert!(
            *w >= 30.0 + r.warm_start_s - 1.0,
            "a refused user waited only {w} s"
        );
    }
}

#[test]
fn a_refused_user_may_give_up() {
    let sc = common::small(
        2.0,
        0.0,
        0.0,
        "  - burst: {at_h: 0.5, users: 6, over_min: 0.01}",
        "hub:\n  concurrent_spawn_limit: 1\n  throttle_give_up_probability: 1.0\n  session: {median_s: 600, sigma: 0}",
    );
    let r = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::None, 0);
    let served = r.users.iter().filter(|u| u.ready_s.is_some()).count();
    let gave_up = r
        .users
        .iter()
        .filter(|u| u.gave_up_after_s == Some(0.0))
        .count();
    assert_eq!((served, gave_up), (1, 5));
}

#[test]
fn a_warm_start_takes_15_to_20_s_and_the_culler_runs_every_600_s() {
    let hub = HubSpec::default();
    let warm = hub.spawn_overhead_s + hub.container_start_s;
    assert!((15.0..=20.0).contains(&warm), "{warm}");
    assert_eq!(hub.cull_interval_min * 60.0, 600.0, "z2jh cull.every");
    assert_eq!(hub.cull_timeout_min * 60.0, 3600.0, "z2jh cull.timeout");
    assert_eq!(hub.spawn_throttle_retry_range_s, [30.0, 60.0]);
    // A user on a warm seat waits exactly a warm start.
    let sc = common::small(
        1.0,
        0.0,
        0.0,
        "  - burst: {at_h: 0.5, users: 1, over_min: 1}",
        "",
    );
    let r = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::None, 0);
    assert_eq!(r.users[0].wait_s, Some(warm));
}

#[test]
fn forecast_error_changes_arrivals_not_the_calendar() {
    let mut sc = common::shipped("class-burst.yaml");
    sc.forecast.actual_factor = 1.5;
    assert_eq!(generate(&sc, 0).unwrap().len(), 450);
    assert_eq!(scheduled_events(&sc)[0].users, 300.0);
    // The predictive policy sized for 300 leaves the extra 150 waiting for nodes.
    let p95 = |factor: f64| {
        let mut sc = common::shipped("class-burst.yaml");
        sc.forecast.actual_factor = factor;
        let r = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::Predictive, 0);
        let mut w: Vec<f64> = r.users.iter().filter_map(|u| u.wait_s).collect();
        w.sort_by(f64::total_cmp);
        w[w.len() * 95 / 100]
    };
    assert!(p95(1.0) < 30.0);
    assert!(p95(1.5) > 60.0);
}

#[test]
fn a_calendar_replaces_the_scenarios_own_events() {
    let mut sc = common::shipped("class-burst.yaml");
    sc.forecast.calendar = Some(vec![hubpack_sim::scenario::CalendarEvent {
        at_h: 2.0,
        users: 50.0,
        over_min: 5.0,
    }]);
    let ev = scheduled_events(&sc);
    assert_eq!((ev.len(), ev[0].start, ev[0].users), (1, 7_200_000, 50.0));
}
