//! What end-to-end tests use: one cluster shared by all tests of a test binary, and helpers to
//! create nodes, namespaces and pods, bind pods, report them unschedulable, and wait.

use crate::autoscaler::{AutoscalerTimings, NodeGroup};
use crate::cluster::{Cluster, ClusterOptions};
use crate::nodes::{DEDICATED_TAINT, NODE_PURPOSE_LABEL, NodeTemplate, Pool};
use crate::wait::{self, Timeout};
use k8s_openapi::api::core::v1::{
    Binding, Container, Namespace, Node, ObjectReference, Pod, PodSpec, ResourceRequirements,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Pull time of the shared test cluster's image model.
pub const TEST_PULL_TIME: Duration = Duration::from_secs(8);
/// Boot time of nodes in the shared test cluster whose template gives none.
pub const TEST_BOOT_DELAY: Duration = Duration::from_secs(5);
/// A scheduler name nothing serves, so only the test places these pods.
pub const MANUAL_SCHEDULER: &str = "hubpack-e2e-manual";

static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// Whether the shared cluster runs the real cluster-autoscaler over [`test_node_groups`], or
/// the real Karpenter over [`karpenter::test_options`](crate::karpenter::test_options)' pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithAutoscaler {
    No,
    Yes,
    /// The autoscaler with the CapacityBuffer CRD, buffer controller and pod injection.
    WithCapacityBuffers,
    Karpenter,
}

/// The cluster shared by this test binary, started on first use (call it through
/// [`shared_cluster!`](crate::shared_cluster) or
/// [`shared_cluster_with_autoscaler!`](crate::shared_cluster_with_autoscaler), which pass the
/// model binary). The first call decides whether it runs cluster-autoscaler.
///
/// It lives in `/tmp/hubpack-e2e-<pid>`; a watchdog stops its processes when the test binary
/// exits. Fails (for every test) if a component does not start, with that component's log tail;
/// if binaries are missing the message says to run `cargo xtask cluster build`.
pub fn shared(model_bin: &str, autoscaler: WithAutoscaler) -> Result<&'static Cluster, String> {
    let result = SHARED.get_or_init(|| {
        let bin = model_bin.to_string();
        // Started on its own thread and runtime: tests' runtimes come and go, the cluster stays.
        std::thread::spawn(move || {
            let pid = std::process::id();
            remove_stale_state_dirs();
            let mut opts = ClusterOptions::new(format!("/tmp/hubpack-e2e-{pid}"), bin);
            opts.default_boot_delay = TEST_BOOT_DELAY;
            opts.default_pull_time = TEST_PULL_TIME;
            if matches!(
                autoscaler,
                WithAutoscaler::Yes | WithAutoscaler::WithCapacityBuffers
            ) {
                opts.autoscaler = Some(test_node_groups());
                opts.autoscaler_timings = test_autoscaler_timings();
            }
            opts.capacity_buffers = autoscaler == WithAutoscaler::WithCapacityBuffers;
            if autoscaler == WithAutoscaler::Karpenter {
                opts.karpenter = Some(crate::karpenter::test_options());
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let cluster = runtime
                .block_on(Cluster::start(&opts))
                .map_err(|e| e.to_string())?;
            crate::processes::spawn_watchdog(&cluster.state_dir, pid).map_err(|e| e.to_string())?;
            Ok(cluster)
        })
        .join()
        .unwrap_or_else(|_| Err("cluster start panicked".to_string()))
    });
    result.as_ref().map_err(Clone::clone)
}

