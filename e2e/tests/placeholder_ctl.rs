//! hubpack-placeholder-ctl end to end, on the real control plane with the real
//! cluster-autoscaler (kwok provider, each test in a node group of its own) and the image
//! model, hubpack-scheduler and the controller both in-process (about 2.5 min in all):
//!
//! - an event scheduled a little ahead makes placeholders appear a lead time before it; the
//!   autoscaler adds nodes for them; hubpack-scheduler places them; the pre-pullers warm the
//!   nodes; users created at the event start take warm seats and are Ready without a pull,
//!   and no node is added for the replacements of the placeholders they evicted (the class
//!   has arrived); after the event the placeholders go and the autoscaler removes the
//!   emptied nodes; with
//!   `lead: auto` the learned lead time is the p90 of the scale-up waits seen in the objects
//!   (each including the pull) plus the reaction time. The
//!   event's timeline is printed (`--nocapture` shows it).
//! - a wanted replacement (a user evicted a placeholder while the target still wants it)
//!   makes the autoscaler add a node; a surplus one (the target dropped, the hysteresis still
//!   holds the placed placeholder) is dropped by the controller within the scheduler's grace
//!   and never reaches the autoscaler. The target comes from an event ConfigMap, added and
//!   removed live.
//! - a restarted controller starts from the users created within its observed window (they
//!   still exist), as one that had been watching would, not from nothing (seconds).
//! - a pool renamed: the restarted controller deletes the old name's Deployment, PDB and
//!   pre-puller (its own instance's only) and creates the new name's (seconds).

#![allow(clippy::unwrap_used)] // a test binary

use hubpack_e2e::harness::{self, TEST_BOOT_DELAY, TEST_PULL_TIME};
use hubpack_e2e::in_process::{InProcessController, InProcessScheduler, test_config};
use hubpack_e2e::nodes::{DEDICATED_TAINT, NODE_GROUP_LABEL, NODE_PURPOSE_LABEL};
use hubpack_e2e::pod_facts::{created_at, ready_at};
use hubpack_e2e::{shared_cluster_with_autoscaler, wait};
use hubpack_placeholder_ctl::config::Config as CtlConfig;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "jupyter/scipy-notebook:ctl-e2e";
const USER_CPU: &str = "1";

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

struct World {
    client: kube::Client,
    ns: String,
    /// This test's node group: its pool selects it, so tests never see each other's nodes.
    group: &'static str,
    scheduler: String,
    user_label: String,
    metrics_port: u16,
    scheduler_running: InProcessScheduler,
    ctl_config: CtlConfig,
    /// Always `Some` but while [`World::restart_ctl`] swaps it.
    ctl: Option<InProcessController>,
}

impl World {
    async fn start(
        prefix: &str,
        group: &'static str,
        ctl_yaml: impl FnOnce(&str, &str, &str, u16) -> String,
    ) -> World {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "hubpack_placeholder_ctl=info,hubpack_kube=warn".into()),
            )
            .with_test_writer()
            .try_init();
        let cluster = shared_cluster_with_autoscaler!().unwrap_or_else(|e| panic!("{e}"));
        let client = cluster.client().await.unwrap();
        let ns = harness::create_namespace(&client, prefix).await.unwrap();
        let scheduler = harness::unique_name("hubpack");
        let user_label = harness::unique_name("users");
        let metrics_port = hubpack_e2e::processes::free_port().unwrap();
        let yaml = ctl_yaml(&ns, &scheduler, &user_label, metrics_port);
        let ctl = CtlConfig::parse(&yaml, "e2e").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let scheduler_running =
            InProcessScheduler::start(&client, test_config(&scheduler), "sched-0").unwrap();
        let running = InProcessController::start(&client, ctl.clone(), "ctl-0");
        World {
            client,
            ns,
            group,
            scheduler,
            user_label,
            metrics_port,
            scheduler_running,
            ctl_config: ctl,
            ctl: Some(running),
        }
    }

    /// Stops the controller and starts a fresh one (nothing learned) with the same config.
    async fn restart_ctl(&mut self, identity: &str) {
        if let Some(old) = self.ctl.take() {
            old.stop().await.unwrap();
        }
        self.ctl = Some(InProcessController::start(
            &self.client,
            self.ctl_config.clone(),
            identity,
        ));
    }

    async fn stop(self) {
        let ctl = async {
            if let Some(c) = self.ctl {
                c.stop().await.unwrap();
            }
        };
        let (_, scheduler) = tokio::join!(ctl, self.scheduler_running.stop());
        scheduler.unwrap();
    }

    fn user(&self, name: &str) -> Pod {
        let mut pod = harness::user_pod(name, IMAGE);
        harness::set_cpu_request(&mut pod, USER_CPU);
        pod.metadata
            .labels
            .get_or_insert_default()
            .insert("hubpack-e2e-users".into(), self.user_label.clone());
        let spec = pod.spec.as_mut().unwrap();
        spec.scheduler_name = Some(self.scheduler.clone());
        spec.node_selector
            .get_or_insert_default()
            .insert(NODE_GROUP_LABEL.into(), self.group.into());
        pod
    }

    /// A 3-cpu user the controller does not count as an arrival (it is outside its user
    /// selector), so the forecast stays the ConfigMap's alone; the scheduler treats it as a
    /// user all the same (our scheduler name, not a placeholder).
    fn big_user(&self, name: &str) -> Pod {
        let mut pod = self.user(name);
        harness::set_cpu_request(&mut pod, "3");
        if let Some(l) = pod.metadata.labels.as_mut() {
            l.remove("hubpack-e2e-users");
        }
        pod
    }

    async fn deployment_replicas(&self) -> Option<i32> {
        Api::<Deployment>::namespaced(self.client.clone(), &self.ns)
            .get_opt("hubpack-placeholder-default")
            .await
            .ok()
            .flatten()
            .and_then(|d| d.spec?.replicas)
    }

    async fn pods(&self, labels: &str) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default().labels(labels))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    async fn placeholders(&self) -> Vec<Pod> {
        self.pods("app.kubernetes.io/component=user-placeholder")
            .await
    }

    /// The nodes of this test's group (the autoscaler makes them all).
    async fn autoscaled_nodes(&self) -> Vec<Node> {
        Api::<Node>::all(self.client.clone())
            .list(&ListParams::default().labels(&format!("{NODE_GROUP_LABEL}={}", self.group)))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    async fn metric(&self, name: &str) -> Option<f64> {
        let body = hubpack_e2e::wait::http_body(self.metrics_port, "/metrics").await?;
        body.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

fn pod_node(p: &Pod) -> Option<String> {
    p.spec.as_ref()?.node_name.clone()
}

fn unschedulable_at(p: &Pod) -> Option<i64> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })?
        .last_transition_time
        .as_ref()
        .map(|t| t.0.as_millisecond())
}

