//! Node pools: nodes boot for a sampled time, turn Ready (DaemonSets land), and pull images
//! each once per node: one at a time in request order (the kubelet's default
//! `serializeImagePulls: true`), or side by side when the pool turns that off.

use crate::cluster_state::NodeId;
use crate::events::Event;
use crate::models::Sim;
use crate::models::dist;
use hubpack_core::model::Millis;

impl Sim<'_> {
    /// Initial nodes: Ready at time 0 with every image present.
    pub(crate) fn start_pools(&mut self) {
        for (pool, spec) in self.sc.pools.iter().enumerate() {
            for _ in 0..spec.initial_nodes {
                let id = self
                    .cluster
                    .add_node(pool, spec.allocatable.to_resources(), 0, 0);
                self.cluster.nodes[id].image_ready_at = vec![Some(0); self.sc.images.len()];
                self.cluster.nodes[id].initial = true;
                self.cluster.node_ready(id, 0);
            }
        }
        self.note_node_count();
    }

    fn note_node_count(&mut self) {
        let live: usize = self.cluster.live_nodes.iter().sum();
        self.autoscaler.peak_nodes = self.autoscaler.peak_nodes.max(live);
    }

    /// The cloud starts a machine for `pool`; it registers Ready after the boot time.
    pub(crate) fn boot_node(&mut self, pool: usize, now: Millis) -> NodeId {
        let spec = &self.sc.pools[pool];
        let ready_at = now + dist::sample(&spec.boot, &mut self.rng);
        let id = self
            .cluster
            .add_node(pool, spec.allocatable.to_resources(), now, ready_at);
        self.agenda.at(ready_at, Event::NodeReady(id));
        self.note_node_count();
        id
    }

    pub(crate) fn on_node_ready(&mut self, node: NodeId, now: Millis) {
        if self.cluster.nodes[node].phase != crate::cluster_state::NodePhase::Booting {
            return;
        }
        self.cluster.node_ready(node, now);
        if self.policy.prepull {
            self.start_prepull(node, now);
        }
        self.agenda
            .at(now + self.warm_settle + 1, Event::NodeSettled(node));
        self.request_schedule(now);
    }

    /// When `image` will be present on `node`, starting its pull behind any pull under way.
    pub(crate) fn ensure_image(&mut self, node: NodeId, image: usize, now: Millis) -> Millis {
        if let Some(Some(t)) = self.cluster.nodes[node].image_ready_at.get(image) {
            return *t;
        }
        let pull = dist::sample(&self.sc.images[image].pull, &mut self.rng);
        let serial = self.sc.pools[self.cluster.nodes[node].pool].serialize_image_pulls;
        let n = &mut self.cluster.nodes[node];
        let done = if serial {
            n.pull_free_at.max(now) + pull
        } else {
            now + pull
        };
        n.pull_free_at = n.pull_free_at.max(done);
        n.image_ready_at[image] = Some(done);
        self.agenda.at(done, Event::ImagePulled { node, image });
        done
    }

    pub(crate) fn on_image_pulled(&mut self, node: NodeId, image: usize, now: Millis) {
        if self.cluster.nodes[node].prepull_waiting == Some(image) {
            self.prepull_next(node, now);
        }
        if self.cluster.nodes[node].phase == crate::cluster_state::NodePhase::Ready {
            if self.sc.image_index(&self.sc.profiles[0].image) == Some(image) {
                self.learn_lead_time(node, now);
            }
            self.cluster.refresh_node(node, now);
            self.request_schedule(now);
        }
    }
}
