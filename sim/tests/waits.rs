//! Wait times against what must hold whatever the policy: instant nodes and pulls leave
//! nobody waiting; Poisson load obeys Little's law.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::scenario::{PlaceholderMode, SchedulerKind};

#[test]
fn instant_nodes_and_no_pulls_mean_nobody_waits() {
    let sc = common::small(
        6.0,
        0.0,
        0.0,
        "  - burst: {at_h: 1.0, users: 400, over_min: 5}",
        "autoscaler: {scan_interval_s: 1}",
    );
    for scheduler in [
        SchedulerKind::Spread,
        SchedulerKind::Z2jh,
        SchedulerKind::Hubpack,
    ] {
        let r = common::run(&sc, scheduler, PlaceholderMode::None, 1);
        assert_eq!(r.users.len(), 400);
        for u in &r.users {
            let w = u.wait_s.unwrap();
            // A warm start, plus at most one autoscaler scan when a node must be added.
            assert!(
                w <= r.warm_start_s + 1.0 + 1e-6,
                "{scheduler:?}: user {} waited {w}",
                u.user
            );
        }
        assert!(r.scale_ups > 0, "400 users need more than the initial node");
    }
}

#[test]
fn mean_concurrent_users_follow_littles_law() {
    // λ = 120 users/h; a session is active for a log-normal time (median 1800 s, σ 0.5),
    // then culled at the next 6 s culler run after a zero idle timeout.
    let sc = common::small(
        30.0,
        0.0,
        0.0,
        "  - poisson: {rate_per_h: 120}",
        "hub:\n  session: {median_s: 1800, sigma: 0.5}\n  cull_timeout_min: 0\n  cull_interval_min: 0.1\nsample_s: 30",
    );
    let r = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::None, 3);
    let mean_active = 1800.0 * (0.5f64 * 0.5 / 2.0).exp();
    // Residence from bind to cull: container start + active + half a culler interval.
    let residence = sc.hub.container_start_s + mean_active + 3.0;
    let expected = 120.0 / 3600.0 * residence;
    let steady: Vec<f64> = r
        .samples
        .iter()
        .filter(|s| s.t_s >= 4.0 * 3600.0)
        .map(|s| s.users_running as f64)
        .collect();
    let mean = steady.iter().sum::<f64>() / steady.len() as f64;
    assert!(
        (mean - expected).abs() / expected < 0.1,
        "mean concurrent users {mean:.1}, Little's law says {expected:.1}"
    );
}