/// A timeline of what happened, in seconds relative to the event start, and the scale-up
/// waits seen on the way.
#[derive(Default)]
struct Timeline {
    lines: Mutex<Vec<(i64, String)>>,
    scale_ups: Mutex<ScaleUpWaits>,
}

/// What the controller's `lead: auto` learns from, as the test sees it in the objects'
/// condition times: placeholder Unschedulable → its new node's pre-puller Ready.
#[derive(Default)]
struct ScaleUpWaits {
    unschedulable: BTreeMap<String, i64>,
    placed_on: BTreeMap<String, String>,
    node_created: BTreeMap<String, i64>,
    warm_at: BTreeMap<String, i64>,
}

impl ScaleUpWaits {
    /// One wait (ms) per placeholder that waited for a node created after it was marked
    /// Unschedulable, once that node was warm.
    fn observed_ms(&self) -> Vec<i64> {
        self.unschedulable
            .iter()
            .filter_map(|(pod, &t0)| {
                let node = self.placed_on.get(pod)?;
                if *self.node_created.get(node)? < t0 {
                    return None;
                }
                Some(self.warm_at.get(node)? - t0)
            })
            .collect()
    }
}

impl Timeline {
    fn note(&self, at_ms: i64, what: String) {
        self.lines.lock().unwrap().push((at_ms, what));
    }

    fn scale_ups(&self) -> std::sync::MutexGuard<'_, ScaleUpWaits> {
        self.scale_ups.lock().unwrap()
    }

    fn print(&self, origin: i64, title: &str) {
        let mut lines = self.lines.lock().unwrap().clone();
        lines.sort();
        println!("--- {title} (seconds from the event start) ---");
        for (t, what) in lines {
            println!("{:>+8.1}  {what}", (t - origin) as f64 / 1000.0);
        }
    }
}

