//! A pod as the scheduler sees it, converted from core/v1 Pod by the adapters.

use super::{ImageName, Millis, NodeSelector, PreferredTerm, Resources, Toleration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `namespace/name`: the identity the snapshot indexes pods by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PodKey(pub String);

impl PodKey {
    pub fn new(namespace: &str, name: &str) -> PodKey {
        PodKey(format!("{namespace}/{name}"))
    }
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Annotation on placeholder pods: the images of the users they hold seats for, comma
/// separated (set by hubpack-placeholder-ctl and the chart). A placeholder's warmth is
/// judged by these, never by its own `pause` image.
pub const USER_IMAGES_ANNOTATION: &str = "hubpack.io/user-images";

/// What a pod is to hubpack. Only `Placeholder` pods are ever preempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PodRole {
    /// A user's server: scheduled warm-first, may preempt placeholders.
    User,
    /// A seat-holding placeholder (matched by the placeholder selector).
    Placeholder,
    /// Anything else on the node (DaemonSets, system pods): counted, never touched.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PreemptionPolicy {
    #[default]
    PreemptLowerPriority,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostPort {
    pub port: u16,
    /// "TCP" (default), "UDP" or "SCTP".
    pub protocol: String,
    /// "" or "0.0.0.0" means every address.
    pub host_ip: String,
}

/// A volume that constrains placement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PodVolume {
    /// A claim bound to a PV (or an attachable inline volume): the PV's node affinity must
    /// match, and it counts toward the node's attach limit for its CSI driver.
    Bound {
        claim: String,
        node_affinity: Option<NodeSelector>,
        csi_driver: Option<String>,
        /// Unique volume id (PV name or CSI handle), so two pods sharing it count once.
        volume_id: String,
    },
    /// An unbound claim of a WaitForFirstConsumer StorageClass: fits a node where one of the
    /// matching static PVs' node affinity matches, or where the class can provision
    /// (`allowedTopologies`; `None` means anywhere; `provisioner_none` means no dynamic
    /// provisioning at all).
    WaitForFirstConsumer {
        claim: String,
        static_pvs: Vec<StaticPv>,
        allowed_topologies: Option<NodeSelector>,
        provisioner_none: bool,
        csi_driver: Option<String>,
    },
    /// An unbound claim of an Immediate class: unschedulable until the claim is bound.
    UnboundImmediate { claim: String },
    /// The claim does not exist (yet).
    MissingClaim { claim: String },
}

impl PodVolume {
    /// The claim this volume comes from.
    pub fn claim(&self) -> &str {
        match self {
            PodVolume::Bound { claim, .. }
            | PodVolume::WaitForFirstConsumer { claim, .. }
            | PodVolume::UnboundImmediate { claim }
            | PodVolume::MissingClaim { claim } => claim,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StaticPv {
    pub name: String,
    pub node_affinity: Option<NodeSelector>,
}

/// A pod. `requests` is the effective request (see [`crate::model::PodRequest`]) with one pod slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    pub key: PodKey,
    pub uid: String,
    pub role: PodRole,
    pub priority: i32,
    #[serde(default)]
    pub preemption_policy: PreemptionPolicy,
    /// What the pod takes from the node for fit (pods = 1).
    pub requests: Resources,
    /// What scoring counts: like `requests`, but a container with no cpu/memory request
    /// counts as 100m / 200 MiB (kube-scheduler's NonZeroRequested).
    pub score_requests: Resources,
    /// Every image of the pod, init containers included, normalized. For a placeholder: the
    /// images of the users it holds seats for (its own image is `pause`, which says nothing
    /// about warmth); empty when unknown, and then only the pre-puller's readiness makes a
    /// node warm for it.
    #[serde(default)]
    pub images: Vec<ImageName>,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub required_affinity: Option<NodeSelector>,
    #[serde(default)]
    pub preferred_affinity: Vec<PreferredTerm>,
    #[serde(default)]
    pub host_ports: Vec<HostPort>,
    #[serde(default)]
    pub volumes: Vec<PodVolume>,
    /// Constraints hubpack does not implement (pod affinity, topology spread, resource
    /// claims), each named: the pod is reported Unschedulable, never placed in violation.
    #[serde(default)]
    pub unsupported: Vec<String>,
    #[serde(default)]
    pub scheduling_gated: bool,
    #[serde(default)]
    pub deleting: bool,
    pub created: Millis,
    /// `spec.nodeName`: set once bound (or assumed).
    #[serde(default)]
    pub node_name: Option<String>,
    /// `status.nominatedNodeName`.
    #[serde(default)]
    pub nominated_node: Option<String>,
}

impl Pod {
    /// A minimal pod for tests and the simulator: no constraints, one slot.
    pub fn simple(
        key: &str,
        role: PodRole,
        priority: i32,
        requests: Resources,
        created: Millis,
    ) -> Pod {
        let requests = Resources {
            pods: 1,
            ..requests
        };
        Pod {
            key: PodKey(key.to_string()),
            uid: format!("uid-{key}"),
            role,
            priority,
            preemption_policy: PreemptionPolicy::default(),
            score_requests: requests.clone(),
            requests,
            images: Vec::new(),
            tolerations: Vec::new(),
            node_selector: BTreeMap::new(),
            required_affinity: None,
            preferred_affinity: Vec::new(),
            host_ports: Vec::new(),
            volumes: Vec::new(),
            unsupported: Vec::new(),
            scheduling_gated: false,
            deleting: false,
            created,
            node_name: None,
            nominated_node: None,
        }
    }

    pub fn may_preempt(&self) -> bool {
        self.role == PodRole::User
            && self.preemption_policy == PreemptionPolicy::PreemptLowerPriority
    }
}
