//! hubpack-scheduler end to end, on the harness's real control plane with kwok nodes: the
//! scheduler runs in-process (`hubpack_scheduler::app::run`) with a scheduler name and node
//! label unique to each test, so tests sharing the cluster never see each other's pods.

#![allow(clippy::unwrap_used)] // a test binary

use hubpack_e2e::harness;
use hubpack_e2e::in_process::{InProcessScheduler, test_config};
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_scheduler::config::Config;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::time::Duration;

const IMAGE: &str = "jupyter/base-notebook:2024";
const IMAGE_FULL: &str = "docker.io/jupyter/base-notebook:2024";
const TEST_LABEL: &str = "e2e.hubpack.dev/test";
const PLACEHOLDER_CLASS: &str = "hubpack-e2e-placeholder";
const WAIT: Duration = Duration::from_secs(60);

/// One test's world: a namespace, a scheduler name, a node label, a running scheduler.
struct World {
    client: kube::Client,
    ns: String,
    scheduler: String,
    running: Option<InProcessScheduler>,
}

impl World {
    async fn start(prefix: &str) -> World {
        World::start_with(prefix, |_, _| {}).await
    }

    /// `tweak` may adjust the config, given the test's namespace.
    async fn start_with(prefix: &str, tweak: impl FnOnce(&mut Config, &str)) -> World {
        let cluster = hubpack_e2e::shared_cluster!().unwrap_or_else(|e| panic!("{e}"));
        let client = cluster.client().await.unwrap();
        let ns = harness::create_namespace(&client, prefix).await.unwrap();
        let scheduler = harness::unique_name("hubpack");
        let mut cfg = test_config(&scheduler);
        tweak(&mut cfg, &ns);
        let running = InProcessScheduler::start(&client, cfg, &format!("{scheduler}-0")).unwrap();
        World {
            client,
            ns,
            scheduler,
            running: Some(running),
        }
    }

    async fn node(&self, prefix: &str, cpu: &str, images: &[&str]) -> String {
        let name = harness::unique_name(prefix);
        let mut template = NodeTemplate::new(Pool::User)
            .with_images(images.iter().map(|s| s.to_string()))
            .with_boot_delay(Duration::ZERO)
            .with_resources(cpu, "32Gi", 110);
        template
            .extra_labels
            .insert(TEST_LABEL.into(), self.scheduler.clone());
        harness::create_node(&self.client, &name, &template)
            .await
            .unwrap();
        harness::wait_node_schedulable(&self.client, &name, WAIT)
            .await
            .unwrap();
        name
    }

