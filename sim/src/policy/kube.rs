//! The parts of kube-scheduler both baselines share: the resource Filter on Ready nodes of
//! the pod's pool, the ImageLocality score, and DefaultPreemption (PostFilter), which only
//! runs when no node fits without evicting anything (kube-scheduler's
//! `pkg/scheduler/schedule_one.go` and `framework/plugins/defaultpreemption`).

use super::Placement;
use crate::cluster_state::{ClusterState, NodeId, NodeState, PodId};
use hubpack_core::model::{Millis, Resources};

/// Runs Filter, then Score with `score`, then preemption if nothing fits. Ties go to the
/// lowest node index (kube-scheduler breaks them at random; determinism matters more here).
pub fn schedule(
    cluster: &ClusterState,
    pod: PodId,
    now: Millis,
    score: impl Fn(&NodeState, &Resources) -> i64,
) -> Placement {
    let p = &cluster.pods[pod];
    let req = p.requests();
    let mut best: Option<(i64, NodeId)> = None;
    let spread = image_spread(cluster, p.image, now);
    for (id, n) in cluster.ready_nodes() {
        if n.pool != p.pool || !req.fits_in(&n.free()) {
            continue;
        }
        let s = score(n, req) + image_locality(cluster, n, p.image, spread, now);
        if best.is_none_or(|(b, _)| s > b) {
            best = Some((s, id));
        }
    }
    match best {
        Some((_, id)) => Placement::Bind(id),
        None => preempt(cluster, pod),
    }
}

/// kube-scheduler's integer MostAllocated score of `node` with `req` added (cpu and memory,
/// weight 1 each), 0..=100.
pub fn most_allocated(node: &NodeState, req: &Resources) -> i64 {
    let after = &node.requested + req;
    let one = |used: i64, cap: i64| {
        if cap <= 0 {
            0
        } else {
            used.min(cap) * 100 / cap
        }
    };
    (one(after.cpu_milli, node.allocatable.cpu_milli) + one(after.memory, node.allocatable.memory))
        / 2
}

/// LeastAllocated, 0..=100.
pub fn least_allocated(node: &NodeState, req: &Resources) -> i64 {
    let after = &node.requested + req;
    let one = |used: i64, cap: i64| {
        if cap <= 0 || used > cap {
            0
        } else {
            (cap - used) * 100 / cap
        }
    };
    (one(after.cpu_milli, node.allocatable.cpu_milli) + one(after.memory, node.allocatable.memory))
        / 2
}

/// The share of Ready nodes that have `image` (ImageLocality's spread factor), computed
/// once per pod rather than once per node.
fn image_spread(cluster: &ClusterState, image: Option<usize>, now: Millis) -> f64 {
    let Some(img) = image else { return 0.0 };
    let (with, total) = cluster
        .ready_nodes()
        .fold((0usize, 0usize), |(w, t), (_, n)| {
            (w + usize::from(n.has_image(img, now)), t + 1)
        });
    with as f64 / total.max(1) as f64
}

/// ImageLocality, 0..=100: the image's size (clamped to [23 MiB, 1000 MiB]) scaled by the
/// share of nodes that have it (`spread`), only on nodes that have it.
fn image_locality(
    cluster: &ClusterState,
    node: &NodeState,
    image: Option<usize>,
    spread: f64,
    now: Millis,
) -> i64 {
    const MIN_MB: f64 = 23.0;
    const MAX_MB: f64 = 1000.0;
    let Some(img) = image else { return 0 };
    if !node.has_image(img, now) {
        return 0;
    }
    let size = cluster.image_sizes_mb.get(img).copied().unwrap_or(0.0);
    let sum = (size * spread).clamp(MIN_MB, MAX_MB);
    (100.0 * (sum - MIN_MB) / (MAX_MB - MIN_MB)) as i64
}

/// How bad a set of victims is, lower is better: highest victim priority, priority sum,
/// count, and the negated earliest start time of the highest-priority victims.
type VictimKey = (i32, i64, usize, i64);

