use super::*;
use crate::convert::VolumeIndex;
use hubpack_core::model::{PodVolume, SelectorOperator, TaintEffect, TolerationOperator};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::json;
use std::sync::Arc;

fn placeholder_selector() -> LabelMatch {
    LabelMatch([("component".to_string(), "user-placeholder".to_string())].into())
}

fn convert_with(v: serde_json::Value, volumes: &VolumeIndex) -> Result<Pod, ConvertError> {
    let pod: k8s::Pod = serde_json::from_value(v).unwrap();
    let sel = [
        placeholder_selector(),
        LabelMatch(
            [(
                "app.kubernetes.io/component".to_string(),
                "user-placeholder".to_string(),
            )]
            .into(),
        ),
    ];
    pod_from_k8s(
        &pod,
        &PodContext {
            scheduler_name: "hubpack-scheduler",
            placeholder_selectors: &sel,
            volumes,
        },
    )
}

fn convert(v: serde_json::Value) -> Result<Pod, ConvertError> {
    convert_with(v, &VolumeIndex::default())
}

fn user_pod(spec: serde_json::Value) -> serde_json::Value {
    let mut spec = spec;
    spec["schedulerName"] = json!("hubpack-scheduler");
    json!({
        "metadata": {"name": "jupyter-alice", "namespace": "hub", "uid": "u-1",
                     "labels": {"component": "singleuser-server"},
                     "creationTimestamp": "2026-01-01T00:00:01Z"},
        "spec": spec,
    })
}

