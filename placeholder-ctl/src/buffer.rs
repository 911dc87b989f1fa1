//! The `capacityBuffer` backend's objects, built as values (pure): per pool (and zone) one
//! PodTemplate shaped as the pool's N-user placeholder pod and one CapacityBuffer
//! (`autoscaling.x-k8s.io/v1beta1`) asking for `replicas` such chunks; the buffer's status
//! as the controller reads it; and how free warm seats are shared with the chunks the
//! cluster autoscaler packs onto existing nodes. The adapter (`adapter::buffer`) writes
//! and reads them.

use crate::config::{Config, PoolConfig, PoolSizes};
use crate::objects::{owner_labels, placeholder_deployment, placeholder_name};
use crate::resources::to_quantities;
/// The buffer arithmetic the simulator shares.
pub use hubpack_core::headroom::buffer::{RAISE_GRACE_MS, chunks_on_warm_nodes, hold_raise};
use hubpack_core::model::Resources;
use k8s_openapi::api::core::v1::PodTemplate;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const BUFFER_GROUP: &str = "autoscaling.x-k8s.io";
pub const BUFFER_VERSION: &str = "v1beta1";
pub const BUFFER_API_VERSION: &str = "autoscaling.x-k8s.io/v1beta1";
pub const BUFFER_KIND: &str = "CapacityBuffer";
pub const BUFFER_PLURAL: &str = "capacitybuffers";
/// The component label of the PodTemplate and the CapacityBuffer.
pub const BUFFER_COMPONENT: &str = "capacity-buffer";
/// The strategy CA's pod injection serves (and its controller's default): scale up for
/// the chunks that do not fit.
pub const ACTIVE_CAPACITY: &str = "buffer.x-k8s.io/active-capacity";

/// The PodTemplate and the CapacityBuffer of a pool (per zone when split) share the
/// placeholder Deployment's name: a pool has one or the other.
pub fn buffer_name(pool: &str, zone: Option<&str>) -> String {
    placeholder_name(pool, zone)
}

/// A reference by name to an object in the buffer's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRef {
    pub name: String,
}

/// The part of `CapacityBuffer.spec` the controller owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CapacityBufferSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_ref: Option<LocalRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<BTreeMap<String, Quantity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_strategy: Option<String>,
}

/// One status condition, every field optional: a condition written by another version
/// of the autoscaler still reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BufferCondition {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// `CapacityBuffer.status` as the autoscaler's buffer controller writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CapacityBufferStatus {
    /// The chunks the autoscaler provisions (after `limits` and ResourceQuotas).
    #[serde(default)]
    pub replicas: Option<i32>,
    #[serde(default)]
    pub conditions: Vec<BufferCondition>,
}

/// A CapacityBuffer as applied and as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityBuffer {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: CapacityBufferSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CapacityBufferStatus>,
}

/// The PodTemplate of one buffer: the pool's N-user placeholder pod, rendered by
/// [`placeholder_deployment`] (same requests, selector, tolerations, affinity, priority
/// class, scheduler), so the autoscaler's virtual pods are what a placeholder would be.
pub fn pod_template(
    cfg: &Config,
    pool: &PoolConfig,
    sizes: &PoolSizes,
    zone: Option<&str>,
    user_images: &[String],
    owner: Option<&OwnerReference>,
) -> PodTemplate {
    let placeholder = placeholder_deployment(cfg, pool, sizes, zone, 0, user_images, owner);
    PodTemplate {
        metadata: ObjectMeta {
            name: Some(buffer_name(&pool.name, zone)),
            namespace: Some(cfg.namespace()),
            labels: Some(owner_labels(cfg, BUFFER_COMPONENT, &pool.name, zone)),
            owner_references: owner.map(|o| vec![o.clone()]),
            ..Default::default()
        },
        template: placeholder.spec.map(|s| s.template),
    }
}

/// The cost guard as the buffer's `spec.limits`: `max_chunks` chunks' cpu and memory, so
/// the autoscaler never provisions more than the controller may ask for.
pub fn buffer_limits(sizes: &PoolSizes, max_chunks: usize) -> BTreeMap<String, Quantity> {
    let k = i64::try_from(max_chunks).unwrap_or(i64::MAX);
    let r = &sizes.placeholder_request;
    let total = Resources::new(r.cpu_milli.saturating_mul(k), r.memory.saturating_mul(k));
    to_quantities(&total)
        .into_iter()
        .filter(|(name, _)| name == "cpu" || name == "memory")
        .collect()
}

/// One pool's (or zone's) CapacityBuffer: `replicas` chunks of [`pod_template`], at most
/// `max_chunks` by its limits.
pub fn capacity_buffer(
    cfg: &Config,
    pool: &PoolConfig,
    sizes: &PoolSizes,
    zone: Option<&str>,
    replicas: i32,
    max_chunks: usize,
    owner: Option<&OwnerReference>,
) -> CapacityBuffer {
    let name = buffer_name(&pool.name, zone);
    CapacityBuffer {
        api_version: BUFFER_API_VERSION.into(),
        kind: BUFFER_KIND.into(),
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(cfg.namespace()),
            labels: Some(owner_labels(cfg, BUFFER_COMPONENT, &pool.name, zone)),
            owner_references: owner.map(|o| vec![o.clone()]),
            ..Default::default()
        },
        spec: CapacityBufferSpec {
            pod_template_ref: Some(LocalRef { name }),
            replicas: Some(replicas),
            limits: Some(buffer_limits(sizes, max_chunks)),
            provisioning_strategy: Some(ACTIVE_CAPACITY.into()),
        },
        status: None,
    }
}

