//! hubpack-placeholder-ctl's `capacityBuffer` backend end to end, on the real control plane
//! with the real cluster-autoscaler 1.36.1 (CapacityBuffer CRD installed, its buffer
//! controller and pod injection on), hubpack-scheduler and the controller in-process:
//!
//! - an event gets warm nodes a lead time ahead with no placeholder pod anywhere (the
//!   autoscaler scales up for the buffer's virtual pods; the pre-pullers warm the nodes), and
//!   the autoscaler keeps those empty nodes while the buffer holds them (longer than its
//!   unneeded time); users bind to the warm seats without any eviction and start without a
//!   pull; after the event the buffer goes to 0 and the autoscaler removes the nodes. The
//!   timeline and the controller's API writes are printed (`--nocapture`).
//! - the same event with `backend: placeholders` (its own node group), for the comparison:
//!   the controller's writes (`api_writes`), its Events, node-seconds, nodes added after the
//!   event started, waits (each run prints one summary line).
//! - a buffer limited by a ResourceQuota: the autoscaler's `LimitedByQuotas` condition
//!   becomes a warning Event on the pool's CapacityBuffer and the condition metric.

#![allow(clippy::unwrap_used)] // a test binary

use hubpack_e2e::harness::{self, TEST_PULL_TIME};
use hubpack_e2e::in_process::{InProcessController, InProcessScheduler, test_config};
use hubpack_e2e::nodes::{DEDICATED_TAINT, NODE_GROUP_LABEL, NODE_PURPOSE_LABEL};
use hubpack_e2e::pod_facts::{created_at, node_of, ready_at};
use hubpack_e2e::{shared_cluster_with_capacity_buffers, wait};
use hubpack_placeholder_ctl::buffer::RAISE_GRACE_MS;
use hubpack_placeholder_ctl::config::Config as CtlConfig;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplate, ResourceQuota};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "jupyter/scipy-notebook:buffer-e2e";
const USER_CPU: &str = "1";
const BUFFER: &str = "hubpack-placeholder-default";

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

fn buffers_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("autoscaling.x-k8s.io", "v1beta1", "CapacityBuffer"),
        "capacitybuffers",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

struct World {
    client: kube::Client,
    ns: String,
    group: &'static str,
    scheduler: String,
    user_label: String,
    metrics_port: u16,
    scheduler_running: InProcessScheduler,
    ctl: InProcessController,
}

