//! The node index behind the fast `decide`. Nodes are grouped into buckets of identical
//! scheduling signature (labels except unique ones such as the hostname, taints,
//! unschedulable, readiness, allocatable): every
//! label/taint filter and the affinity and PreferNoSchedule rank keys are the same for a
//! whole bucket, so they are evaluated once per bucket and pod. Inside a bucket two ordered
//! sets hold nodes by their tightest free fraction of cpu/memory (parts per billion of
//! allocatable, floored), once counting all pods and once counting only non-placeholder
//! pods (what a preemptor could free at most). Walking a set upward from the pod's own
//! request fraction visits exactly the nodes that can fit, from the most to the least
//! utilized, which gives a monotone upper bound on the MostAllocated score and lets the
//! search stop early (see `policy::indexed`).

use super::FxHashMap;
use super::usage::NodeUsage;
use crate::filter::NODE_UNIQUE_LABELS;
use crate::filter::NodeLoad;
use crate::model::{Node, Resources, Taint};
use std::collections::BTreeMap;

pub(crate) const PARTS_PER_BILLION: i128 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BucketSig {
    pub labels: Vec<(String, String)>,
    pub taints: Vec<(String, String, u8)>,
    pub unschedulable: bool,
    pub ready: bool,
    pub allocatable: Vec<(String, i64)>,
}

