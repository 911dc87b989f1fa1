//! hubpack against the real cluster-autoscaler (1.36.1, kwok provider) on the local control
//! plane: what CA does for the pods hubpack-scheduler marks, nominates and preempts, and for
//! the nodes it packs or empties. Every test's name contains `autoscaler`.
//!
//! The shared cluster runs CA over node groups built from the user-pool template
//! (`harness::test_node_groups`); each test works in a group of its own (a nodeSelector on the
//! node-group label), so tests never count each other's nodes. CA's timings are compressed
//! (`harness::test_autoscaler_timings`: 1 s scans, 10 s unneeded time and delays) but keep
//! their upstream meaning; a CA decision is therefore seen within seconds.

#![allow(clippy::unwrap_used)] // a test binary

use hubpack_e2e::in_process::{InProcessScheduler, test_config};
use hubpack_e2e::nodes::{NODE_GROUP_LABEL, NodeTemplate, Pool};
use hubpack_e2e::pod_facts::node_of;
use hubpack_e2e::{harness, wait};
use hubpack_scheduler::config::Config;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Event, Node, Pod, PodTemplateSpec};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// CA skips a node with this annotation in scale-down.
const SCALE_DOWN_DISABLED: &str = "cluster-autoscaler.kubernetes.io/scale-down-disabled";

const IMAGE: &str = "jupyter/base-notebook:autoscaler";
const PLACEHOLDER_CLASS: &str = "hubpack-e2e-placeholder";
const EXPENDABLE_CLASS: &str = "hubpack-e2e-expendable";
/// A label the placeholder tests put on the nodes a placeholder may use.
const PLACEHOLDER_NODES_LABEL: &str = "e2e.hubpack.dev/placeholders";
/// A finalizer that keeps an evicted pod's object, so its deletion is never observed.
const HOLD_FINALIZER: &str = "e2e.hubpack.dev/hold";
const WAIT: Duration = Duration::from_secs(90);

/// How long to watch for something CA must not do: several unneeded periods and many scans.
fn ca_quiet_period() -> Duration {
    let t = harness::test_autoscaler_timings();
    t.scale_down_unneeded_time + t.unremovable_node_recheck_timeout + Duration::from_secs(5)
}

/// One test's world: a namespace, a node group of its own, and (optionally) hubpack-scheduler.
struct World {
    client: kube::Client,
    ns: String,
    group: &'static str,
    scheduler: String,
    running: Option<InProcessScheduler>,
}

impl World {
    async fn new(prefix: &str, group: &'static str) -> World {
        let cluster =
            hubpack_e2e::shared_cluster_with_autoscaler!().unwrap_or_else(|e| panic!("{e}"));
        let client = cluster.client().await.unwrap();
        let ns = harness::create_namespace(&client, prefix).await.unwrap();
        ensure_priority_class(&client, PLACEHOLDER_CLASS, -10).await;
        ensure_priority_class(&client, EXPENDABLE_CLASS, -11).await;
        World {
            client,
            ns,
            group,
            scheduler: harness::unique_name("hubpack"),
            running: None,
        }
    }

    /// Runs hubpack-scheduler in-process under this test's scheduler name.
    fn start_hubpack(&mut self, tweak: impl FnOnce(&mut Config)) {
        let mut config = test_config(&self.scheduler);
        tweak(&mut config);
        let identity = format!("{}-0", self.scheduler);
        self.running = Some(InProcessScheduler::start(&self.client, config, &identity).unwrap());
    }