    /// A pod for this test's nodes and scheduler.
    fn pod(&self, name: &str, cpu: &str) -> Pod {
        let mut pod = harness::user_pod(name, IMAGE);
        let spec = pod.spec.as_mut().unwrap();
        spec.scheduler_name = Some(self.scheduler.clone());
        spec.node_selector
            .get_or_insert_default()
            .insert(TEST_LABEL.into(), self.scheduler.clone());
        spec.containers[0].resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity(cpu.into())),
                ("memory".to_string(), Quantity("512Mi".into())),
            ])),
            ..Default::default()
        });
        pod
    }

    async fn create(&self, pod: &Pod) -> Pod {
        Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), pod)
            .await
            .unwrap()
    }

    async fn wait_bound(&self, name: &str) -> String {
        let pod = harness::wait_pod(&self.client, &self.ns, name, "bound", WAIT, |p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
        })
        .await
        .unwrap();
        pod.spec.unwrap().node_name.unwrap()
    }

    async fn stop(self) {
        if let Some(running) = self.running {
            running.stop().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_packed_onto_the_fullest_node() {
    let w = World::start("pack").await;
    let a = w.node("pack-a", "4", &[IMAGE_FULL]).await;
    let b = w.node("pack-b", "4", &[IMAGE_FULL]).await;
    let mut placed = Vec::new();
    for i in 0..3 {
        let name = format!("user-{i}");
        w.create(&w.pod(&name, "1")).await;
        // One at a time, so each decision sees the previous placement.
        placed.push(w.wait_bound(&name).await);
    }
    assert!(
        placed.iter().all(|n| n == &placed[0]),
        "users spread over {placed:?} (nodes {a}, {b})"
    );
    w.stop().await;
}

async fn ensure_placeholder_class(client: &kube::Client) {
    let pc = PriorityClass {
        metadata: ObjectMeta {
            name: Some(PLACEHOLDER_CLASS.into()),
            ..Default::default()
        },
        value: -10,
        preemption_policy: Some("Never".into()),
        global_default: Some(false),
        ..Default::default()
    };
    match Api::<PriorityClass>::all(client.clone())
        .create(&PostParams::default(), &pc)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating the placeholder PriorityClass: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_preempts_a_placeholder_on_a_warm_node_rather_than_take_a_cold_one() {
    let w = World::start("preempt").await;
    ensure_placeholder_class(&w.client).await;
    let warm = w.node("warm", "2", &[IMAGE_FULL]).await;
    let cold = w.node("cold", "2", &[]).await;

    // A placeholder holding the whole warm node, placed by the test.
    let mut ph = w.pod("placeholder-0", "2");
    ph.metadata
        .labels
        .get_or_insert_default()
        .insert("component".into(), "user-placeholder".into());
    let spec = ph.spec.as_mut().unwrap();
    spec.priority_class_name = Some(PLACEHOLDER_CLASS.into());
    spec.scheduler_name = Some(harness::MANUAL_SCHEDULER.into());
    let ph = w.create(&ph).await;
    harness::bind(&w.client, &w.ns, &ph, &warm).await.unwrap();

    w.create(&w.pod("alice", "1")).await;
    let node = w.wait_bound("alice").await;
    assert_eq!(
        node, warm,
        "alice went to {node}, not the warm node (cold: {cold})"
    );
    let pods: Api<Pod> = Api::namespaced(w.client.clone(), &w.ns);
    assert!(
        pods.get_opt("placeholder-0").await.unwrap().is_none(),
        "the placeholder was evicted before alice was bound"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfittable_pod_is_marked_unschedulable_for_the_autoscaler() {
    let w = World::start("unfit").await;
    w.node("small", "2", &[IMAGE_FULL]).await;
    w.create(&w.pod("huge", "64")).await;
    let pod = harness::wait_pod(
        &w.client,
        &w.ns,
        "huge",
        "Unschedulable",
        WAIT,
        hubpack_e2e::wait::pod_unschedulable,
    )
    .await
    .unwrap();
    let cond = pod
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    let message = cond.message.unwrap_or_default();
    assert!(message.contains("nodes are available"), "{message}");
    assert!(message.contains("Insufficient cpu"), "{message}");
    assert!(pod.spec.unwrap().node_name.is_none());
    w.stop().await;
}

async fn lease_holder(client: &kube::Client, ns: &str, name: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_binds_and_a_standby_takes_over_when_it_stops() {
    let lease = harness::unique_name("lease");
    let elect = |c: &mut Config, ns: &str| {
        c.leader_election.enabled = true;
        c.leader_election.lease_name = lease.clone();
        c.leader_election.namespace = Some(ns.to_string());
        c.leader_election.lease_duration_seconds = 6;
        c.leader_election.renew_grace_seconds = 2;
    };
    let mut w = World::start_with("leader", elect).await;
    let first_running = w.running.take().unwrap();
    let first = format!("{}-0", w.scheduler);
    let second = format!("{}-1", w.scheduler);
    let mut cfg = test_config(&w.scheduler);
    elect(&mut cfg, &w.ns);
    let standby = InProcessScheduler::start(&w.client, cfg, &second).unwrap();
    w.node("lead", "8", &[IMAGE_FULL]).await;

    w.create(&w.pod("u-0", "1")).await;
    w.wait_bound("u-0").await;
    let leader = lease_holder(&w.client, &w.ns, &lease)
        .await
        .expect("a lease holder");
    assert!(leader == first || leader == second, "holder {leader}");
    // The Scheduled event names the replica that bound: the leader.
    let events = Api::<K8sEvent>::namespaced(w.client.clone(), &w.ns);
    let reporters = harness_wait(|| async {
        let list = events.list(&Default::default()).await.ok()?;
        let r: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Scheduled"))
            .filter_map(|e| e.reporting_instance.clone())
            .collect();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert!(
        reporters.iter().all(|r| r == &leader),
        "{reporters:?} vs leader {leader}"
    );

    // Stop the leader: it releases the lease, the standby takes over and binds.
    let (survivor, survivor_running) = if leader == first {
        first_running.stop().await.unwrap();
        (second.clone(), standby)
    } else {
        standby.stop().await.unwrap();
        (first.clone(), first_running)
    };
    w.create(&w.pod("u-1", "1")).await;
    let pods_bound = harness::wait_pod(&w.client, &w.ns, "u-1", "bound", WAIT, |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
    })
    .await;
    assert!(pods_bound.is_ok(), "the standby never took over");
    assert_eq!(
        lease_holder(&w.client, &w.ns, &lease).await.as_deref(),
        Some(survivor.as_str())
    );
    survivor_running.stop().await.unwrap();
    assert_eq!(
        lease_holder(&w.client, &w.ns, &lease).await,
        None,
        "the lease is released on shutdown"
    );
}

/// Polls `f` every 200 ms until it yields a value (at most [`WAIT`]).
async fn harness_wait<T, F, Fut>(f: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_first_consumer_claim_gets_its_static_volume_and_the_pod_follows_it() {
    use hubpack_e2e::provisioner::{create_claim, create_class};
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let w = World::start("volume").await;
    let other = w.node("vol-a", "4", &[IMAGE_FULL]).await;
    let target = w.node("vol-b", "4", &[IMAGE_FULL]).await;
    // Make vol-a the packing favourite, so only the volume's node affinity sends the pod to vol-b.
    w.create(&w.pod("filler", "2")).await;
    let filler_node = w.wait_bound("filler").await;

    let class = harness::unique_name("local");
    create_class(&w.client, &class, "kubernetes.io/no-provisioner")
        .await
        .unwrap();
    let pv_node = if filler_node == target {
        other.clone()
    } else {
        target.clone()
    };
    let pv_name = harness::unique_name("pv");
    let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pv_name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": class,
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": "/tmp/hubpack-e2e"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [pv_node]}]}]}},
        },
    }))
    .unwrap();
    Api::<PersistentVolume>::all(w.client.clone())
        .create(&PostParams::default(), &pv)
        .await
        .unwrap();
    create_claim(
        &w.client,
        &w.ns,
        "home",
        &class,
        "1Gi",
        serde_json::json!({}),
    )
    .await
    .unwrap();

    let mut pod = w.pod("with-home", "1");
    let spec = pod.spec.as_mut().unwrap();
    spec.volumes = Some(vec![
        serde_json::from_value(serde_json::json!(
            {"name": "home", "persistentVolumeClaim": {"claimName": "home"}}
        ))
        .unwrap(),
    ]);
    w.create(&pod).await;
    let node = w.wait_bound("with-home").await;
    assert_eq!(node, pv_node, "the pod must follow its volume");
    let claim = Api::<PersistentVolumeClaim>::namespaced(w.client.clone(), &w.ns)
        .get("home")
        .await
        .unwrap();
    assert_eq!(
        claim.spec.unwrap().volume_name.as_deref(),
        Some(pv_name.as_str()),
        "the claim is bound to the static volume before the pod is bound"
    );
    w.stop().await;
}

/// The whole preemption flow with a real placeholder Deployment: the evicted placeholder is
/// replaced at once, and the replacement waits Pending with the Unschedulable condition the
/// autoscaler acts on. (The seat reservation itself, in the window between the victim's
/// DELETE and the bind, is covered by the scheduler's unit tests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placeholder_deployment_replaces_the_evicted_one_which_waits_unschedulable() {
    use k8s_openapi::api::apps::v1::Deployment;
    let w = World::start("replace").await;
    ensure_placeholder_class(&w.client).await;
    let warm = w.node("warm", "2", &[IMAGE_FULL]).await;
    let cold = w.node("cold", "2", &[]).await;

    // Two placeholders scheduled by hubpack, one filling each node.
    let pods: Api<Pod> = Api::namespaced(w.client.clone(), &w.ns);
    let mut template = w.pod("unused", "2");
    template
        .metadata
        .labels
        .get_or_insert_default()
        .insert("component".into(), "user-placeholder".into());
    template.metadata.name = None;
    template.spec.as_mut().unwrap().priority_class_name = Some(PLACEHOLDER_CLASS.into());
    let labels = template.metadata.labels.clone().unwrap();
    let deployment = Deployment {
        metadata: ObjectMeta {
            name: Some("placeholders".into()),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::apps::v1::DeploymentSpec {
            replicas: Some(2),
            selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: Some(labels.clone()),
                ..Default::default()
            },
            template: k8s_openapi::api::core::v1::PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                spec: template.spec.clone(),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    Api::<Deployment>::namespaced(w.client.clone(), &w.ns)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let selector = "component=user-placeholder";
    let placed = |want: usize| {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&kube::api::ListParams::default().labels(selector))
                .await
                .ok()?;
            let nodes: Vec<String> = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                .collect();
            (nodes.len() == want).then_some((list.items.len(), nodes))
        }
    };
    let (_, mut nodes) = harness_wait(|| placed(2)).await;
    nodes.sort();
    let mut both = vec![warm.clone(), cold.clone()];
    both.sort();
    assert_eq!(nodes, both, "one placeholder per node");

    // Alice preempts the warm node's placeholder; its replacement must not take her seat:
    // with the cold node full too, it stays Pending (and would make the autoscaler add a node).
    w.create(&w.pod("alice", "1")).await;
    assert_eq!(w.wait_bound("alice").await, warm);
    let pending = harness_wait(|| {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&kube::api::ListParams::default().labels(selector))
                .await
                .ok()?;
            list.items.into_iter().find(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none()
                    && p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| {
                                c.type_ == "PodScheduled"
                                    && c.reason.as_deref() == Some("Unschedulable")
                            })
                        })
            })
        }
    })
    .await;
    assert!(pending.spec.unwrap().node_name.is_none());
    w.stop().await;
}

