use super::*;
use crate::actions::volumes::VolumeStep;
use hubpack_core::model::PodRole;
use hubpack_kube::convert::VolumeIndex;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn cls() -> Classifier {
    Classifier {
        scheduler_name: "hubpack-scheduler".into(),
        placeholder_selectors: vec![LabelMatch(
            [("component".to_string(), "user-placeholder".to_string())].into(),
        )],
        prepull_selectors: vec![LabelMatch(
            [(
                "component".to_string(),
                "continuous-image-puller".to_string(),
            )]
            .into(),
        )],
    }
}

fn pod(name: &str, labels: Value, node: Option<&str>, extra_status: Value) -> k8s::Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "hub", "uid": format!("uid-{name}"), "labels": labels,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"schedulerName": "hubpack-scheduler", "nodeName": node, "priority": 0,
                 "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]},
        "status": extra_status,
    }))
    .unwrap()
}

fn node(name: &str) -> k8s::Node {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "status": {"allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
    }))
    .unwrap()
}

#[test]
fn pending_pods_of_ours_are_queued_bound_ones_counted() {
    let mut st = ClusterState::default();
    let vols = VolumeIndex::default();
    st.apply_node(&node("n1"), None).unwrap();
    let fx = st.apply_pod(&pod("u1", json!({}), None, json!({})), &cls(), &vols);
    assert!(matches!(fx.change, Some(PodChange::Pending { .. })));
    let fx = st.apply_pod(&pod("u2", json!({}), Some("n1"), json!({})), &cls(), &vols);
    assert_eq!(
        fx.change,
        Some(PodChange::NotPending {
            key: PodKey::new("hub", "u2")
        })
    );
    assert_eq!(st.snapshot.requested("n1").cpu_milli, 1000);
    assert_eq!(
        st.snapshot.pod(&PodKey::new("hub", "u1")).unwrap().role,
        PodRole::User
    );
}

#[test]
fn a_terminating_victim_still_counts_until_its_delete() {
    let mut st = ClusterState::default();
    let vols = VolumeIndex::default();
    st.apply_node(&node("n1"), None).unwrap();
    let ph = pod(
        "ph",
        json!({"component": "user-placeholder"}),
        Some("n1"),
        json!({}),
    );
    st.apply_pod(&ph, &cls(), &vols);
    let user = PodKey::new("hub", "u1");
    st.apply_pod(&pod("u1", json!({}), None, json!({})), &cls(), &vols);
    st.in_flight.preempt(
        user.clone(),
        "n1".into(),
        [PodKey::new("hub", "ph")].into(),
        1_000_000,
    );
    // deletionTimestamp alone: still placed, nobody woken.
    let mut terminating = ph.clone();
    terminating.metadata.deletion_timestamp = ph.metadata.creation_timestamp.clone();
    let fx = st.apply_pod(&terminating, &cls(), &vols);
    assert!(fx.wake.is_empty());
    assert_eq!(st.snapshot.requested("n1").cpu_milli, 1000);
    // DELETE: freed, and the preemptor is woken.
    let fx = st.delete_pod(&terminating, &cls());
    assert_eq!(fx.wake, vec![user]);
    assert_eq!(fx.freed.as_deref(), Some("n1"));
    assert_eq!(st.snapshot.requested("n1").cpu_milli, 0);
}

#[test]
fn our_nomination_survives_a_stale_pod_event() {
    let mut st = ClusterState::default();
    let vols = VolumeIndex::default();
    st.apply_node(&node("n1"), None).unwrap();
    let key = PodKey::new("hub", "u1");
    st.apply_pod(&pod("u1", json!({}), None, json!({})), &cls(), &vols);
    st.in_flight
        .preempt(key.clone(), "n1".into(), BTreeSet::new(), 0);
    st.apply_pod(&pod("u1", json!({}), None, json!({})), &cls(), &vols);
    assert_eq!(
        st.snapshot.pod(&key).unwrap().nominated_node.as_deref(),
        Some("n1")
    );
    assert_eq!(st.snapshot.nominated_on("n1").count(), 1);
}

#[test]
fn prepull_readiness_flips_the_node() {
    let mut st = ClusterState::default();
    let vols = VolumeIndex::default();
    st.apply_node(&node("n1"), None).unwrap();
    let not_ready = pod(
        "puller",
        json!({"component": "continuous-image-puller"}),
        Some("n1"),
        json!({}),
    );
    let ready = pod(
        "puller",
        json!({"component": "continuous-image-puller"}),
        Some("n1"),
        json!({"conditions": [{"type": "Ready", "status": "True"}]}),
    );
    assert_eq!(
        st.apply_pod(&not_ready, &cls(), &vols).prepull_changed,
        None
    );
    assert_eq!(
        st.apply_pod(&ready, &cls(), &vols).prepull_changed,
        Some("n1".into())
    );
    assert!(st.prepull_ready("n1"));
    st.apply_node(&node("n1"), None).unwrap();
    assert!(st.snapshot.node("n1").unwrap().prepull_ready);
    assert_eq!(
        st.delete_pod(&ready, &cls()).prepull_changed,
        Some("n1".into())
    );
    assert!(!st.prepull_ready("n1"));
}

