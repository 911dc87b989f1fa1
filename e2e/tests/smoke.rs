//! Smoke tests proving the harness is a real cluster: kwok nodes boot, a pod bound through the
//! binding subresource runs, and the image model makes warm and cold nodes differ.

#![allow(clippy::unwrap_used)]

use hubpack_e2e::harness::{self, TEST_PULL_TIME};
use hubpack_e2e::images::normalize_image;
use hubpack_e2e::kwok::READY_AT_ANNOTATION;
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_e2e::wait;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::time::Duration;

const NODE_READY: Duration = Duration::from_secs(60);

/// A pod that needs no pull may start when the image model sees it bound; allow the model
/// that long to react on a busy machine (still well short of a pull).
fn no_pull_margin() -> SignedDuration {
    SignedDuration::try_from(TEST_PULL_TIME).unwrap() - SignedDuration::from_secs(2)
}

fn ready_at(pod: &Pod) -> Option<Timestamp> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(READY_AT_ANNOTATION)?
        .parse()
        .ok()
}

/// `status.startTime`: when the kubelet acknowledged the pod.
fn start_time(pod: &Pod) -> Option<Timestamp> {
    Some(pod.status.as_ref()?.start_time.as_ref()?.0)
}

fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(condition.last_transition_time.as_ref()?.0)
}

async fn setup(prefix: &str) -> (kube::Client, String) {
    let cluster = hubpack_e2e::shared_cluster!().unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, prefix).await.unwrap();
    (client, ns)
}

async fn ready_user_node(client: &kube::Client, prefix: &str, images: &[String]) -> String {
    let name = harness::unique_name(prefix);
    let template = NodeTemplate::new(Pool::User)
        .with_images(images.to_vec())
        .with_boot_delay(Duration::ZERO);
    harness::create_node(client, &name, &template)
        .await
        .unwrap();
    harness::wait_node_schedulable(client, &name, NODE_READY)
        .await
        .unwrap();
    name
}

#[tokio::test]
async fn a_new_node_is_not_ready_during_its_boot_delay() {
    let (client, _ns) = setup("boot").await;
    let name = harness::unique_name("booting");
    let boot = Duration::from_secs(6);
    let template = NodeTemplate::new(Pool::Core).with_boot_delay(boot);
    let created = harness::create_node(&client, &name, &template)
        .await
        .unwrap();
    let created_at = created.metadata.creation_timestamp.unwrap().0;
    // Straight after creation the node is neither Ready nor free of the not-ready taint.
    let node = Api::<Node>::all(client.clone()).get(&name).await.unwrap();
    if Timestamp::now() < created_at + SignedDuration::from_secs(4) {
        assert!(
            !wait::node_schedulable(&node),
            "node schedulable during boot: {node:?}"
        );
    }
    // A booting node is updated (taints, leases, image lists): the boot still counts from
    // its creation. kwok computes a stage delay afresh at each update, so the stage gives
    // it as an absolute time; relative, these updates would push Ready to ~2× the delay.
    let nodes = Api::<Node>::all(client.clone());
    let boot_end = created_at + SignedDuration::try_from(boot).unwrap();
    let mut touch = 0;
    while Timestamp::now() < boot_end - SignedDuration::from_secs(1) {
        touch += 1;
        let patch = serde_json::json!({"metadata": {"labels": {"e2e.hubpack.dev/touched": touch.to_string()}}});
        nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let node = harness::wait_node_schedulable(&client, &name, NODE_READY)
        .await
        .unwrap();
    let ready = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    let ready_at = ready.last_heartbeat_time.unwrap().0;
    assert!(
        ready_at
            >= created_at + SignedDuration::try_from(boot).unwrap() - SignedDuration::from_secs(1),
        "Ready at {ready_at}, created at {created_at}, boot delay {boot:?}"
    );
    assert!(
        ready_at < boot_end + SignedDuration::from_secs(4),
        "Ready at {ready_at}, created at {created_at}, boot delay {boot:?}: the {touch} updates during the boot restarted it"
    );
}

/// Creates a user pod, binds it to `node` as a scheduler would, and waits until it is Running
/// and Ready; returns it with the time of the bind.
async fn start_user_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    image: &str,
    node: &str,
) -> (Pod, Timestamp) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod = pods
        .create(&Default::default(), &harness::user_pod(name, image))
        .await
        .unwrap();
    let bound_at = Timestamp::now();
    harness::bind(client, ns, &pod, node).await.unwrap();
    let pod = harness::wait_pod(
        client,
        ns,
        name,
        "Running and Ready",
        Duration::from_secs(60),
        |p| wait::pod_running(p) && wait::pod_ready(p),
    )
    .await
    .unwrap();
    (pod, bound_at)
}

#[tokio::test]
async fn a_pod_bound_to_a_warm_node_runs_at_once() {
    let (client, ns) = setup("warm").await;
    let image = "jupyter/base-notebook:warm-test";
    let node = ready_user_node(&client, "warm", &[normalize_image(image)]).await;
    let (pod, bound_at) = start_user_pod(&client, &ns, "user-a", image, &node).await;
    assert_eq!(
        pod.spec.as_ref().unwrap().node_name.as_deref(),
        Some(node.as_str())
    );
    let ready_at = ready_at(&pod).expect("the image model annotated the pod");
    // No pull: the image model let the pod start as soon as it saw it bound.
    assert!(
        ready_at < bound_at + no_pull_margin(),
        "warm node, yet the pod was held until {ready_at} (bound at {bound_at})"
    );
}

