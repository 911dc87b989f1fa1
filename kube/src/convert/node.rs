//! core/v1 Node (+ its CSINode, + whether its pre-pull pod is Ready) → core Node.

use super::pod::resources;
use super::{ConvertError, condition, selector};
use hubpack_core::model::{ImageName, Node, Resources};
use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::api::storage::v1::CSINode;
use std::collections::BTreeMap;

/// When the Ready condition last turned True, if the node is Ready now.
/// A Ready condition without a transition time counts as long settled (see
/// [`condition::since`]), not as never warm.
pub fn node_is_ready(n: &k8s::Node) -> Option<i64> {
    condition::true_since(n.status.as_ref()?.conditions.as_deref()?, "Ready")
}

pub fn node_from_k8s(
    n: &k8s::Node,
    csi: Option<&CSINode>,
    prepull_ready: bool,
) -> Result<Node, ConvertError> {
    let name = n
        .metadata
        .name
        .clone()
        .ok_or_else(|| ConvertError::Missing {
            field: "metadata.name".into(),
        })?;
    let status = n.status.as_ref();
    let allocatable: Resources = resources(
        "status.allocatable",
        status.and_then(|s| s.allocatable.as_ref()),
    )?;
    let spec = n.spec.as_ref();
    let taints = spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| selector::taint(format!("spec.taints[{i}]"), t))
        .collect::<Result<_, _>>()?;
    let images = status
        .and_then(|s| s.images.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|img| img.names.iter().flatten())
        .map(|raw| ImageName::normalize(raw))
        .collect();
    let attach_limits: BTreeMap<String, i64> = csi
        .into_iter()
        .flat_map(|c| c.spec.drivers.iter())
        .filter_map(|d| {
            let count = d.allocatable.as_ref()?.count?;
            Some((d.name.clone(), i64::from(count)))
        })
        .collect();
    Ok(Node {
        name,
        allocatable,
        labels: n.metadata.labels.clone().unwrap_or_default(),
        taints,
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        ready_since: node_is_ready(n),
        images,
        prepull_ready,
        attach_limits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubpack_core::model::TaintEffect;
    use k8s_openapi::api::core::v1::{ContainerImage, NodeCondition, NodeSpec, NodeStatus, Taint};
    use k8s_openapi::api::storage::v1::{CSINodeDriver, CSINodeSpec, VolumeNodeResources};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn node(ready: Option<(&str, i64)>) -> k8s::Node {
        let q = |s: &str| Quantity(s.into());
        k8s::Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                labels: Some(
                    [(
                        "hub.jupyter.org/node-purpose".to_string(),
                        "user".to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(vec![Taint {
                    key: "hub.jupyter.org/dedicated".into(),
                    value: Some("user".into()),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                allocatable: Some(
                    [
                        ("cpu".to_string(), q("3920m")),
                        ("memory".to_string(), q("15Gi")),
                        ("pods".to_string(), q("110")),
                        ("ephemeral-storage".to_string(), q("100G")),
                        ("nvidia.com/gpu".to_string(), q("1")),
                    ]
                    .into(),
                ),
                conditions: ready.map(|(status, at)| {
                    vec![NodeCondition {
                        type_: "Ready".into(),
                        status: status.into(),
                        last_transition_time: Some(Time(
                            jiff::Timestamp::from_millisecond(at).unwrap(),
                        )),
                        ..Default::default()
                    }]
                }),
                images: Some(vec![ContainerImage {
                    names: Some(vec![
                        "quay.io/jupyter/scipy-notebook@sha256:abc".into(),
                        "quay.io/jupyter/scipy-notebook:2025".into(),
                    ]),
                    size_bytes: Some(1),
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn converts_capacity_taints_labels_images() {
        let n = node_from_k8s(&node(Some(("True", 5_000))), None, true).unwrap();
        assert_eq!(n.name, "n1");
        assert_eq!(n.allocatable.cpu_milli, 3920);
        assert_eq!(n.allocatable.memory, 15 << 30);
        assert_eq!(n.allocatable.pods, 110);
        assert_eq!(n.allocatable.ephemeral_storage, 100_000_000_000);
        assert_eq!(n.allocatable.extended("nvidia.com/gpu"), 1);
        assert_eq!(n.taints.len(), 1);
        assert_eq!(n.taints[0].effect, TaintEffect::NoSchedule);
        assert_eq!(n.labels["hub.jupyter.org/node-purpose"], "user");
        assert!(
            n.images
                .contains(&ImageName::normalize("quay.io/jupyter/scipy-notebook:2025"))
        );
        assert_eq!(n.images.len(), 2);
        assert!(n.prepull_ready);
    }

    #[test]
    fn ready_since_is_the_ready_transition_time() {
        let n = node_from_k8s(&node(Some(("True", 5_000))), None, false).unwrap();
        assert_eq!(n.ready_since, Some(5_000));
        let n = node_from_k8s(&node(Some(("False", 5_000))), None, false).unwrap();
        assert_eq!(n.ready_since, None);
        let n = node_from_k8s(&node(None), None, false).unwrap();
        assert_eq!(n.ready_since, None);
    }

    #[test]
    fn csinode_limits_become_attach_limits() {
        let csi = CSINode {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            spec: CSINodeSpec {
                drivers: vec![
                    CSINodeDriver {
                        name: "ebs.csi.aws.com".into(),
                        node_id: "i-1".into(),
                        allocatable: Some(VolumeNodeResources { count: Some(25) }),
                        topology_keys: None,
                    },
                    CSINodeDriver {
                        name: "nolimit.csi".into(),
                        node_id: "i-1".into(),
                        allocatable: None,
                        topology_keys: None,
                    },
                ],
            },
        };
        let n = node_from_k8s(&node(None), Some(&csi), false).unwrap();
        assert_eq!(
            n.attach_limits,
            [("ebs.csi.aws.com".to_string(), 25)].into()
        );
    }

    #[test]
    fn bad_allocatable_names_the_field() {
        let mut k = node(None);
        if let Some(a) = k.status.as_mut().and_then(|s| s.allocatable.as_mut()) {
            a.insert("memory".into(), Quantity("lots".into()));
        }
        let e = node_from_k8s(&k, None, false).unwrap_err();
        assert!(e.to_string().contains("status.allocatable.memory"), "{e}");
    }

    #[test]
    fn unknown_taint_effect_is_an_error() {
        let mut k = node(None);
        if let Some(t) = k.spec.as_mut().and_then(|s| s.taints.as_mut()) {
            t[0].effect = "Sometimes".into();
        }
        let e = node_from_k8s(&k, None, false).unwrap_err();
        assert!(e.to_string().contains("spec.taints[0].effect"), "{e}");
    }
}