#[test]
fn kubelet_rejection_is_reported_once() {
    let mut st = ClusterState::default();
    let vols = VolumeIndex::default();
    let failed = pod(
        "u1",
        json!({}),
        Some("n1"),
        json!({"phase": "Failed", "reason": "OutOfcpu"}),
    );
    let fx = st.apply_pod(&failed, &cls(), &vols);
    assert_eq!(fx.kubelet_rejected, Some(("OutOfcpu".into(), "n1".into())));
    assert_eq!(st.apply_pod(&failed, &cls(), &vols).kubelet_rejected, None);
    let evicted = pod(
        "u2",
        json!({}),
        Some("n1"),
        json!({"phase": "Failed", "reason": "Evicted"}),
    );
    assert_eq!(st.apply_pod(&evicted, &cls(), &vols).kubelet_rejected, None);
    // Its DELETE forgets it: the memory of reported rejections does not grow forever.
    assert_eq!(st.rejections_seen.len(), 1);
    st.delete_pod(&failed, &cls());
    assert!(st.rejections_seen.is_empty());
}

#[test]
fn provisioning_waiters_wake_when_all_claims_are_bound() {
    let mut st = ClusterState::default();
    let key = PodKey::new("hub", "u1");
    st.in_flight.provision(
        key.clone(),
        "n1".into(),
        vec![
            VolumeStep::SelectNode { claim: "a".into() },
            VolumeStep::BindVolume {
                claim: "b".into(),
                volume: "pv-1".into(),
                resource_version: None,
            },
        ],
        0,
    );
    assert!(st.in_flight.claims_bound("hub", &|c| c == "a").is_empty());
    assert_eq!(
        st.in_flight.claims_bound("hub", &|_| true),
        vec![key.clone()]
    );
    assert!(st.in_flight.claims_bound("other", &|_| true).is_empty());
    assert_eq!(
        st.in_flight.reserved_volumes(&PodKey::new("hub", "u2")),
        ["pv-1"].into()
    );
    assert!(
        st.in_flight.reserved_volumes(&key).is_empty(),
        "not reserved against itself"
    );
}

#[test]
fn a_node_update_that_changes_nothing_is_not_a_change() {
    let mut st = ClusterState::default();
    assert!(st.apply_node(&node("n1"), None).unwrap());
    assert!(
        !st.apply_node(&node("n1"), None).unwrap(),
        "same node again"
    );
    let mut tainted = node("n1");
    tainted.spec = Some(
        serde_json::from_value(json!({"taints": [
        {"key": "k", "effect": "NoSchedule"}]}))
        .unwrap(),
    );
    assert!(st.apply_node(&tainted, None).unwrap());
}

#[test]
fn a_placed_pods_required_anti_affinity_is_tracked_against_incoming_pods() {
    let mut st = ClusterState::default();
    let vols = hubpack_kube::convert::VolumeIndex::default();
    let guard: k8s::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db", "namespace": "hub", "uid": "u-db"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}],
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname",
                 "labelSelector": {"matchLabels": {"component": "singleuser-server"}}}]}}},
        "status": {"phase": "Running"},
    }))
    .unwrap();
    st.apply_pod(&guard, &cls(), &vols);
    let incoming = |ns: &str, component: &str| -> k8s::Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "u", "namespace": ns, "labels": {"component": component}}}))
        .unwrap()
    };
    assert_eq!(
        st.anti_affinity_against(&incoming("hub", "singleuser-server")),
        Some(&PodKey::new("hub", "db"))
    );
    assert_eq!(st.anti_affinity_against(&incoming("hub", "other")), None);
    assert_eq!(
        st.anti_affinity_against(&incoming("elsewhere", "singleuser-server")),
        None,
        "a term without namespaces covers its own namespace only"
    );
    st.delete_pod(&guard, &cls());
    assert_eq!(
        st.anti_affinity_against(&incoming("hub", "singleuser-server")),
        None
    );
}

#[test]
fn a_placed_pod_that_cannot_be_converted_still_counts_on_its_node() {
    let mut st = ClusterState::default();
    let vols = VolumeIndex::default();
    st.apply_node(&node("n1"), None).unwrap();
    // A DaemonSet pod tolerating with an operator hubpack does not read.
    let mut ds = pod("ds-1", json!({}), Some("n1"), json!({}));
    ds.spec.as_mut().unwrap().scheduler_name = Some("default-scheduler".into());
    ds.spec.as_mut().unwrap().tolerations = Some(vec![k8s::Toleration {
        key: Some("k".into()),
        operator: Some("Gt".into()),
        value: Some("3".into()),
        ..Default::default()
    }]);
    st.apply_pod(&ds, &cls(), &vols);
    assert_eq!(st.snapshot.requested("n1").cpu_milli, 1000);
    st.delete_pod(&ds, &cls());
    assert_eq!(st.snapshot.requested("n1").cpu_milli, 0);
}
