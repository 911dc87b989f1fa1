//! Builders of k8s objects for unit tests.

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

pub const NS: &str = "hub";

fn ts(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .expect("test time in range")
        .to_string()
}

pub fn node(name: &str, created: i64, ready_at: Option<i64>, images: &[&str]) -> Node {
    let conditions = match ready_at {
        Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": ts(t)}]),
        None => json!([{"type": "Ready", "status": "False"}]),
    };
    serde_json::from_value(json!({
        "metadata": {"name": name, "creationTimestamp": ts(created),
                     "labels": {"hub.jupyter.org/node-purpose": "user"}},
        "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                   "conditions": conditions,
                   "images": [{"names": images}]}
    }))
    .expect("valid node")
}

pub fn user(name: &str, node: Option<&str>, created: i64, cpu: Option<&str>) -> Pod {
    let resources = match cpu {
        Some(c) => json!({"requests": {"cpu": c, "memory": "2Gi"}}),
        None => json!({}),
    };
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS, "uid": format!("uid-{name}"),
                     "creationTimestamp": ts(created),
                     "labels": {"component": "singleuser-server"}},
        "spec": {"nodeName": node, "containers": [{"name": "nb", "image": "quay.io/jupyter/scipy-notebook:2024-12-02", "resources": resources}]},
        "status": {"phase": if node.is_some() { "Running" } else { "Pending" }}
    }))
    .expect("valid pod")
}

pub fn placeholder(
    name: &str,
    node: Option<&str>,
    unschedulable_at: Option<i64>,
    cpu_milli: i64,
) -> Pod {
    let conditions = match unschedulable_at {
        Some(t) => {
            json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": ts(t)}])
        }
        None => json!([]),
    };
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS, "uid": format!("uid-{name}"),
                     "creationTimestamp": ts(0),
                     "labels": {"app.kubernetes.io/component": "user-placeholder", "hubpack.io/pool": "default",
                                "hubpack.io/placeholder": "hubpack-placeholder-default"}},
        "spec": {"nodeName": node, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                 "resources": {"requests": {"cpu": format!("{cpu_milli}m"), "memory": "1Gi"}}}]},
        "status": {"phase": if node.is_some() { "Running" } else { "Pending" }, "conditions": conditions}
    }))
    .expect("valid pod")
}

pub fn prepuller(node: &str, ready_at: Option<i64>) -> Pod {
    let conditions = match ready_at {
        Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": ts(t)}]),
        None => json!([{"type": "Ready", "status": "False"}]),
    };
    serde_json::from_value(json!({
        "metadata": {"name": format!("pp-{node}"), "namespace": NS, "uid": format!("uid-pp-{node}"),
                     "labels": {"app.kubernetes.io/component": "image-prepuller", "hubpack.io/pool": "default"}},
        "spec": {"nodeName": node, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                 "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}}}]},
        "status": {"phase": "Running", "conditions": conditions}
    }))
    .expect("valid pod")
}