impl BucketSig {
    fn of(node: &Node) -> BucketSig {
        let a = &node.allocatable;
        let mut allocatable = vec![
            ("cpu".to_string(), a.cpu_milli),
            ("memory".to_string(), a.memory),
            ("ephemeral-storage".to_string(), a.ephemeral_storage),
            ("pods".to_string(), a.pods),
        ];
        allocatable.extend(a.extended.iter().map(|(k, v)| (k.clone(), *v)));
        BucketSig {
            labels: node
                .labels
                .iter()
                .filter(|(k, _)| !NODE_UNIQUE_LABELS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            taints: node.taints.iter().map(taint_sig).collect(),
            unschedulable: node.unschedulable,
            ready: node.ready_since.is_some(),
            allocatable,
        }
    }
}

fn taint_sig(t: &Taint) -> (String, String, u8) {
    (t.key.clone(), t.value.clone(), t.effect as u8)
}

/// A multiset of i64 with O(log n) max.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MaxSet(BTreeMap<i64, usize>);

impl MaxSet {
    fn insert(&mut self, v: i64) {
        *self.0.entry(v).or_insert(0) += 1;
    }
    fn remove(&mut self, v: i64) {
        if let Some(c) = self.0.get_mut(&v) {
            *c -= 1;
            if *c == 0 {
                self.0.remove(&v);
            }
        }
    }
    pub fn max(&self) -> i64 {
        self.0.keys().next_back().copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Bucket {
    /// Members and their loads (for the diagnosis, which looks at every member).
    pub members: BTreeMap<String, MemberLoad>,
    /// (tightest free fraction counting all placed pods, node) → brief
    pub by_free: BTreeMap<(i64, String), Brief>,
    /// (tightest free fraction counting only non-placeholder pods, node) → brief
    pub by_non_placeholder: BTreeMap<(i64, String), Brief>,
    /// Per-node scoring excess over fit requests, [cpu, memory], all pods / non-placeholders.
    pub excess_all: [MaxSet; 2],
    pub excess_non_placeholder: [MaxSet; 2],
    /// cpu and memory allocatable shared by the members.
    pub capacity: [i64; 2],
}

/// What the walk needs to skip a node without looking it up: its non-placeholder key and
/// the inputs of warmth that do not depend on the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Brief {
    pub non_placeholder: i64,
    pub ready_since: Option<i64>,
    pub prepull_ready: bool,
}

/// What the filters need of a member's usage when no pod is nominated to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberLoad {
    pub load: NodeLoad,
    /// Some pending pod is nominated to the node: its reservation depends on the pod
    /// asking, so such nodes are evaluated in full.
    pub nominated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeKeys {
    sig: BucketSig,
    free: i64,
    non_placeholder: i64,
    excess_all: [i64; 2],
    excess_non_placeholder: [i64; 2],
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub buckets: BTreeMap<BucketSig, Bucket>,
    keys: FxHashMap<String, NodeKeys>,
}

/// min over cpu/memory with capacity > 0 of floor(free * 1e9 / capacity); `i64::MAX` when
/// neither has capacity.
pub(crate) fn tightest_fraction(capacity: [i64; 2], used: [i64; 2]) -> i64 {
    let mut key = i64::MAX;
    for r in 0..2 {
        if capacity[r] > 0 {
            let free = i128::from(capacity[r]) - i128::from(used[r]);
            let f = (free * PARTS_PER_BILLION).div_euclid(i128::from(capacity[r]));
            key = key.min(f.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64);
        }
    }
    key
}

fn cpu_mem(r: &Resources) -> [i64; 2] {
    [r.cpu_milli, r.memory]
}

impl Index {
    /// Re-files one node after any change to it or to the pods on it.
    pub fn refresh(&mut self, name: &str, node: Option<&Node>, usage: Option<&NodeUsage>) {
        self.remove(name);
        let Some(node) = node else { return };
        let empty = NodeUsage::default();
        let usage = usage.unwrap_or(&empty);
        let capacity = cpu_mem(&node.allocatable);
        let keys = NodeKeys {
            sig: BucketSig::of(node),
            free: tightest_fraction(capacity, cpu_mem(&usage.requested)),
            non_placeholder: tightest_fraction(capacity, cpu_mem(&usage.requested_non_placeholder)),
            excess_all: usage.excess_all,
            excess_non_placeholder: usage.excess_non_placeholder,
        };
        let b = self
            .buckets
            .entry(keys.sig.clone())
            .or_insert_with(|| Bucket {
                capacity,
                ..Bucket::default()
            });
        b.members.insert(
            name.to_string(),
            MemberLoad {
                load: NodeLoad {
                    requested: usage.requested.clone(),
                    pod_count: usage.placed.len() as i64,
                },
                nominated: !usage.nominated.is_empty(),
            },
        );
        let brief = Brief {
            non_placeholder: keys.non_placeholder,
            ready_since: node.ready_since,
            prepull_ready: node.prepull_ready,
        };
        b.by_free
            .insert((keys.free, name.to_string()), brief.clone());
        b.by_non_placeholder
            .insert((keys.non_placeholder, name.to_string()), brief);
        for r in 0..2 {
            b.excess_all[r].insert(keys.excess_all[r]);
            b.excess_non_placeholder[r].insert(keys.excess_non_placeholder[r]);
        }
        self.keys.insert(name.to_string(), keys);
    }

    fn remove(&mut self, name: &str) {
        let Some(k) = self.keys.remove(name) else {
            return;
        };
        let Some(b) = self.buckets.get_mut(&k.sig) else {
            return;
        };
        b.members.remove(name);
        b.by_free.remove(&(k.free, name.to_string()));
        b.by_non_placeholder
            .remove(&(k.non_placeholder, name.to_string()));
        for r in 0..2 {
            b.excess_all[r].remove(k.excess_all[r]);
            b.excess_non_placeholder[r].remove(k.excess_non_placeholder[r]);
        }
        if b.members.is_empty() {
            self.buckets.remove(&k.sig);
        }
    }

    /// A canonical text of the whole index, to compare an incrementally maintained index
    /// with one rebuilt from scratch.
    pub fn dump(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for (sig, b) in &self.buckets {
            let _ = writeln!(out, "bucket {sig:?} cap={:?}", b.capacity);
            let _ = writeln!(out, "  members {:?}", b.members);
            let _ = writeln!(out, "  free {:?}", b.by_free);
            let _ = writeln!(out, "  non_placeholder {:?}", b.by_non_placeholder);
            let _ = writeln!(
                out,
                "  excess_all {:?} excess_np {:?}",
                b.excess_all, b.excess_non_placeholder
            );
        }
        out
    }
}
