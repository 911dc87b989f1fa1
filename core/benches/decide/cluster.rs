//! The synthetic cluster: a user pool (tainted, labelled, mostly warm) and a core pool,
//! filled with users, placeholders and other pods to a target fraction of allocatable.

use hubpack_core::model::{
    ImageName, Node, NodeSelectorTerm, Pod, PodRole, PreemptionPolicy, PreferredTerm, Resources,
    SelectorOperator, SelectorRequirement, Taint, TaintEffect, Toleration, TolerationOperator,
};
use hubpack_core::snapshot::Snapshot;

pub const GI: i64 = 1 << 30;
pub const NOW: i64 = 10_000_000;
pub const IMAGE: &str = "quay.io/jupyter/datascience-notebook:2025-01-01";

/// splitmix64: a small deterministic generator, enough for synthetic data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

fn dedicated(pool: &str) -> Taint {
    Taint {
        key: "hub.jupyter.org/dedicated".into(),
        value: pool.into(),
        effect: TaintEffect::NoSchedule,
    }
}

pub fn user_node(i: usize, rng: &mut Rng) -> Node {
    let name = format!("user-{i:05}");
    let mut n = Node::new(&name, Resources::new(16_000, 64 * GI).with_pods(110));
    n.labels
        .insert("kubernetes.io/hostname".into(), name.clone());
    n.labels
        .insert("hub.jupyter.org/node-purpose".into(), "user".into());
    n.labels.insert(
        "node.kubernetes.io/instance-type".into(),
        "n2-highmem-16".into(),
    );
    n.labels.insert(
        "topology.kubernetes.io/zone".into(),
        format!("zone-{}", i % 3),
    );
    n.taints.push(dedicated("user"));
    if rng.chance(0.02) {
        n.taints.push(Taint {
            key: "DeletionCandidateOfClusterAutoscaler".into(),
            value: "1700000000".into(),
            effect: TaintEffect::PreferNoSchedule,
        });
    }
    let r = rng.below(100);
    // 85% warm (pre-pulled), 10% booted but not settled, 5% settled without the image.
    n.ready_since = Some(if (85..95).contains(&r) {
        NOW - 5_000
    } else {
        0
    });
    n.prepull_ready = r < 85;
    if r < 85 && rng.chance(0.5) {
        n.images.insert(ImageName::normalize(IMAGE));
    }
    n
}

pub fn core_node(i: usize) -> Node {
    let name = format!("core-{i:05}");
    let mut n = Node::new(&name, Resources::new(8_000, 32 * GI).with_pods(110));
    n.labels
        .insert("kubernetes.io/hostname".into(), name.clone());
    n.labels
        .insert("hub.jupyter.org/node-purpose".into(), "core".into());
    n.taints.push(dedicated("core"));
    n
}

fn user_tolerations() -> Vec<Toleration> {
    vec![Toleration {
        key: "hub.jupyter.org/dedicated".into(),
        operator: TolerationOperator::Equal,
        value: "user".into(),
        effect: Some(TaintEffect::NoSchedule),
    }]
}

fn prefer_user_pool() -> Vec<PreferredTerm> {
    vec![PreferredTerm {
        weight: 100,
        term: NodeSelectorTerm {
            match_expressions: vec![SelectorRequirement {
                key: "hub.jupyter.org/node-purpose".into(),
                operator: SelectorOperator::In,
                values: vec!["user".into()],
            }],
            match_fields: vec![],
        },
    }]
}

pub fn user(id: usize, milli: i64, created: i64) -> Pod {
    let mut p = Pod::simple(
        &format!("jhub/jupyter-u{id}"),
        PodRole::User,
        0,
        Resources::new(milli, milli * 4 * GI / 1000),
        created,
    );
    p.images = vec![ImageName::normalize(IMAGE)];
    p.tolerations = user_tolerations();
    p.preferred_affinity = prefer_user_pool();
    p
}

pub fn placeholder(id: usize, created: i64) -> Pod {
    let mut p = Pod::simple(
        &format!("jhub/placeholder-{id}"),
        PodRole::Placeholder,
        -10,
        Resources::new(1500, 6 * GI),
        created,
    );
    p.preemption_policy = PreemptionPolicy::Never;
    p.images = vec![ImageName::normalize("registry.k8s.io/pause:3.10")];
    p.tolerations = user_tolerations();
    p.preferred_affinity = prefer_user_pool();
    p
}

pub fn other(id: usize, created: i64) -> Pod {
    let mut p = Pod::simple(
        &format!("kube-system/other-{id}"),
        PodRole::Other,
        1000,
        Resources::new(1200, 1200 * 4 * GI / 1000),
        created,
    );
    p.tolerations = vec![Toleration {
        key: "hub.jupyter.org/dedicated".into(),
        operator: TolerationOperator::Exists,
        ..Toleration::default()
    }];
    p.node_selector
        .insert("hub.jupyter.org/node-purpose".into(), "core".into());
    p
}

/// 80% of nodes in the user pool.
pub fn build(nodes: usize, pods: usize, rng: &mut Rng) -> (Snapshot, Vec<Pod>) {
    let mut snap = Snapshot::new();
    let user_nodes = nodes * 4 / 5;
    let mut names = Vec::with_capacity(nodes);
    let mut free = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let n = if i < user_nodes {
            user_node(i, rng)
        } else {
            core_node(i - user_nodes)
        };
        names.push(n.name.clone());
        free.push((n.allocatable.cpu_milli, n.allocatable.pods));
        snap.upsert_node(n);
    }
    let mut placed = Vec::with_capacity(pods);
    let mut id = 0;
    while placed.len() < pods {
        id += 1;
        let r = rng.below(100);
        let pod = if r < 80 {
            user(id, [1000, 1500, 1500][rng.below(3)], 0)
        } else if r < 90 {
            placeholder(id, 0)
        } else {
            other(id, 0)
        };
        let (lo, hi) = if pod.role == PodRole::Other {
            (user_nodes, nodes)
        } else {
            (0, user_nodes)
        };
        // First fit from a random start, so nodes fill unevenly.
        let start = lo + rng.below(hi - lo);
        let want = pod.requests.cpu_milli;
        let Some(i) = (0..hi - lo)
            .map(|k| lo + (start - lo + k) % (hi - lo))
            .find(|&i| free[i].0 >= want && free[i].1 >= 1)
        else {
            // Pool full: fewer pods than asked would make the numbers lie.
            panic!("cluster full after {} pods", placed.len());
        };
        free[i].0 -= want;
        free[i].1 -= 1;
        let mut pod = pod;
        pod.node_name = Some(names[i].clone());
        snap.upsert_pod(pod.clone());
        placed.push(pod);
    }
    (snap, placed)
}

/// Requested / allocatable cpu over all nodes.
pub fn fill(snap: &Snapshot) -> f64 {
    let (mut used, mut cap) = (0i64, 0i64);
    for n in snap.nodes() {
        used += snap.requested(&n.name).cpu_milli;
        cap += n.allocatable.cpu_milli;
    }
    used as f64 / cap as f64
}