/// DefaultPreemption: on every node where evicting all lower-priority pods would make room,
/// evict as few as possible (reprieve the most important first: higher priority, then older);
/// pick the node with the lowest highest-victim priority, then the smallest priority sum,
/// then fewest victims, then the one whose highest-priority victims started last (the latest
/// of each node's earliest start, as `pickOneNodeForPreemption`), then the first.
fn preempt(cluster: &ClusterState, pod: PodId) -> Placement {
    let p = &cluster.pods[pod];
    if !p.core.may_preempt() {
        return Placement::Unschedulable;
    }
    let req = p.requests();
    let mut best: Option<(VictimKey, NodeId, Vec<PodId>)> = None;
    for (id, n) in cluster.ready_nodes() {
        if n.pool != p.pool {
            continue;
        }
        let mut lower: Vec<PodId> = n
            .pods
            .iter()
            .copied()
            .filter(|&v| cluster.pods[v].priority() < p.priority())
            .collect();
        let mut free = n.free();
        for &v in &lower {
            free += cluster.pods[v].requests();
        }
        if !req.fits_in(&free) {
            continue;
        }
        // Most important first; reprieve each that can stay.
        lower.sort_by_key(|&v| {
            let q = &cluster.pods[v];
            (-q.priority(), q.bound_at.unwrap_or(0), v)
        });
        let mut victims = Vec::new();
        for v in lower {
            let r = cluster.pods[v].requests();
            let without = &free - r;
            if req.fits_in(&without) {
                free = without;
            } else {
                victims.push(v);
            }
        }
        let top = victims
            .iter()
            .map(|&v| cluster.pods[v].priority())
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = victims
            .iter()
            .map(|&v| i64::from(cluster.pods[v].priority()) + i64::from(i32::MAX) + 1)
            .sum();
        // The kubelet sets startTime when it acknowledges the pod, before any pull: the bind.
        let earliest = victims
            .iter()
            .filter(|&&v| cluster.pods[v].priority() == top)
            .map(|&v| cluster.pods[v].bound_at.unwrap_or(0))
            .min()
            .unwrap_or(0);
        let key = (top, sum, victims.len(), -earliest);
        if best.as_ref().is_none_or(|(b, _, _)| key < *b) {
            best = Some((key, id, victims));
        }
    }
    match best {
        Some((_, node, victims)) if !victims.is_empty() => Placement::Preempt { node, victims },
        Some((_, node, _)) => Placement::Bind(node),
        None => Placement::Unschedulable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_state::PodKind;
    use crate::scenario::{PlaceholderMode, SchedulerKind};
    use crate::test_support::{put, scenario, sim, warm_node};
    use hubpack_core::model::{Pod, PodRole};

    fn preempting_node(cluster: &ClusterState, pod: PodId) -> NodeId {
        match schedule(cluster, pod, 1_000, most_allocated) {
            Placement::Preempt { node, .. } => node,
            other => panic!("expected a preemption, got {other:?}"),
        }
    }

    fn user_pod(s: &mut crate::models::Sim<'_>, cpu: i64) -> PodId {
        let req = Resources::new(cpu * 1000, 1 << 30).with_pods(1);
        let core = Pod::simple("hub/user", PodRole::User, 0, req, 1_000);
        s.cluster.create_pod(PodKind::User(0), 0, None, core, 1_000)
    }

    /// Equal victims everywhere: the node whose placeholders the kubelet acknowledged last,
    /// i.e. the newest, however far its pull has got.
    #[test]
    fn preemption_takes_the_most_recently_started_victims() {
        let sc = scenario("");
        let mut s = sim(&sc, SchedulerKind::Z2jh, PlaceholderMode::None);
        let (old, new) = (warm_node(&mut s, 0), warm_node(&mut s, 0));
        for (node, at) in [(old, 100), (old, 100), (new, 200), (new, 200)] {
            put(&mut s, node, PodKind::Placeholder, 6.0, at);
        }
        let pod = user_pod(&mut s, 8);
        assert_eq!(preempting_node(&s.cluster, pod), new);
    }

    /// With several victims a node is ranked by its earliest one: one old placeholder makes a
    /// node older than a node whose victims all started in between.
    #[test]
    fn preemption_ranks_a_node_by_its_earliest_victim() {
        let sc = scenario("");
        let mut s = sim(&sc, SchedulerKind::Z2jh, PlaceholderMode::None);
        let (mixed, middle) = (warm_node(&mut s, 0), warm_node(&mut s, 0));
        for (node, at) in [(mixed, 100), (mixed, 300), (middle, 200), (middle, 200)] {
            put(&mut s, node, PodKind::Placeholder, 6.0, at);
        }
        let pod = user_pod(&mut s, 12);
        assert_eq!(preempting_node(&s.cluster, pod), middle);
    }
}
