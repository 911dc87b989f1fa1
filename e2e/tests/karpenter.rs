//! hubpack on the real Karpenter (v1.14.1, kwok provider) on the local control plane: what
//! Karpenter does for the pods hubpack-scheduler marks and nominates, for the placeholders
//! hubpack-placeholder-ctl creates, and for the nodes packing empties. Every test's name
//! contains `karpenter`.
//!
//! The shared cluster runs Karpenter with one user NodePool per test
//! (`karpenter::test_options`: z2jh's user-pool label and taint, 4-CPU nodes, nodes labelled
//! with the pool's name on the node-group label), `WhenEmptyOrUnderutilized` after 5 s;
//! Karpenter's own loops keep their upstream pace (a disruption pass every 10 s, 15 s
//! re-validation before a non-empty node goes), so a consolidation is seen within about 40 s.

#![allow(clippy::unwrap_used)] // a test binary

use hubpack_e2e::in_process::{InProcessController, InProcessScheduler, test_config};
use hubpack_e2e::karpenter::{BOOTING_TAINT, DO_NOT_DISRUPT_ANNOTATION, NODE_POOL_LABEL};
use hubpack_e2e::nodes::{DEDICATED_TAINT, NODE_GROUP_LABEL, NODE_PURPOSE_LABEL};
use hubpack_e2e::pod_facts::node_of;
use hubpack_e2e::{harness, wait};
use hubpack_placeholder_ctl::config::Config as CtlConfig;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, PodTemplateSpec};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, Patch,
    PatchParams, PostParams,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const IMAGE: &str = "jupyter/base-notebook:karpenter";
const PLACEHOLDER_CLASS: &str = "hubpack-e2e-placeholder";
/// A finalizer that keeps an evicted pod's object, so its deletion is never observed.
const HOLD_FINALIZER: &str = "e2e.hubpack.dev/hold";
const WAIT: Duration = Duration::from_secs(120);
/// Long enough for Karpenter to act on anything it would act on: several batch windows and
/// disruption passes (10 s each), the 15 s re-validation, and consolidateAfter (5 s).
const QUIET: Duration = Duration::from_secs(45);
/// The steady-state hold: 10 minutes of a hub's time compressed ×5 (the harness's boot
/// delay and consolidateAfter are a fifth or less of a cloud's; Karpenter's own 10 s
/// disruption pass is not compressed, so the hold sees 12 of them).
const HOLD: Duration = Duration::from_secs(120);

/// One test's world: a namespace, a NodePool of its own (its nodes carry the node-group label
/// with the pool's name), and (optionally) hubpack-scheduler.
struct World {
    client: kube::Client,
    ns: String,
    pool: &'static str,
    scheduler: String,
    running: Option<InProcessScheduler>,
}

impl World {
    async fn new(prefix: &str, pool: &'static str) -> World {
        let cluster =
            hubpack_e2e::shared_cluster_with_karpenter!().unwrap_or_else(|e| panic!("{e}"));
        let client = cluster.client().await.unwrap();
        let ns = harness::create_namespace(&client, prefix).await.unwrap();
        ensure_priority_class(&client, PLACEHOLDER_CLASS, -10).await;
        World {
            client,
            ns,
            pool,
            scheduler: harness::unique_name("hubpack"),
            running: None,
        }
    }

    fn start_hubpack(&mut self) {
        self.start_hubpack_with(|_| {});
    }

    fn start_hubpack_with(&mut self, tweak: impl FnOnce(&mut hubpack_scheduler::config::Config)) {
        let mut config = test_config(&self.scheduler);
        tweak(&mut config);
        let identity = format!("{}-0", self.scheduler);
        self.running = Some(InProcessScheduler::start(&self.client, config, &identity).unwrap());
    }

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

    /// A user pod as KubeSpawner renders it for the user pool, asking for this test's
    /// NodePool and `cpu` cores, scheduled by `scheduler`, with the annotation the chart README
    /// tells the hub to set (`protected`) or without it.
    fn user(&self, name: &str, cpu: &str, scheduler: &str, protected: bool) -> Pod {
        let mut pod = harness::user_pod(name, IMAGE);
        harness::set_cpu_request(&mut pod, cpu);
        let spec = pod.spec.as_mut().unwrap();
        spec.scheduler_name = Some(scheduler.to_string());
        spec.node_selector
            .get_or_insert_default()
            .insert(NODE_GROUP_LABEL.into(), self.pool.into());
        pod.metadata
            .labels
            .get_or_insert_default()
            .insert("component".into(), "singleuser-server".into());
        if protected {
            pod.metadata
                .annotations
                .get_or_insert_default()
                .insert(DO_NOT_DISRUPT_ANNOTATION.into(), "true".into());
        }
        pod
    }

