//! A pod's claims → [`PodVolume`]s, resolving PVC → PV → StorageClass the way
//! kube-scheduler's VolumeBinding plugin sees them: bound claims carry their PV's node
//! affinity, unbound WaitForFirstConsumer claims carry the static PVs that could bind and
//! the class's allowed topologies.

use super::quantity::parse_units;
use super::{ConvertError, selector};
use hubpack_core::model::{
    NodeSelector, NodeSelectorTerm, PodVolume, SelectorOperator, SelectorRequirement, StaticPv,
};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, PodSpec};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The annotation the scheduler sets on a WaitForFirstConsumer claim to start provisioning.
pub const SELECTED_NODE_ANNOTATION: &str = "volume.kubernetes.io/selected-node";
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

/// Read access to the volume objects the cluster cache holds.
pub trait VolumeCatalog {
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>>;
    fn volume(&self, name: &str) -> Option<Arc<PersistentVolume>>;
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>>;
    fn volumes(&self) -> Vec<Arc<PersistentVolume>>;
}

/// An in-memory catalog (tests, and callers that already hold the objects).
#[derive(Default)]
pub struct VolumeIndex {
    pub claims: BTreeMap<(String, String), Arc<PersistentVolumeClaim>>,
    pub volumes: BTreeMap<String, Arc<PersistentVolume>>,
    pub classes: BTreeMap<String, Arc<StorageClass>>,
}

impl VolumeCatalog for VolumeIndex {
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
    fn volume(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        self.volumes.get(name).cloned()
    }
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.get(name).cloned()
    }
    fn volumes(&self) -> Vec<Arc<PersistentVolume>> {
        self.volumes.values().cloned().collect()
    }
}

/// The claims a pod uses: `persistentVolumeClaim` volumes, and generic ephemeral volumes
/// (whose claim is named `<pod>-<volume>`).
pub fn claim_names(pod_name: &str, spec: &PodSpec) -> Vec<String> {
    spec.volumes
        .iter()
        .flatten()
        .filter_map(|v| {
            if let Some(pvc) = &v.persistent_volume_claim {
                Some(pvc.claim_name.clone())
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| format!("{pod_name}-{}", v.name))
            }
        })
        .collect()
}

pub fn pod_volumes(
    namespace: &str,
    pod_name: &str,
    spec: &PodSpec,
    catalog: &dyn VolumeCatalog,
) -> Result<Vec<PodVolume>, ConvertError> {
    claim_names(pod_name, spec)
        .into_iter()
        .map(|claim| claim_volume(namespace, claim, catalog))
        .collect()
}

fn storage_class_of(pvc: &PersistentVolumeClaim) -> Option<String> {
    pvc.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .or_else(|| {
            pvc.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class").cloned())
        })
}

fn claim_volume(
    namespace: &str,
    claim: String,
    catalog: &dyn VolumeCatalog,
) -> Result<PodVolume, ConvertError> {
    let Some(pvc) = catalog.claim(namespace, &claim) else {
        return Ok(PodVolume::MissingClaim { claim });
    };
    let spec = pvc.spec.as_ref();
    if let Some(pv_name) = spec
        .and_then(|s| s.volume_name.as_deref())
        .filter(|n| !n.is_empty())
    {
        let pv = catalog.volume(pv_name);
        let pv_spec = pv.as_ref().and_then(|pv| pv.spec.as_ref());
        let node_affinity = pv_spec
            .and_then(|s| s.node_affinity.as_ref())
            .and_then(|a| a.required.as_ref())
            .map(|s| {
                selector::node_selector(
                    &format!("persistentvolume {pv_name} spec.nodeAffinity.required"),
                    s,
                )
            })
            .transpose()?;
        let node_affinity = with_zone_labels(
            node_affinity,
            pv.as_ref().and_then(|pv| pv.metadata.labels.as_ref()),
        );
        let csi = pv_spec.and_then(|s| s.csi.as_ref());
        return Ok(PodVolume::Bound {
            claim,
            node_affinity,
            csi_driver: csi.map(|c| c.driver.clone()),
            volume_id: csi
                .map(|c| c.volume_handle.clone())
                .unwrap_or_else(|| pv_name.to_string()),
        });
    }

    let class_name = storage_class_of(&pvc).unwrap_or_default();
    let class = catalog.storage_class(&class_name);
    let wait_for_consumer = class
        .as_ref()
        .is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
    let Some(class) = class.filter(|_| wait_for_consumer) else {
        return Ok(PodVolume::UnboundImmediate { claim });
    };
    let requested = spec
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| {
            parse_units(&q.0).map_err(|source| ConvertError::Quantity {
                field: format!(
                    "persistentvolumeclaim {namespace}/{claim} spec.resources.requests.storage"
                ),
                source,
            })
        })
        .transpose()?
        .unwrap_or(0);
    let allowed_topologies = class
        .allowed_topologies
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(selector::topology_terms);
    let provisioner_none = class.provisioner == NO_PROVISIONER;
    // A node was already picked for this claim (by us before a restart, or another
    // scheduler) and provisioning may be under way there: only that node will do, as in
    // kube-scheduler's VolumeBinding.
    if let Some(node) = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SELECTED_NODE_ANNOTATION))
        .filter(|n| !n.is_empty())
    {
        return Ok(PodVolume::WaitForFirstConsumer {
            claim,
            static_pvs: Vec::new(),
            allowed_topologies: Some(only_node(allowed_topologies, node)),
            provisioner_none,
            csi_driver: (!provisioner_none).then(|| class.provisioner.clone()),
        });
    }
    let wanted = WantedVolume {
        namespace,
        claim: &claim,
        class: &class_name,
        requested,
        modes: spec
            .and_then(|s| s.access_modes.clone())
            .unwrap_or_default(),
        volume_mode: spec
            .and_then(|s| s.volume_mode.as_deref())
            .unwrap_or("Filesystem"),
        selector: spec.and_then(|s| s.selector.as_ref()),
    };

    let mut static_pvs = Vec::new();
    for pv in catalog.volumes() {
        let Some(capacity) = wanted.capacity_if_matching(&pv) else {
            continue;
        };
        let name = pv.metadata.name.clone().unwrap_or_default();
        let node_affinity = pv
            .spec
            .as_ref()
            .and_then(|s| s.node_affinity.as_ref())
            .and_then(|a| a.required.as_ref())
            .map(|s| {
                selector::node_selector(
                    &format!("persistentvolume {name} spec.nodeAffinity.required"),
                    s,
                )
            })
            .transpose()?;
        static_pvs.push((
            capacity,
            StaticPv {
                name,
                node_affinity,
            },
        ));
    }
    // The smallest volume that fits first (kube-scheduler's FindMatchingVolume), so a
    // large one stays for a claim that needs it.
    static_pvs.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    Ok(PodVolume::WaitForFirstConsumer {
        claim,
        static_pvs: static_pvs.into_iter().map(|(_, pv)| pv).collect(),
        allowed_topologies,
        provisioner_none,
        csi_driver: (!provisioner_none).then(|| class.provisioner.clone()),
    })
}

