//! Head-of-line blocking in the class burst: with z2jh's kube-scheduler, per-user
//! placeholders leave warm seats held while users land on cold nodes; hubpack's warm-first
//! policy preempts those placeholders instead.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::scenario::{PlaceholderMode, SchedulerKind};

fn hol(scheduler: SchedulerKind, seed: u64) -> usize {
    let sc = common::shipped("class-burst.yaml");
    let r = common::run(&sc, scheduler, PlaceholderMode::PerUser { k: 150 }, seed);
    r.users.iter().filter(|u| u.head_of_line_blocked).count()
}

#[test]
fn z2jh_with_per_user_placeholders_blocks_and_hubpack_does_not() {
    let seeds = 0..4;
    let z2jh: usize = seeds.clone().map(|s| hol(SchedulerKind::Z2jh, s)).sum();
    let hubpack: Vec<usize> = seeds.map(|s| hol(SchedulerKind::Hubpack, s)).collect();
    assert!(z2jh > 0, "expected head-of-line blocking with z2jh");
    assert!(
        hubpack.iter().all(|&n| n == 0),
        "hubpack blocked users: {hubpack:?}"
    );
}