    async fn create(&self, pod: &Pod) -> Pod {
        self.pods()
            .create(&PostParams::default(), pod)
            .await
            .unwrap()
    }

    /// The pool's nodes (all launched by Karpenter).
    async fn nodes(&self) -> BTreeSet<String> {
        names(
            Api::<Node>::all(self.client.clone())
                .list(&ListParams::default().labels(&format!("{NODE_POOL_LABEL}={}", self.pool)))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|n| n.metadata.name),
        )
    }

    /// The pool's NodeClaims (one per launch, whether or not its node registered yet).
    async fn node_claims(&self) -> BTreeSet<String> {
        let gvk = GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim");
        let api: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &ApiResource::from_gvk(&gvk));
        names(
            api.list(&ListParams::default().labels(&format!("{NODE_POOL_LABEL}={}", self.pool)))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|n| n.metadata.name),
        )
    }

    async fn wait_bound(&self, name: &str) -> String {
        let pod = harness::wait_pod(&self.client, &self.ns, name, "bound", WAIT, |p| {
            node_of(p).is_some()
        })
        .await
        .unwrap();
        node_of(&pod).unwrap()
    }

    /// Marks a test-scheduled pod Unschedulable, waits for a Karpenter node of the pool to be
    /// schedulable that is not in `except`, and binds the pod there.
    async fn place_on_new_node(&self, pod: &Pod, except: &BTreeSet<String>) -> String {
        let name = pod.metadata.name.clone().unwrap();
        harness::mark_unschedulable(&self.client, &self.ns, &name, "0/1 nodes are available")
            .await
            .unwrap();
        let node = wait::until(&format!("a new node for {name}"), WAIT, || async {
            let nodes = Api::<Node>::all(self.client.clone());
            for n in self.nodes().await.difference(except) {
                if let Some(node) = nodes.get_opt(n).await.unwrap()
                    && wait::node_schedulable(&node)
                {
                    return Some(n.clone());
                }
            }
            None
        })
        .await
        .unwrap();
        let fresh = self.pods().get(&name).await.unwrap();
        harness::bind(&self.client, &self.ns, &fresh, &node)
            .await
            .unwrap();
        node
    }
}

fn names(items: impl Iterator<Item = Option<String>>) -> BTreeSet<String> {
    items.flatten().collect()
}

fn unschedulable(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
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

/// Node launches and removals of a pool over a period, from NodeClaims and Nodes polled every
/// second (a NodeClaim launched and deleted between polls would be missed; Karpenter's 10 s
/// passes make that unlikely).
#[derive(Debug, Default)]
struct Churn {
    launched: BTreeSet<String>,
    removed: BTreeSet<String>,
}

async fn watch_churn(w: &World, period: Duration) -> Churn {
    let start_claims = w.node_claims().await;
    let start_nodes = w.nodes().await;
    let mut seen_claims = start_claims.clone();
    let mut seen_nodes = start_nodes.clone();
    let mut churn = Churn::default();
    let t0 = Instant::now();
    while t0.elapsed() < period {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (claims, nodes) = (w.node_claims().await, w.nodes().await);
        for c in claims.difference(&seen_claims) {
            churn.launched.insert(format!("nodeclaim/{c}"));
        }
        for c in seen_claims.difference(&claims) {
            churn.removed.insert(format!("nodeclaim/{c}"));
        }
        for n in nodes.difference(&seen_nodes) {
            churn.launched.insert(format!("node/{n}"));
        }
        for n in seen_nodes.difference(&nodes) {
            churn.removed.insert(format!("node/{n}"));
        }
        seen_claims.extend(claims);
        seen_nodes.extend(nodes);
        // A removal is counted once: forget what is gone.
        seen_claims.retain(|c| !churn.removed.contains(&format!("nodeclaim/{c}")));
        seen_nodes.retain(|n| !churn.removed.contains(&format!("node/{n}")));
    }
    churn
}

/// What Karpenter logged about `needle` (a node or NodePool) in disruption and provisioning.
fn karpenter_log_about(needle: &str) -> Vec<String> {
    let cluster = hubpack_e2e::shared_cluster_with_karpenter!().unwrap_or_else(|e| panic!("{e}"));
    let log = hubpack_e2e::processes::log_path(&cluster.state_dir, "karpenter");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.chars().take(300).collect())
        .collect()
}

