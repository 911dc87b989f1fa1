//! Fake nodes: the harness creates them directly (as a cloud would register machines), and
//! cluster-autoscaler creates them from the same templates (see `autoscaler.rs`). A node carries
//! kwok's management annotation, its pool's labels and taints, allocatable resources, and
//! optionally the images already on it (a warm node).

use crate::kwok::{BOOT_DELAY_ANNOTATION, MANAGED_ANNOTATION, go_duration};
use k8s_openapi::api::core::v1::{
    ContainerImage, Node, NodeCondition, NodeSpec, NodeStatus, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;
use std::collections::BTreeMap;
use std::time::Duration;

/// Label naming the pool a node belongs to (z2jh's node purpose).
pub const NODE_PURPOSE_LABEL: &str = "hub.jupyter.org/node-purpose";
/// Taint key z2jh uses to dedicate nodes to users.
pub const DEDICATED_TAINT: &str = "hub.jupyter.org/dedicated";
/// Label cluster-autoscaler's kwok provider reads node-group names from; only nodes made from a
/// group template carry it, so a pod can ask for an autoscaled node.
pub const NODE_GROUP_LABEL: &str = "e2e.hubpack.dev/nodegroup";
/// The annotation cluster-autoscaler's kwok provider tracks group membership by.
pub const GROUP_NAME_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/name";

/// A node pool: the `user` pool is tainted `hub.jupyter.org/dedicated=user:NoSchedule`; both
/// pools are labelled `hub.jupyter.org/node-purpose=<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    User,
    Core,
}

impl Pool {
    pub fn name(self) -> &'static str {
        match self {
            Pool::User => "user",
            Pool::Core => "core",
        }
    }

    pub fn parse(name: &str) -> Option<Pool> {
        match name {
            "user" => Some(Pool::User),
            "core" => Some(Pool::Core),
            _ => None,
        }
    }

    fn taints(self) -> Vec<Taint> {
        match self {
            Pool::User => vec![Taint {
                key: DEDICATED_TAINT.into(),
                value: Some("user".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            }],
            Pool::Core => vec![],
        }
    }
}

/// What a fake node looks like. `NodeTemplate::new(pool)` gives a 4-cpu, 16 GiB, 110-pod node.
#[derive(Clone, Debug)]
pub struct NodeTemplate {
    pub pool: Pool,
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    /// Images already present (names as the kubelet reports them, e.g. `docker.io/library/busybox:1.36`).
    pub images: Vec<String>,
    /// Boot time before Ready; `None` uses the cluster default.
    pub boot_delay: Option<Duration>,
    pub extra_labels: BTreeMap<String, String>,
}

impl NodeTemplate {
    pub fn new(pool: Pool) -> NodeTemplate {
        NodeTemplate {
            pool,
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: 110,
            images: vec![],
            boot_delay: None,
            extra_labels: BTreeMap::new(),
        }
    }

