//! Volume filters. VolumeBinding (pkg/scheduler/framework/plugins/volumebinding): PreFilter
//! rejects missing claims and unbound Immediate claims; Filter checks bound PVs' node
//! affinity ("volume node affinity conflict") and, for WaitForFirstConsumer claims, a
//! matching static PV or provisionability under the class's allowedTopologies ("didn't
//! find available persistent volumes to bind"). NodeVolumeLimits (nodevolumelimits/csi.go):
//! distinct volumes per CSI driver on the node plus the pod's new ones must not exceed the
//! CSINode limit.

use super::{Reason, selector_matches};
use crate::model::{Node, Pod, PodVolume};
use std::collections::{BTreeMap, BTreeSet};

/// VolumeBinding's PreFilter: a missing claim, else any unbound Immediate claim.
pub fn pre_filter_volumes(pod: &Pod) -> Option<Reason> {
    for v in &pod.volumes {
        if let PodVolume::MissingClaim { claim } = v {
            return Some(Reason::MissingClaim(claim.clone()));
        }
    }
    pod.volumes
        .iter()
        .any(|v| matches!(v, PodVolume::UnboundImmediate { .. }))
        .then_some(Reason::UnboundImmediateClaims)
}

/// VolumeBinding's Filter. Both reasons are reported when both kinds of claim fail, as
/// kube does.
pub fn volume_binding_ok(node: &Node, pod: &Pod) -> Result<(), Vec<Reason>> {
    let matches = |s: &Option<crate::model::NodeSelector>| {
        s.as_ref().is_none_or(|s| selector_matches(node, s))
    };
    let mut bound_ok = true;
    let mut unbound_ok = true;
    for v in &pod.volumes {
        match v {
            PodVolume::Bound { node_affinity, .. } => bound_ok &= matches(node_affinity),
            PodVolume::WaitForFirstConsumer {
                static_pvs,
                allowed_topologies,
                provisioner_none,
                ..
            } => {
                let static_match = static_pvs.iter().any(|pv| matches(&pv.node_affinity));
                let provisionable = !provisioner_none && matches(allowed_topologies);
                unbound_ok &= static_match || provisionable;
            }
            PodVolume::UnboundImmediate { .. } | PodVolume::MissingClaim { .. } => {}
        }
    }
    let mut reasons = Vec::new();
    if !bound_ok {
        reasons.push(Reason::VolumeNodeConflict);
    }
    if !unbound_ok {
        reasons.push(Reason::VolumeBindConflict);
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Distinct attachable volume ids per CSI driver.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VolumeIds(pub BTreeMap<String, BTreeSet<String>>);

impl VolumeIds {
    /// Adds the pod's attachable volumes. An unbound WaitForFirstConsumer claim counts as
    /// one new volume identified by its claim, as kube does before the PV exists.
    pub fn add_pod(&mut self, pod: &Pod) {
        for v in &pod.volumes {
            match v {
                PodVolume::Bound {
                    csi_driver: Some(d),
                    volume_id,
                    ..
                } => {
                    self.0
                        .entry(d.clone())
                        .or_default()
                        .insert(volume_id.clone());
                }
                PodVolume::WaitForFirstConsumer {
                    csi_driver: Some(d),
                    claim,
                    ..
                } => {
                    self.0
                        .entry(d.clone())
                        .or_default()
                        .insert(format!("{}/pvc/{claim}", pod.key));
                }
                _ => {}
            }
        }
    }
}

/// NodeVolumeLimits: for every driver with a limit on the node, volumes already attached
/// plus the pod's new ones (not already on the node) must stay within it.
pub fn attach_limit_ok(node: &Node, on_node: &VolumeIds, pod: &Pod) -> bool {
    let mut mine = VolumeIds::default();
    mine.add_pod(pod);
    mine.0.iter().all(|(driver, ids)| {
        let Some(limit) = node.attach_limits.get(driver) else {
            return true;
        };
        let attached = on_node.0.get(driver);
        let have = attached.map_or(0, BTreeSet::len);
        let new = ids
            .iter()
            .filter(|id| attached.is_none_or(|a| !a.contains(*id)))
            .count();
        (have + new) as i64 <= *limit
    })
}