/// hubpack marks a user pod that fits no node Unschedulable; Karpenter launches a node of the
/// user NodePool (z2jh's label and taint), which registers NotReady with its startup taint;
/// once it is Ready hubpack binds the pod there. One node, no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn karpenter_launches_a_user_pool_node_for_a_pod_hubpack_marks_unschedulable() {
    let mut w = World::new("kp-up", "user-a").await;
    w.start_hubpack();
    let before = w.nodes().await;
    let t0 = Instant::now();
    w.create(&w.user("student-1", "1", &w.scheduler.clone(), true))
        .await;
    let nodes: Api<Node> = Api::all(w.client.clone());
    let mut timeline: Vec<(f64, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut note = |what: String, timeline: &mut Vec<(f64, String)>| {
        if seen.insert(what.clone()) {
            timeline.push((t0.elapsed().as_secs_f64(), what));
        }
    };
    let bound_to = loop {
        assert!(t0.elapsed() < WAIT, "no bind within {WAIT:?}: {timeline:?}");
        let pod = w.pods().get("student-1").await.unwrap();
        if unschedulable(&pod) {
            note("pod Unschedulable (hubpack)".into(), &mut timeline);
        }
        for c in w.node_claims().await {
            note(format!("nodeclaim {c} (Karpenter)"), &mut timeline);
        }
        for name in w.nodes().await.difference(&before) {
            note(format!("node {name} registered"), &mut timeline);
            let node = nodes.get(name).await.unwrap();
            let tainted = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|t| {
                    t.iter()
                        .any(|t| t.key == wait::NOT_READY_TAINT || t.key == BOOTING_TAINT)
                });
            if tainted {
                note(
                    format!("node {name} booting/not-ready taint on"),
                    &mut timeline,
                );
            }
            if wait::node_ready(&node) {
                note(format!("node {name} Ready"), &mut timeline);
            }
        }
        if let Some(node) = node_of(&pod) {
            note(format!("pod bound to {node}"), &mut timeline);
            break node;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("Karpenter scale-up timeline:");
    for (at, what) in &timeline {
        eprintln!("  +{at:>5.1} s  {what}");
    }
    let node = nodes.get(&bound_to).await.unwrap();
    assert!(!before.contains(&bound_to), "bound to an old node");
    assert!(wait::node_ready(&node), "bound to a node not Ready");
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels[NODE_PURPOSE_LABEL], "user");
    assert_eq!(labels[NODE_POOL_LABEL], "user-a");
    let taints = node.spec.clone().unwrap().taints.unwrap_or_default();
    assert!(
        taints
            .iter()
            .any(|t| t.key == DEDICATED_TAINT && t.effect == "NoSchedule"),
        "{taints:?}"
    );
    let order: Vec<&str> = timeline.iter().map(|(_, w)| w.as_str()).collect();
    let pos = |prefix: &str| order.iter().position(|w| w.starts_with(prefix));
    assert!(
        pos("pod Unschedulable") < pos("nodeclaim"),
        "expected hubpack's Unschedulable before Karpenter's NodeClaim: {order:?}"
    );
    assert!(
        pos("node ").is_some() && pos("node ") < pos("pod bound"),
        "{order:?}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(w.node_claims().await.len(), 1, "one node for one user");
    w.finish().await;
}

/// A user pod nominated to a warm node (its placeholder victim evicted but, held by a
/// finalizer, never gone) makes Karpenter launch nothing: it skips pods with a
/// nominatedNodeName (`IsProvisionable`). Once the victim goes, the user binds to the warm node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn karpenter_launches_no_node_for_a_nominated_user_pod() {
    let mut w = World::new("kp-nominated", "user-b").await;
    // The victim is held past the quiet period: hubpack keeps the nomination that long.
    w.start_hubpack_with(|c| c.preemption.timeout_seconds = 120);
    // A warm node: Karpenter launches it for a placeholder the test places there.
    let mut ph = w.user("placeholder-0", "3500m", harness::MANUAL_SCHEDULER, false);
    ph.metadata
        .labels
        .get_or_insert_default()
        .insert("component".into(), "user-placeholder".into());
    ph.metadata
        .annotations
        .get_or_insert_default()
        .insert(DO_NOT_DISRUPT_ANNOTATION.into(), "true".into());
    ph.metadata.finalizers = Some(vec![HOLD_FINALIZER.into()]);
    ph.spec.as_mut().unwrap().priority_class_name = Some(PLACEHOLDER_CLASS.into());
    let ph = w.create(&ph).await;
    let warm = w.place_on_new_node(&ph, &BTreeSet::new()).await;
    // A protected user already there: while the victim is held (terminating, so not running)
    // the node must not look empty, or Karpenter consolidates it; with a real eviction the
    // victim is gone in a moment.
    let alice = w
        .create(&w.user("alice", "300m", harness::MANUAL_SCHEDULER, true))
        .await;
    harness::bind(&w.client, &w.ns, &alice, &warm)
        .await
        .unwrap();
    let claims_before = w.node_claims().await;

    w.create(&w.user("student-1", "1", &w.scheduler.clone(), true))
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
    let churn = watch_churn(&w, QUIET).await;
    assert!(
        churn.launched.is_empty(),
        "Karpenter launched for a nominated pod: {churn:?}"
    );
    assert_eq!(w.node_claims().await, claims_before);

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

/// Two pools alike: a user alone on her node, room for her on a node with another user. With
/// `karpenter.sh/do-not-disrupt` (what the chart README tells the hub to set) Karpenter leaves
/// her node; without it (the control pool) it consolidates the node and evicts her: a lost
/// session. In the protected pool, a node emptied by its user leaving is then removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn karpenter_consolidates_emptied_nodes_but_never_a_protected_users() {
    let (protected, control) = tokio::join!(
        lone_user_scenario("kp-keep", "user-c", true),
        lone_user_scenario("kp-lose", "user-d", false),
    );
    let (w, alice_node, dave_node) = protected;
    let (wc, _, _) = control;
    let t0 = Instant::now();
    // Both pools now look the same to consolidation; watch both.
    let (churn_kept, churn_lost) = tokio::join!(watch_churn(&w, QUIET), async {
        let lost = wait::until("the control user's node consolidated", WAIT, || async {
            wc.pods()
                .get_opt("alice")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        })
        .await;
        (lost, t0.elapsed())
    });
    eprintln!("protected pool during {QUIET:?}: {churn_kept:?}");
    let (lost, after) = churn_lost;
    eprintln!(
        "control pool: the unprotected user evicted after {:.1} s: {:?}",
        after.as_secs_f64(),
        lost.is_ok()
    );
    for line in karpenter_log_about("user-d").iter().rev().take(4).rev() {
        eprintln!("  {line}");
    }
    assert!(
        lost.is_ok(),
        "Karpenter left the unprotected user: the control does not show the risk"
    );
    assert!(
        churn_kept.removed.is_empty(),
        "Karpenter removed a protected user's node: {churn_kept:?}"
    );
    assert_eq!(w.wait_bound("alice").await, alice_node);

    // Alice leaves: her node is empty and goes; dave's stays.
    let t1 = Instant::now();
    w.pods()
        .delete("alice", &DeleteParams::default())
        .await
        .unwrap();
    wait::until("the emptied node removed", WAIT, || async {
        (!w.nodes().await.contains(&alice_node)).then_some(())
    })
    .await
    .unwrap();
    eprintln!(
        "emptied node removed {:.1} s after its user left",
        t1.elapsed().as_secs_f64()
    );
    assert!(w.nodes().await.contains(&dave_node), "a user's node went");
    w.finish().await;
    wc.finish().await;
}

