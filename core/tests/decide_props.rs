//! Property tests: random two-pool clusters under random churn, every decision applied to
//! the snapshot. Checked after every step: capacity never exceeded, no taint, selector or
//! affinity violated by a placement, victims only lower-priority placeholders of a pod
//! that may preempt, the indexed `decide` equal to the full scan, and at the end the
//! incrementally kept snapshot equal to one rebuilt from the same objects.
#![allow(clippy::unwrap_used)]

use hubpack_core::filter::{matches_node_selector, matches_required_affinity, tolerates};
use hubpack_core::model::{
    HostPort, ImageName, Node, NodeSelector, NodeSelectorTerm, Pod, PodKey, PodRole, PodVolume,
    PreemptionPolicy, PreferredTerm, Resources, SelectorOperator, SelectorRequirement, Taint,
    TaintEffect, Toleration, TolerationOperator,
};
use hubpack_core::policy::{Decision, PolicyConfig, decide, decide_full_scan};
use hubpack_core::snapshot::Snapshot;
use proptest::prelude::*;

const GI: i64 = 1 << 30;
const SETTLE: i64 = 30_000;

fn image(i: u8) -> ImageName {
    ImageName::normalize(&format!("jupyter/img{i}:1"))
}

fn sel(key: &str, op: SelectorOperator, values: &[&str]) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: vec![SelectorRequirement {
            key: key.into(),
            operator: op,
            values: values.iter().map(|v| v.to_string()).collect(),
        }],
        match_fields: vec![],
    }
}

#[derive(Debug, Clone)]
struct NodeSpec {
    user_pool: bool,
    size: u8,
    ready: u8,
    images: u8,
    prepull: bool,
    unschedulable: bool,
    prefer_no: bool,
    generation: u8,
    attach_limit: Option<u8>,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        any::<bool>(),
        0u8..3,
        0u8..4,
        0u8..4,
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
        0u8..8,
        prop::option::weighted(0.2, 0u8..3),
    )
        .prop_map(
            |(
                user_pool,
                size,
                ready,
                images,
                prepull,
                unschedulable,
                prefer_no,
                generation,
                attach_limit,
            )| {
                NodeSpec {
                    user_pool,
                    size,
                    ready,
                    images,
                    prepull,
                    unschedulable,
                    prefer_no,
                    generation,
                    attach_limit,
                }
            },
        )
}

fn build_node(name: &str, s: &NodeSpec, now: i64) -> Node {
    let (cpu, mem, pods) = [(2000, 8, 4), (4000, 16, 8), (8000, 32, 6)][s.size as usize];
    let mut n = Node::new(
        name,
        Resources::new(cpu, mem * GI)
            .with_pods(pods)
            .with_extended("example.com/gpu", i64::from(s.size)),
    );
    let pool = if s.user_pool { "user" } else { "core" };
    n.labels.insert("pool".into(), pool.into());
    n.labels.insert("gen".into(), s.generation.to_string());
    n.labels
        .insert("kubernetes.io/hostname".into(), name.into());
    n.taints.push(Taint {
        key: "hub.jupyter.org/dedicated".into(),
        value: pool.into(),
        effect: if s.generation.is_multiple_of(2) {
            TaintEffect::NoSchedule
        } else {
            TaintEffect::NoExecute
        },
    });
    if s.prefer_no {
        n.taints.push(Taint {
            key: "DeletionCandidateOfClusterAutoscaler".into(),
            value: "1".into(),
            effect: TaintEffect::PreferNoSchedule,
        });
    }
    n.ready_since = match s.ready {
        0 => None,
        1 => Some(now - 1000),
        _ => Some(0),
    };
    if n.ready_since.is_none() {
        // As the cluster keeps it (node lifecycle controller, TaintNodesByCondition): the
        // scheduler judges readiness by this taint, as kube-scheduler does.
        n.taints.push(Taint {
            key: "node.kubernetes.io/not-ready".into(),
            value: String::new(),
            effect: TaintEffect::NoSchedule,
        });
    }
    for i in 0..2 {
        if s.images & (1 << i) != 0 {
            n.images.insert(image(i));
        }
    }
    n.prepull_ready = s.prepull;
    n.unschedulable = s.unschedulable;
    if let Some(l) = s.attach_limit {
        n.attach_limits
            .insert("csi.example.com".into(), i64::from(l));
    }
    n
}

#[derive(Debug, Clone)]
struct PodSpec {
    role: u8,
    size: u8,
    prio: i8,
    never: bool,
    images: u8,
    excess: bool,
    gpu: bool,
    port: Option<u8>,
    volume: bool,
    required_gen: Option<u8>,
    pool_pref: bool,
}

