//! The cluster-autoscaler model: emptied nodes go after the unneeded time (and not within
//! the delay after a scale-up), never below the pool minimum, and never while a user's
//! server runs on them.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::outcome::RunResult;
use hubpack_sim::scenario::{PlaceholderMode, SchedulerKind};

/// No node was deleted while a user's server was bound to it.
fn assert_no_user_evicted(r: &RunResult) {
    for u in &r.users {
        let (Some(node), Some(bound)) = (&u.node, u.bound_s) else {
            continue;
        };
        let n = r.nodes.iter().find(|n| &n.name == node).unwrap();
        if let Some(deleted) = n.deleted_s {
            let left = u.culled_s.unwrap_or(f64::INFINITY);
            assert!(
                deleted < bound || deleted >= left,
                "node {node} deleted at {deleted} while user {} ran there ({bound}..{left})",
                u.user
            );
        }
    }
}

#[test]
fn emptied_nodes_are_removed_after_the_unneeded_time() {
    // 150 users at 1:00 for ~20 minutes (+10 min idle), then nothing.
    let sc = common::small(
        5.0,
        120.0,
        0.0,
        "  - burst: {at_h: 1.0, users: 150, over_min: 2}",
        "hub:\n  session: {median_s: 1200, sigma: 0}\n  cull_timeout_min: 10\n  cull_interval_min: 1",
    );
    for scheduler in [
        SchedulerKind::Spread,
        SchedulerKind::Z2jh,
        SchedulerKind::Hubpack,
    ] {
        let r = common::run(&sc, scheduler, PlaceholderMode::None, 2);
        assert!(r.scale_ups >= 4, "{scheduler:?}: 150 users need ~5 nodes");
        assert_eq!(
            r.scale_downs, r.scale_ups,
            "{scheduler:?}: back to the minimum"
        );
        let last_ready = r
            .users
            .iter()
            .filter_map(|u| u.culled_s)
            .fold(0.0, f64::max);
        let last_add = r.nodes.iter().map(|n| n.created_s).fold(0.0, f64::max);
        for n in &r.nodes {
            if let Some(d) = n.deleted_s {
                // Unneeded for 10 min since its last user left, and 10 min after the last add.
                let last_user_left = r
                    .users
                    .iter()
                    .filter(|u| u.node.as_deref() == Some(n.name.as_str()))
                    .filter_map(|u| u.culled_s)
                    .fold(n.ready_s, f64::max);
                assert!(
                    d >= last_user_left + 600.0,
                    "{scheduler:?}: {} deleted at {d}, user left {last_user_left}",
                    n.name
                );
                assert!(d >= last_add + 600.0);
                assert!(
                    d <= last_ready + 600.0 + 60.0,
                    "{scheduler:?}: {} kept too long ({d})",
                    n.name
                );
            }
        }
        let alive = r.nodes.iter().filter(|n| n.deleted_s.is_none()).count();
        assert_eq!(alive, 1, "{scheduler:?}: pool minimum is 1");
        assert_no_user_evicted(&r);
    }
}

#[test]
fn a_node_with_a_user_is_never_removed() {
    // A long session keeps its node; short ones around it come and go.
    let sc = common::small(
        18.0,
        60.0,
        0.0,
        "  - poisson: {rate_per_h: 200, diurnal_amplitude: 1.0, peak_h: 3}",
        "hub:\n  session: {median_s: 1800, sigma: 1.2}\n  cull_timeout_min: 5\n  cull_interval_min: 1",
    );
    let mut scale_downs = 0;
    for scheduler in [
        SchedulerKind::Spread,
        SchedulerKind::Z2jh,
        SchedulerKind::Hubpack,
    ] {
        for mode in [PlaceholderMode::None, PlaceholderMode::PerUser { k: 10 }] {
            let r = common::run(&sc, scheduler, mode, 5);
            scale_downs += r.scale_downs;
            assert_no_user_evicted(&r);
        }
    }
    // The quiet evening drains nodes, so the check above saw removals.
    assert!(scale_downs > 0);
}
