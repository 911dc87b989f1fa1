//! The predictive placeholder controller pre-warms a scheduled class by its lead time, and
//! lets the placeholders go after the class.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::scenario::{PlaceholderMode, SchedulerKind};

#[test]
fn placeholders_appear_one_lead_time_before_the_class_and_leave_after() {
    let sc = common::shipped("class-burst.yaml");
    let class_s = 3600.0; // the burst starts at 1:00
    let lead_s = sc.predictive.lead_min * 60.0;
    let r = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::Predictive, 0);
    let placeholders = |t: f64| {
        let s = r.samples.iter().rev().find(|s| s.t_s <= t).unwrap();
        s.placeholders_running + s.placeholders_pending
    };
    assert_eq!(
        placeholders(class_s - lead_s - sc.predictive.reconcile_s - 60.0),
        0
    );
    assert!(
        placeholders(class_s - 60.0) >= 9,
        "~300 users need ~10 node-sized placeholders"
    );
    assert_eq!(
        placeholders(sc.duration_h * 3600.0),
        0,
        "gone after the class"
    );
    // Pre-warmed seats: nobody in the class waits beyond a warm start plus 30 s.
    let slow = r
        .users
        .iter()
        .filter(|u| u.wait_s.unwrap() > r.warm_start_s + 30.0)
        .count();
    assert_eq!(slow, 0);
}
