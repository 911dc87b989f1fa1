//! Kubernetes filter semantics, each a pure function of a node and a pod, with
//! kube-scheduler's failure reasons. Evaluation order follows kube-scheduler's default
//! plugin order (pkg/scheduler/apis/config/v1/default_plugins.go): NodeUnschedulable,
//! TaintToleration (the not-ready taint included), NodeAffinity, NodePorts,
//! NodeResourcesFit, NodeVolumeLimits, VolumeBinding. As in kube-scheduler, a node reports
//! the reasons of its first failing filter only.

mod affinity;
mod ports;
mod reason;
mod resources;
mod taints;
mod volumes;

pub use affinity::{
    matches_node_selector, matches_required_affinity, preferred_weight, selector_matches,
    term_matches,
};
pub use ports::{HostPortSet, ports_conflict};
pub use reason::{Reason, UNSUPPORTED_PREFIX};
pub use resources::{NodeLoad, fit_reasons, for_each_fit_reason};
pub use taints::{
    filter_untolerated_taint, prefer_no_schedule_count, tolerates, tolerates_unschedulable,
};
pub use volumes::{VolumeIds, attach_limit_ok, pre_filter_volumes, volume_binding_ok};

use crate::model::{Node, Pod};

/// Pod-level failures found before looking at any node (kube's PreFilter): unsupported
/// constraints, unbound Immediate claims, missing claims.
pub fn pre_filter(pod: &Pod) -> Option<Reason> {
    if !pod.unsupported.is_empty() {
        return Some(Reason::Unsupported(pod.unsupported.join(", ")));
    }
    pre_filter_volumes(pod)
}

/// The node filters that depend only on the node's labels, taints and `unschedulable`
/// (not on the pods placed there), in kube-scheduler order, before the
/// resource-dependent ones.
pub fn static_pre(node: &Node, pod: &Pod) -> Option<Reason> {
    if node.unschedulable && !tolerates_unschedulable(&pod.tolerations) {
        return Some(Reason::NodeUnschedulable);
    }
    // Readiness is judged as kube-scheduler judges it: through the
    // node.kubernetes.io/not-ready (and unreachable) taints, which the node lifecycle
    // controller and the TaintNodesByCondition admission keep in step with the Ready
    // condition; not through the condition itself, or the autoscaler's simulation and
    // hubpack would disagree about a node. (Warmth still needs the node Ready and settled.)
    if let Some(t) = filter_untolerated_taint(&node.taints, &pod.tolerations) {
        return Some(Reason::UntoleratedTaint {
            key: t.key.clone(),
            value: t.value.clone(),
        });
    }
    if !matches_node_selector(node, &pod.node_selector)
        || !matches_required_affinity(node, pod.required_affinity.as_ref())
    {
        return Some(Reason::NodeAffinity);
    }
    None
}

/// Whether the node could ever take the pod: its static filters pass and the pod's request
/// fits the node's whole allocatable. A change to a node (added, relabelled, resources
/// freed on it) can help a waiting pod only if this holds; the scheduler's queue wakes
/// only those pods.
pub fn may_ever_fit(node: &Node, pod: &Pod) -> bool {
    let empty = NodeLoad {
        requested: crate::model::Resources::default(),
        pod_count: 0,
    };
    let mut fits = true;
    for_each_fit_reason(&node.allocatable, &empty, &pod.requests, |_| fits = false);
    static_pre(node, pod).is_none() && fits
}

/// The label-dependent filter that kube-scheduler runs after the resource filters:
/// VolumeBinding (bound PV node affinity, WaitForFirstConsumer provisionability).
pub fn static_post(node: &Node, pod: &Pod) -> Vec<Reason> {
    volume_binding_ok(node, pod).err().unwrap_or_default()
}

/// Node labels unique to each node. The index leaves them out of its bucket signatures
/// (otherwise every node would be a bucket of its own); a pod that selects on one is
/// decided by the full scan.
pub const NODE_UNIQUE_LABELS: &[&str] = &["kubernetes.io/hostname"];

/// Whether any selector the pod carries (its nodeSelector, affinity, or its volumes')
/// depends on the node's identity: `matchFields` (the node name) or a label in
/// [`NODE_UNIQUE_LABELS`].
pub fn uses_node_name(pod: &Pod) -> bool {
    use crate::model::{NodeSelector, NodeSelectorTerm, PodVolume};
    let unique = |key: &str| NODE_UNIQUE_LABELS.contains(&key);
    let term_uses = |t: &NodeSelectorTerm| {
        !t.match_fields.is_empty() || t.match_expressions.iter().any(|r| unique(&r.key))
    };
    let sel_uses = |s: &NodeSelector| s.terms.iter().any(term_uses);
    pod.node_selector.keys().any(|k| unique(k))
        || pod.required_affinity.as_ref().is_some_and(sel_uses)
        || pod.preferred_affinity.iter().any(|p| term_uses(&p.term))
        || pod.volumes.iter().any(|v| match v {
            PodVolume::Bound { node_affinity, .. } => node_affinity.as_ref().is_some_and(sel_uses),
            PodVolume::WaitForFirstConsumer {
                static_pvs,
                allowed_topologies,
                ..
            } => {
                allowed_topologies.as_ref().is_some_and(sel_uses)
                    || static_pvs
                        .iter()
                        .any(|pv| pv.node_affinity.as_ref().is_some_and(sel_uses))
            }
            _ => false,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
