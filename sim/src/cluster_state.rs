//! The simulated cluster's state as a run changes it (the scenario's pools describe it
//! before the run): nodes (booting, Ready, deleted), pods (users and placeholders), the
//! pending queue, resource accounting, and — for the hubpack scheduler — a mirrored
//! `hubpack_core::snapshot::Snapshot` kept in step with every change.

use hubpack_core::model::{ImageName, Millis, Node, Pod, PodKey, PodRole, Resources};
use hubpack_core::snapshot::Snapshot;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub type NodeId = usize;
pub type PodId = usize;

pub const POOL_LABEL: &str = "hubpack.sim/pool";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodePhase {
    Booting,
    Ready,
    Deleted,
}

#[derive(Debug, Clone)]
pub struct NodeState {
    pub name: String,
    pub pool: usize,
    pub phase: NodePhase,
    pub created: Millis,
    /// When it turns (or turned) Ready.
    pub ready_at: Millis,
    pub deleted_at: Option<Millis>,
    pub allocatable: Resources,
    /// Every pod bound here, DaemonSets included once Ready.
    pub requested: Resources,
    pub users: usize,
    pub placeholders: usize,
    /// The part of `requested` held by placeholders.
    pub held: Resources,
    pub pods: Vec<PodId>,
    /// Per scenario image: when it is (or will be) present. `None`: not pulled.
    pub image_ready_at: Vec<Option<Millis>>,
    /// The kubelet pulls one image at a time (serializeImagePulls): the next pull starts here.
    pub pull_free_at: Millis,
    /// The pre-puller's next init container (image index) and the image it waits for.
    pub prepull_pos: usize,
    pub prepull_waiting: Option<usize>,
    pub unneeded_since: Option<Millis>,
    /// cluster-autoscaler skips a node whose pods could not be moved until then.
    pub unremovable_until: Millis,
    /// When the placeholder whose scale-up added this node was marked Unschedulable
    /// (a lead-time sample once the node is warm).
    pub lead_trigger: Option<Millis>,
    /// Tainted for removal (Karpenter's `karpenter.sh/disrupted:NoSchedule` while its
    /// replacement boots): no new pod lands on it.
    pub cordoned: bool,
    /// When a pod last came to or left the node (Karpenter's `consolidateAfter` counts
    /// from it).
    pub last_pod_event: Millis,
    /// Present at the start (`initial_nodes`): under Karpenter, a node group of its own that
    /// Karpenter does not own (no NodeClaim), so it never disrupts it.
    pub initial: bool,
}

impl NodeState {
    pub fn has_image(&self, image: usize, now: Millis) -> bool {
        matches!(self.image_ready_at.get(image), Some(Some(t)) if *t <= now)
    }