    pub fn with_images<I: IntoIterator<Item = S>, S: Into<String>>(mut self, images: I) -> Self {
        self.images = images.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_boot_delay(mut self, delay: Duration) -> Self {
        self.boot_delay = Some(delay);
        self
    }

    pub fn with_resources(mut self, cpu: &str, memory: &str, pods: u32) -> Self {
        self.cpu = cpu.into();
        self.memory = memory.into();
        self.pods = pods;
        self
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (NODE_PURPOSE_LABEL.to_string(), self.pool.name().to_string()),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("kubernetes.io/arch".to_string(), "amd64".to_string()),
            ("type".to_string(), "kwok".to_string()),
        ]);
        labels.extend(self.extra_labels.clone());
        labels
    }

    /// The Node object named `name` (the hostname label is set too).
    pub fn node(&self, name: &str) -> Node {
        let mut node = self.unnamed_node();
        node.metadata.name = Some(name.to_string());
        node.metadata
            .labels
            .get_or_insert_default()
            .insert("kubernetes.io/hostname".into(), name.into());
        node
    }

    /// The template of node group `group`: no name or hostname label (the autoscaler gives
    /// each node its own), and the node-group label, which only group nodes carry.
    pub fn group_template(&self, group: &str) -> Node {
        let mut node = self.unnamed_node();
        node.metadata
            .labels
            .get_or_insert_default()
            .insert(NODE_GROUP_LABEL.into(), group.into());
        node
    }

    /// Node `name` as a member of node group `group`, as if cluster-autoscaler had added it
    /// (its kwok provider tracks members by annotation and a `kwok:` providerID): a test can
    /// start from a group already scaled up, and CA may remove the node.
    pub fn group_node(&self, name: &str, group: &str) -> Node {
        let mut node = self.node(name);
        node.metadata
            .labels
            .get_or_insert_default()
            .insert(NODE_GROUP_LABEL.into(), group.into());
        node.metadata
            .annotations
            .get_or_insert_default()
            .insert(GROUP_NAME_ANNOTATION.into(), group.into());
        node.spec.get_or_insert_default().provider_id = Some(format!("kwok:{name}"));
        node
    }

    fn unnamed_node(&self) -> Node {
        let mut annotations = BTreeMap::from([(
            MANAGED_ANNOTATION.0.to_string(),
            MANAGED_ANNOTATION.1.to_string(),
        )]);
        if let Some(delay) = self.boot_delay {
            annotations.insert(BOOT_DELAY_ANNOTATION.into(), go_duration(delay));
        }
        let resources = BTreeMap::from([
            ("cpu".to_string(), Quantity(self.cpu.clone())),
            ("memory".to_string(), Quantity(self.memory.clone())),
            ("pods".to_string(), Quantity(self.pods.to_string())),
            ("ephemeral-storage".to_string(), Quantity("100Gi".into())),
        ]);
        let images = (!self.images.is_empty()).then(|| {
            self.images
                .iter()
                .map(|name| ContainerImage {
                    names: Some(vec![name.clone()]),
                    size_bytes: Some(100 << 20),
                })
                .collect()
        });
        Node {
            metadata: ObjectMeta {
                labels: Some(self.labels()),
                annotations: Some(annotations),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(self.pool.taints()).filter(|t| !t.is_empty()),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                allocatable: Some(resources.clone()),
                capacity: Some(resources),
                images,
                conditions: Some(vec![registering_condition()]),
                ..Default::default()
            }),
        }
    }
}

/// `Ready=False`, as a kubelet registers its Node (it fills the status before it creates the
/// object). Without it, kube-controller-manager sees a node with no conditions and lifts the
/// not-ready taint at once, so a scheduler could bind to a node still booting; with it, the
/// taint stays until kwok turns the node Ready after its boot delay.
fn registering_condition() -> NodeCondition {
    NodeCondition {
        type_: "Ready".into(),
        status: "False".into(),
        reason: Some("KubeletNotReady".into()),
        message: Some(
            "kubelet is starting (kwok turns the node Ready after its boot delay)".into(),
        ),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_pool_nodes_are_tainted_labelled_and_managed_by_kwok() {
        let node = NodeTemplate::new(Pool::User)
            .with_images(["docker.io/library/busybox:1.36"])
            .with_boot_delay(Duration::from_secs(3))
            .node("u1");
        let labels = node.metadata.labels.clone().unwrap();
        assert_eq!(labels[NODE_PURPOSE_LABEL], "user");
        assert_eq!(labels["kubernetes.io/hostname"], "u1");
        let annotations = node.metadata.annotations.clone().unwrap();
        assert_eq!(annotations["kwok.x-k8s.io/node"], "fake");
        assert_eq!(annotations[BOOT_DELAY_ANNOTATION], "3000ms");
        let taints = node.spec.unwrap().taints.unwrap();
        assert_eq!(taints[0].key, DEDICATED_TAINT);
        assert_eq!(taints[0].effect, "NoSchedule");
        let status = node.status.unwrap();
        assert_eq!(status.images.unwrap().len(), 1);
        let ready = &status.conditions.unwrap()[0];
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str()),
            ("Ready", "False")
        );
    }

    #[test]
    fn core_pool_nodes_have_no_taint() {
        let node = NodeTemplate::new(Pool::Core).node("c1");
        assert!(node.spec.unwrap().taints.is_none());
    }
}
