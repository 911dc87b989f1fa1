//! Where a pod may run, by the rules the tests' end-state checks use: nodeSelector, required
//! node affinity, NoSchedule/NoExecute taints, and what the pods bound to a node already
//! request.

use crate::resources::{Resources, pod_request};
use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};
use std::collections::{BTreeMap, HashMap};

/// Whether one of `tolerations` tolerates `taint` (Kubernetes' matching rules).
pub fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == taint.effect);
        let key_ok = match t.key.as_deref() {
            None | Some("") => t.operator.as_deref() == Some("Exists"),
            Some(k) => k == taint.key,
        };
        let value_ok = match t.operator.as_deref() {
            Some("Exists") => true,
            _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        };
        effect_ok && key_ok && value_ok
    })
}

/// Whether the pod tolerates every scheduling taint (NoSchedule, NoExecute) of `taints`.
pub fn tolerates_all(pod: &Pod, taints: &[Taint]) -> bool {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|t| tolerates(tolerations, t))
}

/// Whether the pod's nodeSelector and required node affinity accept a node with `labels`.
pub fn selects(pod: &Pod, labels: &BTreeMap<String, String>) -> bool {
    let Some(spec) = &pod.spec else { return true };
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let affinity_ok = required.is_none_or(|r| {
        r.node_selector_terms.iter().any(|term| {
            term.match_expressions.iter().flatten().all(|e| {
                let value = labels.get(&e.key);
                let values = e.values.clone().unwrap_or_default();
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
        })
    });
    selector_ok && affinity_ok
}

/// Succeeded or Failed: the pod no longer holds its node's resources.
pub fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// The node a pod is bound to, if any.
pub fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

/// Per node name, the summed requests of the non-terminal pods bound to it (terminating pods
/// count: the kubelet counts them until they are gone).
pub fn requests_by_node(pods: &[Pod]) -> HashMap<&str, Resources> {
    let mut used: HashMap<&str, Resources> = HashMap::new();
    for pod in pods.iter().filter(|p| !terminal(p)) {
        if let Some(node) = node_of(pod) {
            let entry = used.entry(node).or_default();
            *entry = *entry + pod_request(pod);
        }
    }
    used
}
