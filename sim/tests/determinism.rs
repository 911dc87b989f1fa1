//! The same seed gives the identical run; another seed gives another one.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::report::summary::Summary;
use hubpack_sim::scenario::{PlaceholderMode, SchedulerKind};

#[test]
fn same_seed_same_summary() {
    let sc = common::shipped("class-burst.yaml");
    for scheduler in [SchedulerKind::Z2jh, SchedulerKind::Hubpack] {
        let a = common::run(&sc, scheduler, PlaceholderMode::Predictive, 7);
        let b = common::run(&sc, scheduler, PlaceholderMode::Predictive, 7);
        let sa = serde_json::to_string(&Summary::of(&sc, &[vec![a.clone()]])).unwrap();
        let sb = serde_json::to_string(&Summary::of(&sc, &[vec![b.clone()]])).unwrap();
        assert_eq!(sa, sb);
        assert_eq!(
            serde_json::to_string(&a.users).unwrap(),
            serde_json::to_string(&b.users).unwrap()
        );
        let c = common::run(&sc, scheduler, PlaceholderMode::Predictive, 8);
        assert_ne!(
            serde_json::to_string(&a.users).unwrap(),
            serde_json::to_string(&c.users).unwrap()
        );
    }
}