/// Alice (1 CPU) on a node of her own, dave (2 CPU) on another with room for her; placed by
/// the test on nodes Karpenter launched for them (a filler keeps alice's node full while
/// dave's launches, then goes).
async fn lone_user_scenario(
    prefix: &str,
    pool: &'static str,
    protected: bool,
) -> (World, String, String) {
    let w = World::new(prefix, pool).await;
    let m = harness::MANUAL_SCHEDULER;
    let alice = w.create(&w.user("alice", "1", m, protected)).await;
    let filler = w.create(&w.user("filler", "2500m", m, true)).await;
    harness::mark_unschedulable(&w.client, &w.ns, "filler", "0/1 nodes are available")
        .await
        .unwrap();
    let alice_node = w.place_on_new_node(&alice, &BTreeSet::new()).await;
    let fresh = w.pods().get("filler").await.unwrap();
    let _ = filler;
    harness::bind(&w.client, &w.ns, &fresh, &alice_node)
        .await
        .unwrap();
    let dave = w.create(&w.user("dave", "2", m, true)).await;
    let dave_node = w
        .place_on_new_node(&dave, &BTreeSet::from([alice_node.clone()]))
        .await;
    assert_ne!(alice_node, dave_node);
    w.pods()
        .delete(
            "filler",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (w, alice_node, dave_node)
}

/// A placeholder Deployment exactly as hubpack-placeholder-ctl writes it (its own object
/// builder), for pool `pool`, scheduled by `scheduler`.
fn hubpack_placeholders(ns: &str, scheduler: &str, pool: &str, replicas: i32) -> Deployment {
    // One seat per placeholder, so each is as small as the pause pods of the control.
    let yaml = ctl_yaml(ns, scheduler, "none", 0, pool, "")
        .replace("usersPerPlaceholder: auto", "usersPerPlaceholder: 1");
    let cfg = CtlConfig::parse(&yaml, "e2e").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let sizes = cfg.pool_sizes().unwrap();
    hubpack_placeholder_ctl::objects::placeholder_deployment(
        &cfg,
        &cfg.pools[0],
        &sizes[0],
        None,
        replicas,
        &[],
        None,
    )
}

/// The PriorityClasses hubpack-placeholder-ctl writes (placeholders at −10, never preempting).
async fn ensure_ctl_priority_classes(client: &kube::Client) {
    let yaml = ctl_yaml("default", "none", "none", 0, "none", "");
    let cfg = CtlConfig::parse(&yaml, "e2e").unwrap();
    for pc in hubpack_placeholder_ctl::objects::priority_classes(&cfg) {
        match Api::<PriorityClass>::all(client.clone())
            .create(&PostParams::default(), &pc)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("creating PriorityClass: {e}"),
        }
    }
}

