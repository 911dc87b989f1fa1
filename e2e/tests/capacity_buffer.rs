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
//! - a buffer limited by a ResourceQuota: the autoscaler's `LimitedByQuotas` condition
//!   becomes a warning Event on the pool's CapacityBuffer and the condition metric.

#![allow(clippy::unwrap_used)] // a test binary

use hubpack_e2e::harness::{self, TEST_PULL_TIME};
use hubpack_e2e::in_process::{InProcessScheduler, test_config};
use hubpack_e2e::nodes::{DEDICATED_TAINT, NODE_GROUP_LABEL, NODE_PURPOSE_LABEL};
use hubpack_e2e::{shared_cluster_with_capacity_buffers, wait};
use hubpack_placeholder_ctl::config::Config as CtlConfig;
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplate, ResourceQuota};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams};
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
    ctl_stop: CancellationToken,
    ctl_task: tokio::task::JoinHandle<()>,
}

impl World {
    async fn start(prefix: &str, group: &'static str, lead: &str, extra: &str) -> World {
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
            lead,
            extra,
        );
        let ctl = CtlConfig::parse(&yaml, "e2e").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let scheduler_running =
            InProcessScheduler::start(&client, test_config(&scheduler), "sched-0").unwrap();
        let ctl_stop = CancellationToken::new();
        let ctl_task = {
            let (c, s) = (client.clone(), ctl_stop.clone());
            tokio::spawn(async move {
                hubpack_placeholder_ctl::adapter::app::run(c, ctl, "ctl-0".into(), s)
                    .await
                    .unwrap()
            })
        };
        World {
            client,
            ns,
            group,
            scheduler,
            user_label,
            metrics_port,
            scheduler_running,
            ctl_stop,
            ctl_task,
        }
    }

    async fn stop(self) {
        self.ctl_stop.cancel();
        let (ctl, scheduler) = tokio::join!(
            tokio::time::timeout(Duration::from_secs(30), self.ctl_task),
            self.scheduler_running.stop()
        );
        ctl.expect("the controller stops within 30 s").unwrap();
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
        http_get(self.metrics_port, "/metrics")
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

async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
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
         pools:\n\
         - name: default\n\
         \x20 backend: capacityBuffer\n\
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

fn ready_at(p: &Pod) -> Option<i64> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0.as_millisecond())
}

fn created_at(p: &Pod) -> i64 {
    p.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_millisecond())
        .unwrap_or(0)
}

fn node_of(p: &Pod) -> Option<String> {
    p.spec.as_ref()?.node_name.clone()
}

/// What the watcher saw: placeholder pods (must stay none), nodes removed, pod deletions.
#[derive(Default)]
struct Seen {
    placeholder_pods: BTreeSet<String>,
    removed_nodes: BTreeMap<String, i64>,
    lines: Vec<(i64, String)>,
}

