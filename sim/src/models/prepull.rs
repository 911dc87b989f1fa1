//! The continuous image pre-puller DaemonSet: its pod arrives only once the node is Ready
//! (the DaemonSet controller waits for the not-ready taint to lift) and pulls the user
//! images through its init containers, one after another: the next image is only asked
//! for when the previous one is there, so a user's pull asked for in between gets the
//! kubelet's next turn. Its requests are part of the pool's DaemonSet overhead.

use crate::cluster_state::{NodeId, NodePhase};
use crate::models::Sim;
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

#[cfg(test)]
mod tests {
    use crate::scenario::{PlaceholderMode, SchedulerKind};
    use crate::test_support::{scenario, sim};

    /// Three images of 100 s each; the user's (c) is asked for 10 s after the node is
    /// Ready, while the pre-puller pulls a. Returns when c is there.
    fn user_image_ready_at(serialize: bool) -> i64 {
        let mut sc = scenario("");
        sc.pools[0].serialize_image_pulls = serialize;
        sc.images.push(sc.images[0].clone());
        sc.images[2].name = "c:1".into();
        let mut s = sim(&sc, SchedulerKind::Hubpack, PlaceholderMode::None);
        let alloc = sc.pools[0].allocatable.to_resources();
        let node = s.cluster.add_node(0, alloc, 0, 0);
        s.on_node_ready(node, 0);
        s.run_until(10_000);
        let at = s.ensure_image(node, 2, 10_000);
        s.run_until(1_000_000);
        // The pre-puller still gets every image.
        assert!(
            s.cluster.nodes[node]
                .image_ready_at
                .iter()
                .all(Option::is_some)
        );
        at
    }

    #[test]
    fn a_users_pull_slips_in_between_the_pre_pullers_images() {
        // Serialized: after a (100 s), before b; not behind a and b (300 s).
        assert_eq!(user_image_ready_at(true), 200_000);
    }

    #[test]
    fn parallel_pulls_start_at_once() {
        assert_eq!(user_image_ready_at(false), 110_000);
    }
}