fn pod_spec() -> impl Strategy<Value = PodSpec> {
    (
        prop::sample::select(vec![0u8, 0, 0, 1, 1, 2]),
        0u8..4,
        -1i8..3,
        prop::bool::weighted(0.2),
        0u8..4,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        prop::option::weighted(0.15, 0u8..3),
        prop::bool::weighted(0.15),
        prop::option::weighted(0.2, 0u8..8),
        prop::bool::weighted(0.7),
    )
        .prop_map(
            |(
                role,
                size,
                prio,
                never,
                images,
                excess,
                gpu,
                port,
                volume,
                required_gen,
                pool_pref,
            )| {
                PodSpec {
                    role,
                    size,
                    prio,
                    never,
                    images,
                    excess,
                    gpu,
                    port,
                    volume,
                    required_gen,
                    pool_pref,
                }
            },
        )
}

fn build_pod(id: usize, s: &PodSpec, now: i64) -> Pod {
    let role = [PodRole::User, PodRole::Placeholder, PodRole::Other][s.role as usize];
    let (cpu, mem) = [(500, 1), (1000, 4), (1500, 6), (3000, 12)][s.size as usize];
    let prio = match role {
        PodRole::Placeholder => -10 + i32::from(s.prio),
        // Some users at the placeholders' priority: they must not preempt them.
        _ if s.prio == -1 => -10,
        _ => i32::from(s.prio),
    };
    let mut p = Pod::simple(
        &format!("ns/p{id}"),
        role,
        prio,
        Resources::new(cpu, mem * GI),
        now,
    );
    if s.excess {
        p.score_requests.cpu_milli += 100;
        p.score_requests.memory += 200 << 20;
    }
    if s.gpu {
        p.requests.extended.insert("example.com/gpu".into(), 1);
        p.score_requests
            .extended
            .insert("example.com/gpu".into(), 1);
    }
    if s.never || role == PodRole::Placeholder {
        p.preemption_policy = PreemptionPolicy::Never;
    }
    for i in 0..2 {
        if s.images & (1 << i) != 0 {
            p.images.push(image(i));
        }
    }
    let tol = |pool: &str| Toleration {
        key: "hub.jupyter.org/dedicated".into(),
        operator: TolerationOperator::Equal,
        value: pool.into(),
        effect: None,
    };
    match role {
        PodRole::Other => p.tolerations.push(Toleration {
            operator: TolerationOperator::Exists,
            ..Toleration::default()
        }),
        _ => {
            p.tolerations.push(tol("user"));
            if s.pool_pref {
                p.tolerations.push(tol("core"));
            }
        }
    }
    if s.pool_pref {
        p.preferred_affinity.push(PreferredTerm {
            weight: 100,
            term: sel("pool", SelectorOperator::In, &["user"]),
        });
    }
    if s.required_gen == Some(7) {
        p.required_affinity = Some(NodeSelector {
            terms: vec![sel(
                "kubernetes.io/hostname",
                SelectorOperator::NotIn,
                &["n001"],
            )],
        });
    } else if let Some(g) = s.required_gen {
        p.required_affinity = Some(NodeSelector {
            terms: vec![
                sel("gen", SelectorOperator::Gt, &[&g.to_string()]),
                sel("pool", SelectorOperator::In, &["core"]),
            ],
        });
    }
    if let Some(port) = s.port {
        p.host_ports.push(HostPort {
            port: 8000 + u16::from(port),
            protocol: "TCP".into(),
            host_ip: String::new(),
        });
    }
    if s.volume && id.is_multiple_of(2) {
        p.volumes.push(PodVolume::Bound {
            claim: format!("c{id}"),
            node_affinity: None,
            csi_driver: Some("csi.example.com".into()),
            volume_id: format!("v{}", id % 3),
        });
    } else if s.volume {
        // A local PV: not attachable, pinned to some generations of nodes.
        p.volumes.push(PodVolume::Bound {
            claim: format!("c{id}"),
            node_affinity: Some(NodeSelector {
                terms: vec![sel("gen", SelectorOperator::In, &["1", "2", "3"])],
            }),
            csi_driver: None,
            volume_id: format!("local{id}"),
        });
    }
    p
}