/// Removes `/tmp/hubpack-e2e-*` dirs of earlier test runs whose processes are all gone (the
/// watchdog leaves them, logs included, for post-mortems until the next run).
fn remove_stale_state_dirs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("hubpack-e2e-"));
        let idle = std::fs::read_dir(path.join("pids")).is_ok_and(|mut d| d.next().is_none());
        if is_ours && idle {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Node groups of the shared cluster with an autoscaler: `user` and `core`, plus one `user`
/// group per test that needs a pool of its own ([`TEST_USER_GROUPS`]), 0 to 5 nodes of the
/// default template each, booting in [`TEST_BOOT_DELAY`]. A pod asks for a group with a
/// nodeSelector on [`NODE_GROUP_LABEL`](crate::nodes::NODE_GROUP_LABEL).
pub fn test_node_groups() -> Vec<NodeGroup> {
    let mut groups: Vec<NodeGroup> = [Pool::User, Pool::Core]
        .into_iter()
        .map(|pool| NodeGroup::of_pool(NodeTemplate::new(pool), 0, 5))
        .collect();
    groups.extend(TEST_USER_GROUPS.iter().map(|name| NodeGroup {
        name: (*name).to_string(),
        template: NodeTemplate::new(Pool::User),
        min: 0,
        max: 5,
    }));
    groups
}

/// Extra user-pool node groups, so tests that count a group's nodes do not see each other's.
pub const TEST_USER_GROUPS: &[&str] = &[
    "user-a", "user-b", "user-c", "user-d", "user-e", "user-f", "user-g", "user-h",
];

/// cluster-autoscaler's timings in the shared cluster: a 1 s scan, and every scale-down
/// period (unneeded time, delays after add/delete/failure, the unremovable recheck) 10 s.
pub fn test_autoscaler_timings() -> AutoscalerTimings {
    AutoscalerTimings {
        scan_interval: Duration::from_secs(1),
        scale_down_unneeded_time: Duration::from_secs(10),
        scale_down_delay_after_add: Duration::from_secs(10),
        scale_down_delay_after_delete: Duration::from_secs(1),
        scale_down_delay_after_failure: Duration::from_secs(10),
        unremovable_node_recheck_timeout: Duration::from_secs(10),
        max_node_provision_time: Duration::from_secs(120),
        ..AutoscalerTimings::default()
    }
}

/// `shared_cluster!()` → `Result<&'static Cluster, String>`: the test binary's shared cluster,
/// without an autoscaler.
#[macro_export]
macro_rules! shared_cluster {
    () => {
        $crate::harness::shared(
            env!("CARGO_BIN_EXE_hubpack-e2e-model"),
            $crate::harness::WithAutoscaler::No,
        )
    };
}

/// `shared_cluster_with_autoscaler!()`: the test binary's shared cluster, with the real
/// cluster-autoscaler over [`test_node_groups`] timed by [`test_autoscaler_timings`].
#[macro_export]
macro_rules! shared_cluster_with_autoscaler {
    () => {
        $crate::harness::shared(
            env!("CARGO_BIN_EXE_hubpack-e2e-model"),
            $crate::harness::WithAutoscaler::Yes,
        )
    };
}

/// `shared_cluster_with_capacity_buffers!()`: as
/// [`shared_cluster_with_autoscaler!`](crate::shared_cluster_with_autoscaler), with the
/// CapacityBuffer CRD installed and the autoscaler's buffer controller and pod injection on.
#[macro_export]
macro_rules! shared_cluster_with_capacity_buffers {
    () => {
        $crate::harness::shared(
            env!("CARGO_BIN_EXE_hubpack-e2e-model"),
            $crate::harness::WithAutoscaler::WithCapacityBuffers,
        )
    };
}

/// `shared_cluster_with_karpenter!()`: the test binary's shared cluster, with the real
/// Karpenter (kwok provider) over [`karpenter::test_options`](crate::karpenter::test_options).
#[macro_export]
macro_rules! shared_cluster_with_karpenter {
    () => {
        $crate::harness::shared(
            env!("CARGO_BIN_EXE_hubpack-e2e-model"),
            $crate::harness::WithAutoscaler::Karpenter,
        )
    };
}

/// A name unique within this test binary: `<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a fresh namespace and returns its name.
pub async fn create_namespace(client: &kube::Client, prefix: &str) -> Result<String, kube::Error> {
    let name = unique_name(prefix);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(name)
}

/// Creates a kwok node from `template`.
pub async fn create_node(
    client: &kube::Client,
    name: &str,
    template: &NodeTemplate,
) -> Result<Node, kube::Error> {
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &template.node(name))
        .await
}

/// Waits until the node is Ready and its not-ready taint is gone.
pub async fn wait_node_schedulable(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> Result<Node, Timeout> {
    let nodes: Api<Node> = Api::all(client.clone());
    wait::until(&format!("node {name} Ready and untainted"), timeout, || {
        let nodes = nodes.clone();
        async move {
            nodes
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .filter(wait::node_schedulable)
        }
    })
    .await
}

/// A single-container pod for the user pool (tolerates its taint, selects its label), with
/// small requests and a scheduler name nothing serves.
/// Sets the cpu request of a pod's first container (pods from [`user_pod`] have one).
pub fn set_cpu_request(pod: &mut Pod, cpu: &str) {
    if let Some(requests) = pod
        .spec
        .as_mut()
        .and_then(|s| s.containers.first_mut())
        .and_then(|c| c.resources.as_mut())
        .and_then(|r| r.requests.as_mut())
    {
        requests.insert("cpu".into(), Quantity(cpu.into()));
    }
}

pub fn user_pod(name: &str, image: &str) -> Pod {
    let requests = BTreeMap::from([
        ("cpu".to_string(), Quantity("100m".into())),
        ("memory".to_string(), Quantity("128Mi".into())),
    ]);
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("app".into(), "hubpack-e2e".into())])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            scheduler_name: Some(MANUAL_SCHEDULER.into()),
            containers: vec![Container {
                name: "notebook".into(),
                image: Some(image.into()),
                resources: Some(ResourceRequirements {
                    requests: Some(requests),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            node_selector: Some(BTreeMap::from([(
                NODE_PURPOSE_LABEL.to_string(),
                Pool::User.name().to_string(),
            )])),
            tolerations: Some(vec![Toleration {
                key: Some(DEDICATED_TAINT.into()),
                operator: Some("Equal".into()),
                value: Some(Pool::User.name().into()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Binds a pod to a node through the `pods/binding` subresource, with its uid as precondition.
pub async fn bind(
    client: &kube::Client,
    namespace: &str,
    pod: &Pod,
    node: &str,
) -> Result<(), kube::Error> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.into()),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.into()),
            ..Default::default()
        },
    };
    let _: kube::core::Status = Api::<Pod>::namespaced(client.clone(), namespace)
        .create_subresource("binding", &name, &PostParams::default(), &binding)
        .await?;
    Ok(())
}

/// Writes `PodScheduled=False, reason=Unschedulable` on a pod, as a scheduler does when no node
/// fits (cluster-autoscaler scales up only for such pods).
pub async fn mark_unschedulable(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    message: &str,
) -> Result<Pod, kube::Error> {
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastTransitionTime": jiff::Timestamp::now().to_string(),
    }]}});
    Api::<Pod>::namespaced(client.clone(), namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
}

/// Polls the pod until `check` accepts it.
pub async fn wait_pod(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&Pod) -> bool,
) -> Result<Pod, Timeout> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let check = &check;
    wait::until(&format!("pod {namespace}/{name} {what}"), timeout, || {
        let pods = pods.clone();
        async move { pods.get_opt(name).await.ok().flatten().filter(|p| check(p)) }
    })
    .await
}