impl World {
    async fn start(
        prefix: &str,
        group: &'static str,
        backend: &str,
        lead: &str,
        extra: &str,
    ) -> World {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "hubpack_placeholder_ctl=info,hubpack_kube=warn".into()),
            )
            .with_test_writer()
            .try_init();
        let cluster = shared_cluster_with_capacity_buffers!().unwrap_or_else(|e| panic!("{e}"));
        let client = cluster.client().await.unwrap();
        let ns = harness::create_namespace(&client, prefix).await.unwrap();
        let scheduler = harness::unique_name("hubpack");
        let user_label = harness::unique_name("users");
        let metrics_port = hubpack_e2e::processes::free_port().unwrap();
        let yaml = ctl_yaml(
            &ns,
            &scheduler,
            &user_label,
            metrics_port,
            group,
            &format!("  backend: {backend}\n  lead: {lead}\n"),
            extra,
        );
        let ctl = CtlConfig::parse(&yaml, "e2e").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let scheduler_running =
            InProcessScheduler::start(&client, test_config(&scheduler), "sched-0").unwrap();
        let ctl = InProcessController::start(&client, ctl, "ctl-0");
        World {
            client,
            ns,
            group,
            scheduler,
            user_label,
            metrics_port,
            scheduler_running,
            ctl,
        }
    }

    async fn stop(self) {
        let (ctl, scheduler) = tokio::join!(self.ctl.stop(), self.scheduler_running.stop());
        ctl.unwrap();
        scheduler.unwrap();
        // The buffer and its template go with the namespace; the autoscaler then removes
        // what they held.
        let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(self.client.clone())
            .delete(&self.ns, &DeleteParams::default())
            .await;
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

    /// The buffer's (spec.replicas, status.replicas).
    async fn buffer(&self) -> Option<(Option<i64>, Option<i64>)> {
        let b = buffers_api(&self.client, &self.ns)
            .get_opt(BUFFER)
            .await
            .ok()
            .flatten()?;
        Some((
            b.data["spec"]["replicas"].as_i64(),
            b.data["status"]["replicas"].as_i64(),
        ))
    }

    /// The pool's headroom as written: the buffer's or the Deployment's `spec.replicas`.
    async fn headroom(&self) -> Option<i64> {
        match self.buffer().await {
            Some((spec, _)) => spec,
            None => Api::<Deployment>::namespaced(self.client.clone(), &self.ns)
                .get_opt(BUFFER)
                .await
                .ok()
                .flatten()
                .and_then(|d| d.spec?.replicas)
                .map(i64::from),
        }
    }

    async fn pods(&self, labels: &str) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default().labels(labels))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    async fn group_nodes(&self) -> Vec<Node> {
        Api::<Node>::all(self.client.clone())
            .list(&ListParams::default().labels(&format!("{NODE_GROUP_LABEL}={}", self.group)))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    async fn metrics(&self) -> String {
        hubpack_e2e::wait::http_body(self.metrics_port, "/metrics")
            .await
            .unwrap_or_default()
    }

    /// Events the controller wrote in the namespace: (reason, kind regarded, note).
    async fn events(&self) -> Vec<(String, String, String)> {
        Api::<Event>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.reporting_controller.as_deref() == Some("hubpack-placeholder-ctl"))
            .map(|e| {
                (
                    e.reason.unwrap_or_default(),
                    e.regarding.and_then(|r| r.kind).unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn ctl_yaml(
    ns: &str,
    scheduler: &str,
    users: &str,
    port: u16,
    group: &str,
    settings: &str,
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
         pools:\n\
         - name: default\n\
         \x20 nodeSelector: {{{NODE_PURPOSE_LABEL}: user, {NODE_GROUP_LABEL}: {group}}}\n\
         \x20 tolerations: [{{key: {DEDICATED_TAINT}, operator: Equal, value: user, effect: NoSchedule}}]\n\
         \x20 perUser: {{cpu: \"{USER_CPU}\", memory: 1Gi}}\n\
         \x20 usersPerPlaceholder: auto\n\
         \x20 freshNode: {{allocatable: {{cpu: \"4\", memory: 16Gi, pods: \"110\"}}}}\n\
         \x20 headroom: {{z: 0}}\n\
         {settings}\
         \x20 images: [{IMAGE}]\n\
         {extra}"
    )
}

/// What the watcher saw: placeholder pods (must stay none), nodes removed, pod deletions.
#[derive(Default)]
struct Seen {
    placeholder_pods: BTreeSet<String>,
    created_nodes: BTreeMap<String, i64>,
    removed_nodes: BTreeMap<String, i64>,
    lines: Vec<(i64, String)>,
}

/// Polls the namespace and the group's nodes until `stop`.
fn watch(w: &World, stop: CancellationToken) -> tokio::task::JoinHandle<Seen> {
    let (client, ns, group) = (w.client.clone(), w.ns.clone(), w.group);
    tokio::spawn(async move {
        let mut seen = Seen::default();
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        let nodes = Api::<Node>::all(client.clone());
        let buffers = buffers_api(&client, &ns);
        let mut known: BTreeMap<String, bool> = BTreeMap::new();
        let mut replicas = None;
        while !stop.is_cancelled() {
            let now = now_ms();
            if let Ok(Some(b)) = buffers.get_opt(BUFFER).await {
                let r = (
                    b.data["spec"]["replicas"].as_i64(),
                    b.data["status"]["replicas"].as_i64(),
                );
                if Some(r) != replicas {
                    seen.lines
                        .push((now, format!("buffer spec/status replicas {r:?}")));
                    replicas = Some(r);
                }
            }
            let sel = "app.kubernetes.io/component=user-placeholder";
            if let Ok(list) = pods.list(&ListParams::default().labels(sel)).await {
                for p in list.items {
                    let name = p.metadata.name.unwrap_or_default();
                    if seen.placeholder_pods.insert(name.clone()) {
                        seen.lines.push((now, format!("placeholder pod {name}!")));
                    }
                }
            }
            let sel = format!("{NODE_GROUP_LABEL}={group}");
            if let Ok(list) = nodes.list(&ListParams::default().labels(&sel)).await {
                let names: BTreeSet<String> = list
                    .items
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                for n in &list.items {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let ready = wait::node_ready(n);
                    match known.get(&name) {
                        None => {
                            let created = n
                                .metadata
                                .creation_timestamp
                                .as_ref()
                                .map_or(now, |t| t.0.as_millisecond());
                            seen.created_nodes.insert(name.clone(), created);
                            seen.lines.push((created, format!("node {name} created")));
                        }
                        Some(false) if ready => {
                            seen.lines.push((now, format!("node {name} Ready")))
                        }
                        _ => {}
                    }
                    known.insert(name, ready);
                }
                for gone in known
                    .keys()
                    .filter(|n| !names.contains(*n))
                    .cloned()
                    .collect::<Vec<_>>()
                {
                    seen.lines.push((now, format!("node {gone} removed")));
                    seen.removed_nodes.insert(gone.clone(), now);
                    known.remove(&gone);
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        seen
    })
}

/// What one run of the event scenario measured.
struct EventOutcome {
    /// Headroom (buffer replicas or placeholder Deployment replicas) first > 0, before the
    /// event start (s).
    raised_before_s: f64,
    /// Headroom raised → 2 group nodes Ready with their pre-pullers Ready (s).
    warm_after_s: f64,
    /// User creation → Ready (ms).
    user_waits_ms: Vec<i64>,
    /// Users left → every group node gone (s).
    drained_after_s: f64,
    /// Group nodes created, and created after the event started.
    nodes: usize,
    nodes_after_start: usize,
    /// Σ group node lifetimes (node-seconds).
    node_seconds: f64,
    /// The controller's writes by kind (`api_writes`), and its Events.
    writes: BTreeMap<String, f64>,
    events: usize,
    placeholder_pods: usize,
}

impl EventOutcome {
    /// One line per measure, for the log and the comparison.
    fn summary(&self, backend: &str) -> String {
        format!(
            "{backend}: headroom raised {:.1} s before the event; nodes warm {:.1} s after it rose; \
             user creation -> Ready {:?} ms; users left -> nodes gone {:.1} s; {} nodes ({} added \
             after the event started), {:.0} node-seconds; controller writes {:?} and {} Events; \
             {} placeholder pods",
            self.raised_before_s,
            self.warm_after_s,
            self.user_waits_ms,
            self.drained_after_s,
            self.nodes,
            self.nodes_after_start,
            self.node_seconds,
            self.writes,
            self.events,
            self.placeholder_pods
        )
    }
}

/// The scenario: 6 users at an event 75 s ahead, a fixed 50 s lead; wait for warm nodes,
/// the users arrive at the start and must be Ready without a pull on nodes warmed ahead,
/// then leave; the headroom goes to 0 and the autoscaler removes the nodes.
async fn event_scenario(backend: &str, group: &'static str) -> EventOutcome {
    const USERS: usize = 6;
    // Fixed 50 s lead: the headroom rises ~50 s before the event; the nodes are warm after
    // CA's reaction + boot + pull (~15-25 s), then sit empty but for the headroom for longer
    // than CA's 10 s unneeded time and 10 s delay after add.
    let lead_ms = 50_000;
    let start = now_ms() + 75_000;
    let event = format!(
        "events:\n- {{name: class, pool: default, start: \"{}\", users: {USERS}, arrivalWindowSeconds: 20}}\n",
        rfc3339(start)
    );
    let w = World::start(
        &format!("{backend}-event").to_lowercase(),
        group,
        backend,
        "50",
        &event,
    )
    .await;
    let buffered = backend == "capacityBuffer";
    let stop = CancellationToken::new();
    let watcher = watch(&w, stop.clone());

    if buffered {
        // The pool's PodTemplate is the placeholder pod.
        let templates = Api::<PodTemplate>::namespaced(w.client.clone(), &w.ns);
        let template = wait::until("the PodTemplate", Duration::from_secs(30), || async {
            templates.get_opt(BUFFER).await.ok().flatten()
        })
        .await
        .unwrap();
        let pod_spec = template.template.unwrap().spec.unwrap();
        assert_eq!(
            pod_spec.priority_class_name.as_deref(),
            Some("hubpack-placeholder")
        );
    }
    // The headroom rises a lead time before the event, as its arrival window enters the
    // lead horizon, and reaches 2 (6 users, N = 3) once all of it is inside.
    let raised = wait::until("headroom > 0", Duration::from_secs(90), || async {
        (w.headroom().await? > 0).then(now_ms)
    })
    .await
    .unwrap();
    // A buffer's raise is written once wanted for the grace a placeholder gets before the
    // autoscaler sees it.
    let grace = if buffered { RAISE_GRACE_MS } else { 0 };
    let early = start - raised;
    assert!(
        (lead_ms - grace - 3_000..=lead_ms + 1_000).contains(&early),
        "the headroom rose {early} ms before the event, the lead is {lead_ms} ms (grace {grace} ms)"
    );
    wait::until("headroom 2", Duration::from_secs(30), || async {
        (w.headroom().await? == 2).then_some(())
    })
    .await
    .unwrap();

    // CA scales up for it; the pre-pullers warm the new nodes.
    let warm = wait::until(
        "2 group nodes Ready with their pre-pullers Ready",
        Duration::from_secs(60),
        || async {
            let nodes: BTreeSet<String> = w
                .group_nodes()
                .await
                .iter()
                .filter(|n| wait::node_ready(n))
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            let pullers = w.pods("app.kubernetes.io/component=image-prepuller").await;
            let warm: BTreeSet<String> = pullers
                .iter()
                .filter(|p| wait::pod_ready(p))
                .filter_map(node_of)
                .filter(|n| nodes.contains(n))
                .collect();
            (warm.len() >= 2).then_some(warm)
        },
    )
    .await
    .unwrap();
    let warm_at = now_ms();
    assert!(
        warm_at < start,
        "nodes were warm only after the event started"
    );

    // Until the event: CA keeps the empty nodes the headroom holds.
    tokio::time::sleep(Duration::from_millis((start - now_ms()).max(0) as u64)).await;
    let kept: BTreeSet<String> = w
        .group_nodes()
        .await
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(
        warm.is_subset(&kept),
        "CA removed a node the {backend} held: warm {warm:?}, at the event {kept:?} ({:.0} s idle)",
        (start - warm_at) as f64 / 1000.0
    );
    let pullers_before: BTreeSet<String> = w
        .pods("app.kubernetes.io/component=image-prepuller")
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();

    // Users arrive: each binds to a warm seat and starts without a pull.
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
    let mut user_waits_ms = Vec::new();
    for p in &ready {
        let name = p.metadata.name.clone().unwrap_or_default();
        let wait_ms = ready_at(p).unwrap() - created_at(p);
        user_waits_ms.push(wait_ms);
        assert!(
            warm.contains(&node_of(p).unwrap()),
            "{name} not on a node warmed ahead"
        );
        // Ready-condition times have second precision: allow that, never a pull.
        assert!(
            wait_ms < TEST_PULL_TIME.as_millis() as i64,
            "{name} waited {wait_ms} ms: a pull"
        );
    }
    let pullers_after: BTreeSet<String> = w
        .pods("app.kubernetes.io/component=image-prepuller")
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert!(
        pullers_before.is_subset(&pullers_after),
        "a pre-puller was evicted"
    );

    // After the event (its arrival window over: users gone within it would be expected
    // again): the users leave, the headroom goes to 0, CA removes the nodes.
    let window_end = start + 20_000;
    tokio::time::sleep(Duration::from_millis((window_end - now_ms()).max(0) as u64)).await;
    for p in &ready {
        users
            .delete(
                p.metadata.name.as_deref().unwrap(),
                &DeleteParams::default().grace_period(0),
            )
            .await
            .unwrap();
    }
    let left = now_ms();
    wait::until("headroom 0", Duration::from_secs(60), || async {
        (w.headroom().await? == 0).then_some(())
    })
    .await
    .unwrap();
    wait::until("group nodes removed", Duration::from_secs(120), || async {
        w.group_nodes().await.is_empty().then_some(())
    })
    .await
    .unwrap();
    let gone = now_ms();
    tokio::time::sleep(Duration::from_secs(1)).await; // the watcher's last round
    let metrics = w.metrics().await;
    let events = w.events().await.len();
    stop.cancel();
    let seen = watcher.await.unwrap();
    let mut lines = seen.lines.clone();
    lines.sort();
    println!("--- {backend} event timeline (seconds from the event start) ---");
    for (t, what) in &lines {
        println!("{:>+8.1}  {what}", (t - start) as f64 / 1000.0);
    }
    assert!(
        seen.removed_nodes.values().all(|t| *t >= left),
        "a node was removed before the users left: {:?}",
        seen.removed_nodes
    );
    let writes = metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("hubpack_placeholder_ctl_api_writes_total{kind=\"")?;
            let (kind, value) = rest.split_once("\"} ")?;
            Some((kind.to_string(), value.parse().ok()?))
        })
        .collect();
    let outcome = EventOutcome {
        raised_before_s: early as f64 / 1000.0,
        warm_after_s: (warm_at - raised) as f64 / 1000.0,
        user_waits_ms,
        drained_after_s: (gone - left) as f64 / 1000.0,
        nodes: seen.created_nodes.len(),
        nodes_after_start: seen.created_nodes.values().filter(|t| **t >= start).count(),
        node_seconds: seen
            .created_nodes
            .iter()
            .map(|(n, c)| (seen.removed_nodes.get(n).copied().unwrap_or(gone) - c) as f64 / 1000.0)
            .sum(),
        writes,
        events,
        placeholder_pods: seen.placeholder_pods.len(),
    };
    println!("{}", outcome.summary(backend));
    w.stop().await;
    outcome
}

#[tokio::test]
async fn capacity_buffer_gets_warm_nodes_ahead_with_no_placeholder_and_gives_them_back() {
    let t0 = Instant::now();
    let outcome = event_scenario("capacityBuffer", "user-a").await;
    assert_eq!(outcome.placeholder_pods, 0, "a placeholder pod appeared");
    assert!(
        outcome.writes.contains_key("CapacityBuffer"),
        "{}",
        outcome.summary("")
    );
    assert!(
        !outcome.writes.contains_key("Deployment"),
        "{}",
        outcome.summary("")
    );
    println!("test took {:.0} s", t0.elapsed().as_secs_f64());
}

/// The same event with placeholders, for the comparison (API writes, node-seconds, waits):
/// both backends get warm nodes ahead and give them back.
#[tokio::test]
async fn capacity_buffer_compared_with_placeholders_on_the_same_event() {
    let t0 = Instant::now();
    let outcome = event_scenario("placeholders", "user-c").await;
    assert!(outcome.placeholder_pods >= 2, "{}", outcome.summary(""));
    assert!(
        !outcome.writes.contains_key("CapacityBuffer"),
        "{}",
        outcome.summary("")
    );
    println!("test took {:.0} s", t0.elapsed().as_secs_f64());
}

#[tokio::test]
async fn capacity_buffer_limited_by_quota_shows_its_condition_as_an_event() {
    // A quota of 4 cpu in the namespace: one 3-cpu chunk fits, the second does not.
    let start = now_ms() + 20_000;
    let event = format!(
        "events:\n- {{name: lab, pool: default, start: \"{}\", users: 6, arrivalWindowSeconds: 20}}\n",
        rfc3339(start)
    );
    let w = World::start("buffer-quota", "user-b", "capacityBuffer", "120", &event).await;
    let quota: ResourceQuota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "cap"},
        "spec": {"hard": {"requests.cpu": "4"}}
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(w.client.clone(), &w.ns)
        .create(&PostParams::default(), &quota)
        .await
        .unwrap();
    let t0 = Instant::now();
    let (reason, note) = wait::until(
        "a BufferLimitedByQuotas Event on the CapacityBuffer",
        Duration::from_secs(90),
        || async {
            w.events()
                .await
                .into_iter()
                .find(|(reason, kind, note)| {
                    reason == "BufferLimitedByQuotas"
                        && kind == "CapacityBuffer"
                        && note.contains("LimitedByQuotas=True")
                })
                .map(|(r, _, n)| (r, n))
        },
    )
    .await
    .unwrap();
    println!("{reason} after {:.1} s: {note}", t0.elapsed().as_secs_f64());
    assert!(note.contains("LimitedByQuotas=True"), "{note}");
    assert!(note.contains("ResourceQuotasAllocated"), "{note}");
    let (spec, status) = w.buffer().await.unwrap();
    assert_eq!(spec, Some(2), "the controller asks for 2 chunks");
    assert_eq!(status, Some(1), "the quota leaves room for 1");
    let metrics = w.metrics().await;
    assert!(
        metrics.contains(
            "hubpack_placeholder_ctl_buffer_condition{pool=\"default\",buffer=\"hubpack-placeholder-default\",condition=\"LimitedByQuotas\",status=\"True\"} 1"
        ),
        "{metrics}"
    );
    w.stop().await;
}