/// The topology labels kube-scheduler's VolumeZone plugin reads on a PV.
const ZONE_LABELS: [&str; 4] = [
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
];

/// VolumeZone: a PV labelled with a zone or region (older in-tree provisioners label
/// instead of setting node affinity) may only be used on nodes with that label value (a
/// `__`-separated set of them). Folded into the PV's node affinity: every term must hold
/// them too. (kube-scheduler lets a node without any zone label pass; here it does not.)
fn with_zone_labels(
    affinity: Option<NodeSelector>,
    labels: Option<&BTreeMap<String, String>>,
) -> Option<NodeSelector> {
    let zone: Vec<SelectorRequirement> = ZONE_LABELS
        .iter()
        .filter_map(|k| {
            let v = labels?.get(*k)?;
            Some(SelectorRequirement {
                key: (*k).to_string(),
                operator: SelectorOperator::In,
                values: v.split("__").map(str::to_string).collect(),
            })
        })
        .collect();
    if zone.is_empty() {
        return affinity;
    }
    let mut terms = affinity.map(|a| a.terms).unwrap_or_default();
    if terms.is_empty() {
        terms.push(NodeSelectorTerm {
            match_expressions: Vec::new(),
            match_fields: Vec::new(),
        });
    }
    for t in &mut terms {
        t.match_expressions.extend(zone.iter().cloned());
    }
    Some(NodeSelector { terms })
}

/// `allowed` (the class's topologies, or anywhere) restricted to the node named `node`.
fn only_node(allowed: Option<NodeSelector>, node: &str) -> NodeSelector {
    let by_name = SelectorRequirement {
        key: "metadata.name".into(),
        operator: SelectorOperator::In,
        values: vec![node.to_string()],
    };
    let mut terms = allowed.map(|a| a.terms).unwrap_or_default();
    if terms.is_empty() {
        terms.push(NodeSelectorTerm {
            match_expressions: Vec::new(),
            match_fields: Vec::new(),
        });
    }
    for t in &mut terms {
        t.match_fields.push(by_name.clone());
    }
    NodeSelector { terms }
}

/// What an unbound claim asks of a static volume.
struct WantedVolume<'a> {
    namespace: &'a str,
    claim: &'a str,
    class: &'a str,
    requested: i64,
    modes: Vec<String>,
    volume_mode: &'a str,
    selector: Option<&'a LabelSelector>,
}

impl WantedVolume<'_> {
    /// The PV's capacity if it can take the claim: Available (unclaimed, or pre-bound to
    /// this claim), of the claim's class, large enough, offering every requested access
    /// mode, of the same volume mode, with labels matching the claim's selector.
    /// Unparseable capacities never match.
    fn capacity_if_matching(&self, pv: &PersistentVolume) -> Option<i64> {
        let spec = pv.spec.as_ref()?;
        if pv.metadata.deletion_timestamp.is_some()
            || pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released")
        {
            return None;
        }
        let claimed_by_other = spec.claim_ref.as_ref().is_some_and(|r| {
            r.name.as_deref() != Some(self.claim) || r.namespace.as_deref() != Some(self.namespace)
        });
        let capacity = spec
            .capacity
            .as_ref()
            .and_then(|c| c.get("storage"))
            .and_then(|q| parse_units(&q.0).ok())?;
        let pv_modes = spec.access_modes.as_deref().unwrap_or_default();
        let matches = !claimed_by_other
            && spec.storage_class_name.as_deref().unwrap_or_default() == self.class
            && capacity >= self.requested
            && self.modes.iter().all(|m| pv_modes.contains(m))
            && spec.volume_mode.as_deref().unwrap_or("Filesystem") == self.volume_mode
            && self
                .selector
                .is_none_or(|s| selector::label_selector_matches(s, pv.metadata.labels.as_ref()));
        matches.then_some(capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pv_zone_label_becomes_a_node_requirement_in_every_term() {
        let labels = BTreeMap::from([(
            "topology.kubernetes.io/zone".to_string(),
            "us-east-1a__us-east-1b".to_string(),
        )]);
        let sel = with_zone_labels(None, Some(&labels)).unwrap();
        assert_eq!(sel.terms.len(), 1);
        let r = &sel.terms[0].match_expressions[0];
        assert_eq!(r.key, "topology.kubernetes.io/zone");
        assert_eq!(r.values, ["us-east-1a", "us-east-1b"]);
        assert!(with_zone_labels(None, None).is_none());
    }
}
