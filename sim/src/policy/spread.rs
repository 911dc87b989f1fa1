//! kube-scheduler with its default scoring: LeastAllocated (weight 1) + ImageLocality
//! (weight 1). Spreads users over nodes; nothing empties out.

use super::{Placement, Scheduler, kube};
use crate::cluster_state::{ClusterState, PodId};
use hubpack_core::model::Millis;

pub struct Spread;

impl Scheduler for Spread {
    fn place(&self, cluster: &ClusterState, pod: PodId, now: Millis) -> Placement {
        kube::schedule(cluster, pod, now, kube::least_allocated)
    }
}
