//! Shared helpers for the simulator's integration tests.

#![allow(dead_code)]

use hubpack_sim::engine::run_one;
use hubpack_sim::outcome::RunResult;
use hubpack_sim::scenario::{PlaceholderMode, PolicySpec, Scenario, SchedulerKind};
use std::path::Path;

pub fn scenario(yaml: &str) -> Scenario {
    Scenario::parse(yaml, Path::new("test.yaml")).unwrap()
}

pub fn shipped(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&path).unwrap()
}

pub fn run(
    sc: &Scenario,
    scheduler: SchedulerKind,
    placeholders: PlaceholderMode,
    seed: u64,
) -> RunResult {
    let policy = PolicySpec {
        scheduler,
        placeholders,
        prepull: true,
    };
    run_one(sc, policy, seed).unwrap()
}

/// A one-pool scenario with instant nodes and pulls unless overridden by `extra`.
pub fn small(duration_h: f64, boot_s: f64, pull_s: f64, arrivals: &str, extra: &str) -> Scenario {
    scenario(&format!(
        r#"
name: test
duration_h: {duration_h}
seeds: 1
pools:
  - name: user
    allocatable: {{cpu: 16, memory_gib: 64, pods: 110}}
    daemonset_overhead: {{cpu: 0.5, memory_gib: 2, pods: 5}}
    min_nodes: 1
    max_nodes: 100
    initial_nodes: 1
    boot: {{median_s: {boot_s}, sigma: 0}}
images:
  - name: notebook:1
    pull: {{median_s: {pull_s}, sigma: 0}}
profiles:
  - name: u
    request: {{cpu: 0.5, memory_gib: 2}}
    image: notebook:1
    pool: user
arrivals:
{arrivals}
{extra}
"#
    ))
}
