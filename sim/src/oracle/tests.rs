//! The bound on hand-computed cases (nodes of 15.5 CPU, 62 GiB and 105 pod slots after
//! DaemonSets; see `test_support::scenario`).

use super::*;
use crate::session::Session;
use crate::test_support::scenario;

const MIN: Millis = 60_000;
const H: Millis = 60 * MIN;

fn pods(n: usize, cpu: f64, gib: f64, start: Millis, end: Millis) -> Vec<Occupancy> {
    let request =
        Resources::new((cpu * 1000.0) as i64, (gib * (1u64 << 30) as f64) as i64).with_pods(1);
    (0..n)
        .map(|_| Occupancy {
            pool: 0,
            request: request.clone(),
            start,
            end,
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn cpu_binds_when_it_is_the_scarce_resource() {
    // 31 × 1 CPU for an hour: 31 / 15.5 = 2 nodes (memory 124 / 62 = 2 as well).
    let sc = scenario("");
    let b = bound_of(&sc, &pods(31, 1.0, 4.0, 0, H));
    assert!(close(b.node_hours, 2.0), "{}", b.node_hours);
    assert_eq!(b.peak_nodes, 2);
    assert_eq!(b.users, 31);
    // One more user needs a third node.
    let b = bound_of(&sc, &pods(32, 1.0, 4.0, 0, H));
    assert!(close(b.node_hours, 3.0), "{}", b.node_hours);
}

#[test]
fn the_ca_variant_keeps_each_node_the_unneeded_time() {
    // Scale-down-unneeded time is 10 min by default.
    let sc = scenario("");
    let b = bound_of(&sc, &pods(31, 1.0, 4.0, 0, H));
    assert!(close(b.node_hours_ca_unneeded, 2.0 + 2.0 * 10.0 / 60.0));
    // With scale-down off, nodes stay to the end (10 h).
    let sc = scenario("autoscaler: {scale_down_enabled: false}");
    let b = bound_of(&sc, &pods(31, 1.0, 4.0, 0, H));
    assert!(close(b.node_hours_ca_unneeded, 20.0));
    assert!(close(b.node_hours, 2.0));
}

#[test]
fn pod_slots_bind_for_tiny_users() {
    // 210 users of 0.01 CPU: 2.1 CPU is one node, 210 pods need two (105 slots each).
    let sc = scenario("");
    let b = bound_of(&sc, &pods(210, 0.01, 0.01, 0, H));
    assert_eq!(b.peak_nodes, 2);
    assert!(close(b.node_hours, 2.0));
}

#[test]
fn pods_over_half_a_node_never_share_one() {
    // 3 × 8 CPU: 24 / 15.5 rounds up to 2, but no two 8-CPU pods fit one 15.5-CPU node.
    let sc = scenario("");
    let b = bound_of(&sc, &pods(3, 8.0, 1.0, 0, H));
    assert_eq!(b.peak_nodes, 3);
}

#[test]
fn overlaps_count_only_while_they_overlap() {
    // 20 users 0–1 h and 20 users 0.5–1.5 h: 2 nodes for the overlap, 2 before (20 CPU)
    // and 2 after.
    let sc = scenario("");
    let mut p = pods(20, 1.0, 1.0, 0, H);
    p.extend(pods(20, 1.0, 1.0, H / 2, 3 * H / 2));
    let b = bound_of(&sc, &p);
    // 0–0.5 h: 20 CPU = 2 nodes; 0.5–1 h: 40 CPU = 3 nodes; 1–1.5 h: 2 nodes.
    assert!(close(b.node_hours, 1.0 + 1.5 + 1.0), "{}", b.node_hours);
    assert_eq!(b.peak_nodes, 3);
    assert_eq!(b.nodes.at(H / 2), 3);
    assert_eq!(b.users_running.at(H / 2), 40);
}

#[test]
fn the_autoscaler_floor_is_kept_and_unfit_users_are_left_out() {
    let sc = scenario("");
    let mut sc = sc;
    sc.pools[0].min_nodes = 1;
    sc.pools[0].initial_nodes = 2;
    // No users: the one node the autoscaler keeps, all 10 h.
    let b = bound_of(&sc, &[]);
    assert!(close(b.node_hours, 10.0));
    // A user bigger than a node is served by no policy: not counted.
    let b = bound_of(&sc, &pods(1, 20.0, 1.0, 0, H));
    assert_eq!(b.users, 0);
    assert!(close(b.node_hours, 10.0));
}

#[test]
fn a_pod_runs_from_spawn_to_the_culler_run_after_its_timeout() {
    let sc = scenario(
        "hub: {session: {median_s: 600}, spawn_overhead_s: 10, container_start_s: 5, cull_timeout_min: 60, cull_interval_min: 5}",
    );
    let s = Session {
        arrival: 1000,
        active: 10 * MIN,
        profile: 0,
    };
    let o = occupancies(&sc, &[s]);
    assert_eq!(o[0].start, 11_000);
    // Idle at 16 s + 10 min, due an hour later (4,216 s): the culler runs every 300 s.
    assert_eq!(o[0].end, 4_500_000);
    assert_eq!(o[0].request.pods, 1);
}

#[test]
fn sessions_past_the_end_are_cut() {
    let sc = scenario("");
    // Two nodes' worth from 9 h to 12 h: only 1 h of it is inside the 10 h run.
    let b = bound_of(&sc, &pods(31, 1.0, 4.0, 9 * H, 12 * H));
    assert!(close(b.node_hours, 2.0));
    let b = bound_of(&sc, &pods(31, 1.0, 4.0, 10 * H, 12 * H));
    assert_eq!(b.users, 0);
}

/// A feasible packing: first-fit-decreasing by the largest share of a node any resource
/// takes. The bound can never need more nodes than a packing that exists.
fn first_fit_decreasing(pods: &[Occupancy], cap: &Resources) -> usize {
    let share = |r: &Resources| {
        [
            r.cpu_milli as f64 / cap.cpu_milli as f64,
            r.memory as f64 / cap.memory as f64,
            r.pods as f64 / cap.pods as f64,
        ]
        .into_iter()
        .fold(0.0, f64::max)
    };
    let mut sorted: Vec<&Resources> = pods.iter().map(|o| &o.request).collect();
    sorted.sort_by(|a, b| share(b).total_cmp(&share(a)));
    let mut free: Vec<Resources> = Vec::new();
    for r in sorted {
        match free.iter_mut().find(|f| r.fits_in(f)) {
            Some(f) => *f -= r,
            None => free.push(cap - r),
        }
    }
    free.len()
}

proptest::proptest! {
    #[test]
    fn the_bound_never_needs_more_nodes_than_a_real_packing(
        sizes in proptest::collection::vec((1u32..=64, 1u32..=60), 0..120)
    ) {
        let sc = scenario("");
        let cap = per_node(&sc, 0);
        // Pods of 0.25..16 CPU and 1..60 GiB, all alive for the first hour.
        let all: Vec<Occupancy> = sizes
            .iter()
            .map(|&(quarters, gib)| Occupancy {
                pool: 0,
                request: Resources::new(i64::from(quarters) * 250, i64::from(gib) << 30)
                    .with_pods(1),
                start: 0,
                end: H,
            })
            .filter(|o| o.request.fits_in(&cap))
            .collect();
        let b = bound_of(&sc, &all);
        let packed = first_fit_decreasing(&all, &cap);
        proptest::prop_assert!(b.peak_nodes as usize <= packed, "{} > {packed}", b.peak_nodes);
        proptest::prop_assert!(close(b.node_hours, b.peak_nodes as f64));
    }
}
