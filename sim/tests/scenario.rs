//! Scenario files: typos are errors naming the field, cross-field mistakes say what to fix,
//! traces replay exactly, and an oversized placeholder is a configuration error.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::engine::{RunError, run_one};
use hubpack_sim::models::arrivals::generate;
use hubpack_sim::scenario::{PlaceholderMode, PolicySpec, Scenario, SchedulerKind};
use std::path::Path;

const BASE: &str = include_str!("../scenarios/class-burst.yaml");

#[test]
fn unknown_fields_are_rejected_by_name() {
    let bad = BASE.replace("duration_h: 5", "duraton_h: 5");
    let err = Scenario::parse(&bad, Path::new("x.yaml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `duraton_h`"), "{err}");
    assert!(err.contains("duration_h"), "{err}");
}

#[test]
fn a_profile_in_a_missing_pool_says_how_to_fix_it() {
    let bad = BASE.replace("pool: user", "pool: users");
    let err = Scenario::parse(&bad, Path::new("x.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no pool named \"users\"; add it under pools"),
        "{err}"
    );
}

#[test]
fn a_trace_replays_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "arrival_s,duration_s,profile\n30,600,u\n10,1200,u\n",
    )
    .unwrap();
    let yaml = common_yaml("  - trace: {csv: t.csv}");
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, yaml).unwrap();
    let sc = Scenario::load(&path).unwrap();
    let sessions = generate(&sc, 0).unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        (sessions[0].arrival, sessions[0].active),
        (10_000, 1_200_000)
    );
    assert_eq!((sessions[1].arrival, sessions[1].active), (30_000, 600_000));
    let r = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::None, 0);
    assert_eq!(r.users.len(), 2);
    assert!(r.users.iter().all(|u| u.wait_s == Some(r.warm_start_s)));
}

#[test]
fn a_placeholder_larger_than_a_fresh_node_is_refused() {
    let sc = common::small(
        1.0,
        60.0,
        0.0,
        "  - burst: {at_h: 0.5, users: 5, over_min: 1}",
        "",
    );
    let policy = PolicySpec {
        scheduler: SchedulerKind::Hubpack,
        placeholders: PlaceholderMode::NUser { n: Some(100), k: 1 },
        prepull: true,
    };
    match run_one(&sc, policy, 0) {
        Err(RunError::Placeholders(e)) => {
            let msg = e.to_string();
            assert!(msg.contains("does not fit on a fresh node"), "{msg}");
        }
        Ok(_) => panic!("expected a configuration error"),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn common_yaml(arrivals: &str) -> String {
    format!(
        r#"
name: trace
duration_h: 2
pools:
  - name: user
    allocatable: {{cpu: 16, memory_gib: 64, pods: 110}}
    daemonset_overhead: {{cpu: 0.5, memory_gib: 2, pods: 5}}
    max_nodes: 3
    initial_nodes: 1
    boot: {{median_s: 60}}
images:
  - name: notebook:1
    pull: {{median_s: 30}}
profiles:
  - name: u
    request: {{cpu: 0.5, memory_gib: 2}}
    image: notebook:1
    pool: user
arrivals:
{arrivals}
"#
    )
}