/// Polls the namespace and the group's nodes until `stop`.
fn watch(w: &World, stop: CancellationToken) -> tokio::task::JoinHandle<Seen> {
    let (client, ns, group) = (w.client.clone(), w.ns.clone(), w.group);
    tokio::spawn(async move {
        let mut seen = Seen::default();
        let pods = Api::<Pod>::all(client.clone());
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
                let names: BTreeSet<String> =
                    list.items.iter().filter_map(|n| n.metadata.name.clone()).collect();
                for n in &list.items {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let ready = wait::node_ready(n);
                    match known.get(&name) {
                        None => seen.lines.push((now, format!("node {name} created"))),
                        Some(false) if ready => {
                            seen.lines.push((now, format!("node {name} Ready")))
                        }
                        _ => {}
                    }
                    known.insert(name, ready);
                }
                for gone in known.keys().filter(|n| !names.contains(*n)).cloned().collect::<Vec<_>>() {
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

/// The controller's writes as its API server sees them: the managed fields it owns, one
/// generation per spec change. Here: the buffer's generation (each `spec.replicas` change).
async fn buffer_generation(w: &World) -> i64 {
    buffers_api(&w.client, &w.ns)
        .get_opt(BUFFER)
        .await
        .ok()
        .flatten()
        .and_then(|b| b.metadata.generation)
        .unwrap_or(0)
}

#[tokio::test]
async fn capacity_buffer_gets_warm_nodes_ahead_with_no_placeholder_and_gives_them_back() {
    const USERS: usize = 6;
    // Fixed 50 s lead: the buffer rises ~50 s before the event; the nodes are warm after
    // CA's reaction + boot + pull (~15-20 s), then sit empty but for the buffer's virtual
    // pods for longer than CA's 10 s unneeded time and 10 s delay after add.
    let lead_ms = 50_000;
    let start = now_ms() + 75_000;
    let event = format!(
        "events:\n- {{name: class, pool: default, start: \"{}\", users: {USERS}, arrivalWindowSeconds: 20}}\n",
        rfc3339(start)
    );
    let test_started = Instant::now();
    let w = World::start("buffer-event", "user-a", "50", &event).await;
    let stop = CancellationToken::new();
    let watcher = watch(&w, stop.clone());

    // The pool's PodTemplate and buffer exist; the template is the placeholder pod.
    let templates = Api::<PodTemplate>::namespaced(w.client.clone(), &w.ns);
    let template = wait::until("the PodTemplate", Duration::from_secs(30), || async {
        templates.get_opt(BUFFER).await.ok().flatten()
    })
    .await
    .unwrap();
    let pod_spec = template.template.unwrap().spec.unwrap();
    assert_eq!(pod_spec.priority_class_name.as_deref(), Some("hubpack-placeholder"));
    // The buffer rises a lead time before the event, as its arrival window enters the
    // lead horizon, and reaches 2 chunks (6 users, N = 3) once all of it is inside.
    let raised = wait::until("buffer replicas > 0", Duration::from_secs(90), || async {
        (w.buffer().await?.0? > 0).then(now_ms)
    })
    .await
    .unwrap();
    let early = start - raised;
    assert!(
        (lead_ms - 3_000..=lead_ms + 1_000).contains(&early),
        "the buffer rose {early} ms before the event, the lead is {lead_ms} ms"
    );
    wait::until("buffer replicas 2", Duration::from_secs(30), || async {
        (w.buffer().await?.0 == Some(2)).then_some(())
    })
    .await
    .unwrap();

    // CA scales up for the virtual pods; the pre-pullers warm the new nodes.
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
    println!(
        "buffer raised {:.1} s before the event; nodes warm {:.1} s after the buffer rose, {:.1} s before the event",
        early as f64 / 1000.0,
        (warm_at - raised) as f64 / 1000.0,
        (start - warm_at) as f64 / 1000.0
    );
    assert!(warm_at < start, "nodes were warm only after the event started");

    // Until the event: CA keeps the empty nodes the buffer holds.
    tokio::time::sleep(Duration::from_millis((start - now_ms()).max(0) as u64)).await;
    let kept: BTreeSet<String> = w
        .group_nodes()
        .await
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(
        warm.is_subset(&kept),
        "CA removed a node the buffer held: warm {warm:?}, at the event {kept:?} ({:.0} s idle)",
        (start - warm_at) as f64 / 1000.0
    );
    let pullers_before: BTreeSet<String> = w
        .pods("app.kubernetes.io/component=image-prepuller")
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();

    // Users arrive: each binds to a warm seat, starts without a pull; nothing is evicted.
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
    let mut waits = Vec::new();
    for p in &ready {
        let name = p.metadata.name.clone().unwrap_or_default();
        let wait_ms = ready_at(p).unwrap() - created_at(p);
        waits.push(wait_ms);
        assert!(
            warm.contains(&node_of(p).unwrap()),
            "{name} not on a node warmed ahead"
        );
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
    println!("user creation -> Ready: {waits:?} ms");

    // After the event: the users leave, the buffer goes to 0, CA removes the nodes.
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
    wait::until("buffer replicas 0", Duration::from_secs(60), || async {
        (w.buffer().await?.0 == Some(0)).then_some(())
    })
    .await
    .unwrap();
    wait::until("group nodes removed", Duration::from_secs(120), || async {
        w.group_nodes().await.is_empty().then_some(())
    })
    .await
    .unwrap();
    let gone = now_ms();
    let generation = buffer_generation(&w).await;
    let metrics = w.metrics().await;
    stop.cancel();
    let seen = watcher.await.unwrap();
    let mut lines = seen.lines.clone();
    lines.sort();
    println!("--- buffer event timeline (seconds from the event start) ---");
    for (t, what) in &lines {
        println!("{:>+8.1}  {what}", (t - start) as f64 / 1000.0);
    }
    println!(
        "users left -> every node gone: {:.1} s; buffer spec changes (generation): {generation}; test took {:.0} s",
        (gone - left) as f64 / 1000.0,
        test_started.elapsed().as_secs_f64()
    );
    for line in metrics.lines().filter(|l| l.contains("buffer_condition")) {
        println!("{line}");
    }
    assert!(
        seen.placeholder_pods.is_empty(),
        "placeholder pods appeared: {:?}",
        seen.placeholder_pods
    );
    assert!(
        seen.removed_nodes.values().all(|t| *t >= left),
        "a node was removed before the users left: {:?}",
        seen.removed_nodes
    );
    w.stop().await;
}

#[tokio::test]
async fn capacity_buffer_limited_by_quota_shows_its_condition_as_an_event() {
    // A quota of 4 cpu in the namespace: one 3-cpu chunk fits, the second does not.
    let start = now_ms() + 20_000;
    let event = format!(
        "events:\n- {{name: lab, pool: default, start: \"{}\", users: 6, arrivalWindowSeconds: 20}}\n",
        rfc3339(start)
    );
    let w = World::start("buffer-quota", "user-b", "120", &event).await;
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
                .find(|(reason, kind, _)| reason == "BufferLimitedByQuotas" && kind == "CapacityBuffer")
                .map(|(r, _, n)| (r, n))
        },
    )
    .await
    .unwrap();
    println!(
        "{reason} after {:.1} s: {note}",
        t0.elapsed().as_secs_f64()
    );
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
