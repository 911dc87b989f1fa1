//! A node as the scheduler sees it, converted from core/v1 Node (+ CSINode, + the pre-pull
//! pod's readiness) by the adapters.

use super::{ImageName, Millis, Resources, Taint};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    /// `status.allocatable`, pods included.
    pub allocatable: Resources,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
    #[serde(default)]
    pub unschedulable: bool,
    /// When the Ready condition last turned True; `None` while not Ready.
    #[serde(default)]
    pub ready_since: Option<Millis>,
    /// `status.images`, normalized (the kubelet lists at most 50 by default).
    #[serde(default)]
    pub images: BTreeSet<ImageName>,
    /// The image pre-pull pod on this node is Ready: every user image is present.
    #[serde(default)]
    pub prepull_ready: bool,
    /// CSINode per-driver attach limits (`allocatable.count`).
    #[serde(default)]
    pub attach_limits: BTreeMap<String, i64>,
}

impl Node {
    pub fn new(name: &str, allocatable: Resources) -> Node {
        Node {
            name: name.to_string(),
            allocatable,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            unschedulable: false,
            ready_since: Some(0),
            images: BTreeSet::new(),
            prepull_ready: false,
            attach_limits: BTreeMap::new(),
        }
    }
}
