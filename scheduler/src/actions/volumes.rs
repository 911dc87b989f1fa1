//! WaitForFirstConsumer claims, as kube-scheduler's VolumeBinding PreBind does it: for each
//! unbound claim, either pre-bind a matching static PV to it (`spec.claimRef`) or ask for
//! dynamic provisioning on the chosen node (`volume.kubernetes.io/selected-node` on the
//! claim). The caller then waits for the claims to be Bound before binding the pod.

use super::RateLimiter;
use hubpack_core::filter::selector_matches;
use hubpack_core::model::{Node, PodVolume};
pub use hubpack_kube::convert::volume::SELECTED_NODE_ANNOTATION;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// One write that prepares a claim for the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeStep {
    /// Pre-bind this static PV to the claim, if the PV is still at `resource_version` (the
    /// one the decision saw): a PV changed meanwhile (taken by another scheduler) fails the
    /// write with 409 rather than being stolen.
    BindVolume {
        claim: String,
        volume: String,
        resource_version: Option<String>,
    },
    /// Provision a new volume for the claim on the node.
    SelectNode { claim: String },
}

impl VolumeStep {
    pub fn claim(&self) -> &str {
        match self {
            VolumeStep::BindVolume { claim, .. } | VolumeStep::SelectNode { claim } => claim,
        }
    }
}

/// The writes needed before the pod may bind to `node`, or the claim that cannot be
/// satisfied there (the snapshot changed since the decision).
pub fn plan(volumes: &[PodVolume], node: &Node) -> Result<Vec<VolumeStep>, String> {
    let mut steps = Vec::new();
    for v in volumes {
        if let PodVolume::WaitForFirstConsumer {
            claim,
            static_pvs,
            provisioner_none,
            ..
        } = v
        {
            let fitting = static_pvs.iter().find(|pv| {
                pv.node_affinity
                    .as_ref()
                    .is_none_or(|a| selector_matches(node, a))
            });
            match fitting {
                Some(pv) => steps.push(VolumeStep::BindVolume {
                    claim: claim.clone(),
                    volume: pv.name.clone(),
                    resource_version: None,
                }),
                None if !provisioner_none => steps.push(VolumeStep::SelectNode {
                    claim: claim.clone(),
                }),
                None => return Err(claim.clone()),
            }
        }
    }
    Ok(steps)
}

