//! The scenario's description of the cluster: node pools, images and user profiles
//! (what a run makes of it is `crate::cluster_state`).

use serde::Deserialize;
use std::collections::BTreeMap;

const GIB: f64 = (1u64 << 30) as f64;

/// A resource amount in human units.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// Cores (0.5 = 500m).
    pub cpu: f64,
    pub memory_gib: f64,
    #[serde(default)]
    pub pods: i64,
    /// Extended resources by name, e.g. `nvidia.com/gpu: 1`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extended: BTreeMap<String, i64>,
}

impl ResourceSpec {
    pub fn to_resources(&self) -> hubpack_core::model::Resources {
        let mut r = hubpack_core::model::Resources::new(
            (self.cpu * 1000.0).round() as i64,
            (self.memory_gib * GIB).round() as i64,
        )
        .with_pods(self.pods);
        for (name, amount) in &self.extended {
            r = r.with_extended(name.clone(), *amount);
        }
        r
    }
}

/// A log-normal duration: median and shape σ (0 = always the median).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DurationDist {
    pub median_s: f64,
    #[serde(default)]
    pub sigma: f64,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub name: String,
    /// Node allocatable, pods included.
    pub allocatable: ResourceSpec,
    /// Every DaemonSet pod on a node (the pre-puller included).
    pub daemonset_overhead: ResourceSpec,
    #[serde(default)]
    pub min_nodes: usize,
    pub max_nodes: usize,
    /// Nodes present, Ready and with every image, at time 0.
    #[serde(default)]
    pub initial_nodes: usize,
    /// From the autoscaler's request to a Ready node.
    pub boot: DurationDist,
    /// Node labels (`key=value`) or label values a profile's node selector or required
    /// node affinity may name to land on this pool, besides the pool's name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_labels: Vec<String>,
    /// Image pulls on this pool's nodes take this long instead of each image's own `pull`.
    /// `plan` honours it (it simulates each pool as its own cluster); `run` and `compare`
    /// take each image's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull: Option<DurationDist>,
    /// The kubelet's `serializeImagePulls` (default true): one pull at a time per node. EKS
    /// and others often set it false: pulls then run side by side.
    #[serde(default = "default_true")]
    pub serialize_image_pulls: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub name: String,
    pub pull: DurationDist,
    #[serde(default = "default_image_mb")]
    pub size_mb: f64,
}

fn default_image_mb() -> f64 {
    2000.0
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    pub name: String,
    pub request: ResourceSpec,
    pub image: String,
    pub pool: String,
    /// Relative share of generated arrivals that pick this profile.
    #[serde(default = "default_weight")]
    pub weight: f64,
}

fn default_weight() -> f64 {
    1.0
}
