//! hubpack-scheduler end to end, on the harness's real control plane with kwok nodes: the
//! scheduler runs in-process (`hubpack_scheduler::app::run`) with a scheduler name and node
//! label unique to each test, so tests sharing the cluster never see each other's pods.

#![allow(clippy::unwrap_used)] // a test binary

use hubpack_e2e::harness;
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_scheduler::config::Config;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), hubpack_scheduler::error::Error>>,
}

impl World {
    async fn start(prefix: &str) -> World {
        let cluster = hubpack_e2e::shared_cluster!().unwrap_or_else(|e| panic!("{e}"));
        let client = cluster.client().await.unwrap();
        let ns = harness::create_namespace(&client, prefix).await.unwrap();
        let scheduler = harness::unique_name("hubpack");
        let mut config = Config::default();
        config.scheduler_name = scheduler.clone();
        config.leader_election.enabled = false;
        config.metrics_address = "127.0.0.1:0".parse().unwrap();
        // kwok nodes turn Ready seconds before a test uses them.
        config.policy.warm_settle_ms = 0;
        config.validate().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hubpack_scheduler::app::run(
            client.clone(),
            config,
            format!("{scheduler}-0"),
            shutdown.clone(),
        ));
        World {
            client,
            ns,
            scheduler,
            shutdown,
            task,
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
        self.shutdown.cancel();
        let res = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("scheduler stops within 30 s");
        res.unwrap().unwrap();
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
    let pod = harness::wait_pod(&w.client, &w.ns, "huge", "Unschedulable", WAIT, |p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                })
            })
    })
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