#[test]
fn plain_containers_sum_and_take_one_slot() {
    let p = convert(user_pod(json!({"containers": [
        {"name": "a", "image": "python:3.12", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
        {"name": "b", "image": "quay.io/x/y:1", "resources": {"requests": {"cpu": "0.25", "memory": "512Mi", "nvidia.com/gpu": "1"}}},
    ]})))
    .unwrap();
    assert_eq!(p.key, PodKey::new("hub", "jupyter-alice"));
    assert_eq!(p.uid, "u-1");
    assert_eq!(p.role, PodRole::User);
    assert_eq!(p.requests.cpu_milli, 750);
    assert_eq!(p.requests.memory, (1 << 30) + (512 << 20));
    assert_eq!(p.requests.pods, 1);
    assert_eq!(p.requests.extended("nvidia.com/gpu"), 1);
    assert_eq!(p.created, 1_767_225_601_000);
    assert_eq!(
        p.images,
        vec![
            ImageName::normalize("python:3.12"),
            ImageName::normalize("quay.io/x/y:1")
        ]
    );
    assert!(p.unsupported.is_empty());
}

#[test]
fn sidecars_add_plain_init_containers_take_the_max_and_overhead_adds() {
    // Sidecar 100m runs alongside the app (1000m); the plain init container (1500m) runs
    // after the sidecar started, so it needs 1600m, the max; overhead adds 50m.
    let p = convert(user_pod(json!({
        "initContainers": [
            {"name": "side", "image": "envoy", "restartPolicy": "Always",
             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            {"name": "setup", "image": "busybox",
             "resources": {"requests": {"cpu": "1500m", "memory": "32Mi"}}},
        ],
        "containers": [{"name": "app", "image": "python",
                        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
        "overhead": {"cpu": "50m", "memory": "10Mi"},
    })))
    .unwrap();
    assert_eq!(p.requests.cpu_milli, 1600 + 50);
    assert_eq!(p.requests.memory, (1 << 30) + (64 << 20) + (10 << 20));
    assert_eq!(p.images.len(), 3, "init container images count for warmth");
}

#[test]
fn pod_level_resources_override_the_container_sum() {
    let p = convert(user_pod(json!({
        "resources": {"requests": {"cpu": "2", "memory": "4Gi"}},
        "containers": [{"name": "app", "image": "python",
                        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
    })))
    .unwrap();
    assert_eq!(p.requests.cpu_milli, 2000);
    assert_eq!(p.requests.memory, 4 << 30);
}

#[test]
fn pod_level_hugepages_override_the_containers() {
    let p = convert(user_pod(json!({
        "resources": {"requests": {"cpu": "1", "hugepages-2Mi": "8Mi"}},
        "containers": [{"name": "c", "image": "x",
            "resources": {"requests": {"cpu": "500m", "hugepages-2Mi": "2Mi"}}}]})))
    .unwrap();
    assert_eq!(p.requests.extended("hugepages-2Mi"), 8 << 20);
    assert_eq!(p.requests.cpu_milli, 1000);
}

#[test]
fn an_assigned_pod_counts_the_largest_of_spec_allocated_and_actuated_requests() {
    let mut v = user_pod(json!({"nodeName": "n1",
        "initContainers": [{"name": "proxy", "image": "x", "restartPolicy": "Always",
            "resources": {"requests": {"cpu": "100m"}}}],
        "containers": [{"name": "c", "image": "x",
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}));
    // Resized down in the spec; the kubelet still holds (allocated) 2 cpus and runs with
    // (actuated) 3Gi; the sidecar was resized up to 300m.
    v["status"] = json!({
        "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": true,
            "restartCount": 0, "allocatedResources": {"cpu": "2", "memory": "1Gi"},
            "resources": {"requests": {"cpu": "1500m", "memory": "3Gi"}}}],
        "initContainerStatuses": [{"name": "proxy", "image": "x", "imageID": "", "ready": true,
            "restartCount": 0, "allocatedResources": {"cpu": "300m"},
            "resources": {"requests": {"cpu": "300m"}}}]});
    let p = convert(v.clone()).unwrap();
    assert_eq!(p.requests.cpu_milli, 2300);
    assert_eq!(p.requests.memory, 3 << 30);
    // Without `resources` reported the kubelet says nothing about a resize: the spec counts.
    v["status"]["containerStatuses"][0]
        .as_object_mut()
        .unwrap()
        .remove("resources");
    let p = convert(v).unwrap();
    assert_eq!(p.requests.cpu_milli, 1300);
}

#[test]
fn missing_requests_count_as_defaults_only_for_scoring() {
    let p = convert(user_pod(
        json!({"containers": [{"name": "app", "image": "python"}]}),
    ))
    .unwrap();
    assert_eq!(p.requests.cpu_milli, 0);
    assert_eq!(p.score_requests.cpu_milli, 100);
    assert_eq!(p.score_requests.memory, 200 << 20);
}

#[test]
fn placeholder_selector_decides_the_role() {
    let mut v = user_pod(
        json!({"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}],
                                "priority": -10, "preemptionPolicy": "Never"}),
    );
    v["metadata"]["labels"] = json!({"component": "user-placeholder"});
    let p = convert(v).unwrap();
    assert_eq!(p.role, PodRole::Placeholder);
    assert_eq!(p.priority, -10);
    assert_eq!(p.preemption_policy, PreemptionPolicy::Never);

    // Any one of the selectors is enough (hubpack's chart labels its placeholders this way).
    let mut v = user_pod(json!({"containers": [{"name": "pause", "image": "pause"}]}));
    v["metadata"]["labels"] = json!({"app.kubernetes.io/component": "user-placeholder"});
    assert_eq!(convert(v).unwrap().role, PodRole::Placeholder);

    // Not ours and not a placeholder: counted, never touched.
    let mut v = user_pod(json!({"containers": [{"name": "c", "image": "x"}]}));
    v["spec"]["schedulerName"] = json!("default-scheduler");
    assert_eq!(convert(v).unwrap().role, PodRole::Other);
}

#[test]
fn a_placeholder_stands_for_the_images_in_its_user_images_annotation() {
    let mut v =
        user_pod(json!({"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}));
    v["metadata"]["labels"] = json!({"component": "user-placeholder"});
    // Never its own pause image.
    assert_eq!(convert(v.clone()).unwrap().images, Vec::<ImageName>::new());
    v["metadata"]["annotations"] = json!({"hubpack.io/user-images":
        " jupyter/scipy-notebook:2024 ,, quay.io/x/r:1@sha256:abc"});
    assert_eq!(
        convert(v.clone()).unwrap().images,
        vec![
            ImageName::normalize("docker.io/jupyter/scipy-notebook:2024"),
            ImageName::normalize("quay.io/x/r@sha256:abc"),
        ]
    );
    // A user's annotation means nothing: its own images count.
    v["metadata"]["labels"] = json!({"component": "singleuser-server"});
    assert_eq!(
        convert(v).unwrap().images,
        vec![ImageName::normalize("registry.k8s.io/pause:3.10")]
    );
}

#[test]
fn empty_selector_matches_nothing() {
    let empty = LabelMatch::default();
    assert!(!empty.matches(Some(&[("a".to_string(), "b".to_string())].into())));
    assert!(!placeholder_selector().matches(None));
}

#[test]
fn tolerations_and_node_affinity_convert() {
    let p = convert(user_pod(json!({
        "containers": [{"name": "c", "image": "x"}],
        "tolerations": [
            {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
            {"operator": "Exists"},
        ],
        "nodeSelector": {"pool": "a"},
        "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]}],
                 "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n9"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [
                    {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}]}}],
        }},
    })))
    .unwrap();
    assert_eq!(p.tolerations.len(), 2);
    assert_eq!(p.tolerations[0].effect, Some(TaintEffect::NoSchedule));
    assert_eq!(p.tolerations[1].operator, TolerationOperator::Exists);
    assert_eq!(p.tolerations[1].key, "");
    assert_eq!(p.node_selector["pool"], "a");
    let req = p.required_affinity.unwrap();
    assert_eq!(
        req.terms[0].match_expressions[0].operator,
        SelectorOperator::In
    );
    assert_eq!(req.terms[0].match_fields[0].values, vec!["n9".to_string()]);
    assert_eq!(p.preferred_affinity[0].weight, 100);
}

#[test]
fn hard_constraints_we_do_not_implement_are_listed() {
    let p = convert(user_pod(json!({
        "containers": [{"name": "c", "image": "x"}],
        "affinity": {
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone"}]},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "host"}]},
        },
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}],
        "resourceClaims": [{"name": "gpu", "resourceClaimName": "c"}],
    })))
    .unwrap();
    assert_eq!(p.unsupported.len(), 4, "{:?}", p.unsupported);

    // Soft constraints cannot make a placement invalid: not listed.
    let p = convert(user_pod(json!({
        "containers": [{"name": "c", "image": "x"}],
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}],
    })))
    .unwrap();
    assert!(p.unsupported.is_empty());
}

#[test]
fn gates_deletion_binding_and_nomination_are_read() {
    let mut v = user_pod(json!({"containers": [{"name": "c", "image": "x"}],
                                "schedulingGates": [{"name": "wait"}], "nodeName": "n1"}));
    v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:05Z");
    v["status"] = json!({"nominatedNodeName": "n2"});
    let p = convert(v).unwrap();
    assert!(p.scheduling_gated);
    assert!(p.deleting);
    assert_eq!(p.node_name.as_deref(), Some("n1"));
    assert_eq!(p.nominated_node.as_deref(), Some("n2"));
}

#[test]
fn host_ports_default_to_tcp() {
    let p = convert(user_pod(json!({"containers": [{"name": "c", "image": "x",
        "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]}]})))
    .unwrap();
    assert_eq!(p.host_ports.len(), 1);
    assert_eq!(p.host_ports[0].port, 8080);
    assert_eq!(p.host_ports[0].protocol, "TCP");
}

#[test]
fn init_container_host_ports_are_not_counted_as_kube_scheduler_does_not() {
    let p = convert(user_pod(json!({
        "initContainers": [{"name": "i", "image": "x",
            "ports": [{"containerPort": 80, "hostPort": 9000}]}],
        "containers": [{"name": "c", "image": "x"}]})))
    .unwrap();
    assert!(p.host_ports.is_empty(), "{:?}", p.host_ports);
}

#[test]
fn sidecar_host_ports_are_counted_as_upstream_get_host_ports_does() {
    let p = convert(user_pod(json!({
        "initContainers": [
            {"name": "setup", "image": "x", "ports": [{"containerPort": 80, "hostPort": 9000}]},
            {"name": "proxy", "image": "x", "restartPolicy": "Always",
             "ports": [{"containerPort": 81, "hostPort": 9001, "protocol": "UDP"}]}],
        "containers": [{"name": "c", "image": "x"}]})))
    .unwrap();
    let ports: Vec<_> = p
        .host_ports
        .iter()
        .map(|h| (h.port, h.protocol.as_str()))
        .collect();
    assert_eq!(ports, [(9001, "UDP")]);
}

#[test]
fn malformed_quantity_is_an_error_naming_the_field() {
    let e = convert(user_pod(json!({"containers": [{"name": "c", "image": "x",
        "resources": {"requests": {"memory": "1Gb"}}}]})))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("spec.containers[0].resources.requests.memory"),
        "{e}"
    );
    let e = convert(user_pod(
        json!({"containers": [{"name": "c", "image": "x"}],
        "overhead": {"cpu": "x"}}),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("spec.overhead.cpu"), "{e}");
}

#[test]
fn unknown_toleration_operator_is_an_error() {
    let e = convert(user_pod(
        json!({"containers": [{"name": "c", "image": "x"}],
        "tolerations": [{"key": "k", "operator": "Maybe"}]}),
    ))
    .unwrap_err();
    assert!(
        e.to_string().contains("spec.tolerations[0].operator"),
        "{e}"
    );
}

#[test]
fn a_placed_pod_that_cannot_be_converted_is_still_counted_by_its_requests() {
    let mut v = user_pod(json!({"nodeName": "n1", "priority": 5,
        "containers": [{"name": "c", "image": "x",
                        "resources": {"requests": {"cpu": "1500m", "memory": "2Gi"}},
                        "ports": [{"containerPort": 80, "hostPort": 8080}]}],
        "tolerations": [{"key": "k", "operator": "Gt", "value": "3"}]}));
    assert!(convert(v.clone()).is_err(), "Gt is not read");
    let pod: k8s::Pod = serde_json::from_value(v.clone()).unwrap();
    let counted = placed_pod_by_resources(&pod).expect("placed: counted");
    assert_eq!(counted.node_name.as_deref(), Some("n1"));
    assert_eq!(counted.requests.cpu_milli, 1500);
    assert_eq!(counted.requests.memory, 2 << 30);
    assert_eq!(counted.requests.pods, 1);
    assert_eq!(counted.host_ports.len(), 1);
    assert_eq!(counted.role, PodRole::Other, "never a victim");
    v["spec"]["nodeName"] = json!(null);
    let pending: k8s::Pod = serde_json::from_value(v).unwrap();
    assert_eq!(
        placed_pod_by_resources(&pending),
        None,
        "not placed: not counted"
    );
}

fn volume_fixture() -> VolumeIndex {
    let mut idx = VolumeIndex::default();
    let pvc = |name: &str, class: &str, volume: Option<&str>| -> Arc<PersistentVolumeClaim> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "hub"},
                "spec": {"storageClassName": class, "volumeName": volume,
                         "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "10Gi"}}},
            }))
            .unwrap(),
        )
    };
    for (name, class, vol) in [
        ("home-bound", "standard", Some("pv-bound")),
        ("home-wffc", "local", None),
        ("home-immediate", "standard", None),
    ] {
        idx.claims
            .insert(("hub".into(), name.into()), pvc(name, class, vol));
    }
    let pv = |name: &str, class: &str, size: &str, claim: Option<&str>| -> Arc<PersistentVolume> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"storageClassName": class, "capacity": {"storage": size},
                         "accessModes": ["ReadWriteOnce"],
                         "claimRef": claim.map(|c| json!({"namespace": "hub", "name": c})),
                         "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": format!("vol-{name}")},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "zone", "operator": "In", "values": ["z1"]}]}]}}},
            }))
            .unwrap(),
        )
    };
    idx.volumes.insert(
        "pv-bound".into(),
        pv("pv-bound", "standard", "10Gi", Some("home-bound")),
    );
    idx.volumes
        .insert("pv-free".into(), pv("pv-free", "local", "20Gi", None));
    idx.volumes
        .insert("pv-small".into(), pv("pv-small", "local", "1Gi", None));
    idx.volumes.insert(
        "pv-taken".into(),
        pv("pv-taken", "local", "20Gi", Some("other")),
    );
    let class = |name: &str, mode: &str, provisioner: &str| -> Arc<StorageClass> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name}, "provisioner": provisioner,
                "volumeBindingMode": mode,
                "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["z1", "z2"]}]}],
            }))
            .unwrap(),
        )
    };
    idx.classes.insert(
        "standard".into(),
        class("standard", "Immediate", "ebs.csi.aws.com"),
    );
    idx.classes.insert(
        "local".into(),
        class(
            "local",
            "WaitForFirstConsumer",
            "kubernetes.io/no-provisioner",
        ),
    );
    idx
}

