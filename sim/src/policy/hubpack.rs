//! hubpack's warm-first packing: exactly `hubpack_core::policy::decide` on the mirrored
//! snapshot, the same call the live scheduler makes.

use super::{Placement, Scheduler};
use crate::cluster_state::{ClusterState, PodId};
use hubpack_core::model::Millis;
use hubpack_core::policy::{Decision, PolicyConfig, decide};

#[derive(Default)]
pub struct Hubpack {
    pub config: PolicyConfig,
}

impl Scheduler for Hubpack {
    fn place(&self, cluster: &ClusterState, pod: PodId, now: Millis) -> Placement {
        let Some(snapshot) = cluster.snapshot.as_ref() else {
            // The engine creates the snapshot whenever this scheduler runs.
            return Placement::Unschedulable;
        };
        match decide(snapshot, &cluster.pods[pod].core, now, &self.config) {
            Decision::Bind { node } => match cluster.node_id(&node) {
                Some(id) => Placement::Bind(id),
                None => Placement::Unschedulable,
            },
            Decision::Preempt { node, victims } => {
                let Some(node) = cluster.node_id(&node) else {
                    return Placement::Unschedulable;
                };
                let victims: Option<Vec<PodId>> =
                    victims.iter().map(|k| cluster.pod_id(k)).collect();
                match victims {
                    Some(victims) => Placement::Preempt { node, victims },
                    None => Placement::Unschedulable,
                }
            }
            Decision::Unschedulable(_) | Decision::Skip(_) => Placement::Unschedulable,
        }
    }
}
