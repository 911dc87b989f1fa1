//! The continuous image pre-puller DaemonSet: its pod arrives only once the node is Ready
//! (the DaemonSet controller waits for the not-ready taint to lift) and pulls every user
//! image in turn. Its requests are part of the pool's DaemonSet overhead.

use crate::cluster::NodeId;
use crate::engine::Sim;
use hubpack_core::model::Millis;

impl Sim<'_> {
    pub(crate) fn start_prepull(&mut self, node: NodeId, now: Millis) {
        for image in 0..self.sc.images.len() {
            self.ensure_image(node, image, now);
        }
    }
}
