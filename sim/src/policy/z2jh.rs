//! kube-scheduler as z2jh's user-scheduler configures it (reference/z2jh.md §1.1):
//! NodeResourcesFit MostAllocated at weight 121 and ImageLocality at 11 (NodeAffinity and
//! InterPodAffinity are equal on every user node here), upstream Filter and
//! DefaultPreemption. Nodes full of placeholders fail Filter, so a new Ready node with room
//! wins over preempting a placeholder on a warm node: the head-of-line problem.

use super::{Placement, Scheduler, kube};
use crate::cluster_state::{ClusterState, PodId};
use hubpack_core::model::Millis;

pub struct Z2jh;

/// Relative weights: the ImageLocality part is added by `kube::schedule` at weight 1, so
/// MostAllocated's 121:11 ratio becomes 11:1.
const FIT_WEIGHT: i64 = 11;

impl Scheduler for Z2jh {
    fn place(&self, cluster: &ClusterState, pod: PodId, now: Millis) -> Placement {
        kube::schedule(cluster, pod, now, |n, req| {
            FIT_WEIGHT * kube::most_allocated(n, req)
        })
    }
}