/// Records placeholder count changes, node creation/readiness, and placements while it runs.
fn record(
    w: &World,
    timeline: Arc<Timeline>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (client, ns, group) = (w.client.clone(), w.ns.clone(), w.group);
    tokio::spawn(async move {
        let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        let nodes = Api::<Node>::all(client.clone());
        let mut replicas: Option<i32> = None;
        let mut seen_nodes: BTreeMap<String, bool> = BTreeMap::new();
        let mut placed: BTreeSet<String> = BTreeSet::new();
        let mut warm: BTreeSet<String> = BTreeSet::new();
        let mut seen_pods: BTreeSet<String> = BTreeSet::new();
        let mut unschedulable: BTreeSet<String> = BTreeSet::new();
        while !stop.is_cancelled() {
            let now = now_ms();
            if let Ok(Some(d)) = deployments.get_opt("hubpack-placeholder-default").await {
                let r = d.spec.and_then(|s| s.replicas);
                if r != replicas {
                    timeline.note(
                        now,
                        format!("placeholder Deployment replicas {replicas:?} -> {r:?}"),
                    );
                    replicas = r;
                }
            }
            if let Ok(list) = nodes
                .list(&ListParams::default().labels(&format!("{NODE_GROUP_LABEL}={group}")))
                .await
            {
                let names: BTreeSet<String> = list
                    .items
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                for n in &list.items {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let ready = wait::node_ready(n);
                    match seen_nodes.get(&name) {
                        None => {
                            let created = n
                                .metadata
                                .creation_timestamp
                                .as_ref()
                                .map(|t| t.0.as_millisecond())
                                .unwrap_or(now);
                            timeline
                                .note(created, format!("node {name} created by the autoscaler"));
                            timeline
                                .scale_ups()
                                .node_created
                                .insert(name.clone(), created);
                            if ready {
                                timeline.note(now, format!("node {name} Ready"));
                            }
                        }
                        Some(false) if ready => timeline.note(now, format!("node {name} Ready")),
                        _ => {}
                    }
                    seen_nodes.insert(name, ready);
                }
                for gone in seen_nodes
                    .keys()
                    .filter(|n| !names.contains(*n))
                    .cloned()
                    .collect::<Vec<_>>()
                {
                    timeline.note(now, format!("node {gone} removed"));
                    seen_nodes.remove(&gone);
                }
            }
            if let Ok(list) = pods.list(&ListParams::default()).await {
                for p in &list.items {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    let component = p
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("app.kubernetes.io/component"))
                        .cloned()
                        .unwrap_or_default();
                    if component == "user-placeholder" {
                        if seen_pods.insert(name.clone()) {
                            timeline.note(created_at(p), format!("placeholder {name} created"));
                        }
                        if let Some(t) = unschedulable_at(p)
                            && unschedulable.insert(name.clone())
                        {
                            timeline.note(t, format!("placeholder {name} marked Unschedulable"));
                            timeline.scale_ups().unschedulable.insert(name.clone(), t);
                        }
                        if let Some(node) = pod_node(p)
                            && placed.insert(name.clone())
                        {
                            timeline.note(now, format!("placeholder {name} bound to {node}"));
                            timeline.scale_ups().placed_on.insert(name.clone(), node);
                        }
                    } else if component == "image-prepuller" {
                        if let Some(node) = pod_node(p)
                            && seen_pods.insert(name.clone())
                        {
                            timeline.note(
                                created_at(p),
                                format!("pre-puller {name} created for {node}"),
                            );
                        }
                        if let (Some(node), Some(t)) = (pod_node(p), ready_at(p))
                            && warm.insert(node.clone())
                        {
                            timeline.note(t, format!("pre-puller Ready on {node}: node warm"));
                            timeline.scale_ups().warm_at.insert(node, t);
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

fn ctl_yaml(
    ns: &str,
    scheduler: &str,
    users: &str,
    port: u16,
    group: &str,
    lead: &str,
    extra: &str,
) -> String {
    format!(
        "namespace: {ns}\n\
         schedulerName: {scheduler}\n\
         reconcileIntervalSeconds: 1\n\
         metricsAddress: 127.0.0.1:{port}\n\
         leaderElection: {{enabled: false}}\n\
         userPods: {{selector: {{hubpack-e2e-users: {users}}}, namespace: {ns}}}\n\
         placeholders: {{scaleDownAfterSeconds: 10}}\n\
         prePuller: {{learnedImages: 0}}\n\
         leadTime: {{initialSeconds: 40, quantile: 0.9, windowSamples: 10, minSamples: 2, reactionSeconds: 1, minSeconds: 5, maxSeconds: 120}}\n\
         eventConfigMaps: {{enabled: true}}\n\
         pools:\n\
         - name: default\n\
         \x20 nodeSelector: {{{NODE_PURPOSE_LABEL}: user, {NODE_GROUP_LABEL}: {group}}}\n\
         \x20 tolerations: [{{key: {DEDICATED_TAINT}, operator: Equal, value: user, effect: NoSchedule}}]\n\
         \x20 perUser: {{cpu: \"{USER_CPU}\", memory: 1Gi}}\n\
         \x20 usersPerPlaceholder: auto\n\
         \x20 freshNode: {{allocatable: {{cpu: \"4\", memory: 16Gi, pods: \"110\"}}}}\n\
         \x20 headroom: {{z: 0}}\n\
         \x20 lead: {lead}\n\
         \x20 images: [{IMAGE}]\n\
         {extra}"
    )
}

/// The event: placeholders a lead time ahead, nodes, warm seats, users Ready without a
/// pull, then everything scaled back down; `lead: auto` learns boot + pull.
#[tokio::test]
async fn an_event_gets_warm_seats_a_lead_time_ahead_and_they_go_afterwards() {
    const USERS: usize = 6;
    // The configured (initial) lead: 40 s. The event starts 70 s from now, so the
    // placeholders should appear ~30 s from now.
    let lead_ms = 40_000;
    let start = now_ms() + 70_000;
    let event = format!(
        "events:\n- {{name: class, pool: default, start: \"{}\", users: {USERS}, arrivalWindowSeconds: 20}}\n",
        rfc3339(start)
    );
    let w = World::start("ctl-event", "user-a", |ns, s, u, port| {
        ctl_yaml(ns, s, u, port, "user-a", "auto", &event)
    })
    .await;
    let timeline = Arc::new(Timeline::default());
    let stop = CancellationToken::new();
    let recorder = record(&w, timeline.clone(), stop.clone());
    let test_started = Instant::now();

    // Placeholders appear a lead time before the event, as its arrival window enters the
    // lead horizon, and reach 2 (6 users, N = 3) once all of it is inside.
    let appeared = wait::until("placeholders wanted", Duration::from_secs(90), || async {
        w.deployment_replicas()
            .await
            .filter(|r| *r > 0)
            .map(|_| now_ms())
    })
    .await
    .unwrap();
    let early = start - appeared;
    assert!(
        (lead_ms - 3_000..=lead_ms + 1_000).contains(&early),
        "placeholders appeared {early} ms before the event, the lead is {lead_ms} ms"
    );
    wait::until("2 placeholders wanted", Duration::from_secs(30), || async {
        (w.deployment_replicas().await == Some(2)).then_some(())
    })
    .await
    .unwrap();

    // The autoscaler adds nodes, hubpack-scheduler places the placeholders there, and the
    // pre-pullers warm them, all before the event starts.
    let placed = wait::until(
        "both placeholders bound to new nodes",
        Duration::from_secs(60),
        || async {
            let ps = w.placeholders().await;
            let nodes: BTreeSet<String> = w
                .autoscaled_nodes()
                .await
                .iter()
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            let on: BTreeSet<String> = ps
                .iter()
                .filter_map(pod_node)
                .filter(|n| nodes.contains(n))
                .collect();
            (ps.iter().filter(|p| pod_node(p).is_some()).count() == 2 && !on.is_empty())
                .then_some(on)
        },
    )
    .await
    .unwrap();
    wait::until(
        "pre-pullers Ready on the placeholders' nodes",
        Duration::from_secs(60),
        || async {
            let pullers = w.pods("app.kubernetes.io/component=image-prepuller").await;
            placed
                .iter()
                .all(|n| {
                    pullers
                        .iter()
                        .any(|p| pod_node(p).as_deref() == Some(n.as_str()) && wait::pod_ready(p))
                })
                .then_some(())
        },
    )
    .await
    .unwrap();
    assert!(
        now_ms() < start,
        "nodes were warm only after the event started"
    );

    // Users arrive at the event start: each takes a warm seat and is Ready without a pull.
    tokio::time::sleep(Duration::from_millis((start - now_ms()).max(0) as u64)).await;
    let users: Api<Pod> = Api::namespaced(w.client.clone(), &w.ns);
    for i in 0..USERS {
        users
            .create(&PostParams::default(), &w.user(&format!("user-{i}")))
            .await
            .unwrap();
    }
    let ready = wait::until("every user Ready", Duration::from_secs(60), || async {
        let ps = w.pods(&format!("hubpack-e2e-users={}", w.user_label)).await;
        (ps.len() == USERS && ps.iter().all(wait::pod_ready)).then_some(ps)
    })
    .await
    .unwrap();
    for p in &ready {
        let name = p.metadata.name.clone().unwrap_or_default();
        let (c, r) = (created_at(p), ready_at(p).unwrap());
        timeline.note(c, format!("user {name} created"));
        timeline.note(
            r,
            format!(
                "user {name} Ready on {} ({} ms after creation)",
                pod_node(p).unwrap_or_default(),
                r - c
            ),
        );
        assert!(
            placed.contains(&pod_node(p).unwrap()),
            "{name} not on a node warmed ahead"
        );
        // Ready-condition times have second precision: allow that, never a pull.
        assert!(
            r - c < TEST_PULL_TIME.as_millis() as i64,
            "{name} waited {} ms: a pull",
            r - c
        );
    }

    // lead: auto learned from the scale-ups so far: its value must be the configured p90 of
    // the waits the objects show (placeholder Unschedulable → its new node's pre-puller
    // Ready: CA's reaction, the boot, then the pull) plus the 1 s reaction time, and every
    // wait must include the pull. Compared with what happened, not
    // with the configured delays: a loaded machine makes kwok's stages late.
    let samples = w
        .metric("hubpack_placeholder_ctl_lead_time_samples")
        .await
        .unwrap_or(0.0);
    let learned = w
        .metric("hubpack_placeholder_ctl_lead_time_seconds")
        .await
        .unwrap();
    let (boot, pull) = (TEST_BOOT_DELAY.as_secs_f64(), TEST_PULL_TIME.as_secs_f64());
    let observed = timeline.scale_ups().observed_ms();
    let expected = hubpack_core::headroom::quantile(observed.iter().copied(), 0.9)
        .map(|q| q as f64 / 1000.0 + 1.0);
    println!(
        "learned lead time {learned:.1} s from {samples} samples; observed waits {observed:?} ms \
         (p90 + 1 s = {expected:?} s); boot {boot} s, pull {pull} s"
    );
    // Condition times have second precision (1.5 s covers the rounding of both ends), and a
    // node boots from its whole-second creation time; the floor only has to tell the pull
    // apart from the boot alone (what a wait measured to node Ready would be).
    let floor_ms = (0.75 * (boot + pull) * 1000.0) as i64;
    if samples < 2.0
        || observed.len() < 2
        || expected.is_none_or(|e| (learned - e).abs() > 1.5)
        || observed.iter().any(|&o| o < floor_ms)
    {
        timeline.print(start, "event timeline (failed)");
        panic!(
            "learned lead {learned:.1} s from {samples} samples; the observed waits {observed:?} ms \
             give {expected:?} s, each at least 3/4 of boot + pull = {} s",
            boot + pull
        );
    }

    // The class arrived at once: the evicted placeholders' replacements are surplus (the
    // forecast does not expect its users twice), so no node is added for them.
    let quiet_until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < quiet_until {
        let extra: Vec<String> = w
            .autoscaled_nodes()
            .await
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .filter(|n| !placed.contains(n))
            .collect();
        if !extra.is_empty() {
            timeline.print(start, "event timeline (failed)");
            panic!("nodes added after the class had arrived: {extra:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // After the event: the users leave, the placeholders go (after the 10 s minimum), and
    // the autoscaler removes the emptied nodes.
    for p in &ready {
        users
            .delete(
                p.metadata.name.as_deref().unwrap(),
                &DeleteParams::default().grace_period(0),
            )
            .await
            .unwrap();
    }
    timeline.note(now_ms(), "the users leave (deleted)".into());
    wait::until("placeholders gone", Duration::from_secs(90), || async {
        (w.deployment_replicas().await == Some(0) && w.placeholders().await.is_empty())
            .then_some(())
    })
    .await
    .unwrap();
    timeline.note(now_ms(), "no placeholder left, replicas 0".into());
    wait::until(
        "emptied nodes removed",
        Duration::from_secs(120),
        || async { w.autoscaled_nodes().await.is_empty().then_some(()) },
    )
    .await
    .unwrap();
    timeline.note(now_ms(), "every autoscaled node gone".into());
    tokio::time::sleep(Duration::from_secs(1)).await; // the recorder's last round
    stop.cancel();
    recorder.await.unwrap();
    timeline.print(start, "event timeline");
    println!("test took {:.0} s", test_started.elapsed().as_secs_f64());
    w.stop().await;
}

/// The target comes from an event ConfigMap; a user evicting a placeholder while it is
/// wanted gets a node added for the replacement, and once the target has dropped the
/// replacement is dropped before the autoscaler sees it.
#[tokio::test]
async fn a_wanted_replacement_scales_up_and_a_surplus_one_does_not() {
    // Fixed lead, 5 min hysteresis: the placed placeholder is held after the target drops.
    let w = World::start("ctl-surplus", "user-b", |ns, s, u, port| {
        ctl_yaml(ns, s, u, port, "user-b", "60", "")
            .replace("scaleDownAfterSeconds: 10", "scaleDownAfterSeconds: 300")
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(w.client.clone(), &w.ns);
    let cm = |users: u32| -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "class", "labels": {"hubpack.io/events": "true"}},
            "data": {"events.yaml": format!(
                "- {{name: lab, pool: default, start: \"{}\", users: {users}, arrivalWindowSeconds: 3600}}\n",
                rfc3339(now_ms() - 60_000))}
        }))
        .unwrap()
    };
    // 3600 s window, 60 s lead: 3600 users over the hour → 60 within the lead... keep it
    // at one placeholder: 180 users/h = 3 within 60 s = one placeholder of 3.
    cms.create(&PostParams::default(), &cm(180)).await.unwrap();
    let first = wait::until("one placeholder bound", Duration::from_secs(60), || async {
        let ps = w.placeholders().await;
        (w.deployment_replicas().await == Some(1) && ps.len() == 1)
            .then(|| pod_node(&ps[0]))
            .flatten()
    })
    .await
    .unwrap();
    let nodes_before = w.autoscaled_nodes().await.len();

    // Wanted: a 3-cpu user evicts it; the replacement is still wanted (target 1, no free
    // warm seat), so it is marked Unschedulable and a node is added.
    let users: Api<Pod> = Api::namespaced(w.client.clone(), &w.ns);
    let big = w.big_user("big-1");
    users.create(&PostParams::default(), &big).await.unwrap();
    wait::until("big-1 Ready", Duration::from_secs(60), || async {
        users
            .get_opt("big-1")
            .await
            .ok()
            .flatten()
            .filter(wait::pod_ready)
            .map(|_| ())
    })
    .await
    .unwrap();
    let added = wait::until(
        "a node added for the wanted replacement",
        Duration::from_secs(60),
        || async {
            let n = w.autoscaled_nodes().await.len();
            (n > nodes_before).then_some(n)
        },
    )
    .await
    .unwrap();
    let second = wait::until("the replacement bound", Duration::from_secs(60), || async {
        let ps = w.placeholders().await;
        (ps.len() == 1)
            .then(|| pod_node(&ps[0]))
            .flatten()
            .filter(|n| *n != first)
    })
    .await
    .unwrap();
    println!(
        "wanted replacement: nodes {nodes_before} -> {added}, placeholder moved {first} -> {second}"
    );

    // Surplus: the event is removed (target 0), the hysteresis holds the placed one. A user
    // evicts it: the controller drops the replacement within the scheduler's grace, so it
    // is never marked Unschedulable and no node is added.
    cms.delete("class", &DeleteParams::default()).await.unwrap();
    wait::until("target 0 seen", Duration::from_secs(20), || async {
        w.metric("hubpack_placeholder_ctl_headroom_target_users")
            .await
            .filter(|v| *v == 0.0)
    })
    .await
    .unwrap();
    assert_eq!(
        w.deployment_replicas().await,
        Some(1),
        "held by the hysteresis"
    );
    users
        .create(&PostParams::default(), &w.big_user("big-2"))
        .await
        .unwrap();
    wait::until("big-2 Ready", Duration::from_secs(60), || async {
        users
            .get_opt("big-2")
            .await
            .ok()
            .flatten()
            .filter(wait::pod_ready)
            .map(|_| ())
    })
    .await
    .unwrap();
    wait::until("replicas dropped to 0", Duration::from_secs(20), || async {
        (w.deployment_replicas().await == Some(0)).then_some(())
    })
    .await
    .unwrap();
    // Watch for 20 s (10 autoscaler scans): no new node, no Unschedulable placeholder.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut unschedulable = BTreeSet::new();
    while Instant::now() < deadline {
        for p in w.placeholders().await {
            if wait::pod_unschedulable(&p) {
                unschedulable.insert(p.metadata.name.unwrap_or_default());
            }
        }
        let n = w.autoscaled_nodes().await.len();
        assert!(
            n <= added,
            "a node was added for a surplus placeholder: {added} -> {n}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        unschedulable.is_empty(),
        "surplus placeholders marked Unschedulable: {unschedulable:?}"
    );
    println!("surplus replacement: dropped, nodes stayed at {added}");
    for name in ["big-1", "big-2"] {
        let _ = users
            .delete(name, &DeleteParams::default().grace_period(0))
            .await;
    }
    w.stop().await;
}

/// A restarted controller without a checkpoint (`checkpoint.enabled: false`, or a first start
/// after its ConfigMap was lost) starts from the users created within its observed window,
/// which still exist, as one that had been watching would: its forecast is 10 users over the 5-min window, 2 over the 60-s lead, from its
/// first decision on, not 0 until new users come. Headroom is capped at 0 users, so no
/// placeholder is made and the autoscaler stays out of it.
#[tokio::test]
async fn a_restarted_controller_starts_from_the_users_of_its_window() {
    const USERS: usize = 10;
    let mut w = World::start("ctl-restart", "user-c", |ns, s, u, port| {
        ctl_yaml(
            ns,
            s,
            u,
            port,
            "user-c",
            "60",
            "checkpoint: {enabled: false}\n",
        )
        .replace("headroom: {z: 0}", "headroom: {z: 0, maxUsers: 0}")
    })
    .await;
    let forecast = "hubpack_placeholder_ctl_forecast_users{pool=\"default\",source=\"background\"}";
    // The controller has decided once (on an empty hub) before the users come.
    let before = wait::until("the first decision", Duration::from_secs(30), || async {
        w.metric(forecast).await
    })
    .await
    .unwrap();
    assert_eq!(before, 0.0, "no user yet");
    let api = Api::<Pod>::namespaced(w.client.clone(), &w.ns);
    for i in 0..USERS {
        let mut pod = w.user(&format!("user-{i}"));
        // Nobody places them: what the controller learns is the test, not the seats.
        pod.spec.as_mut().unwrap().scheduler_name = Some(harness::MANUAL_SCHEDULER.into());
        api.create(&PostParams::default(), &pod).await.unwrap();
    }
    // The running controller sees them arrive (over the seconds it has watched: more).
    let watching = wait::until(
        "the running controller's forecast",
        Duration::from_secs(30),
        || async { w.metric(forecast).await.filter(|v| *v > 0.0) },
    )
    .await
    .unwrap();
    let restarted_at = Instant::now();
    w.restart_ctl("ctl-1").await;
    // The fresh controller's first decision: the metric appears with it.
    let first = wait::until(
        "the restarted controller's forecast",
        Duration::from_secs(30),
        || async { w.metric(forecast).await },
    )
    .await
    .unwrap();
    println!(
        "forecast over the lead: {watching:.1} watching, {first:.2} right after the restart ({:.1} s)",
        restarted_at.elapsed().as_secs_f64()
    );
    let expected = USERS as f64 / 300.0 * 60.0;
    assert!(
        (first - expected).abs() < 1e-6,
        "a fresh controller forecasts {first}, not {expected}: the users created within its window were not counted"
    );
    w.stop().await;
}

/// A pool renamed (`default` → `cpu`): the restarted controller creates the new pool's
/// placeholder Deployment and pre-puller and deletes the old name's, with its PDB, so no
/// placeholder of a pool nobody configures keeps holding nodes.
#[tokio::test]
async fn a_renamed_pools_objects_are_deleted() {
    let mut w = World::start("ctl-rename", "user-d", |ns, s, u, port| {
        format!(
            "instance: e2e-rename\n{}",
            ctl_yaml(ns, s, u, port, "user-d", "60", "")
                .replace("headroom: {z: 0}", "headroom: {z: 0, maxUsers: 0}")
        )
    })
    .await;
    let deployments = Api::<Deployment>::namespaced(w.client.clone(), &w.ns);
    let daemonsets =
        Api::<k8s_openapi::api::apps::v1::DaemonSet>::namespaced(w.client.clone(), &w.ns);
    let pdbs = Api::<k8s_openapi::api::policy::v1::PodDisruptionBudget>::namespaced(
        w.client.clone(),
        &w.ns,
    );
    let exists = |name: &'static str| {
        let (d, ds, p) = (deployments.clone(), daemonsets.clone(), pdbs.clone());
        async move {
            let d = d.get_opt(name).await.ok().flatten().is_some();
            let p = p.get_opt(name).await.ok().flatten().is_some();
            let pre = name.replace("hubpack-placeholder-", "hubpack-prepuller-");
            let ds = ds.get_opt(&pre).await.ok().flatten().is_some();
            (d, p, ds)
        }
    };
    wait::until(
        "the default pool's objects",
        Duration::from_secs(30),
        || async {
            (exists("hubpack-placeholder-default").await == (true, true, true)).then_some(())
        },
    )
    .await
    .unwrap();
    // Another instance's object of the same kind is left alone.
    let foreign: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "hubpack-placeholder-other", "labels": {
            "app.kubernetes.io/managed-by": "hubpack-placeholder-ctl",
            "app.kubernetes.io/instance": "another-release"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "other"}},
                 "template": {"metadata": {"labels": {"app": "other"}},
                              "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();

    let yaml = format!(
        "instance: e2e-rename\n{}",
        ctl_yaml(
            &w.ns,
            &w.scheduler,
            &w.user_label,
            w.metrics_port,
            "user-d",
            "60",
            ""
        )
        .replace("headroom: {z: 0}", "headroom: {z: 0, maxUsers: 0}")
        .replace("- name: default", "- name: cpu")
    );
    w.ctl_config = CtlConfig::parse(&yaml, "e2e").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    w.restart_ctl("ctl-1").await;
    wait::until(
        "the renamed pool's objects, and none of the old name",
        Duration::from_secs(30),
        || async {
            let new = exists("hubpack-placeholder-cpu").await;
            let old = exists("hubpack-placeholder-default").await;
            (new == (true, true, true) && old == (false, false, false)).then_some(())
        },
    )
    .await
    .unwrap();
    assert!(
        deployments
            .get_opt("hubpack-placeholder-other")
            .await
            .unwrap()
            .is_some(),
        "another instance's Deployment was deleted"
    );
    w.stop().await;
}

/// A namespace enforcing PodSecurity `restricted` accepts the controller's pods: the
/// placeholder pods are created by their ReplicaSet (no FailedCreate), and the pre-puller's
/// pod template (init containers included) passes a server-side dry-run there, where a pod
/// without the restricted settings is refused (the admission is on).
#[tokio::test]
async fn a_restricted_namespace_accepts_the_controllers_pods() {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::Namespace;
    let cluster = shared_cluster_with_autoscaler!().unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "ctl-restricted")
        .await
        .unwrap();
    Api::<Namespace>::all(client.clone())
        .patch(
            &ns,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest"}}})),
        )
        .await
        .unwrap();
    let port = hubpack_e2e::processes::free_port().unwrap();
    // Two placeholders wanted at all times (minUsers), on no node (a selector nothing has):
    // the pods are created and stay pending; the autoscaler has no group for them.
    let yaml = ctl_yaml(
        &ns,
        "hubpack-restricted",
        "restricted-users",
        port,
        "no-such-group",
        "60",
        "",
    )
    .replace("headroom: {z: 0}", "headroom: {z: 0, minUsers: 5}")
    .replace("usersPerPlaceholder: auto", "usersPerPlaceholder: 3");
    let config = CtlConfig::parse(&yaml, "e2e").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let ctl = InProcessController::start(&client, config, "ctl-restricted");
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    wait::until(
        "two placeholder pods created in the restricted namespace",
        Duration::from_secs(60),
        || async {
            let n = pods
                .list(&ListParams::default().labels("app.kubernetes.io/component=user-placeholder"))
                .await
                .map(|l| l.items.len())
                .unwrap_or(0);
            (n == 2).then_some(())
        },
    )
    .await
    .unwrap();
    let ds = wait::until("the pre-puller DaemonSet", Duration::from_secs(30), || {
        let api = Api::<DaemonSet>::namespaced(client.clone(), &ns);
        async move {
            api.get_opt("hubpack-prepuller-default")
                .await
                .ok()
                .flatten()
        }
    })
    .await
    .unwrap();
    let template = ds.spec.unwrap().template;
    assert!(
        template
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|i| !i.is_empty()),
        "the pre-puller has its pull init containers"
    );
    let as_pod = |spec| Pod {
        metadata: kube::api::ObjectMeta {
            name: Some("prepuller-dry-run".into()),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    };
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    pods.create(&dry_run, &as_pod(template.spec.clone().unwrap()))
        .await
        .unwrap_or_else(|e| {
            panic!("the pre-puller's pod is refused in a restricted namespace: {e}")
        });
    // The control: the same pod without its security settings is refused there.
    let mut bare = template.spec.unwrap();
    bare.security_context = None;
    for c in bare
        .containers
        .iter_mut()
        .chain(bare.init_containers.iter_mut().flatten())
    {
        c.security_context = None;
    }
    let refused = pods.create(&dry_run, &as_pod(bare)).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.message.contains("restricted")),
        "PodSecurity admission is not enforcing: {refused:?}"
    );
    ctl.stop().await.unwrap();
    delete_namespace(&client, &ns).await;
}

/// Forwards TCP connections from `listener` to `target` (TLS passes through untouched).
fn forward(listener: tokio::net::TcpListener, target: std::net::SocketAddr) {
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

/// A controller started while the API server is unreachable stays up (alive, not ready) and
/// waits, its watches backing off; once the API server answers it becomes ready, wins its
/// Lease and writes its Deployment.
#[tokio::test]
async fn a_controller_started_before_the_api_server_answers_waits_and_becomes_ready() {
    let cluster = shared_cluster_with_autoscaler!().unwrap_or_else(|e| panic!("{e}"));
    let admin = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&admin, "ctl-unreachable")
        .await
        .unwrap();
    // The controller's client goes through a port nothing listens on yet.
    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let real: std::net::SocketAddr = format!(
        "{}:{}",
        config.cluster_url.host().unwrap(),
        config.cluster_url.port_u16().unwrap()
    )
    .parse()
    .unwrap();
    let proxy_port = hubpack_e2e::processes::free_port().unwrap();
    config.cluster_url = format!("https://127.0.0.1:{proxy_port}").parse().unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let port = hubpack_e2e::processes::free_port().unwrap();
    let yaml = ctl_yaml(
        &ns,
        "hubpack-unreachable",
        "unreachable-users",
        port,
        "no-such-group",
        "60",
        "",
    )
    .replace(
        "leaderElection: {enabled: false}",
        "leaderElection: {enabled: true, leaseDurationSeconds: 15, renewGraceSeconds: 5}",
    )
    .replace("headroom: {z: 0}", "headroom: {z: 0, minUsers: 1}");
    let ctl_config = CtlConfig::parse(&yaml, "e2e").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let ctl = InProcessController::start(&client, ctl_config, "ctl-unreachable");
    wait::until("/healthz answers", Duration::from_secs(20), || async {
        (http_status(port, "/healthz").await == Some(200)).then_some(())
    })
    .await
    .unwrap();
    // Unreachable for a while: up, not ready, nothing written, still running.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        !ctl.is_finished(),
        "the controller ended without an API server"
    );
    assert_eq!(http_status(port, "/healthz").await, Some(200));
    assert_ne!(http_status(port, "/readyz").await, Some(200));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", proxy_port))
        .await
        .unwrap();
    forward(listener, real);
    wait::until(
        "/readyz once the API server answers",
        Duration::from_secs(90),
        || async { (http_status(port, "/readyz").await == Some(200)).then_some(()) },
    )
    .await
    .unwrap();
    let deployments = Api::<Deployment>::namespaced(admin.clone(), &ns);
    wait::until(
        "the leader's placeholder Deployment",
        Duration::from_secs(60),
        || async {
            deployments
                .get_opt("hubpack-placeholder-default")
                .await
                .ok()
                .flatten()
        },
    )
    .await
    .unwrap();
    assert!(!ctl.is_finished());
    ctl.stop().await.unwrap();
    delete_namespace(&admin, &ns).await;
}

/// Deletes a test's namespace, so what the controller left there (pending placeholders on
/// no node) is gone for the tests after it.
async fn delete_namespace(client: &kube::Client, ns: &str) {
    let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await;
}

/// A renamed pool's nodes go: its placeholders held a node the autoscaler added; after the
/// rename the controller deletes the old name's Deployment and pre-puller, and the
/// autoscaler removes the emptied node (placeholders at -10 are not expendable to it, so a
/// leftover Deployment would have kept the node forever).
#[tokio::test]
async fn a_renamed_pools_nodes_scale_down() {
    let pool_yaml = |ns: &str, s: &str, u: &str, port: u16, name: &str, headroom: &str| {
        format!(
            "instance: e2e-rename-ca\n{}",
            ctl_yaml(ns, s, u, port, "user-e", "60", "")
                .replace("headroom: {z: 0}", headroom)
                .replace("- name: default", &format!("- name: {name}"))
        )
    };
    let mut w = World::start("ctl-rename-ca", "user-e", |ns, s, u, port| {
        pool_yaml(ns, s, u, port, "default", "headroom: {z: 0, minUsers: 3}")
    })
    .await;
    wait::until(
        "the default pool's placeholder placed on a node the autoscaler added",
        Duration::from_secs(180),
        || async {
            let nodes = w.autoscaled_nodes().await;
            let placed = w
                .placeholders()
                .await
                .iter()
                .filter_map(pod_node)
                .any(|n| nodes.iter().any(|m| m.metadata.name.as_deref() == Some(&n)));
            placed.then_some(())
        },
    )
    .await
    .unwrap();
    let yaml = pool_yaml(
        &w.ns,
        &w.scheduler,
        &w.user_label,
        w.metrics_port,
        "cpu",
        "headroom: {z: 0, maxUsers: 0}",
    );
    w.ctl_config = CtlConfig::parse(&yaml, "e2e").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    w.restart_ctl("ctl-rename-ca-1").await;
    let deployments = Api::<Deployment>::namespaced(w.client.clone(), &w.ns);
    wait::until(
        "the old pool's Deployment deleted",
        Duration::from_secs(30),
        || async {
            deployments
                .get_opt("hubpack-placeholder-default")
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        },
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    wait::until(
        "the autoscaler removing the renamed pool's emptied node",
        Duration::from_secs(240),
        || async { w.autoscaled_nodes().await.is_empty().then_some(()) },
    )
    .await
    .unwrap();
    println!(
        "renamed pool's node removed {:.0} s after the rename",
        t0.elapsed().as_secs_f64()
    );
    w.stop().await;
}

/// The status code of `GET path` on the controller's HTTP port (None: no answer).
async fn http_status(port: u16, path: &str) -> Option<u16> {
    let answer = hubpack_e2e::wait::http_get(&format!("127.0.0.1:{port}"), path).await?;
    Some(answer.status)
}