#[tokio::test]
async fn a_pod_on_a_cold_node_waits_for_the_pull_then_the_node_lists_the_image() {
    let (client, ns) = setup("cold").await;
    let image = "jupyter/scipy-notebook:cold-test";
    let full = normalize_image(image);
    let node = ready_user_node(&client, "cold", &[]).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod = pods
        .create(&Default::default(), &harness::user_pod("user-b", image))
        .await
        .unwrap();
    let bound_at = Timestamp::now();
    harness::bind(&client, &ns, &pod, &node).await.unwrap();

    let pod = harness::wait_pod(
        &client,
        &ns,
        "user-b",
        "annotated by the image model",
        Duration::from_secs(30),
        |p| ready_at(p).is_some(),
    )
    .await
    .unwrap();
    let until = ready_at(&pod).unwrap();
    let pull = SignedDuration::try_from(TEST_PULL_TIME).unwrap();
    assert!(
        until >= bound_at + pull - SignedDuration::from_secs(1),
        "cold node: pod may start at {until}, bound at {bound_at}, pull time {TEST_PULL_TIME:?}"
    );
    // The kubelet acknowledges the pod before it pulls: startTime is set long before the pull
    // ends (kube-scheduler's preemption ranks victims by it).
    let acknowledged = harness::wait_pod(
        &client,
        &ns,
        "user-b",
        "acknowledged (status.startTime set)",
        Duration::from_secs(30),
        |p| start_time(p).is_some(),
    )
    .await
    .unwrap();
    let started = start_time(&acknowledged).unwrap();
    assert!(
        started < until - SignedDuration::from_secs(2),
        "startTime {started} is not before the pull ends at {until}"
    );
    // While the pull runs, the pod is not Ready and the node does not list the image.
    if Timestamp::now() + SignedDuration::from_secs(2) < until {
        assert!(
            !wait::pod_ready(&pod),
            "pod Ready during its image pull: {:?}",
            pod.status
        );
        let n = Api::<Node>::all(client.clone()).get(&node).await.unwrap();
        assert!(!hubpack_e2e::images::node_images(&n).contains(&full));
    }

    let pod = harness::wait_pod(
        &client,
        &ns,
        "user-b",
        "Running and Ready",
        TEST_PULL_TIME + Duration::from_secs(60),
        |p| wait::pod_running(p) && wait::pod_ready(p),
    )
    .await
    .unwrap();
    let since = ready_since(&pod).unwrap();
    assert!(
        since >= until - SignedDuration::from_secs(1),
        "pod Ready at {since}, before its images were pulled at {until}"
    );
    let nodes: Api<Node> = Api::all(client.clone());
    let what = format!("node {node} lists {full}");
    wait::until(&what, Duration::from_secs(30), || {
        let (nodes, node, full) = (nodes.clone(), node.clone(), full.clone());
        async move {
            let n = nodes.get(&node).await.ok()?;
            hubpack_e2e::images::node_images(&n)
                .contains(&full)
                .then_some(())
        }
    })
    .await
    .unwrap();

    // The node is warm now: the next pod with the same image starts without a pull.
    let (second, bound_at) = start_user_pod(&client, &ns, "user-c", image, &node).await;
    assert!(ready_at(&second).unwrap() < bound_at + no_pull_margin());
}

#[tokio::test]
async fn the_apiserver_can_be_restarted_alone() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "restart").await.unwrap();
    cluster.stop_apiserver();
    let down = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&Default::default())
        .await;
    assert!(
        down.is_err(),
        "the apiserver still answered after being stopped"
    );
    cluster.start_apiserver().await.unwrap();
    // etcd kept the data: the namespace made before the restart is still there.
    let client = cluster.client().await.unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    assert!(namespaces.get_opt(&ns).await.unwrap().is_some());
}

/// Image pre-puller DaemonSet pods are placed by the stock kube-scheduler and go through the
/// image model like any pod: once they run, their node lists the image.
#[tokio::test]
async fn a_pre_pull_daemonset_warms_its_node() {
    use k8s_openapi::api::apps::v1::DaemonSet;
    let (client, ns) = setup("prepull").await;
    let image = "jupyter/datascience-notebook:prepull-test";
    let full = normalize_image(image);
    let node = ready_user_node(&client, "prepull", &[]).await;
    let pod = harness::user_pod("puller", image);
    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "pre-puller"},
        "spec": {
            "selector": {"matchLabels": {"app": "pre-puller"}},
            "template": {
                "metadata": {"labels": {"app": "pre-puller"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "tolerations": pod.spec.as_ref().unwrap().tolerations,
                    "containers": [{"name": "pull", "image": image}]
                }
            }
        }
    }))
    .unwrap();
    Api::<DaemonSet>::namespaced(client.clone(), &ns)
        .create(&Default::default(), &ds)
        .await
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let what = format!("a Ready pre-puller pod on {node}");
    let puller = wait::until(&what, TEST_PULL_TIME + Duration::from_secs(90), || {
        let (pods, node) = (pods.clone(), node.clone());
        async move {
            let list = pods
                .list(&kube::api::ListParams::default().labels("app=pre-puller"))
                .await
                .ok()?;
            list.items.into_iter().find(|p| {
                p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str())
                    && wait::pod_ready(p)
            })
        }
    })
    .await
    .unwrap();
    assert!(
        ready_at(&puller).is_some(),
        "the image model did not see the pre-puller"
    );
    let n = Api::<Node>::all(client.clone()).get(&node).await.unwrap();
    let what = format!("node {node} lists {full}");
    wait::until(&what, Duration::from_secs(30), || {
        let nodes = Api::<Node>::all(client.clone());
        let (node, full) = (node.clone(), full.clone());
        async move {
            hubpack_e2e::images::node_images(&nodes.get(&node).await.ok()?)
                .contains(&full)
                .then_some(())
        }
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}; node images: {:?}",
            hubpack_e2e::images::node_images(&n)
        )
    });
}
