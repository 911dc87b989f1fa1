//! The scheduler's view of the cluster: nodes, pods and where each pod sits, kept
//! incrementally from watch events (or simulator events), with the node index the fast
//! `policy::decide` queries.
//!
//! Placement: a pod counts on `pod.node_name` (bound), or on the node it was `assume`d to.
//! A pending pod (no node) with a nomination reserves its requests on the nominated node
//! against pods of lower or equal priority. `assume`, `forget`, `nominate` and
//! `clear_nomination` act on pods already in the snapshot: callers `upsert_pod` a pending
//! pod before deciding for it, so an unknown key is ignored (nothing to assume).

mod fxhash;
mod index;
mod usage;

pub(crate) use fxhash::FxHashMap;
pub(crate) use index::{Brief, Bucket, Index, PARTS_PER_BILLION, tightest_fraction};
pub(crate) use usage::NodeUsage;

use crate::model::{Node, Pod, PodKey};
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
struct PodEntry {
    /// The pod, with `node_name` = where it counts (bound or assumed) and
    /// `nominated_node` = its current nomination.
    pod: Pod,
    /// Placed by `assume`, not yet confirmed by an upsert carrying `node_name`.
    assumed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    nodes: FxHashMap<String, Node>,
    /// Node names in order, for `nodes()`.
    names: BTreeSet<String>,
    pods: FxHashMap<PodKey, PodEntry>,
    usage: FxHashMap<String, NodeUsage>,
    index: Index,
}

impl Snapshot {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn upsert_node(&mut self, node: Node) {
        let name = node.name.clone();
        self.names.insert(name.clone());
        self.nodes.insert(name.clone(), node);
        self.refresh(&name);
    }

    /// Pods placed on a removed node keep counting there until they are removed too.
    pub fn remove_node(&mut self, name: &str) {
        self.nodes.remove(name);
        self.names.remove(name);
        self.refresh(name);
    }

    pub fn upsert_pod(&mut self, mut pod: Pod) {
        let mut assumed = false;
        if let Some(old) = self.detach(&pod.key) {
            // An assumed pod stays where we put it until an update says where it is bound.
            if old.assumed && pod.node_name.is_none() {
                pod.node_name = old.pod.node_name;
                pod.nominated_node = None;
                assumed = true;
            }
        }
        self.attach(PodEntry { pod, assumed });
    }

    pub fn remove_pod(&mut self, key: &PodKey) -> Option<Pod> {
        self.detach(key).map(|e| e.pod)
    }

    /// Counts the pod on `node` at once (we bound it, or decided to), until `upsert_pod`
    /// confirms or `forget` undoes it. A bind clears the nomination, as the API server does.
    pub fn assume(&mut self, key: &PodKey, node: &str) {
        if let Some(mut e) = self.detach(key) {
            e.pod.node_name = Some(node.to_string());
            e.pod.nominated_node = None;
            e.assumed = true;
            self.attach(e);
        }
    }

    /// Undoes `assume` (the bind failed): the pod is pending again. A confirmed pod is left
    /// alone.
    pub fn forget(&mut self, key: &PodKey) {
        if self.pods.get(key).is_some_and(|e| e.assumed)
            && let Some(mut e) = self.detach(key)
        {
            e.pod.node_name = None;
            e.assumed = false;
            self.attach(e);
        }
    }

    pub fn nominate(&mut self, key: &PodKey, node: &str) {
        if let Some(mut e) = self.detach(key) {
            e.pod.nominated_node = Some(node.to_string());
            self.attach(e);
        }
    }

    pub fn clear_nomination(&mut self, key: &PodKey) {
        if let Some(mut e) = self.detach(key) {
            e.pod.nominated_node = None;
            self.attach(e);
        }
    }

    pub fn pod(&self, key: &PodKey) -> Option<&Pod> {
        self.pods.get(key).map(|e| &e.pod)
    }

    /// Every pod the snapshot holds, in no particular order.
    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.values().map(|e| &e.pod)
    }

    /// Whether the pod counts on its node only because of `assume`.
    pub fn is_assumed(&self, key: &PodKey) -> bool {
        self.pods.get(key).is_some_and(|e| e.assumed)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Nodes in name order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.names.iter().filter_map(|n| self.nodes.get(n))
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Pods placed (bound or assumed) on the node, in key order.
    pub fn pods_on(&self, node: &str) -> impl Iterator<Item = &Pod> {
        self.usage
            .get(node)
            .into_iter()
            .flat_map(|u| u.placed.iter())
            .filter_map(|k| self.pod(k))
    }

    /// Placeholder pods placed on the node, in key order.
    pub fn placeholders_on(&self, node: &str) -> impl Iterator<Item = &Pod> {
        self.usage
            .get(node)
            .into_iter()
            .flat_map(|u| u.placeholders.iter())
            .filter_map(|k| self.pod(k))
    }

    /// Pending pods nominated to the node, in key order.
    pub fn nominated_on(&self, node: &str) -> impl Iterator<Item = &Pod> {
        self.usage
            .get(node)
            .into_iter()
            .flat_map(|u| u.nominated.iter())
            .filter_map(|k| self.pod(k))
    }

    /// Sum of the requests of the pods placed on the node.
    pub fn requested(&self, node: &str) -> crate::model::Resources {
        self.usage
            .get(node)
            .map(|u| u.requested.clone())
            .unwrap_or_default()
    }

    /// A canonical text of everything the snapshot holds and derives (pods, per-node
    /// sums, index): two snapshots with the same objects dump the same, however they got
    /// there.
    pub fn canonical_dump(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for n in self.nodes() {
            let _ = writeln!(out, "node {n:?}");
        }
        let mut pods: Vec<_> = self.pods.values().collect();
        pods.sort_by(|a, b| a.pod.key.cmp(&b.pod.key));
        for e in pods {
            let _ = writeln!(out, "pod assumed={} {:?}", e.assumed, e.pod);
        }
        let mut usage: Vec<_> = self.usage.iter().collect();
        usage.sort_by(|a, b| a.0.cmp(b.0));
        for (n, u) in usage {
            let _ = writeln!(out, "usage {n} {u:?}");
        }
        out.push_str(&self.index.dump());
        out
    }

    pub(crate) fn usage(&self, node: &str) -> Option<&NodeUsage> {
        self.usage.get(node)
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    /// Takes a pod out with all its contributions.
    fn detach(&mut self, key: &PodKey) -> Option<PodEntry> {
        let e = self.pods.remove(key)?;
        if let Some(n) = &e.pod.node_name {
            self.with_usage(n, |u| u.unplace(&e.pod));
        } else if let Some(n) = &e.pod.nominated_node {
            self.with_usage(n, |u| {
                u.nominated.remove(key);
            });
        }
        Some(e)
    }

    fn attach(&mut self, e: PodEntry) {
        if let Some(n) = &e.pod.node_name {
            self.with_usage(n, |u| u.place(&e.pod));
        } else if let Some(n) = &e.pod.nominated_node {
            self.with_usage(n, |u| {
                u.nominated.insert(e.pod.key.clone());
            });
        }
        self.pods.insert(e.pod.key.clone(), e);
    }

    fn with_usage(&mut self, node: &str, f: impl FnOnce(&mut NodeUsage)) {
        let u = self.usage.entry(node.to_string()).or_default();
        f(u);
        if u.is_empty() {
            self.usage.remove(node);
        }
        self.refresh(node);
    }

    fn refresh(&mut self, name: &str) {
        self.index
            .refresh(name, self.nodes.get(name), self.usage.get(name));
    }
}
