//! Schedulers the simulator compares. `hubpack` calls hubpack-core's `decide` (the very code
//! the live scheduler runs); `spread` and `z2jh` are models of kube-scheduler configurations,
//! not hubpack policy.

mod hubpack;
mod kube;
mod spread;
mod z2jh;

use crate::cluster_state::{ClusterState, NodeId, PodId};
use crate::scenario::SchedulerKind;
use hubpack_core::model::Millis;

/// What a scheduler wants done with one pending pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Bind(NodeId),
    /// Evict `victims` (placeholders) on `node`, then bind there.
    Preempt {
        node: NodeId,
        victims: Vec<PodId>,
    },
    /// No node now: the pod is marked Unschedulable (the autoscaler's trigger).
    Unschedulable,
}

pub trait Scheduler: Send {
    fn place(&self, cluster: &ClusterState, pod: PodId, now: Millis) -> Placement;
}

pub fn scheduler_for(kind: SchedulerKind) -> Box<dyn Scheduler> {
    match kind {
        SchedulerKind::Spread => Box::new(spread::Spread),
        SchedulerKind::Z2jh => Box::new(z2jh::Z2jh),
        SchedulerKind::Hubpack => Box::new(hubpack::Hubpack::default()),
    }
}