    pub fn free(&self) -> Resources {
        &self.allocatable - &self.requested
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodKind {
    /// The index of the user (session) this server belongs to.
    User(usize),
    Placeholder,
}

#[derive(Debug, Clone)]
pub struct PodState {
    pub kind: PodKind,
    pub pool: usize,
    pub image: Option<usize>,
    pub node: Option<NodeId>,
    pub created: Millis,
    pub bound_at: Option<Millis>,
    /// The scheduler tried and found no node: the autoscaler may scale up for it.
    pub unschedulable: bool,
    /// Until then the scheduler does not mark it Unschedulable (a placeholder's grace).
    pub hold_unschedulable_until: Millis,
    /// When it was first marked Unschedulable.
    pub marked_unschedulable_at: Option<Millis>,
    pub alive: bool,
    /// The pod as hubpack-core sees it (requests, priority, images, selector).
    pub core: Pod,
}

impl PodState {
    pub fn requests(&self) -> &Resources {
        &self.core.requests
    }
    pub fn priority(&self) -> i32 {
        self.core.priority
    }
}

/// Pending pods in kube-scheduler's queue order: higher priority first, then older.
type QueueKey = (i32, Millis, PodId);

pub struct ClusterState {
    pub nodes: Vec<NodeState>,
    pub pods: Vec<PodState>,
    pending: BTreeSet<QueueKey>,
    node_by_name: HashMap<String, NodeId>,
    pod_by_key: HashMap<PodKey, PodId>,
    /// Mirrored only when the hubpack scheduler runs.
    pub snapshot: Option<Snapshot>,
    pub image_names: Vec<ImageName>,
    /// Image sizes for kube-scheduler's ImageLocality score.
    pub image_sizes_mb: Vec<f64>,
    pool_names: Vec<String>,
    /// Per pool, the DaemonSet request added to each Ready node.
    daemonsets: Vec<Resources>,
    /// Live node count per pool (booting + Ready).
    pub live_nodes: Vec<usize>,
}

impl ClusterState {
    pub fn new(
        image_names: Vec<ImageName>,
        image_sizes_mb: Vec<f64>,
        pool_names: Vec<String>,
        daemonsets: Vec<Resources>,
        mirror_snapshot: bool,
    ) -> ClusterState {
        let pools = pool_names.len();
        // The overhead runs as at least one pod (`daemonset_pods`), and the scheduler counts
        // that pod's slot: the node's own accounting must count it too, or seats that the
        // pod-count limit forbids look free.
        let daemonsets = daemonsets
            .into_iter()
            .map(|d| Resources {
                pods: d.pods.max(1),
                ..d
            })
            .collect();
        ClusterState {
            nodes: Vec::new(),
            pods: Vec::new(),
            pending: BTreeSet::new(),
            node_by_name: HashMap::new(),
            pod_by_key: HashMap::new(),
            snapshot: mirror_snapshot.then(Snapshot::new),
            image_names,
            image_sizes_mb,
            pool_names,
            daemonsets,
            live_nodes: vec![0; pools],
        }
    }

    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.node_by_name.get(name).copied()
    }

    pub fn pod_id(&self, key: &PodKey) -> Option<PodId> {
        self.pod_by_key.get(key).copied()
    }

    pub fn pending(&self) -> impl Iterator<Item = PodId> + '_ {
        self.pending.iter().map(|k| k.2)
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// A new node, booting until `ready_at`.
    pub fn add_node(
        &mut self,
        pool: usize,
        allocatable: Resources,
        now: Millis,
        ready_at: Millis,
    ) -> NodeId {
        let id = self.nodes.len();
        let name = format!("{}-{id}", self.pool_names[pool]);
        self.node_by_name.insert(name.clone(), id);
        self.nodes.push(NodeState {
            name,
            pool,
            phase: NodePhase::Booting,
            created: now,
            ready_at,
            deleted_at: None,
            allocatable,
            requested: Resources::default(),
            users: 0,
            placeholders: 0,
            held: Resources::default(),
            pods: Vec::new(),
            image_ready_at: vec![None; self.image_names.len()],
            pull_free_at: ready_at,
            prepull_pos: 0,
            prepull_waiting: None,
            unneeded_since: None,
            unremovable_until: 0,
            lead_trigger: None,
            cordoned: false,
            last_pod_event: now,
            initial: false,
        });
        self.live_nodes[pool] += 1;
        id
    }

    /// The node turns Ready: its DaemonSet pods take their share.
    pub fn node_ready(&mut self, id: NodeId, now: Millis) {
        let pool = self.nodes[id].pool;
        let ds = self.daemonsets[pool].clone();
        let n = &mut self.nodes[id];
        n.phase = NodePhase::Ready;
        n.ready_at = now;
        // Karpenter counts `consolidateAfter` from initialization until a pod comes.
        n.last_pod_event = n.last_pod_event.max(now);
        n.requested += &ds;
        n.pull_free_at = n.pull_free_at.max(now);
        if self.snapshot.is_some() {
            let core = self.core_node(id, now);
            let name = self.nodes[id].name.clone();
            if let Some(s) = self.snapshot.as_mut() {
                s.upsert_node(core);
                for ds_pod in daemonset_pods(&name, &ds, now) {
                    s.upsert_pod(ds_pod);
                }
            }
        }
    }

    /// Re-publishes a node to the snapshot after its images changed.
    pub fn refresh_node(&mut self, id: NodeId, now: Millis) {
        if self.snapshot.is_some() && self.nodes[id].phase == NodePhase::Ready {
            let core = self.core_node(id, now);
            if let Some(s) = self.snapshot.as_mut() {
                s.upsert_node(core);
            }
        }
    }

    fn core_node(&self, id: NodeId, now: Millis) -> Node {
        let n = &self.nodes[id];
        let mut node = Node::new(&n.name, n.allocatable.clone());
        node.ready_since = Some(n.ready_at.min(now));
        node.labels
            .insert(POOL_LABEL.to_string(), self.pool_names[n.pool].clone());
        node.images = n
            .image_ready_at
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, Some(t) if *t <= now))
            .map(|(i, _)| self.image_names[i].clone())
            .collect();
        node.prepull_ready = node.images.len() == self.image_names.len();
        node.unschedulable = n.cordoned;
        node
    }

    /// Taints a node for removal: nothing new is scheduled onto it.
    pub fn cordon(&mut self, id: NodeId, now: Millis) {
        self.nodes[id].cordoned = true;
        self.refresh_node(id, now);
    }

    /// Removes a node; returns the pods that were on it (now unbound, not yet deleted).
    pub fn delete_node(&mut self, id: NodeId, now: Millis) -> Vec<PodId> {
        let n = &mut self.nodes[id];
        n.phase = NodePhase::Deleted;
        n.deleted_at = Some(now);
        let pods = std::mem::take(&mut n.pods);
        n.requested = Resources::default();
        n.users = 0;
        n.placeholders = 0;
        n.held = Resources::default();
        let pool = n.pool;
        self.live_nodes[pool] -= 1;
        for &p in &pods {
            self.pods[p].node = None;
        }
        let name = self.nodes[id].name.clone();
        if let Some(s) = self.snapshot.as_mut() {
            for &p in &pods {
                s.remove_pod(&self.pods[p].core.key);
            }
            let ds = &self.daemonsets[pool];
            for ds_pod in daemonset_pods(&name, ds, now) {
                s.remove_pod(&ds_pod.key);
            }
            s.remove_node(&name);
        }
        pods
    }

    /// A new pending pod.
    pub fn create_pod(
        &mut self,
        kind: PodKind,
        pool: usize,
        image: Option<usize>,
        mut core: Pod,
        now: Millis,
    ) -> PodId {
        let id = self.pods.len();
        core.node_selector =
            BTreeMap::from([(POOL_LABEL.to_string(), self.pool_names[pool].clone())]);
        if let Some(i) = image {
            core.images = vec![self.image_names[i].clone()];
        }
        self.pod_by_key.insert(core.key.clone(), id);
        self.pending.insert((-core.priority, now, id));
        self.pods.push(PodState {
            kind,
            pool,
            image,
            node: None,
            created: now,
            bound_at: None,
            unschedulable: false,
            hold_unschedulable_until: 0,
            marked_unschedulable_at: None,
            alive: true,
            core,
        });
        id
    }

    pub fn bind(&mut self, pod: PodId, node: NodeId, now: Millis) {
        let p = &mut self.pods[pod];
        self.pending.remove(&(-p.core.priority, p.created, pod));
        p.node = Some(node);
        p.bound_at = Some(now);
        p.unschedulable = false;
        p.core.node_name = Some(self.nodes[node].name.clone());
        let n = &mut self.nodes[node];
        n.last_pod_event = now;
        n.requested += &p.core.requests;
        n.pods.push(pod);
        match p.kind {
            PodKind::User(_) => n.users += 1,
            PodKind::Placeholder => {
                n.placeholders += 1;
                n.held += &p.core.requests;
            }
        }
        if let Some(s) = self.snapshot.as_mut() {
            s.upsert_pod(p.core.clone());
        }
    }

    /// Deletes a pod wherever it is (pending or bound).
    pub fn delete_pod(&mut self, pod: PodId, now: Millis) {
        let p = &mut self.pods[pod];
        if !p.alive {
            return;
        }
        p.alive = false;
        self.pending.remove(&(-p.core.priority, p.created, pod));
        self.pod_by_key.remove(&p.core.key);
        if let Some(node) = p.node.take() {
            let n = &mut self.nodes[node];
            n.last_pod_event = now;
            n.requested -= &p.core.requests;
            if let Some(i) = n.pods.iter().position(|&x| x == pod) {
                n.pods.swap_remove(i);
            }
            match p.kind {
                PodKind::User(_) => n.users -= 1,
                PodKind::Placeholder => {
                    n.placeholders -= 1;
                    n.held -= &p.core.requests;
                }
            }
            if let Some(s) = self.snapshot.as_mut() {
                s.remove_pod(&p.core.key);
            }
        }
    }

    pub fn mark_unschedulable(&mut self, pod: PodId, now: Millis) {
        let p = &mut self.pods[pod];
        if !p.unschedulable && p.marked_unschedulable_at.is_none() {
            p.marked_unschedulable_at = Some(now);
        }
        p.unschedulable = true;
    }

    /// Ready nodes that take new pods (not tainted for removal).
    pub fn ready_nodes(&self) -> impl Iterator<Item = (NodeId, &NodeState)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.phase == NodePhase::Ready && !n.cordoned)
    }
}

/// The pool's DaemonSet overhead as pods on `node`: one pod per slot it takes (each pod is
/// one slot to the scheduler), the first carrying all of its cpu and memory.
fn daemonset_pods(node: &str, overhead: &Resources, now: Millis) -> Vec<Pod> {
    (0..overhead.pods.max(1))
        .map(|i| {
            let requests = if i == 0 {
                Resources {
                    pods: 1,
                    ..overhead.clone()
                }
            } else {
                Resources::new(0, 0).with_pods(1)
            };
            let mut p = Pod::simple(
                &format!("kube-system/ds-{node}-{i}"),
                PodRole::Other,
                0,
                requests,
                now,
            );
            p.node_name = Some(node.to_string());
            p
        })
        .collect()
}