/// Placeholders hold seats for users they stand for: their warmth is judged by the images in
/// `hubpack.io/user-images`, not by their own `pause` image, so they go to a cold node (Ready,
/// still without the user image) and leave the warm seats free for users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholders_land_on_cold_nodes_while_warm_seats_stay_free_for_users() {
    let w = World::start("warmth").await;
    ensure_placeholder_class(&w.client).await;
    let warm = w.node("warm", "4", &[IMAGE_FULL]).await;
    let cold = w.node("cold", "4", &[]).await;
    // The warm node is the fuller one: packing alone would send placeholders there.
    w.create(&w.pod("filler", "1")).await;
    assert_eq!(w.wait_bound("filler").await, warm);

    for i in 0..2 {
        let name = format!("placeholder-{i}");
        let mut ph = w.pod(&name, "1");
        ph.metadata
            .labels
            .get_or_insert_default()
            .insert("component".into(), "user-placeholder".into());
        ph.metadata.annotations = Some(BTreeMap::from([(
            "hubpack.io/user-images".to_string(),
            IMAGE.to_string(),
        )]));
        let spec = ph.spec.as_mut().unwrap();
        spec.priority_class_name = Some(PLACEHOLDER_CLASS.into());
        spec.containers[0].image = Some("registry.k8s.io/pause:3.10".into());
        w.create(&ph).await;
        let node = w.wait_bound(&name).await;
        assert_eq!(node, cold, "{name} took a warm seat on {node}");
    }
    // The warm seats are still free: a user takes one without preempting anything.
    w.create(&w.pod("alice", "1")).await;
    assert_eq!(w.wait_bound("alice").await, warm);
    let pods: Api<Pod> = Api::namespaced(w.client.clone(), &w.ns);
    for i in 0..2 {
        assert!(
            pods.get_opt(&format!("placeholder-{i}"))
                .await
                .unwrap()
                .is_some(),
            "no placeholder was preempted"
        );
    }
    w.stop().await;
}

