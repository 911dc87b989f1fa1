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

/// `hub.container_start_sigma` spreads warm starts log-normally around
/// `container_start_s`: the median stays, the p95 sits at median · e^(1.645 σ).
#[test]
fn warm_starts_spread_log_normally_around_the_median() {
    let hub = |sigma: f64| {
        format!(
            "autoscaler: {{scan_interval_s: 1}}\nhub:\n  container_start_s: 10\n  \
             container_start_sigma: {sigma}\n  session: {{median_s: 600, sigma: 0}}"
        )
    };
    let arrivals = "  - burst: {at_h: 1.0, users: 400, over_min: 5}";
    let starts = |sigma: f64| {
        let sc = common::small(3.0, 0.0, 0.0, arrivals, &hub(sigma));
        let r = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::None, 1);
        let mut v: Vec<f64> = r
            .users
            .iter()
            .map(|u| u.wait_s.unwrap() - sc.hub.spawn_overhead_s)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let fixed = starts(0.0);
    assert!(fixed.iter().all(|w| (*w - 10.0).abs() <= 1.0 + 1e-6));
    let spread = starts(0.5);
    let q = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let (p50, p95) = (q(&spread, 0.5), q(&spread, 0.95));
    assert!((p50 - 10.0).abs() < 1.5, "median {p50}");
    let want = 10.0 * (1.645_f64 * 0.5).exp();
    assert!((p95 - want).abs() / want < 0.2, "p95 {p95}, want ~{want}");
    assert!(spread[0] < 7.0, "no short starts: {}", spread[0]);
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
