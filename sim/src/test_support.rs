//! Helpers for the in-crate unit tests of the models: a one-pool scenario with no users,
//! and pods put on nodes by hand.

use crate::cluster_state::{NodeId, PodId, PodKind};
use crate::models::Sim;
use crate::scenario::{PlaceholderMode, PolicySpec, Scenario, SchedulerKind};
use hubpack_core::model::{Millis, Pod, PodRole, Resources};
use std::path::Path;

/// 16 CPU / 64 GiB nodes (15.5 CPU, 62 GiB after DaemonSets), two images; `extra` is
/// appended to the YAML (top-level keys).
pub fn scenario(extra: &str) -> Scenario {
    let yaml = format!(
        r#"
name: unit
duration_h: 10
seeds: 1
pools:
  - name: user
    allocatable: {{cpu: 16, memory_gib: 64, pods: 110}}
    daemonset_overhead: {{cpu: 0.5, memory_gib: 2, pods: 5}}
    min_nodes: 0
    max_nodes: 50
    boot: {{median_s: 60, sigma: 0}}
images:
  - name: a:1
    pull: {{median_s: 100, sigma: 0}}
  - name: b:1
    pull: {{median_s: 100, sigma: 0}}
profiles:
  - name: u
    request: {{cpu: 1, memory_gib: 4}}
    image: b:1
    pool: user
arrivals: []
{extra}
"#
    );
    match Scenario::parse(&yaml, Path::new("unit.yaml")) {
        Ok(sc) => sc,
        Err(e) => panic!("{e}"),
    }
}

pub fn sim<'a>(sc: &'a Scenario, scheduler: SchedulerKind, mode: PlaceholderMode) -> Sim<'a> {
    let policy = PolicySpec {
        scheduler,
        placeholders: mode,
        prepull: true,
    };
    match Sim::new(sc, policy, 0) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// A Ready node with every image, at `now`.
pub fn warm_node(sim: &mut Sim<'_>, now: Millis) -> NodeId {
    let alloc = sim.sc.pools[0].allocatable.to_resources();
    let id = sim.cluster.add_node(0, alloc, now, now);
    sim.cluster.nodes[id].image_ready_at = vec![Some(now); sim.sc.images.len()];
    sim.cluster.node_ready(id, now);
    id
}

/// A pod of `cpu` cores and 1 GiB bound to `node`.
pub fn put(sim: &mut Sim<'_>, node: NodeId, kind: PodKind, cpu: f64, now: Millis) -> PodId {
    let n = sim.cluster.pods.len();
    let (role, priority) = match kind {
        PodKind::User(_) => (PodRole::User, 0),
        PodKind::Placeholder => (PodRole::Placeholder, -10),
    };
    let req = Resources::new((cpu * 1000.0) as i64, 1 << 30).with_pods(1);
    let core = Pod::simple(&format!("hub/p{n}"), role, priority, req, now);
    let id = sim.cluster.create_pod(kind, 0, None, core, now);
    sim.cluster.bind(id, node, now);
    id
}