#[derive(Debug, Clone)]
enum Op {
    /// A new pod arrives and is scheduled.
    Arrive(PodSpec),
    /// A pending pod (e.g. a preemptor, or one that did not fit) is retried.
    Retry(usize),
    DeletePod(usize),
    /// The bind of an assumed pod is confirmed, or fails.
    Confirm(usize, bool),
    AddNode(NodeSpec),
    RemoveNode(usize),
    /// A node's state changes (images pulled, prepull, readiness).
    ChangeNode(usize, NodeSpec),
    Nominate(usize, usize),
    ClearNomination(usize),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => pod_spec().prop_map(Op::Arrive),
        2 => any::<usize>().prop_map(Op::Retry),
        2 => any::<usize>().prop_map(Op::DeletePod),
        2 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(i, ok)| Op::Confirm(i, ok)),
        1 => node_spec().prop_map(Op::AddNode),
        1 => any::<usize>().prop_map(Op::RemoveNode),
        1 => (any::<usize>(), node_spec()).prop_map(|(i, s)| Op::ChangeNode(i, s)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(p, n)| Op::Nominate(p, n)),
        1 => any::<usize>().prop_map(Op::ClearNomination),
        1 => any::<u16>().prop_map(Op::Advance),
    ]
}

struct World {
    snap: Snapshot,
    now: i64,
    next_pod: usize,
    next_node: usize,
    cfg: PolicyConfig,
}

fn pick<T: Clone>(items: Vec<T>, i: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[i % items.len()].clone())
}

impl World {
    fn pod_keys(&self) -> Vec<PodKey> {
        let mut k: Vec<_> = self.snap.pods().map(|p| p.key.clone()).collect();
        k.sort();
        k
    }

    fn pending(&self) -> Vec<PodKey> {
        let mut k: Vec<_> = self
            .snap
            .pods()
            .filter(|p| p.node_name.is_none())
            .map(|p| p.key.clone())
            .collect();
        k.sort();
        k
    }

    fn node_names(&self) -> Vec<String> {
        self.snap.nodes().map(|n| n.name.clone()).collect()
    }

    /// Decides for a pending pod, checks the decision, applies it.
    fn schedule(&mut self, key: &PodKey) {
        let pod = self.snap.pod(key).unwrap().clone();
        let fast = decide(&self.snap, &pod, self.now, &self.cfg);
        let full = decide_full_scan(&self.snap, &pod, self.now, &self.cfg);
        assert_eq!(
            fast, full,
            "indexed decide differs from the full scan for {pod:?}"
        );
        match fast {
            Decision::Bind { node } => {
                self.check_placement(&pod, &node);
                self.snap.assume(key, &node);
            }
            Decision::Preempt { node, victims } => {
                self.check_placement(&pod, &node);
                assert!(pod.may_preempt(), "{pod:?} may not preempt");
                assert!(!victims.is_empty());
                for v in &victims {
                    let victim = self.snap.pod(v).unwrap();
                    assert_eq!(
                        victim.role,
                        PodRole::Placeholder,
                        "victim {v} is not a placeholder"
                    );
                    assert!(victim.priority < pod.priority, "victim {v} priority");
                    assert_eq!(victim.node_name.as_deref(), Some(node.as_str()));
                }
                for v in &victims {
                    self.snap.remove_pod(v);
                }
                self.snap.nominate(key, &node);
                // The seat freed is now the best one for the preemptor.
                let pod = self.snap.pod(key).unwrap().clone();
                let again = decide(&self.snap, &pod, self.now, &self.cfg);
                assert_eq!(
                    again,
                    Decision::Bind { node },
                    "preemptor not bound where it preempted"
                );
            }
            Decision::Unschedulable(d) => {
                assert_eq!(d.nodes, self.snap.node_count());
                // Each node contributes at least one reason.
                assert!(d.reasons.values().sum::<usize>() >= d.nodes);
            }
            Decision::Skip(_) => {}
        }
    }