/// WaitForFirstConsumer with dynamic provisioning, end to end: a user pod shaped as
/// KubeSpawner renders it (its labels, z2jh's tolerations, the preferred node-purpose
/// affinity, a home PVC of a WaitForFirstConsumer class) gets a node; hubpack sets
/// `selected-node` on the claim; the harness's provisioner creates a PV there; the PV binder
/// binds the claim; then hubpack binds the pod to that very node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubespawner_pod_with_a_dynamically_provisioned_home_binds_where_its_volume_is() {
    use hubpack_e2e::provisioner::{Provisioner, SELECTED_NODE, create_claim, create_class};
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let w = World::start("dynamic").await;
    let provisioner_name = format!("e2e.hubpack.dev/{}", harness::unique_name("disk"));
    let _provisioner = Provisioner::start(w.client.clone(), &provisioner_name);
    let a = w.node("dyn-a", "4", &[IMAGE_FULL]).await;
    let b = w.node("dyn-b", "4", &[IMAGE_FULL]).await;

    let class = harness::unique_name("dynamic");
    create_class(&w.client, &class, &provisioner_name)
        .await
        .unwrap();
    let labels = serde_json::json!({"app": "jupyterhub", "component": "singleuser-storage",
        "hub.jupyter.org/username": "alice"});
    create_claim(&w.client, &w.ns, "claim-alice", &class, "10Gi", labels)
        .await
        .unwrap();

    // As KubeSpawner renders it under z2jh's defaults.
    let mut pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "jupyter-alice", "labels": {
            "app": "jupyterhub", "component": "singleuser-server", "release": "jhub",
            "chart": "jupyterhub-4.2.0", "heritage": "jupyterhub",
            "hub.jupyter.org/network-access-hub": "true", "hub.jupyter.org/servername": "",
            "hub.jupyter.org/username": "alice"},
            "annotations": {"hub.jupyter.org/username": "alice"}},
        "spec": {
            "schedulerName": w.scheduler,
            "automountServiceAccountToken": false,
            "securityContext": {"fsGroup": 100},
            "initContainers": [],
            "containers": [{"name": "notebook", "image": IMAGE,
                "args": ["jupyterhub-singleuser"], "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                "volumeMounts": [{"mountPath": "/home/jovyan", "name": "volume-alice"}]}],
            "volumes": [{"name": "volume-alice", "persistentVolumeClaim": {"claimName": "claim-alice"}}],
            "tolerations": [
                {"effect": "NoSchedule", "key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user"},
                {"effect": "NoSchedule", "key": "hub.jupyter.org_dedicated", "operator": "Equal", "value": "user"}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [
                    {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}]}}]}},
            "restartPolicy": "OnFailure",
            "nodeSelector": {TEST_LABEL: w.scheduler},
        },
    }))
    .unwrap();
    pod.spec.as_mut().unwrap().priority = None;
    w.create(&pod).await;
    let node = w.wait_bound("jupyter-alice").await;
    assert!(node == a || node == b, "bound to {node}");
    let claim = Api::<PersistentVolumeClaim>::namespaced(w.client.clone(), &w.ns)
        .get("claim-alice")
        .await
        .unwrap();
    assert_eq!(
        claim
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SELECTED_NODE))
            .map(String::as_str),
        Some(node.as_str()),
        "the claim was provisioned for the node the pod went to"
    );
    let volume = claim.spec.unwrap().volume_name.expect("the claim is bound");
    let pv = Api::<PersistentVolume>::all(w.client.clone())
        .get(&volume)
        .await
        .unwrap();
    let affinity = serde_json::to_value(pv.spec.unwrap().node_affinity).unwrap();
    assert_eq!(
        affinity["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0],
        node.as_str(),
        "the volume lives on the pod's node"
    );
    w.stop().await;
}