/// A plain overprovisioning Deployment as the upstream loop report has it: pause pods at
/// priority −10, the stock scheduler, no annotation.
fn pause_placeholders(pool: &str, cpu: &str, replicas: i32) -> Deployment {
    let labels = BTreeMap::from([("app".to_string(), "pause".to_string())]);
    let mut pod = harness::user_pod("pause", "registry.k8s.io/pause:3.10");
    harness::set_cpu_request(&mut pod, cpu);
    let mut spec = pod.spec.unwrap();
    spec.scheduler_name = Some("default-scheduler".into());
    spec.priority_class_name = Some(PLACEHOLDER_CLASS.into());
    spec.termination_grace_period_seconds = Some(0);
    spec.node_selector
        .get_or_insert_default()
        .insert(NODE_GROUP_LABEL.into(), pool.into());
    Deployment {
        metadata: ObjectMeta {
            name: Some("pause".into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
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

/// Placeholders that have settled on a node of their own, with room for them appearing on a
/// user's node, held for [`HOLD`]: hubpack's (as hubpack-placeholder-ctl writes them, one seat
/// each) make Karpenter launch and remove no node. The same check against a plain pause-pod
/// Deployment at −10 (the control): Karpenter consolidates their node away, moving them
/// beside the user; it does not loop (docs/design.md says why).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn karpenter_holds_hubpack_placeholders_at_steady_state_without_churn() {
    let (hubpack, pause) = tokio::join!(
        settle_placeholders("kp-steady", "user-e", true),
        settle_placeholders("kp-pause", "user-f", false),
    );
    let t0 = Instant::now();
    let (churn_hubpack, churn_pause) =
        tokio::join!(watch_churn(&hubpack, HOLD), watch_churn(&pause, HOLD));
    eprintln!(
        "held {:.0} s: hubpack placeholders {churn_hubpack:?}; plain pause pods at -10 {churn_pause:?}",
        t0.elapsed().as_secs_f64()
    );
    for line in karpenter_log_about("user-f").iter().rev().take(6).rev() {
        eprintln!("  {line}");
    }
    assert!(
        churn_hubpack.launched.is_empty() && churn_hubpack.removed.is_empty(),
        "hubpack's placeholders churned: {churn_hubpack:?}"
    );
    // The control: Karpenter moves the plain pause pods onto the room beside dave and removes
    // their node (a warm node lost). It does not loop (docs/design.md, Karpenter: why).
    eprintln!(
        "control (plain pause pods at -10): {} launched, {} removed",
        churn_pause.launched.len(),
        churn_pause.removed.len()
    );
    assert!(
        !churn_pause.removed.is_empty(),
        "the control shows nothing: Karpenter left the plain pause pods' node too: {churn_pause:?}"
    );
    hubpack.finish().await;
    pause.finish().await;
}

/// Two 1-CPU placeholders settled on a node Karpenter launched for them, beside a user's node
/// that then gets room for both (a filler there leaves): what consolidation looks for.
async fn settle_placeholders(prefix: &str, pool: &'static str, hubpack: bool) -> World {
    let mut w = World::new(prefix, pool).await;
    let m = harness::MANUAL_SCHEDULER;
    let dave = w.create(&w.user("dave", "1", m, true)).await;
    w.create(&w.user("filler", "2", m, true)).await;
    harness::mark_unschedulable(&w.client, &w.ns, "filler", "0/1 nodes are available")
        .await
        .unwrap();
    let dave_node = w.place_on_new_node(&dave, &BTreeSet::new()).await;
    let filler = w.pods().get("filler").await.unwrap();
    harness::bind(&w.client, &w.ns, &filler, &dave_node)
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(w.client.clone(), &w.ns);
    let d = if hubpack {
        w.start_hubpack();
        ensure_ctl_priority_classes(&w.client).await;
        hubpack_placeholders(&w.ns, &w.scheduler, pool, 2)
    } else {
        pause_placeholders(pool, "1", 2)
    };
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let placed = wait::until(
        &format!("{prefix}: two placeholders bound"),
        WAIT,
        || async {
            let pods = w.pods().list(&ListParams::default()).await.unwrap().items;
            let on: Vec<String> = pods
                .iter()
                .filter(|p| !matches!(p.metadata.name.as_deref(), Some("dave" | "filler")))
                .filter_map(node_of)
                .collect();
            (on.len() == 2).then_some(on)
        },
    )
    .await
    .unwrap();
    eprintln!("{prefix}: dave on {dave_node}, placeholders on {placed:?}");
    // Let the launches settle (nodes initialized), then make room beside dave.
    tokio::time::sleep(Duration::from_secs(10)).await;
    w.pods()
        .delete(
            "filler",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w
}

fn ctl_yaml(ns: &str, scheduler: &str, users: &str, port: u16, pool: &str, extra: &str) -> String {
    format!(
        "namespace: {ns}\n\
         schedulerName: {scheduler}\n\
         reconcileIntervalSeconds: 1\n\
         metricsAddress: 127.0.0.1:{port}\n\
         leaderElection: {{enabled: false}}\n\
         userPods: {{selector: {{hubpack-e2e-users: {users}}}, namespace: {ns}}}\n\
         placeholders: {{scaleDownAfterSeconds: 10}}\n\
         prePuller: {{enabled: false}}\n\
         leadTime: {{initialSeconds: 40, quantile: 0.9, windowSamples: 10, minSamples: 2, reactionSeconds: 1, minSeconds: 5, maxSeconds: 120}}\n\
         eventConfigMaps: {{enabled: true}}\n\
         pools:\n\
         - name: default\n\
         \x20 nodeSelector: {{{NODE_PURPOSE_LABEL}: user, {NODE_GROUP_LABEL}: {pool}}}\n\
         \x20 tolerations: [{{key: {DEDICATED_TAINT}, operator: Equal, value: user, effect: NoSchedule}}]\n\
         \x20 perUser: {{cpu: \"1\", memory: 1Gi}}\n\
         \x20 usersPerPlaceholder: auto\n\
         \x20 freshNode: {{allocatable: {{cpu: 3900m, memory: 8182Mi, pods: \"64\"}}}}\n\
         \x20 headroom: {{z: 0}}\n\
         \x20 lead: 60\n\
         \x20 images: [{IMAGE}]\n\
         {extra}"
    )
}

/// hubpack-placeholder-ctl in-process on `w`'s NodePool, counting the users labelled
/// `users_label`; `extra` is appended to its pool.
fn start_ctl(w: &World, users_label: &str, extra: &str) -> InProcessController {
    let port = hubpack_e2e::processes::free_port().unwrap();
    let yaml = ctl_yaml(&w.ns, &w.scheduler, users_label, port, w.pool, extra);
    let cfg = CtlConfig::parse(&yaml, "e2e").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    InProcessController::start(&w.client, cfg, "ctl-0")
}

/// An event ConfigMap (`class`): 6 users at `start` over 10 s, for the pool `default`.
async fn announce_class(w: &World, start: jiff::Timestamp) -> Api<ConfigMap> {
    let cms: Api<ConfigMap> = Api::namespaced(w.client.clone(), &w.ns);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "class", "labels": {"hubpack.io/events": "true"}},
        "data": {"events.yaml": format!(
            "- {{name: lab, pool: default, start: \"{start}\", users: 6, arrivalWindowSeconds: 10}}\n")}
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    cms
}

/// Six protected students (labelled `class`, outside the controller's selector), one a
/// second; returns the launches and removals while they come and the nodes they bound to.
async fn class_arrives(w: &World, class: &str) -> (Churn, BTreeSet<String>) {
    let watcher = async { watch_churn(w, Duration::from_secs(40)).await };
    let arrivals = async {
        for i in 0..6 {
            let mut pod = w.user(&format!("student-{i}"), "1", &w.scheduler, true);
            pod.metadata
                .labels
                .get_or_insert_default()
                .insert("e2e.hubpack.dev/class".into(), class.to_string());
            w.create(&pod).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut on = BTreeSet::new();
        for i in 0..6 {
            on.insert(w.wait_bound(&format!("student-{i}")).await);
        }
        on
    };
    tokio::join!(watcher, arrivals)
}

/// The students leave and the event is dropped: waits until the pool has no node, then
/// stops the controller and cleans up.
async fn class_ends_and_nodes_go(
    w: World,
    class: &str,
    cms: Api<ConfigMap>,
    ctl: InProcessController,
) {
    w.pods()
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&format!("e2e.hubpack.dev/class={class}")),
        )
        .await
        .unwrap();
    cms.delete("class", &DeleteParams::default()).await.unwrap();
    let t1 = Instant::now();
    wait::until(
        "the pool's nodes removed",
        Duration::from_secs(180),
        || async { w.nodes().await.is_empty().then_some(()) },
    )
    .await
    .unwrap();
    eprintln!(
        "all nodes removed {:.1} s after the users left and the event was dropped",
        t1.elapsed().as_secs_f64()
    );
    ctl.stop().await.unwrap();
    w.finish().await;
}

/// Launches (NodeClaims) in a churn record.
fn claims_launched(churn: &Churn) -> usize {
    churn
        .launched
        .iter()
        .filter(|l| l.starts_with("nodeclaim/"))
        .count()
}

/// A class through hubpack-placeholder-ctl on Karpenter: an event ConfigMap asks for seats;
/// the controller's placeholders make Karpenter launch their nodes once; users arriving take
/// those warm seats (hubpack preempts placeholders), no node is launched for a user, at most
/// one per evicted placeholder (its replacement, still wanted: the users here are outside the
/// controller's selector, so the forecast stays the ConfigMap's), and nothing is removed
/// while the event runs; when the event is dropped and the users leave, the placeholders go
/// and Karpenter removes every node they emptied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn karpenter_serves_a_warm_seat_event_through_placeholder_ctl() {
    let pool = "user-g";
    let mut w = World::new("kp-event", pool).await;
    w.start_hubpack();
    let class = harness::unique_name("users");
    let ctl = start_ctl(&w, &class, "");
    // 3 users per placeholder (3.9 CPU nodes, 1 CPU users): 6 users → 2 placeholders.
    let cms = announce_class(
        &w,
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30),
    )
    .await;
    let placeholders = "app.kubernetes.io/component=user-placeholder";
    let t0 = Instant::now();
    let warm = wait::until("two placeholders bound", WAIT, || async {
        let ps = w
            .pods()
            .list(&ListParams::default().labels(placeholders))
            .await
            .unwrap()
            .items;
        let on: BTreeSet<String> = ps.iter().filter_map(node_of).collect();
        (ps.iter().filter(|p| node_of(p).is_some()).count() == 2).then_some(on)
    })
    .await
    .unwrap();
    let launched = w.node_claims().await;
    eprintln!(
        "placeholders on {warm:?} after {:.1} s; Karpenter launched {launched:?}",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(
        launched.len(),
        warm.len(),
        "one launch per placeholder node"
    );

    // The class arrives; watch for launches and removals while it does.
    let (churn, user_nodes) = class_arrives(&w, &class).await;
    eprintln!("users on {user_nodes:?}; during arrivals: {churn:?}");
    assert!(
        user_nodes.is_subset(&warm),
        "a user went to a node launched for them, not a warm seat: {user_nodes:?} vs {warm:?}"
    );
    assert!(
        churn.removed.is_empty(),
        "a node was removed mid-event: {churn:?}"
    );
    let evicted = 2;
    assert!(
        claims_launched(&churn) <= evicted,
        "more launches than evicted placeholders: {churn:?}"
    );

    // The users leave and the event is dropped: the placeholders go, then the nodes.
    class_ends_and_nodes_go(w, &class, cms, ctl).await;
}

/// The `capacityBuffer` backend on Karpenter (its `CapacityBuffer` feature gate on, as the
/// shared test cluster runs it): an event ConfigMap asks for seats; the controller writes a
/// CapacityBuffer instead of placeholder pods and Karpenter launches nodes for its virtual
/// pods ahead of the event; users bind to those warm seats with no eviction and no launch of
/// their own; once the event is dropped and the users leave, the buffer goes to 0 and
/// Karpenter removes the nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn karpenter_serves_a_warm_seat_event_from_a_capacity_buffer() {
    let pool = "user-h";
    let mut w = World::new("kp-buffer", pool).await;
    w.start_hubpack();
    let class = harness::unique_name("users");
    let ctl = start_ctl(&w, &class, "  backend: capacityBuffer\n");
    let buffers: Api<DynamicObject> = Api::namespaced_with(
        w.client.clone(),
        &w.ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("autoscaling.x-k8s.io", "v1beta1", "CapacityBuffer"),
            "capacitybuffers",
        ),
    );
    // Late enough that the buffer's nodes are up and held through QUIET before the class
    // comes (lead 60 s): users arrive at the event's start, as a class does.
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(75);
    let cms = announce_class(&w, start).await;
    let t0 = Instant::now();
    let replicas = wait::until("the buffer asks for 2 chunks", WAIT, || async {
        let b = buffers
            .get_opt("hubpack-placeholder-default")
            .await
            .ok()??;
        (b.data["spec"]["replicas"].as_i64() == Some(2)).then_some(2)
    })
    .await
    .unwrap();
    let warm = wait::until("Karpenter launches nodes for the buffer", WAIT, || async {
        let nodes = w.nodes().await;
        (nodes.len() >= replicas).then_some(nodes)
    })
    .await
    .unwrap();
    let launched = w.node_claims().await;
    eprintln!(
        "buffer of {replicas} chunks; nodes {warm:?} after {:.1} s (claims {launched:?})",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(
        launched.len(),
        2,
        "one node per 3-user chunk on 3.9-CPU nodes"
    );
    let placeholders = "app.kubernetes.io/component=user-placeholder";
    let none = w
        .pods()
        .list(&ListParams::default().labels(placeholders))
        .await
        .unwrap();
    assert!(none.items.is_empty(), "no placeholder pod with a buffer");
    // The buffer's nodes are not empty to Karpenter: they stay past consolidateAfter (5 s)
    // and several disruption passes.
    tokio::time::sleep(QUIET).await;
    assert_eq!(w.nodes().await, warm, "Karpenter kept the buffer's nodes");
    let until_start = start.duration_since(jiff::Timestamp::now());
    if until_start.is_positive() {
        tokio::time::sleep(until_start.unsigned_abs()).await;
    }

    let (churn, user_nodes) = class_arrives(&w, &class).await;
    eprintln!("users on {user_nodes:?}; during arrivals: {churn:?}");
    assert!(
        user_nodes.is_subset(&warm),
        "a user went to a node launched for them, not the buffer's: {user_nodes:?} vs {warm:?}"
    );
    assert!(
        churn.removed.is_empty(),
        "a node was removed mid-event: {churn:?}"
    );
    // The users (outside the controller's selector) displace the chunks, which the forecast
    // still wants: Karpenter may launch for them again, at most once each.
    assert!(
        claims_launched(&churn) <= 2,
        "more launches than chunks displaced: {churn:?}"
    );

    // The users leave and the event is dropped: the buffer goes to 0, then the nodes.
    class_ends_and_nodes_go(w, &class, cms, ctl).await;
}
