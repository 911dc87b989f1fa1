//! What the pods placed on (or nominated to) one node add up to. Kept per node name, so
//! pods that reference a node the snapshot has not seen yet still count once it appears.

use crate::model::{Pod, PodKey, PodRole, Resources};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeUsage {
    /// Pods placed here (bound, or assumed).
    pub placed: BTreeSet<PodKey>,
    /// Pending pods nominated here.
    pub nominated: BTreeSet<PodKey>,
    /// Sum of `requests` of the placed pods.
    pub requested: Resources,
    /// The placed pods that are placeholders (the only possible victims).
    pub placeholders: BTreeSet<PodKey>,
    /// How many of the placed pods are placeholders.
    pub placeholder_count: i64,
    /// Sum of `requests` of the placed pods that are not placeholders.
    pub requested_non_placeholder: Resources,
    /// Sum of `score_requests` of all placed pods / of the non-placeholder ones.
    pub score_all: Resources,
    pub score_non_placeholder: Resources,
    /// Sum over placed pods of max(0, score_request − request) for [cpu, memory]: how far
    /// the scoring utilization can exceed the fit utilization (bounds in the index).
    pub excess_all: [i64; 2],
    pub excess_non_placeholder: [i64; 2],
}

fn excess(pod: &Pod) -> [i64; 2] {
    [
        (pod.score_requests.cpu_milli - pod.requests.cpu_milli).max(0),
        (pod.score_requests.memory - pod.requests.memory).max(0),
    ]
}

/// Subtracts and drops extended resources that reach zero, so a usage after add+remove
/// equals one never touched.
fn sub_clean(total: &mut Resources, r: &Resources) {
    *total -= r;
    total.extended.retain(|_, v| *v != 0);
}

impl NodeUsage {
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty() && self.nominated.is_empty()
    }

    pub fn place(&mut self, pod: &Pod) {
        if !self.placed.insert(pod.key.clone()) {
            return;
        }
        let e = excess(pod);
        self.requested += &pod.requests;
        self.score_all += &pod.score_requests;
        self.excess_all[0] += e[0];
        self.excess_all[1] += e[1];
        if pod.role == PodRole::Placeholder {
            self.placeholders.insert(pod.key.clone());
            self.placeholder_count += 1;
        } else {
            self.requested_non_placeholder += &pod.requests;
            self.score_non_placeholder += &pod.score_requests;
            self.excess_non_placeholder[0] += e[0];
            self.excess_non_placeholder[1] += e[1];
        }
    }

    pub fn unplace(&mut self, pod: &Pod) {
        if !self.placed.remove(&pod.key) {
            return;
        }
        let e = excess(pod);
        sub_clean(&mut self.requested, &pod.requests);
        sub_clean(&mut self.score_all, &pod.score_requests);
        self.excess_all[0] -= e[0];
        self.excess_all[1] -= e[1];
        if pod.role == PodRole::Placeholder {
            self.placeholders.remove(&pod.key);
            self.placeholder_count -= 1;
        } else {
            sub_clean(&mut self.requested_non_placeholder, &pod.requests);
            sub_clean(&mut self.score_non_placeholder, &pod.score_requests);
            self.excess_non_placeholder[0] -= e[0];
            self.excess_non_placeholder[1] -= e[1];
        }
    }
}