    /// Deletes the test's pods and Deployments (its nodes then go as CA decides) and stops
    /// hubpack-scheduler.
    async fn finish(self) {
        let all = (DeleteParams::default(), ListParams::default());
        Api::<Deployment>::namespaced(self.client.clone(), &self.ns)
            .delete_collection(&all.0, &all.1)
            .await
            .unwrap();
        self.pods().delete_collection(&all.0, &all.1).await.unwrap();
        if let Some(running) = self.running {
            running.stop().await.unwrap();
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// A user pod as KubeSpawner renders it for the user pool (z2jh's toleration and
    /// node-purpose selector), asking for this test's node group and `cpu` cores, scheduled by
    /// `scheduler`.
    fn user(&self, name: &str, cpu: &str, scheduler: &str) -> Pod {
        let mut pod = harness::user_pod(name, IMAGE);
        harness::set_cpu_request(&mut pod, cpu);
        let spec = pod.spec.as_mut().unwrap();
        spec.scheduler_name = Some(scheduler.to_string());
        spec.node_selector
            .get_or_insert_default()
            .insert(NODE_GROUP_LABEL.into(), self.group.into());
        pod.metadata
            .labels
            .get_or_insert_default()
            .insert("component".into(), "singleuser-server".into());
        pod
    }

    async fn create(&self, pod: &Pod) -> Pod {
        self.pods()
            .create(&PostParams::default(), pod)
            .await
            .unwrap()
    }

    /// A node of this test's group that the harness adds itself, as if CA had added it earlier
    /// (CA may remove it), Ready and untainted before this returns.
    async fn group_node(&self, cpu: &str, extra_labels: &[(&str, &str)]) -> String {
        self.new_group_node(cpu, extra_labels, false).await
    }

    /// A group node CA leaves out of scale-down until [`World::release_scale_down`]: an
    /// empty node is unneeded at once, and CA's soft taint on it (`DeletionCandidateOf
    /// ClusterAutoscaler`, PreferNoSchedule) steers kube-scheduler's scoring away from it.
    async fn held_group_node(&self, cpu: &str) -> String {
        self.new_group_node(cpu, &[], true).await
    }

    async fn new_group_node(&self, cpu: &str, extra_labels: &[(&str, &str)], held: bool) -> String {
        let name = harness::unique_name(self.group);
        let mut template = NodeTemplate::new(Pool::User)
            .with_boot_delay(Duration::ZERO)
            .with_resources(cpu, "16Gi", 110);
        for (k, v) in extra_labels {
            template.extra_labels.insert(k.to_string(), v.to_string());
        }
        let mut node = template.group_node(&name, self.group);
        if held {
            node.metadata
                .annotations
                .get_or_insert_default()
                .insert(SCALE_DOWN_DISABLED.into(), "true".into());
        }
        Api::<Node>::all(self.client.clone())
            .create(&PostParams::default(), &node)
            .await
            .unwrap();
        harness::wait_node_schedulable(&self.client, &name, WAIT)
            .await
            .unwrap();
        name
    }

    /// Lets CA scale the group's nodes down again (see [`World::held_group_node`]).
    async fn release_scale_down(&self) {
        let nodes = Api::<Node>::all(self.client.clone());
        let patch = serde_json::json!({"metadata": {"annotations": {SCALE_DOWN_DISABLED: null}}});
        for name in self.group_nodes().await {
            nodes
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    }

    /// The names of this test's group's nodes.
    async fn group_nodes(&self) -> BTreeSet<String> {
        group_nodes(&self.client, self.group).await
    }

    async fn wait_bound(&self, name: &str) -> String {
        let pod = harness::wait_pod(&self.client, &self.ns, name, "bound", WAIT, |p| {
            node_of(p).is_some()
        })
        .await
        .unwrap();
        node_of(&pod).unwrap()
    }

    /// CA's `TriggeredScaleUp` events on pods of this namespace: (pod, message).
    async fn scale_up_events(&self) -> Vec<(String, String)> {
        Api::<Event>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("TriggeredScaleUp"))
            .map(|e| {
                (
                    e.involved_object.name.unwrap_or_default(),
                    e.message.unwrap_or_default(),
                )
            })
            .collect()
    }
}

async fn group_nodes(client: &kube::Client, group: &str) -> BTreeSet<String> {
    Api::<Node>::all(client.clone())
        .list(&ListParams::default().labels(&format!("{NODE_GROUP_LABEL}={group}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect()
}

/// What CA logged about `node` (its scale-down reasoning), for the test output.
fn ca_log_about(node: &str) -> Vec<String> {
    let cluster = hubpack_e2e::shared_cluster_with_autoscaler!().unwrap_or_else(|e| panic!("{e}"));
    let log = hubpack_e2e::processes::log_path(&cluster.state_dir, "cluster-autoscaler");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(node))
        .filter(|l| {
            [
                "remov",
                "unremovable",
                "unneeded",
                "drain",
                "evict",
                "scale",
                "delet",
            ]
            .iter()
            .any(|w| l.to_lowercase().contains(w))
        })
        .map(|l| l.chars().take(240).collect())
        .collect()
}

fn pod_condition<'a>(
    pod: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn unschedulable(pod: &Pod) -> bool {
    pod_condition(pod, "PodScheduled")
        .is_some_and(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
}

async fn ensure_priority_class(client: &kube::Client, name: &str, value: i32) {
    let pc = PriorityClass {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        value,
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
        Err(e) => panic!("creating PriorityClass {name}: {e}"),
    }
}

/// A placeholder Deployment as the chart renders one: priority −10, preemption never, the
/// placeholder label hubpack preempts by, scheduled by `scheduler`, on nodes carrying
/// `node_label`.
fn placeholder_deployment(
    name: &str,
    cpu: &str,
    scheduler: &str,
    node_label: (&str, &str),
) -> Deployment {
    let labels = BTreeMap::from([
        ("app".to_string(), name.to_string()),
        ("component".to_string(), "user-placeholder".to_string()),
    ]);
    let mut pod = harness::user_pod("placeholder", "registry.k8s.io/pause:3.10");
    harness::set_cpu_request(&mut pod, cpu);
    let mut spec = pod.spec.unwrap();
    spec.scheduler_name = Some(scheduler.to_string());
    spec.priority_class_name = Some(PLACEHOLDER_CLASS.into());
    spec.termination_grace_period_seconds = Some(0);
    spec.node_selector
        .get_or_insert_default()
        .insert(node_label.0.into(), node_label.1.into());
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(spec),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Waits until a pod of placeholder Deployment `app` is bound to `node`.
async fn wait_placeholder_on(w: &World, app: &str, node: &str) {
    wait::until(&format!("a {app} placeholder on {node}"), WAIT, || async {
        placeholder_pods(w, app)
            .await
            .iter()
            .any(|p| node_of(p).as_deref() == Some(node))
            .then_some(())
    })
    .await
    .unwrap();
}

async fn placeholder_pods(w: &World, app: &str) -> Vec<Pod> {
    w.pods()
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
}

/// The scale-up path end to end, with its timeline: hubpack marks a user pod that fits no node
/// Unschedulable; CA adds a node of the user pool (labels and taints of the template, a
/// `kwok:` providerID, registered with the not-ready taint); once it is Ready, hubpack binds the
/// pod there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_adds_a_user_pool_node_for_a_pod_hubpack_marks_unschedulable() {
    let mut w = World::new("ca-up", "user-a").await;
    w.start_hubpack(|_| {});
    let before = w.group_nodes().await;
    let t0 = Instant::now();
    let pod = w
        .create(&w.user("student-1", "1", &w.scheduler.clone()))
        .await;
    let created = pod.metadata.creation_timestamp.clone().unwrap().0;

    // Observe, every 100 ms: the pod's condition and node, the group's nodes and their state.
    let nodes: Api<Node> = Api::all(w.client.clone());
    let mut timeline: Vec<(Duration, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut note = |what: String, timeline: &mut Vec<(Duration, String)>| {
        if seen.insert(what.clone()) {
            timeline.push((t0.elapsed(), what));
        }
    };
    let bound_to = loop {
        assert!(t0.elapsed() < WAIT, "no bind within {WAIT:?}: {timeline:?}");
        let pod = w.pods().get("student-1").await.unwrap();
        if unschedulable(&pod) {
            note("pod Unschedulable (hubpack)".into(), &mut timeline);
        }
        if w.scale_up_events()
            .await
            .iter()
            .any(|(p, _)| p == "student-1")
        {
            note("TriggeredScaleUp (CA)".into(), &mut timeline);
        }
        for name in w.group_nodes().await.difference(&before) {
            note(format!("node {name} created"), &mut timeline);
            let node = nodes.get(name).await.unwrap();
            if wait::node_ready(&node) {
                note(format!("node {name} Ready"), &mut timeline);
            }
            if wait::node_schedulable(&node) {
                note(format!("node {name} not-ready taint lifted"), &mut timeline);
            }
        }
        if let Some(node) = node_of(&pod) {
            note(format!("pod bound to {node}"), &mut timeline);
            break node;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("scale-up timeline (pod created at {created}):");
    for (at, what) in &timeline {
        eprintln!("  +{:>5.1} s  {what}", at.as_secs_f64());
    }

    let node = nodes.get(&bound_to).await.unwrap();
    assert!(
        !before.contains(&bound_to),
        "bound to an old node {bound_to}"
    );
    // Judged by the pod's own tolerations (the admission defaults included), as the
    // schedulers judge it: the NoExecute not-ready taint may outlive Ready by seconds.
    let bound = w.pods().get("student-1").await.unwrap();
    let tolerations = bound
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    assert!(
        wait::node_schedulable_for(&node, &tolerations),
        "bound to a node not yet Ready: {:?}",
        node.spec.as_ref().map(|s| &s.taints)
    );
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels["hub.jupyter.org/node-purpose"], "user");
    assert_eq!(labels[NODE_GROUP_LABEL], "user-a");
    let spec = node.spec.clone().unwrap();
    assert!(
        spec.provider_id.unwrap().starts_with("kwok:"),
        "not a node CA made"
    );
    assert!(
        spec.taints
            .unwrap_or_default()
            .iter()
            .any(|t| t.key == "hub.jupyter.org/dedicated" && t.effect == "NoSchedule")
    );
    let order: Vec<&str> = timeline.iter().map(|(_, w)| w.as_str()).collect();
    let pos = |prefix: &str| order.iter().position(|w| w.starts_with(prefix));
    let (marked, triggered) = (pos("pod Unschedulable"), pos("TriggeredScaleUp"));
    assert!(
        marked.is_some() && triggered.is_some() && marked < triggered,
        "expected hubpack's Unschedulable, then CA's TriggeredScaleUp: {order:?}"
    );
    w.finish().await;
}

/// Nodes CA adds register with `node.kubernetes.io/not-ready:NoSchedule` (as a kubelet does),
/// so no scheduler binds to one while it boots. Shown with the stock kube-scheduler, which
/// judges nodes only by their taints (it bound to a still-`Unknown` node before the templates
/// carried the taint) and with hubpack-scheduler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_nodes_get_no_pod_before_they_are_ready() {
    let mut w = World::new("ca-notready", "user-b").await;
    w.start_hubpack(|_| {});
    let before = w.group_nodes().await;
    let hubpack = w.scheduler.clone();
    let names: Vec<String> = (0..6).map(|i| format!("student-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        // Three nodes' worth (two 1.5-core pods per 4-core node), half for each scheduler.
        let scheduler = if i % 2 == 0 {
            "default-scheduler"
        } else {
            hubpack.as_str()
        };
        w.create(&w.user(name, "1500m", scheduler)).await;
    }
    let nodes: Api<Node> = Api::all(w.client.clone());
    let deadline = Instant::now() + WAIT;
    let mut checked = BTreeMap::new();
    while checked.len() < names.len() {
        assert!(Instant::now() < deadline, "bound so far: {checked:?}");
        // Pods first, then nodes: a pod seen bound to a node that is still not Ready *after*
        // was certainly bound before the node was Ready (nodes do not turn unready here).
        let pods = w.pods().list(&ListParams::default()).await.unwrap().items;
        let ready: BTreeMap<String, bool> = nodes
            .list(&ListParams::default().labels(&format!("{NODE_GROUP_LABEL}=user-b")))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|n| (n.metadata.name.clone().unwrap(), wait::node_ready(&n)))
            .collect();
        for pod in &pods {
            let name = pod.metadata.name.clone().unwrap();
            if let Some(node) = node_of(pod) {
                assert!(
                    ready.get(&node).copied().unwrap_or(true),
                    "{name} ({}) was bound to {node} before it was Ready",
                    pod.spec.as_ref().unwrap().scheduler_name.clone().unwrap()
                );
                checked.insert(name, node);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let added: BTreeSet<&String> = checked.values().filter(|n| !before.contains(*n)).collect();
    assert!(
        !added.is_empty(),
        "no pod went to an added node: {checked:?}"
    );
    eprintln!("bound: {checked:?}");
    w.finish().await;
}

/// A user pod nominated to a warm node (its placeholder victim is evicted but, held by a
/// finalizer, never goes away) must not make CA add a node: CA sets nominated pods aside. Once
/// the victim is gone the user binds to the warm node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_adds_no_node_for_a_nominated_user_pod() {
    let mut w = World::new("ca-nominated", "user-c").await;
    w.start_hubpack(|c| c.preemption.timeout_seconds = 120);
    let warm = w.group_node("4", &[]).await;
    let before = w.group_nodes().await;

    // A placeholder holding most of the warm node, bound by the test, that cannot disappear.
    let mut ph = w.user("placeholder-0", "3500m", harness::MANUAL_SCHEDULER);
    ph.metadata
        .labels
        .get_or_insert_default()
        .insert("component".into(), "user-placeholder".into());
    ph.metadata.finalizers = Some(vec![HOLD_FINALIZER.into()]);
    ph.spec.as_mut().unwrap().priority_class_name = Some(PLACEHOLDER_CLASS.into());
    let ph = w.create(&ph).await;
    harness::bind(&w.client, &w.ns, &ph, &warm).await.unwrap();

    w.create(&w.user("student-1", "1", &w.scheduler.clone()))
        .await;
    let nominated = harness::wait_pod(&w.client, &w.ns, "student-1", "nominated", WAIT, |p| {
        p.status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            == Some(warm.as_str())
    })
    .await
    .unwrap();
    assert!(node_of(&nominated).is_none());

    // Many CA scans later: no scale-up, no new node, still nominated and unbound.
    tokio::time::sleep(ca_quiet_period()).await;
    let events = w.scale_up_events().await;
    assert!(events.is_empty(), "CA scaled up: {events:?}");
    assert_eq!(w.group_nodes().await, before, "CA added a node");
    let pod = w.pods().get("student-1").await.unwrap();
    assert!(node_of(&pod).is_none(), "bound before the victim was gone");

    // The victim goes; the user binds to the warm node.
    w.pods()
        .patch(
            "placeholder-0",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert_eq!(w.wait_bound("student-1").await, warm);
    w.finish().await;
}

/// A user evicts a placeholder; the Deployment's replacement (priority −10, at the expendable
/// cutoff, not below it) is marked Unschedulable by hubpack and CA adds a node for it, where
/// hubpack places it. A pod at −11 (expendable) marked Unschedulable makes CA add nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_scales_up_for_a_placeholder_replacement_but_not_for_an_expendable_pod() {
    let mut w = World::new("ca-replace", "user-d").await;
    w.start_hubpack(|_| {});
    let warm = w.group_node("4", &[]).await;
    let before = w.group_nodes().await;
    let deployments: Api<Deployment> = Api::namespaced(w.client.clone(), &w.ns);
    deployments
        .create(
            &PostParams::default(),
            &placeholder_deployment("ph", "3", &w.scheduler, (NODE_GROUP_LABEL, "user-d")),
        )
        .await
        .unwrap();
    wait_placeholder_on(&w, "ph", &warm).await;

    // A user needing the placeholder's seat.
    w.create(&w.user("student-1", "2", &w.scheduler.clone()))
        .await;
    assert_eq!(w.wait_bound("student-1").await, warm);

    // The replacement: pending, then on a node CA added for it.
    let added = wait::until(
        "the replacement placeholder on a new node",
        WAIT,
        || async {
            let pods = placeholder_pods(&w, "ph").await;
            pods.iter()
                .filter_map(node_of)
                .find(|n| !before.contains(n))
        },
    )
    .await
    .unwrap();
    let triggered: Vec<_> = w
        .scale_up_events()
        .await
        .into_iter()
        .filter(|(pod, _)| pod.starts_with("ph-"))
        .collect();
    assert!(
        !triggered.is_empty(),
        "the replacement reached {added} without a TriggeredScaleUp"
    );
    assert!(triggered[0].1.contains("user-d"), "{triggered:?}");

    // An expendable pod (−11) that fits no node, marked Unschedulable: CA ignores it.
    let mut expendable = w.user("expendable-1", "3", harness::MANUAL_SCHEDULER);
    expendable.spec.as_mut().unwrap().priority_class_name = Some(EXPENDABLE_CLASS.into());
    expendable.spec.as_mut().unwrap().node_selector = Some(BTreeMap::from([(
        NODE_GROUP_LABEL.to_string(),
        "user-e".to_string(),
    )]));
    w.create(&expendable).await;
    harness::mark_unschedulable(
        &w.client,
        &w.ns,
        "expendable-1",
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
    )
    .await
    .unwrap();
    tokio::time::sleep(ca_quiet_period()).await;
    let events = w.scale_up_events().await;
    assert!(
        !events.iter().any(|(p, _)| p == "expendable-1"),
        "CA scaled up for an expendable pod: {events:?}"
    );
    assert!(
        group_nodes(&w.client, "user-e").await.is_empty(),
        "CA added a user-e node for an expendable pod"
    );

    w.finish().await;
}

/// Scale-down as CA does it: an emptied node goes after the unneeded time; a node with one
/// user pod (a bare pod, as KubeSpawner makes) never goes; a node holding only a placeholder
/// goes only once CA can move the placeholder elsewhere (its Deployment's replacement then
/// lands there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_removes_emptied_and_movable_placeholder_nodes_but_never_a_users() {
    let mut w = World::new("ca-down", "user-f").await;
    w.start_hubpack(|_| {});
    let ph_nodes = (PLACEHOLDER_NODES_LABEL, w.ns.as_str());
    let with_user = w.group_node("4", &[]).await;
    let emptied = w.group_node("4", &[]).await;
    let with_placeholder = w.group_node("4", &[ph_nodes]).await;

    // Users bound by the test; a placeholder (1 of 4 cores: below CA's 0.5 threshold).
    let alice = w
        .create(&w.user("alice", "500m", harness::MANUAL_SCHEDULER))
        .await;
    harness::bind(&w.client, &w.ns, &alice, &with_user)
        .await
        .unwrap();
    let bob = w
        .create(&w.user("bob", "500m", harness::MANUAL_SCHEDULER))
        .await;
    harness::bind(&w.client, &w.ns, &bob, &emptied)
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(w.client.clone(), &w.ns);
    deployments
        .create(
            &PostParams::default(),
            &placeholder_deployment("ph", "1", &w.scheduler, ph_nodes),
        )
        .await
        .unwrap();
    wait_placeholder_on(&w, "ph", &with_placeholder).await;

    // Bob leaves: his node goes; alice's stays; the placeholder has nowhere else to go.
    let t0 = Instant::now();
    w.pods()
        .delete("bob", &DeleteParams::default())
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(w.client.clone());
    wait::until("the emptied node removed", WAIT, || async {
        nodes
            .get_opt(&emptied)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await
    .unwrap();
    eprintln!(
        "emptied node removed {:.1} s after its user left",
        t0.elapsed().as_secs_f64()
    );
    tokio::time::sleep(ca_quiet_period()).await;
    let left = w.group_nodes().await;
    assert!(left.contains(&with_user), "CA removed the node with a user");
    assert!(
        left.contains(&with_placeholder),
        "CA removed the placeholder's node though the placeholder could go nowhere"
    );

    // Room elsewhere (a node outside any group, which CA never removes): now CA moves it.
    let elsewhere = harness::unique_name("elsewhere");
    let mut template = NodeTemplate::new(Pool::User)
        .with_boot_delay(Duration::ZERO)
        .with_resources("4", "16Gi", 110);
    template
        .extra_labels
        .insert(ph_nodes.0.into(), ph_nodes.1.into());
    harness::create_node(&w.client, &elsewhere, &template)
        .await
        .unwrap();
    let t1 = Instant::now();
    wait::until("the placeholder-only node removed", WAIT, || async {
        nodes
            .get_opt(&with_placeholder)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await
    .unwrap();
    eprintln!(
        "placeholder-only node removed {:.1} s after room appeared elsewhere",
        t1.elapsed().as_secs_f64()
    );
    eprintln!("what CA logged about {with_placeholder}:");
    let about = ca_log_about(&with_placeholder);
    for line in about.iter().take(3).chain(about.iter().rev().take(6).rev()) {
        eprintln!("  {line}");
    }
    // The placeholder's replacement lands on the other node.
    wait_placeholder_on(&w, "ph", &elsewhere).await;
    assert!(
        w.group_nodes().await.contains(&with_user),
        "CA removed the node with a user"
    );

    let _ = nodes.delete(&elsewhere, &DeleteParams::default()).await;
    w.finish().await;
}

/// The same arrivals and departures on two groups of three nodes, one scheduled by hubpack, one
/// by kube-scheduler's default profile (LeastAllocated: spread): six one-core users arrive one
/// at a time on four-core nodes, then two leave. hubpack's users sit on fewer nodes, and CA
/// removes the node packing left empty; the spread pool keeps every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_removes_the_nodes_hubpack_packing_empties() {
    let mut packed = World::new("ca-pack", "user-g").await;
    packed.start_hubpack(|_| {});
    let spread = World::new("ca-spread", "user-h").await;
    for w in [&packed, &spread] {
        for _ in 0..3 {
            // Held: otherwise CA's soft taint on an empty node decides where kube-scheduler
            // puts the students, depending on when CA's loop got to it.
            w.held_group_node("4").await;
        }
    }
    let schedulers = [packed.scheduler.clone(), "default-scheduler".to_string()];
    for (w, scheduler) in [&packed, &spread].into_iter().zip(&schedulers) {
        for i in 0..6 {
            let name = format!("student-{i}");
            w.create(&w.user(&name, "1", scheduler)).await;
            // One at a time, so each decision sees the previous placement.
            w.wait_bound(&name).await;
        }
        for i in [0, 2] {
            w.pods()
                .delete(&format!("student-{i}"), &DeleteParams::default())
                .await
                .unwrap();
        }
    }
    async fn user_nodes(w: &World) -> BTreeSet<String> {
        w.pods()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(node_of)
            .collect()
    }
    let packed_users = user_nodes(&packed).await;
    let spread_users = user_nodes(&spread).await;
    eprintln!(
        "after departures: hubpack's 4 users on {} nodes, kube-scheduler's on {}",
        packed_users.len(),
        spread_users.len()
    );
    assert!(
        packed_users.len() < spread_users.len(),
        "hubpack {packed_users:?} vs kube-scheduler {spread_users:?}"
    );

    // CA removes what packing emptied; the spread pool has no empty node to give back.
    packed.release_scale_down().await;
    spread.release_scale_down().await;
    wait::until("CA removes hubpack's emptied nodes", WAIT, || async {
        (packed.group_nodes().await.len() == packed_users.len()).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(ca_quiet_period()).await;
    let (packed_left, spread_left) = (packed.group_nodes().await, spread.group_nodes().await);
    eprintln!(
        "nodes left: hubpack {} ({packed_left:?}), kube-scheduler {} ({spread_left:?})",
        packed_left.len(),
        spread_left.len()
    );
    assert!(packed_left.len() < spread_left.len());
    assert_eq!(packed_left, packed_users, "a node with a user was removed");
    assert!(
        spread_users.is_subset(&spread_left),
        "a node with a user was removed"
    );

    spread.finish().await;
    packed.finish().await;
}