#[test]
fn claims_resolve_to_bound_wait_for_consumer_immediate_and_missing() {
    let idx = volume_fixture();
    let p = convert_with(
        user_pod(
            json!({"containers": [{"name": "c", "image": "x"}], "volumes": [
                {"name": "a", "persistentVolumeClaim": {"claimName": "home-bound"}},
                {"name": "b", "persistentVolumeClaim": {"claimName": "home-wffc"}},
                {"name": "c", "persistentVolumeClaim": {"claimName": "home-immediate"}},
                {"name": "d", "persistentVolumeClaim": {"claimName": "nope"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "cfg", "configMap": {"name": "x"}},
            ]}),
        ),
        &idx,
    )
    .unwrap();
    assert_eq!(p.volumes.len(), 5);
    match &p.volumes[0] {
        PodVolume::Bound {
            claim,
            node_affinity,
            csi_driver,
            volume_id,
        } => {
            assert_eq!(claim, "home-bound");
            assert!(node_affinity.is_some());
            assert_eq!(csi_driver.as_deref(), Some("ebs.csi.aws.com"));
            assert_eq!(volume_id, "vol-pv-bound");
        }
        other => panic!("{other:?}"),
    }
    match &p.volumes[1] {
        PodVolume::WaitForFirstConsumer {
            static_pvs,
            allowed_topologies,
            provisioner_none,
            csi_driver,
            ..
        } => {
            let names: Vec<_> = static_pvs.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(
                names,
                vec!["pv-free"],
                "too small and claimed PVs do not match"
            );
            assert!(allowed_topologies.is_some());
            assert!(*provisioner_none);
            assert!(csi_driver.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.volumes[2],
        PodVolume::UnboundImmediate {
            claim: "home-immediate".into()
        }
    );
    assert_eq!(
        p.volumes[3],
        PodVolume::MissingClaim {
            claim: "nope".into()
        }
    );
    assert_eq!(
        p.volumes[4],
        PodVolume::MissingClaim {
            claim: "jupyter-alice-scratch".into()
        }
    );
}

fn wffc_static_pvs(idx: &VolumeIndex) -> (Vec<String>, Option<hubpack_core::model::NodeSelector>) {
    let p = convert_with(
        user_pod(
            json!({"containers": [{"name": "c", "image": "x"}], "volumes": [
            {"name": "b", "persistentVolumeClaim": {"claimName": "home-wffc"}}]}),
        ),
        idx,
    )
    .unwrap();
    match &p.volumes[0] {
        PodVolume::WaitForFirstConsumer {
            static_pvs,
            allowed_topologies,
            ..
        } => (
            static_pvs.iter().map(|s| s.name.clone()).collect(),
            allowed_topologies.clone(),
        ),
        other => panic!("{other:?}"),
    }
}

fn local_pv(name: &str, size: &str, extra: serde_json::Value) -> Arc<PersistentVolume> {
    let mut v = json!({
        "metadata": {"name": name},
        "spec": {"storageClassName": "local", "capacity": {"storage": size},
                 "accessModes": ["ReadWriteOnce"]},
    });
    for (k, val) in extra.as_object().unwrap() {
        if k == "labels" {
            v["metadata"]["labels"] = val.clone();
        } else {
            v["spec"][k] = val.clone();
        }
    }
    Arc::new(serde_json::from_value(v).unwrap())
}

#[test]
fn the_smallest_fitting_volume_comes_first() {
    let mut idx = volume_fixture();
    idx.volumes.insert(
        "pv-a-huge".into(),
        local_pv("pv-a-huge", "100Gi", json!({})),
    );
    idx.volumes
        .insert("pv-z-snug".into(), local_pv("pv-z-snug", "10Gi", json!({})));
    let (names, _) = wffc_static_pvs(&idx);
    assert_eq!(names, ["pv-z-snug", "pv-free", "pv-a-huge"]);
}

#[test]
fn a_volume_must_match_the_claims_selector_and_volume_mode() {
    let mut idx = volume_fixture();
    idx.volumes.remove("pv-free");
    idx.volumes.insert(
        "pv-block".into(),
        local_pv("pv-block", "10Gi", json!({"volumeMode": "Block"})),
    );
    idx.volumes.insert(
        "pv-fast".into(),
        local_pv("pv-fast", "10Gi", json!({"labels": {"tier": "fast"}})),
    );
    idx.volumes.insert(
        "pv-slow".into(),
        local_pv("pv-slow", "10Gi", json!({"labels": {"tier": "slow"}})),
    );
    assert_eq!(
        wffc_static_pvs(&idx).0,
        ["pv-fast", "pv-slow"],
        "Filesystem only"
    );
    let mut claim = (*idx.claims[&("hub".to_string(), "home-wffc".to_string())]).clone();
    claim.spec.as_mut().unwrap().selector = Some(
        serde_json::from_value(json!({"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fast"]}]}))
        .unwrap(),
    );
    idx.claims
        .insert(("hub".into(), "home-wffc".into()), Arc::new(claim.clone()));
    assert_eq!(wffc_static_pvs(&idx).0, ["pv-fast"]);
    claim.spec.as_mut().unwrap().selector = None;
    claim.spec.as_mut().unwrap().volume_mode = Some("Block".into());
    idx.claims
        .insert(("hub".into(), "home-wffc".into()), Arc::new(claim));
    assert_eq!(wffc_static_pvs(&idx).0, ["pv-block"]);
}