/// The placement names of a pool and their zones (the buffers it owns).
pub fn placements(pool: &PoolConfig) -> Vec<(String, Option<String>)> {
    pool.zone_values()
        .into_iter()
        .map(|z| (buffer_name(&pool.name, z.as_deref()), z))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::config::Backend;
    use crate::objects;

    fn cfg() -> Config {
        Config::parse(include_str!("../config.example.yaml"), "t").unwrap()
    }

    #[test]
    fn backend_defaults_to_placeholders_and_reads_capacity_buffer() {
        let c = cfg();
        assert_eq!(c.pools[0].backend, Backend::Placeholders);
        let text = include_str!("../config.example.yaml").replace(
            "  - name: default\n",
            "  - name: default\n    backend: capacityBuffer\n",
        );
        assert_ne!(text, include_str!("../config.example.yaml"));
        let c = Config::parse(&text, "t").unwrap();
        assert_eq!(c.pools[0].backend, Backend::CapacityBuffer);
        let bad = text.replace("backend: capacityBuffer", "backend: buffers");
        let e = Config::parse(&bad, "t").unwrap_err().to_string();
        assert!(
            e.contains("backend") || e.contains("unknown variant"),
            "{e}"
        );
    }

    #[test]
    fn the_pod_template_is_the_placeholder_pod() {
        let c = cfg();
        let sizes = c.pool_sizes().unwrap();
        let images = vec!["quay.io/jupyter/scipy-notebook:2024-12-02".to_string()];
        let pt = pod_template(&c, &c.pools[0], &sizes[0], None, &images, None);
        let d = placeholder_deployment(&c, &c.pools[0], &sizes[0], None, 3, &images, None);
        assert_eq!(pt.template, d.spec.map(|s| s.template));
        assert_eq!(
            pt.metadata.name.as_deref(),
            Some("hubpack-placeholder-default")
        );
        let labels = pt.metadata.labels.unwrap();
        assert_eq!(labels[objects::COMPONENT_LABEL], BUFFER_COMPONENT);
        assert_eq!(labels[objects::MANAGED_BY_LABEL], objects::MANAGER);
    }

    #[test]
    fn the_buffer_refers_to_its_template_and_caps_by_limits() {
        let c = cfg();
        let sizes = c.pool_sizes().unwrap();
        let owner = objects::owner_of("ConfigMap", "v1", "cfg", "u-1");
        let b = capacity_buffer(&c, &c.pools[0], &sizes[0], None, 4, 10, Some(&owner));
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["apiVersion"], "autoscaling.x-k8s.io/v1beta1");
        assert_eq!(v["kind"], "CapacityBuffer");
        assert_eq!(
            v["spec"]["podTemplateRef"]["name"],
            "hubpack-placeholder-default"
        );
        assert_eq!(v["spec"]["replicas"], 4);
        assert_eq!(v["spec"]["provisioningStrategy"], ACTIVE_CAPACITY);
        assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert!(v.get("status").is_none(), "status is the autoscaler's");
        // 10 chunks of N × 500m.
        let n = sizes[0].seats_each;
        assert_eq!(
            v["spec"]["limits"]["cpu"],
            format!("{}m", 10 * n * 500).as_str()
        );
        assert!(v["spec"]["limits"]["memory"].is_string());
        assert!(v["spec"]["limits"].get("pods").is_none());
    }

    #[test]
    fn a_status_written_by_the_autoscaler_reads() {
        let v = serde_json::json!({
            "apiVersion": "autoscaling.x-k8s.io/v1beta1", "kind": "CapacityBuffer",
            "metadata": {"name": "b"},
            "spec": {"podTemplateRef": {"name": "b"}, "replicas": 3},
            "status": {"replicas": 1, "podTemplateGeneration": 2, "conditions": [
                {"type": "ReadyForProvisioning", "status": "True", "reason": "AttributesSetSuccessfully",
                 "message": "ready", "lastTransitionTime": "2026-12-06T10:00:00Z"},
                {"type": "LimitedByQuotas", "status": "True", "reason": "ResourceQuotasAllocated",
                 "message": "limited from 3 to 1 by quotas: q", "lastTransitionTime": "2026-12-06T10:00:00Z"}]}
        });
        let b: CapacityBuffer = serde_json::from_value(v).unwrap();
        let s = b.status.unwrap();
        assert_eq!(s.replicas, Some(1));
        assert_eq!(s.conditions.len(), 2);
        assert_eq!(s.conditions[1].type_, "LimitedByQuotas");
        assert_eq!(b.spec.replicas, Some(3));
    }
}
