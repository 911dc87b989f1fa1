//! End-state checks over the cluster as listed from the API, for tests that let a scheduler
//! loose on a burst: no node's pods request more than its allocatable, no pod sits on a node it
//! may not run on, and no pending pod would fit somewhere. Computed from the API objects alone,
//! never from the scheduler's own bookkeeping, which is what is under test.

use crate::placement::{node_of, requests_by_node, selects, terminal, tolerates_all};
use crate::resources::{allocatable, pod_request};
use crate::wait::node_schedulable;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::Api;
use kube::api::ListParams;

/// Every node and every pod of the cluster.
pub async fn list_all(client: &kube::Client) -> Result<(Vec<Node>, Vec<Pod>), kube::Error> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    Ok((nodes.items, pods.items))
}

fn name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Nodes whose non-terminal pods together request more cpu, memory or pod slots than the
/// node's allocatable, one line each.
pub fn overcommitted(nodes: &[Node], pods: &[Pod]) -> Vec<String> {
    let used = requests_by_node(pods);
    nodes
        .iter()
        .filter_map(|node| {
            let name = node.metadata.name.as_deref()?;
            let used = used.get(name).copied().unwrap_or_default();
            let allocatable = allocatable(node);
            (!allocatable.fits(&used))
                .then(|| format!("{name}: pods request {used:?}, allocatable {allocatable:?}"))
        })
        .collect()
}

/// The pool's taints of a node. The node lifecycle controller's condition taints
/// (`node.kubernetes.io/…`) are left out: they come and go with heartbeats, and a pod placed
/// before one appeared was placed rightly.
fn pool_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .filter(|t| !t.key.starts_with("node.kubernetes.io/"))
        .cloned()
        .collect()
}

/// Non-terminal pods bound to a node that does not exist, that their nodeSelector or required
/// node affinity rejects, or whose taints they do not tolerate, one line each.
pub fn misplaced(nodes: &[Node], pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter(|p| !terminal(p))
        .filter_map(|pod| {
            let node_name = node_of(pod)?;
            let Some(node) = nodes
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(node_name))
            else {
                return Some(format!(
                    "{} is bound to unknown node {node_name}",
                    name(pod)
                ));
            };
            let labels = node.metadata.labels.clone().unwrap_or_default();
            if !selects(pod, &labels) {
                return Some(format!(
                    "{} on {node_name}: its selector rejects the node",
                    name(pod)
                ));
            }
            if !tolerates_all(pod, &pool_taints(node)) {
                return Some(format!(
                    "{} on {node_name}: an untolerated taint",
                    name(pod)
                ));
            }
            None
        })
        .collect()
}

/// Pending pods among those `ours` accepts (unbound, not terminal, not being deleted) that
/// would fit a schedulable node as things stand (its selector and taints allow it, the node's
/// free room holds its requests), one line each naming a node it fits.
pub fn pending_that_fit(nodes: &[Node], pods: &[Pod], ours: impl Fn(&Pod) -> bool) -> Vec<String> {
    let used = requests_by_node(pods);
    let open: Vec<&Node> = nodes
        .iter()
        .filter(|n| node_schedulable(n) && n.metadata.deletion_timestamp.is_none())
        .filter(|n| {
            !n.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
        })
        .collect();
    pods.iter()
        .filter(|p| ours(p) && node_of(p).is_none() && !terminal(p))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|pod| {
            let request = pod_request(pod);
            let node = open.iter().find(|node| {
                let node_name = node.metadata.name.as_deref().unwrap_or_default();
                let free = allocatable(node) - used.get(node_name).copied().unwrap_or_default();
                let taints = node.spec.as_ref().and_then(|s| s.taints.clone());
                free.fits(&request)
                    && selects(pod, &node.metadata.labels.clone().unwrap_or_default())
                    && tolerates_all(pod, &taints.unwrap_or_default())
            })?;
            let node_name = node.metadata.name.as_deref().unwrap_or_default();
            Some(format!("{} is pending but fits {node_name}", name(pod)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cpu: &str, labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": [{"key": "dedicated", "value": "user", "effect": "NoSchedule"}]},
            "status": {
                "allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "10"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }))
        .unwrap()
    }

    fn pod(name: &str, cpu: &str, node: Option<&str>, phase: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {
                "nodeName": node,
                "nodeSelector": {"pool": "user"},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "user",
                                 "effect": "NoSchedule"}],
                "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}],
            },
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn a_node_whose_pods_request_more_than_its_allocatable_is_reported() {
        let nodes = [node("a", "2", json!({"pool": "user"}))];
        let fits = [
            pod("p", "1", Some("a"), "Running"),
            pod("q", "1", Some("a"), "Pending"),
        ];
        assert!(overcommitted(&nodes, &fits).is_empty());
        let mut over = fits.to_vec();
        over.push(pod("r", "500m", Some("a"), "Running"));
        let report = overcommitted(&nodes, &over);
        assert_eq!(report.len(), 1, "{report:?}");
        assert!(report[0].starts_with("a:"), "{report:?}");
        // A finished pod holds nothing.
        over[2] = pod("r", "500m", Some("a"), "Succeeded");
        assert!(overcommitted(&nodes, &over).is_empty());
    }

    #[test]
    fn a_pod_on_a_node_its_selector_or_taints_reject_is_misplaced() {
        let nodes = [
            node("user", "2", json!({"pool": "user"})),
            node("core", "2", json!({"pool": "core"})),
        ];
        let mut untolerating = pod("t", "1", Some("user"), "Running");
        untolerating.spec.as_mut().unwrap().tolerations = None;
        let pods = [
            pod("ok", "1", Some("user"), "Running"),
            pod("wrong-pool", "1", Some("core"), "Running"),
            pod("gone", "1", Some("nowhere"), "Running"),
            untolerating,
        ];
        let report = misplaced(&nodes, &pods);
        assert_eq!(report.len(), 3, "{report:?}");
        assert!(report.iter().all(|r| !r.contains("ns/ok")), "{report:?}");
    }

    #[test]
    fn a_pending_pod_is_reported_only_if_some_schedulable_node_has_room_for_it() {
        let mut nodes = vec![node("a", "2", json!({"pool": "user"}))];
        let pods = vec![
            pod("bound", "1500m", Some("a"), "Running"),
            pod("big", "1", None, "Pending"),
            pod("small", "500m", None, "Pending"),
        ];
        let everyone = |_: &Pod| true;
        let report = pending_that_fit(&nodes, &pods, everyone);
        assert_eq!(report, ["ns/small is pending but fits a"]);
        assert!(
            pending_that_fit(&nodes, &pods, |p| p.metadata.name.as_deref() == Some("big"))
                .is_empty()
        );
        // A node that is not Ready takes nothing.
        nodes[0]
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()[0]
            .status = "False".into();
        assert!(pending_that_fit(&nodes, &pods, everyone).is_empty());
    }
}
