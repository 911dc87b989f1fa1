//! Unit tests of the side-by-side experiment's arithmetic (`src/metrics.rs`), which the
//! experiment itself (not run in CI) relies on. No cluster; milliseconds.

#![allow(clippy::unwrap_used)] // tests may unwrap

use hubpack_side_by_side::metrics::*;
use hubpack_sim::stats::quantile;

#[test]
fn quantiles_interpolate_over_the_finite_values() {
    let v: Vec<f64> = (1..=100).map(f64::from).collect();
    let sorted = finite_sorted(&v);
    assert!((quantile(&sorted, 0.95) - 95.05).abs() < 1e-9);
    assert_eq!(quantile(&sorted, 0.0), 1.0);
    assert_eq!(quantile(&sorted, 1.0), 100.0);
    // NaN (a user who never started) and infinities are left out, not sorted in.
    assert_eq!(
        finite_sorted(&[3.0, f64::NAN, 1.0, f64::INFINITY, 2.0]),
        vec![1.0, 2.0, 3.0]
    );
    assert_eq!(median(&[3.0, f64::NAN, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, f64::NAN, 1.0, 2.0, 3.0]), 2.5);
    assert!(median(&[f64::NAN]).is_nan());
    assert!(quantile(&[], 0.5).is_nan());
}

#[test]
fn node_hours_clip_to_the_window_and_count_booting_nodes() {
    let lives = [
        Life {
            created_s: 0.0,
            deleted_s: None,
        },
        Life {
            created_s: 1800.0,
            deleted_s: Some(5400.0),
        },
        Life {
            created_s: 3000.0,
            deleted_s: Some(9000.0),
        },
    ];
    // 2 h + 1 h + 1 h (3000..7200 clipped at the 2 h end... 4200 s).
    let h = node_hours(&lives, 7200.0);
    assert!((h - (2.0 + 1.0 + 4200.0 / 3600.0)).abs() < 1e-9, "{h}");
}

#[test]
fn nodes_removed_after_the_peak_are_those_deleted_after_it_was_first_reached() {
    let lives = [
        Life {
            created_s: 0.0,
            deleted_s: None,
        },
        Life {
            created_s: 10.0,
            deleted_s: Some(15.0),
        },
        Life {
            created_s: 20.0,
            deleted_s: Some(100.0),
        },
        Life {
            created_s: 30.0,
            deleted_s: Some(200.0),
        },
        Life {
            created_s: 40.0,
            deleted_s: Some(500.0),
        },
    ];
    let (peak, at, removed) = peak_and_removed_after(&lives, 300.0);
    assert_eq!((peak, at), (4, 40.0));
    // Deleted at 100 and 200; the one at 15 was before the peak, 500 after the end.
    assert_eq!(removed, 2);
    assert_eq!(nodes_at(&lives, 250.0), 2);
}

#[test]
fn seats_count_placeholder_room_and_stop_at_the_tightest_resource() {
    let gib = 1 << 30;
    let node = Request {
        cpu_m: 8000,
        mem: 32 * gib,
        pods: 110,
    };
    let user = Request {
        cpu_m: 500,
        mem: 2 * gib,
        pods: 1,
    };
    assert_eq!(node.seats(user), 16);
    // Three users and a daemon pod: 13 left (memory would allow 13, cpu 13).
    let used = Request {
        cpu_m: 1500,
        mem: 6 * gib,
        pods: 4,
    };
    assert_eq!(room(node, used).seats(user), 13);
    // Memory short: no seat even with cpu to spare.
    let tight = Request {
        cpu_m: 4000,
        mem: gib,
        pods: 10,
    };
    assert_eq!(tight.seats(user), 0);
    assert!(!user.fits_in(tight));
    assert!(user.fits_in(node));
}

#[test]
fn relative_error_and_calibration() {
    assert_eq!(rel_err(125.0, 100.0), 0.25);
    assert_eq!(rel_err(0.0, 0.0), 0.0);
    assert!(rel_err(1.0, 0.0).is_infinite());
    // Real warm starts of 0.4-0.6 s at compression 10: the simulator's 5 s.
    assert_eq!(
        calibrated_container_start_s(&[0.4, 0.5, 0.6], 10.0),
        Some(5.0)
    );
    assert_eq!(calibrated_container_start_s(&[], 10.0), None);
}

#[test]
fn cdf_is_sorted_and_ends_at_one() {
    let c = cdf(&[3.0, 1.0, 2.0, f64::NAN]);
    assert_eq!(c, vec![(1.0, 1.0 / 3.0), (2.0, 2.0 / 3.0), (3.0, 1.0)]);
}

/// The warm start's σ is fitted from the real p95 over the median: a log-normal sample of
/// known σ gives it back; too few users or no tail give none or 0.
#[test]
fn the_warm_start_spread_is_fitted_from_p95_over_the_median() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, LogNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let dist = LogNormal::new(0.4_f64.ln(), 0.6).unwrap();
    let sample: Vec<f64> = (0..20_000).map(|_| dist.sample(&mut rng)).collect();
    let sigma = calibrated_container_start_sigma(&sample).unwrap();
    assert!((sigma - 0.6).abs() < 0.03, "σ {sigma}");
    assert_eq!(calibrated_container_start_sigma(&sample[..19]), None);
    assert_eq!(calibrated_container_start_sigma(&[0.5; 40]), Some(0.0));
}

/// A stack with its own fitted warm start is simulated with it; the others with the pooled.
#[test]
fn a_stack_is_simulated_with_its_own_warm_start_when_fitted() {
    use hubpack_side_by_side::plan::Stack;
    use hubpack_side_by_side::simulate::{SimParams, WarmStartFit};
    let own = WarmStartFit {
        median_s: 0.9,
        sigma: 1.1,
    };
    let params = SimParams {
        container_start_s: 0.4,
        container_start_sigma: 0.6,
        warm_start_by_stack: [("z2jh".to_string(), own)].into(),
        node_boot_s: None,
        node_pull_s: None,
        loop_s: 1.0,
    };
    let z2jh = params.for_stack(Stack::Z2jh);
    assert_eq!(
        (z2jh.container_start_s, z2jh.container_start_sigma),
        (0.9, 1.1)
    );
    let other = params.for_stack(Stack::HubpackPredictive);
    assert_eq!(
        (other.container_start_s, other.container_start_sigma),
        (0.4, 0.6)
    );
}
