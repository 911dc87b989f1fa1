//! A detached cluster as `cargo xtask cluster up` starts it: its dynamic provisioner runs as a
//! process of its own with a default WaitForFirstConsumer StorageClass, so a KubeSpawner-shaped
//! pod whose home claim names no class gets a volume on its node and binds via
//! hubpack-scheduler; `cargo xtask cluster down` stops the provisioner with the rest.

#![allow(clippy::unwrap_used)] // a test binary

use hubpack_e2e::cluster::{self, Cluster, ClusterOptions};
use hubpack_e2e::in_process::{InProcessScheduler, test_config};
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_e2e::provisioner::{DEFAULT_CLASS, SELECTED_NODE};
use hubpack_e2e::{harness, processes, wait};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::PostParams;
use std::time::Duration;

const IMAGE: &str = "jupyter/base-notebook:2024";
const IMAGE_FULL: &str = "docker.io/jupyter/base-notebook:2024";
const WAIT: Duration = Duration::from_secs(90);
const SCHEDULER: &str = "hubpack-cluster-up";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_cluster_provisions_a_default_class_home_for_a_kubespawner_pod() {
    let dir = std::env::temp_dir().join(format!("hubpack-cluster-up-{}", std::process::id()));
    let mut opts = ClusterOptions::new(&dir, env!("CARGO_BIN_EXE_hubpack-e2e-model"));
    opts.provisioner = true;
    opts.kube_scheduler = false;
    let warm = NodeTemplate::new(Pool::User).with_images([IMAGE_FULL]);
    opts.nodes.push(("user-0".into(), warm));
    let started = Cluster::start(&opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // As `cluster up`: the processes outlive the starter; the state dir is all that is left.
    started.detach();
    // If this test dies, the cluster goes with it.
    processes::spawn_watchdog(&dir, std::process::id()).unwrap();
    let client = cluster::client_from_kubeconfig(&dir.join("kubeconfig"))
        .await
        .unwrap();
    let scheduler = InProcessScheduler::start(&client, test_config(SCHEDULER), "up-0").unwrap();

    let ns = harness::create_namespace(&client, "up").await.unwrap();
    // z2jh's home claim: no storageClassName, so the default class applies.
    let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "claim-alice", "labels": {"app": "jupyterhub",
            "component": "singleuser-storage", "hub.jupyter.org/username": "alice"}},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "10Gi"}}},
    }))
    .unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    // The default class is the provisioner process's to create: it may still be on its way.
    let created = wait::until("the claim created with the default class", WAIT, || {
        let (claims, claim) = (claims.clone(), claim.clone());
        async move {
            let c = claims.create(&PostParams::default(), &claim).await.ok()?;
            let class = c.spec.and_then(|s| s.storage_class_name);
            if class.as_deref() == Some(DEFAULT_CLASS) {
                Some(())
            } else {
                // Created before the class existed: try again once it does.
                let _ = claims.delete("claim-alice", &Default::default()).await;
                None
            }
        }
    })
    .await;
    created.unwrap_or_else(|e| panic!("{e}"));

    // As KubeSpawner renders it under z2jh's defaults.
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "jupyter-alice", "labels": {
            "app": "jupyterhub", "component": "singleuser-server", "release": "jhub",
            "hub.jupyter.org/username": "alice"}},
        "spec": {
            "schedulerName": SCHEDULER,
            "automountServiceAccountToken": false,
            "securityContext": {"fsGroup": 100},
            "containers": [{"name": "notebook", "image": IMAGE,
                "args": ["jupyterhub-singleuser"],
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                "volumeMounts": [{"mountPath": "/home/jovyan", "name": "volume-alice"}]}],
            "volumes": [{"name": "volume-alice", "persistentVolumeClaim": {"claimName": "claim-alice"}}],
            "tolerations": [
                {"effect": "NoSchedule", "key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user"}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [
                    {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}]}}]}},
            "restartPolicy": "OnFailure",
        },
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let bound = wait::until("jupyter-alice bound", WAIT, || {
        let pods = pods.clone();
        async move {
            let p = pods.get("jupyter-alice").await.ok()?;
            p.spec.and_then(|s| s.node_name)
        }
    })
    .await;
    let node = bound.unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            processes::log_tail(&processes::log_path(&dir, "provisioner"), 20)
        )
    });
    assert_eq!(node, "user-0");
    let claim = claims.get("claim-alice").await.unwrap();
    assert_eq!(
        claim
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SELECTED_NODE))
            .map(String::as_str),
        Some("user-0"),
    );
    let volume = claim.spec.unwrap().volume_name.expect("the claim is bound");
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&volume)
        .await
        .unwrap();
    let affinity = serde_json::to_value(pv.spec.unwrap().node_affinity).unwrap();
    assert_eq!(
        affinity["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0], "user-0",
        "the volume lives on the pod's node"
    );

    scheduler.stop().await.unwrap();
    // As `cargo xtask cluster down`.
    let stopped = cluster::stop_state_dir(&dir);
    assert!(
        stopped.iter().any(|p| p == "provisioner"),
        "cluster down stops the provisioner: {stopped:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