#[test]
fn a_claim_with_a_selected_node_pins_the_pod_to_that_node() {
    let mut idx = volume_fixture();
    let mut claim = (*idx.claims[&("hub".to_string(), "home-wffc".to_string())]).clone();
    claim.metadata.annotations = Some(
        [(
            "volume.kubernetes.io/selected-node".to_string(),
            "node-7".to_string(),
        )]
        .into(),
    );
    idx.claims
        .insert(("hub".into(), "home-wffc".into()), Arc::new(claim));
    let (names, allowed) = wffc_static_pvs(&idx);
    assert!(names.is_empty(), "being provisioned: no static volume");
    let allowed = allowed.unwrap();
    // The class's topology, and the node by name, in every term.
    assert_eq!(allowed.terms.len(), 1);
    let t = &allowed.terms[0];
    assert_eq!(t.match_expressions[0].key, "zone");
    assert_eq!(t.match_fields[0].key, "metadata.name");
    assert_eq!(t.match_fields[0].values, ["node-7"]);
}

#[test]
fn volume_restrictions_are_refused_visibly() {
    let mut idx = volume_fixture();
    let mut claim = (*idx.claims[&("hub".to_string(), "home-wffc".to_string())]).clone();
    claim.spec.as_mut().unwrap().access_modes = Some(vec!["ReadWriteOncePod".into()]);
    idx.claims
        .insert(("hub".into(), "home-wffc".into()), Arc::new(claim));
    let p = convert_with(
        user_pod(
            json!({"containers": [{"name": "c", "image": "x"}], "volumes": [
            {"name": "b", "persistentVolumeClaim": {"claimName": "home-wffc"}},
            {"name": "disk", "gcePersistentDisk": {"pdName": "d1"}}]}),
        ),
        &idx,
    )
    .unwrap();
    assert_eq!(p.unsupported.len(), 2, "{:?}", p.unsupported);
    assert!(
        p.unsupported
            .iter()
            .all(|u| u.contains("VolumeRestrictions"))
    );
}
