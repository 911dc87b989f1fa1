//! The continuous image pre-puller DaemonSet: its pod arrives only once the node is Ready
//! (the DaemonSet controller waits for the not-ready taint to lift) and pulls the user
//! images through its init containers, one after another: the next image is only asked
//! for when the previous one is there, so a user's pull asked for in between gets the
//! kubelet's next turn. Its requests are part of the pool's DaemonSet overhead.

use crate::cluster::{NodeId, NodePhase};
use crate::engine::Sim;
use hubpack_core::model::Millis;

impl Sim<'_> {
    pub(crate) fn start_prepull(&mut self, node: NodeId, now: Millis) {
        self.cluster.nodes[node].prepull_pos = 0;
        self.prepull_next(node, now);
    }

    /// Runs the pre-puller's init containers from where it stands: each present image is
    /// done at once; the first missing one is asked for and waited on.
    pub(crate) fn prepull_next(&mut self, node: NodeId, now: Millis) {
        self.cluster.nodes[node].prepull_waiting = None;
        while self.cluster.nodes[node].phase == NodePhase::Ready
            && self.cluster.nodes[node].prepull_pos < self.sc.images.len()
        {
            let image = self.cluster.nodes[node].prepull_pos;
            if self.ensure_image(node, image, now) > now {
                self.cluster.nodes[node].prepull_waiting = Some(image);
                return;
            }
            self.cluster.nodes[node].prepull_pos += 1;
        }
    }
}