pub async fn apply_step(
    client: &kube::Client,
    limiter: &RateLimiter,
    namespace: &str,
    node: &str,
    step: &VolumeStep,
) -> crate::error::Result<()> {
    limiter.acquire().await?;
    match step {
        VolumeStep::SelectNode { claim } => {
            let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
            let patch = json!({"metadata": {"annotations": {SELECTED_NODE_ANNOTATION: node}}});
            pvcs.patch(claim, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        VolumeStep::BindVolume {
            claim,
            volume,
            resource_version,
        } => {
            let pvs: Api<PersistentVolume> = Api::all(client.clone());
            let mut patch = json!({"spec": {"claimRef": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": namespace, "name": claim}}});
            if let Some(rv) = resource_version {
                // A resourceVersion in a patch is a precondition: 409 if the PV changed.
                patch["metadata"] = json!({"resourceVersion": rv});
            }
            pvs.patch(volume, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    Ok(())
}

/// Takes back our `selected-node` from a claim whose provisioning did not finish in time,
/// so a later decision (or another scheduler) may pick another node. Only if the claim is
/// still unbound and still names `node`.
pub async fn unselect_node(
    client: &kube::Client,
    limiter: &RateLimiter,
    claim: &PersistentVolumeClaim,
    node: &str,
) -> crate::error::Result<bool> {
    let ours = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SELECTED_NODE_ANNOTATION))
        .is_some_and(|n| n == node);
    let (Some(ns), Some(name)) = (
        claim.metadata.namespace.as_deref(),
        claim.metadata.name.as_deref(),
    ) else {
        return Ok(false);
    };
    if !ours || claim_is_bound(claim) {
        return Ok(false);
    }
    limiter.acquire().await?;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let mut patch = json!({"metadata": {"annotations": {SELECTED_NODE_ANNOTATION: null}}});
    if let Some(rv) = &claim.metadata.resource_version {
        patch["metadata"]["resourceVersion"] = json!(rv);
    }
    pvcs.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(true)
}

/// How one claim of a pod waiting for its volumes stands, judged as upstream's
/// volumebinding `checkBindings` (pkg/scheduler/framework/plugins/volumebinding/binder.go)
/// judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimCheck {
    /// Bound, to a volume the node can use.
    Bound,
    /// Not yet. `write_seen`: the cache shows our write (the `selected-node` annotation on
    /// the claim, the `claimRef` on the static volume); once seen, its removal is a signal.
    Waiting { write_seen: bool },
    /// It will not become usable on this node: give the node up now and decide again.
    Failed(String),
}

/// Checks one step of a provisioning pod against the cache. `write_seen`: our write was
/// seen in an earlier check (before it is seen, its absence is only the cache lagging our
/// write, not a reset).
pub fn check_step(
    step: &VolumeStep,
    node: &Node,
    pvc: Option<&PersistentVolumeClaim>,
    volume: &dyn Fn(&str) -> Option<std::sync::Arc<PersistentVolume>>,
    write_seen: bool,
) -> ClaimCheck {
    let claim = step.claim();
    let Some(pvc) = pvc else {
        return ClaimCheck::Failed(format!("claim {claim:?} was deleted"));
    };
    match step {
        VolumeStep::SelectNode { .. } => {
            let bound_to = pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .filter(|n| !n.is_empty());
            if let Some(pv_name) = bound_to
                && let Some(pv) = volume(pv_name)
                && !volume_fits_node(&pv, node)
            {
                return ClaimCheck::Failed(format!(
                    "the volume {pv_name:?} provisioned for claim {claim:?} cannot be used on node {:?}: its node affinity excludes the node",
                    node.name
                ));
            }
            if claim_is_bound(pvc) {
                return ClaimCheck::Bound;
            }
            let selected = pvc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SELECTED_NODE_ANNOTATION));
            match selected {
                Some(n) if *n == node.name => ClaimCheck::Waiting { write_seen: true },
                // The provisioner's way to say "retry elsewhere" (upstream: "provisioning
                // failed for PVC" / "selectedNode annotation reset for PVC").
                None if write_seen => ClaimCheck::Failed(format!(
                    "provisioning failed for claim {claim:?}: the provisioner removed its {SELECTED_NODE_ANNOTATION} annotation"
                )),
                Some(other) if write_seen => ClaimCheck::Failed(format!(
                    "provisioning failed for claim {claim:?}: its {SELECTED_NODE_ANNOTATION} annotation was changed to {other:?}"
                )),
                _ => ClaimCheck::Waiting { write_seen: false },
            }
        }
        VolumeStep::BindVolume { volume: name, .. } => {
            let Some(pv) = volume(name) else {
                return ClaimCheck::Failed(format!(
                    "the volume {name:?} chosen for claim {claim:?} was deleted"
                ));
            };
            let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
            let ours = claim_ref.is_some_and(|r| {
                r.name.as_deref() == Some(claim)
                    && r.namespace.as_deref() == pvc.metadata.namespace.as_deref()
            });
            if ours && claim_is_bound(pvc) {
                ClaimCheck::Bound
            } else if ours {
                ClaimCheck::Waiting { write_seen: true }
            } else if write_seen {
                // upstream: "ClaimRef got reset for pv".
                ClaimCheck::Failed(format!(
                    "the pre-binding of volume {name:?} to claim {claim:?} was reset"
                ))
            } else {
                ClaimCheck::Waiting { write_seen: false }
            }
        }
    }
}

/// Whether the volume's required node affinity admits the node (none: any node).
fn volume_fits_node(pv: &PersistentVolume, node: &Node) -> bool {
    let required = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref());
    let Some(required) = required else {
        return true;
    };
    // A selector hubpack cannot read is not held against the node: the kubelet judges it.
    hubpack_kube::convert::selector::node_selector("spec.nodeAffinity.required", required)
        .map_or(true, |sel| selector_matches(node, &sel))
}

/// A claim is ready for the pod once the PV controller has bound it.
pub fn claim_is_bound(pvc: &PersistentVolumeClaim) -> bool {
    pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubpack_core::model::{
        NodeSelector, NodeSelectorTerm, Resources, SelectorOperator, SelectorRequirement, StaticPv,
    };
    use hubpack_kube::test_support::*;

    fn zone(z: &str) -> NodeSelector {
        NodeSelector {
            terms: vec![NodeSelectorTerm {
                match_expressions: vec![SelectorRequirement {
                    key: "zone".into(),
                    operator: SelectorOperator::In,
                    values: vec![z.into()],
                }],
                match_fields: vec![],
            }],
        }
    }

    fn wffc(static_pvs: Vec<StaticPv>, provisioner_none: bool) -> PodVolume {
        PodVolume::WaitForFirstConsumer {
            claim: "home".into(),
            static_pvs,
            allowed_topologies: None,
            provisioner_none,
            csi_driver: None,
        }
    }

    #[test]
    fn plans_a_static_pv_on_the_node_else_provisioning() {
        let mut node = Node::new("n1", Resources::new(1000, 1 << 30));
        node.labels.insert("zone".into(), "z1".into());
        let pvs = vec![
            StaticPv {
                name: "pv-z2".into(),
                node_affinity: Some(zone("z2")),
            },
            StaticPv {
                name: "pv-z1".into(),
                node_affinity: Some(zone("z1")),
            },
        ];
        assert_eq!(
            plan(&[wffc(pvs.clone(), true)], &node),
            Ok(vec![VolumeStep::BindVolume {
                claim: "home".into(),
                volume: "pv-z1".into(),
                resource_version: None,
            }])
        );
        assert_eq!(
            plan(&[wffc(pvs[..1].to_vec(), false)], &node),
            Ok(vec![VolumeStep::SelectNode {
                claim: "home".into()
            }])
        );
        assert_eq!(
            plan(&[wffc(pvs[..1].to_vec(), true)], &node),
            Err("home".into())
        );
        assert_eq!(
            plan(&[PodVolume::MissingClaim { claim: "x".into() }], &node),
            Ok(vec![])
        );
    }

    #[tokio::test]
    async fn select_node_annotates_the_claim() {
        let (client, mut handle) = mock_client();
        let limiter = RateLimiter::new(100.0, 10);
        let server = tokio::spawn(async move {
            next(
                &mut handle,
                200,
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "home", "namespace": "hub"}}),
            )
            .await
        });
        apply_step(
            &client,
            &limiter,
            "hub",
            "n1",
            &VolumeStep::SelectNode {
                claim: "home".into(),
            },
        )
        .await
        .unwrap();
        let seen = server.await.unwrap();
        assert_eq!(seen.method, "PATCH");
        assert_eq!(
            seen.path,
            "/api/v1/namespaces/hub/persistentvolumeclaims/home"
        );
        assert_eq!(
            seen.body,
            json!({"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "n1"}}})
        );
    }

    #[tokio::test]
    async fn bind_volume_sets_the_claim_ref() {
        let (client, mut handle) = mock_client();
        let limiter = RateLimiter::new(100.0, 10);
        let server = tokio::spawn(async move {
            next(
                &mut handle,
                200,
                json!({"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": "pv-z1"}}),
            )
            .await
        });
        let step = VolumeStep::BindVolume {
            claim: "home".into(),
            volume: "pv-z1".into(),
            resource_version: Some("42".into()),
        };
        apply_step(&client, &limiter, "hub", "n1", &step)
            .await
            .unwrap();
        let seen = server.await.unwrap();
        assert_eq!(seen.path, "/api/v1/persistentvolumes/pv-z1");
        assert_eq!(seen.body["spec"]["claimRef"]["name"], "home");
        assert_eq!(seen.body["spec"]["claimRef"]["namespace"], "hub");
        assert_eq!(
            seen.body["metadata"]["resourceVersion"], "42",
            "pre-bound only if the PV is as the decision saw it"
        );
    }

    #[tokio::test]
    async fn a_timed_out_selected_node_is_taken_back_only_if_still_ours_and_unbound() {
        let (client, mut handle) = mock_client();
        let limiter = RateLimiter::new(100.0, 10);
        let claim = |node: &str, phase: &str| -> PersistentVolumeClaim {
            serde_json::from_value(json!({"metadata": {"name": "home", "namespace": "hub",
                "resourceVersion": "7",
                "annotations": {"volume.kubernetes.io/selected-node": node}},
                "status": {"phase": phase}}))
            .unwrap()
        };
        assert!(
            !unselect_node(&client, &limiter, &claim("n2", "Pending"), "n1")
                .await
                .unwrap()
        );
        assert!(
            !unselect_node(&client, &limiter, &claim("n1", "Bound"), "n1")
                .await
                .unwrap()
        );
        let server = tokio::spawn(async move {
            next(
                &mut handle,
                200,
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "home", "namespace": "hub"}}),
            )
            .await
        });
        assert!(
            unselect_node(&client, &limiter, &claim("n1", "Pending"), "n1")
                .await
                .unwrap()
        );
        let seen = server.await.unwrap();
        assert_eq!(
            seen.body,
            json!({"metadata": {"resourceVersion": "7",
                "annotations": {"volume.kubernetes.io/selected-node": null}}})
        );
    }

    fn claim(selected: Option<&str>, volume: Option<&str>, bound: bool) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "home", "namespace": "hub",
                         "annotations": selected.map(|n| json!({SELECTED_NODE_ANNOTATION: n}))},
            "spec": {"volumeName": volume},
            "status": {"phase": if bound { "Bound" } else { "Pending" }},
        }))
        .unwrap()
    }

    fn pv(
        name: &str,
        claim_ref: Option<&str>,
        zone_only: Option<&str>,
    ) -> std::sync::Arc<PersistentVolume> {
        let affinity = zone_only.map(|z| {
            json!({"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": [z]}]}]}})
        });
        std::sync::Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"claimRef": claim_ref.map(|c| json!({"namespace": "hub", "name": c})),
                         "nodeAffinity": affinity},
            }))
            .unwrap(),
        )
    }

    fn node_in(zone: &str) -> Node {
        let mut node = Node::new("n1", Resources::new(1000, 1 << 30));
        node.labels.insert("zone".into(), zone.into());
        node
    }

    #[test]
    fn provisioning_fails_at_once_when_the_provisioner_resets_or_moves_the_selected_node() {
        let step = VolumeStep::SelectNode {
            claim: "home".into(),
        };
        let node = node_in("z1");
        let none = |_: &str| None;
        let check =
            |pvc: &PersistentVolumeClaim, seen| check_step(&step, &node, Some(pvc), &none, seen);
        // Our annotation not in the cache yet: the cache lags our write, not a reset.
        assert_eq!(
            check(&claim(None, None, false), false),
            ClaimCheck::Waiting { write_seen: false }
        );
        assert_eq!(
            check(&claim(Some("n1"), None, false), false),
            ClaimCheck::Waiting { write_seen: true }
        );
        let removed = check(&claim(None, None, false), true);
        assert!(
            matches!(&removed, ClaimCheck::Failed(m) if m.contains("\"home\"") && m.contains("removed")),
            "{removed:?}"
        );
        let moved = check(&claim(Some("n2"), None, false), true);
        assert!(
            matches!(&moved, ClaimCheck::Failed(m) if m.contains("\"n2\"")),
            "{moved:?}"
        );
        assert!(
            matches!(check_step(&step, &node, None, &none, true), ClaimCheck::Failed(m) if m.contains("deleted"))
        );
        let pvs = |n: &str| (n == "pv-a").then(|| pv("pv-a", Some("home"), Some("z1")));
        assert_eq!(
            check_step(
                &step,
                &node,
                Some(&claim(Some("n1"), Some("pv-a"), true)),
                &pvs,
                true
            ),
            ClaimCheck::Bound
        );
    }

    #[test]
    fn a_provisioned_volume_whose_node_affinity_excludes_the_node_fails_at_once() {
        let step = VolumeStep::SelectNode {
            claim: "home".into(),
        };
        let pvs = |_: &str| Some(pv("pv-a", Some("home"), Some("z2")));
        let got = check_step(
            &step,
            &node_in("z1"),
            Some(&claim(Some("n1"), Some("pv-a"), true)),
            &pvs,
            true,
        );
        assert!(
            matches!(&got, ClaimCheck::Failed(m) if m.contains("node affinity")),
            "{got:?}"
        );
    }

    #[test]
    fn a_reset_claim_ref_on_a_pre_bound_volume_fails_at_once() {
        let step = VolumeStep::BindVolume {
            claim: "home".into(),
            volume: "pv-a".into(),
            resource_version: None,
        };
        let node = node_in("z1");
        let pending = claim(None, None, false);
        let unbound = |_: &str| Some(pv("pv-a", None, None));
        let ours = |_: &str| Some(pv("pv-a", Some("home"), None));
        assert_eq!(
            check_step(&step, &node, Some(&pending), &unbound, false),
            ClaimCheck::Waiting { write_seen: false }
        );
        assert_eq!(
            check_step(&step, &node, Some(&pending), &ours, false),
            ClaimCheck::Waiting { write_seen: true }
        );
        let reset = check_step(&step, &node, Some(&pending), &unbound, true);
        assert!(
            matches!(&reset, ClaimCheck::Failed(m) if m.contains("reset")),
            "{reset:?}"
        );
        assert_eq!(
            check_step(
                &step,
                &node,
                Some(&claim(None, Some("pv-a"), true)),
                &ours,
                true
            ),
            ClaimCheck::Bound
        );
    }
}
