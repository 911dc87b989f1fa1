//! What the pods placed on (or nominated to) one node add up to. Kept per node name, so
//! pods that reference a node the snapshot has not seen yet still count once it appears.

use crate::model::{Pod, PodKey, PodRole, Resources};
use std::collections::{BTreeMap, BTreeSet};

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
    /// Multisets of the placeholders' cpu and memory requests (value → count), for the
    /// largest one: a lower bound on how many victims a deficit needs.
    pub placeholder_sizes: [BTreeMap<i64, usize>; 2],
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
    /// At least how many placeholders must go for `req` to fit in `allocatable` (pods
    /// nominated to the node would only add to it). 0 when it fits already; meaningful
    /// only when some placeholders can free enough.
    pub fn least_victims(
        &self,
        allocatable: &crate::model::Resources,
        req: &crate::model::Resources,
    ) -> i64 {
        let mut least = (self.placed.len() as i64 + 1 - allocatable.pods).max(0);
        let used = [self.requested.cpu_milli, self.requested.memory];
        let cap = [allocatable.cpu_milli, allocatable.memory];
        let want = [req.cpu_milli, req.memory];
        for r in 0..2 {
            let deficit = want[r] - (cap[r] - used[r]);
            if want[r] > 0 && deficit > 0 {
                let largest = self.placeholder_sizes[r]
                    .keys()
                    .next_back()
                    .copied()
                    .unwrap_or(0);
                if largest <= 0 {
                    return i64::MAX;
                }
                least = least.max((deficit + largest - 1) / largest);
            }
        }
        least
    }

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
            for (r, v) in [pod.requests.cpu_milli, pod.requests.memory]
                .into_iter()
                .enumerate()
            {
                *self.placeholder_sizes[r].entry(v).or_insert(0) += 1;
            }
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
            for (r, v) in [pod.requests.cpu_milli, pod.requests.memory]
                .into_iter()
                .enumerate()
            {
                if let Some(c) = self.placeholder_sizes[r].get_mut(&v) {
                    *c -= 1;
                    if *c == 0 {
                        self.placeholder_sizes[r].remove(&v);
                    }
                }
            }
        } else {
            sub_clean(&mut self.requested_non_placeholder, &pod.requests);
            sub_clean(&mut self.score_non_placeholder, &pod.score_requests);
            self.excess_non_placeholder[0] -= e[0];
            self.excess_non_placeholder[1] -= e[1];
        }
    }
}