    fn check_placement(&self, pod: &Pod, node: &str) {
        let n = self.snap.node(node).unwrap();
        for t in &n.taints {
            if t.effect != TaintEffect::PreferNoSchedule {
                assert!(
                    pod.tolerations.iter().any(|tol| tolerates(tol, t)),
                    "{} placed on {node} despite taint {t:?}",
                    pod.key
                );
            }
        }
        assert!(matches_node_selector(n, &pod.node_selector));
        assert!(matches_required_affinity(n, pod.required_affinity.as_ref()));
        // A not-ready node carries the not-ready taint: the taint check above covers it.
        let cordon = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            value: String::new(),
            effect: TaintEffect::NoSchedule,
        };
        assert!(
            !n.unschedulable || pod.tolerations.iter().any(|t| tolerates(t, &cordon)),
            "placed on an unschedulable node"
        );
    }

    fn check_capacity(&self) {
        for n in self.snap.nodes() {
            let used = self.snap.requested(&n.name);
            let count = self.snap.pods_on(&n.name).count() as i64;
            let a = &n.allocatable;
            assert!(count <= a.pods, "{}: {count} pods > {}", n.name, a.pods);
            assert!(used.cpu_milli <= a.cpu_milli, "{}: cpu {used:?}", n.name);
            assert!(used.memory <= a.memory, "{}: memory {used:?}", n.name);
            for (k, v) in &used.extended {
                assert!(*v <= a.extended(k), "{}: {k} {used:?}", n.name);
            }
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Arrive(spec) => {
                let pod = build_pod(self.next_pod, &spec, self.now);
                self.next_pod += 1;
                let key = pod.key.clone();
                self.snap.upsert_pod(pod);
                self.schedule(&key);
            }
            Op::Retry(i) => {
                if let Some(k) = pick(self.pending(), i) {
                    self.schedule(&k);
                }
            }
            Op::DeletePod(i) => {
                if let Some(k) = pick(self.pod_keys(), i) {
                    self.snap.remove_pod(&k);
                }
            }
            Op::Confirm(i, ok) => {
                let assumed: Vec<_> = self
                    .pod_keys()
                    .into_iter()
                    .filter(|k| self.snap.is_assumed(k))
                    .collect();
                if let Some(k) = pick(assumed, i) {
                    if ok {
                        let p = self.snap.pod(&k).unwrap().clone();
                        self.snap.upsert_pod(p);
                    } else {
                        self.snap.forget(&k);
                    }
                }
            }
            Op::AddNode(spec) => {
                let n = build_node(&format!("n{:03}", self.next_node), &spec, self.now);
                self.next_node += 1;
                self.snap.upsert_node(n);
            }
            Op::RemoveNode(i) => {
                // The node goes with its pods, as when the autoscaler deletes it.
                if let Some(name) = pick(self.node_names(), i) {
                    let on: Vec<_> = self.snap.pods_on(&name).map(|p| p.key.clone()).collect();
                    for k in on {
                        self.snap.remove_pod(&k);
                    }
                    self.snap.remove_node(&name);
                }
            }
            Op::ChangeNode(i, spec) => {
                if let Some(name) = pick(self.node_names(), i) {
                    let old = self.snap.node(&name).unwrap().clone();
                    let mut n = build_node(&name, &spec, self.now);
                    // Capacity and pool are fixed for a node's life; state changes.
                    n.allocatable = old.allocatable;
                    n.labels = old.labels;
                    n.taints = old.taints;
                    n.attach_limits = old.attach_limits;
                    if n.ready_since.is_some() && old.ready_since.is_some() {
                        n.ready_since = old.ready_since;
                    }
                    self.snap.upsert_node(n);
                }
            }
            Op::Nominate(p, n) => {
                if let (Some(k), Some(name)) = (pick(self.pending(), p), pick(self.node_names(), n))
                {
                    self.snap.nominate(&k, &name);
                }
            }
            Op::ClearNomination(i) => {
                if let Some(k) = pick(self.pod_keys(), i) {
                    self.snap.clear_nomination(&k);
                }
            }
            Op::Advance(ms) => self.now += i64::from(ms) * 2,
        }
    }

    /// A snapshot built from scratch from the same objects.
    fn rebuilt(&self) -> Snapshot {
        let mut s = Snapshot::new();
        for n in self.snap.nodes() {
            s.upsert_node(n.clone());
        }
        for p in self.snap.pods() {
            if self.snap.is_assumed(&p.key) {
                let node = p.node_name.clone().unwrap();
                let mut pending = p.clone();
                pending.node_name = None;
                s.upsert_pod(pending);
                s.assume(&p.key, &node);
            } else {
                s.upsert_pod(p.clone());
            }
        }
        s
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decisions_are_safe_and_index_is_exact(
        nodes in prop::collection::vec(node_spec(), 3..14),
        ops in prop::collection::vec(op(), 20..90),
        probes in prop::collection::vec(pod_spec(), 6),
    ) {
        let mut w = World {
            snap: Snapshot::new(),
            now: 100_000,
            next_pod: 0,
            next_node: 0,
            cfg: PolicyConfig { warm_settle_ms: SETTLE, ..PolicyConfig::default() },
        };
        for spec in &nodes {
            w.apply(Op::AddNode(spec.clone()));
        }
        for (i, op) in ops.into_iter().enumerate() {
            w.apply(op);
            w.check_capacity();
            if i % 7 == 0 {
                prop_assert_eq!(w.snap.canonical_dump(), w.rebuilt().canonical_dump());
            }
        }
        let rebuilt = w.rebuilt();
        prop_assert_eq!(w.snap.canonical_dump(), rebuilt.canonical_dump());
        for (i, spec) in probes.iter().enumerate() {
            let mut probe = build_pod(10_000 + i, spec, w.now);
            probe.key = PodKey::new("probe", &i.to_string());
            let a = decide(&w.snap, &probe, w.now, &w.cfg);
            prop_assert_eq!(&a, &decide(&rebuilt, &probe, w.now, &w.cfg));
            prop_assert_eq!(&a, &decide_full_scan(&w.snap, &probe, w.now, &w.cfg));
        }
    }
}
