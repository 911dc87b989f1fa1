//! What every step reads off a pod key or a raw pod: namespace and name, priority and
//! creation time.

use hubpack_core::model::{Millis, PodKey};
use k8s_openapi::api::core::v1::Pod;

/// `namespace/name` → (namespace, name); a key without a namespace is in `default`.
pub(crate) fn split(key: &PodKey) -> (String, String) {
    match key.0.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => ("default".to_string(), key.0.clone()),
    }
}

/// The pod's priority (0 when unset) and its creation time (0 when unset).
pub(crate) fn priority_and_created(raw: &Pod) -> (i32, Millis) {
    (
        raw.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
        raw.metadata
            .creation_timestamp
            .as_ref()
            .map(hubpack_kube::convert::time_millis)
            .unwrap_or(0),
    )
}
