//! Everything that can happen in a run.

use crate::cluster_state::{NodeId, PodId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A user opens the hub and asks for a server (first time).
    Arrival(usize),
    /// A user tries again (spawn limit hit, or the last attempt timed out).
    SpawnRetry(usize),
    /// KubeSpawner has done its work: the user's pod now exists, Pending.
    PodCreate {
        user: usize,
        attempt: u32,
    },
    /// `start_timeout` after a spawn began.
    StartTimeout {
        user: usize,
        attempt: u32,
    },
    NodeReady(NodeId),
    /// The node has been Ready for the warm settle time (re-runs scheduling).
    NodeSettled(NodeId),
    ImagePulled {
        node: NodeId,
        image: usize,
    },
    /// A user's container is running: the spawn succeeded.
    PodReady(PodId),
    /// The idle culler deletes the server.
    Cull(PodId),
    /// One scheduling pass over the pending queue.
    Schedule,
    AutoscalerScan,
    /// Karpenter's provisioning batch may have closed.
    KarpenterBatch,
    /// A pass of Karpenter's disruption controller.
    KarpenterDisruption,
    PlaceholderReconcile,
    /// The predictive controller reacts to an evicted placeholder's replacement.
    PlaceholderSurplusCheck,
    /// A placeholder's Unschedulable grace has ended: schedule again (and mark it).
    PlaceholderGraceOver,
    Sample,
}
