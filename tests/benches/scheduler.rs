//! `cargo xtask bench scheduler`: hubpack-scheduler against the stock kube-scheduler on the
//! local control plane (kube-apiserver + kwok nodes). Each scheduler gets its own set of
//! identical warm nodes and a burst of pods created as fast as the client can; the bench
//! reports binding throughput, creation→bound latency (p50/p99) and how many nodes the pods
//! ended up on (fewer is better packing). Prints a JSON line last.
//!
//! Both schedulers get the same client write budget: the harness runs kube-scheduler with
//! QPS 200 / burst 400, and hubpack-scheduler is given the same (`api.qps`, `api.burst`).

#![allow(clippy::unwrap_used)] // a benchmark may unwrap

use futures::{StreamExt, TryStreamExt};
use hubpack_e2e::harness;
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_scheduler::config::Config;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const NODES: usize = 20;
const PODS: usize = 300;
const IMAGE: &str = "jupyter/base-notebook:2024";
const IMAGE_FULL: &str = "docker.io/jupyter/base-notebook:2024";
const LABEL: &str = "e2e.hubpack.dev/bench";

struct Round {
    pods_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    nodes_used: usize,
}

fn pod(name: &str, scheduler: &str, group: &str) -> Pod {
    let mut pod = harness::user_pod(name, IMAGE);
    let spec = pod.spec.as_mut().unwrap();
    spec.scheduler_name = Some(scheduler.to_string());
    spec.node_selector
        .get_or_insert_default()
        .insert(LABEL.into(), group.into());
    spec.containers[0].resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("250m".into())),
            ("memory".to_string(), Quantity("512Mi".into())),
        ])),
        ..Default::default()
    });
    pod
}

async fn nodes(client: &kube::Client, group: &str) {
    let mut template = NodeTemplate::new(Pool::User)
        .with_images([IMAGE_FULL])
        .with_boot_delay(Duration::ZERO)
        .with_resources("8", "32Gi", 110);
    template.extra_labels.insert(LABEL.into(), group.into());
    let names: Vec<String> = (0..NODES)
        .map(|i| harness::unique_name(&format!("{group}-{i}")))
        .collect();
    for n in &names {
        harness::create_node(client, n, &template).await.unwrap();
    }
    for n in &names {
        harness::wait_node_schedulable(client, n, Duration::from_secs(120))
            .await
            .unwrap();
    }
}

/// Creates the burst and waits until every pod is bound.
async fn round(client: &kube::Client, scheduler: &str, group: &str) -> Round {
    let ns = harness::create_namespace(client, group).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // Watch first, so no bind is missed.
    let (bound_tx, mut bound_rx) = tokio::sync::mpsc::unbounded_channel();
    let watch = tokio::spawn({
        let pods = pods.clone();
        async move {
            let stream = watcher(pods, watcher::Config::default()).applied_objects();
            let mut stream = std::pin::pin!(stream);
            while let Ok(Some(p)) = stream.try_next().await {
                if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                    let _ =
                        bound_tx.send((p.metadata.name.unwrap_or_default(), node, Instant::now()));
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let start = Instant::now();
    let created: HashMap<String, Instant> = futures::stream::iter(0..PODS)
        .map(|i| {
            let pods = pods.clone();
            let p = pod(&format!("u-{i}"), scheduler, group);
            async move {
                pods.create(&PostParams::default(), &p).await.unwrap();
                (format!("u-{i}"), Instant::now())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let mut bound: HashMap<String, (String, Instant)> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while bound.len() < PODS {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, bound_rx.recv()).await {
            Ok(Some((name, node, at))) => {
                bound.entry(name).or_insert((node, at));
            }
            _ => panic!("{scheduler}: only {} of {PODS} pods bound", bound.len()),
        }
    }
    watch.abort();
    let last = bound.values().map(|(_, at)| *at).max().unwrap();
    let mut latencies: Vec<f64> = bound
        .iter()
        .map(|(name, (_, at))| {
            let c = created.get(name).copied().unwrap_or(start);
            at.saturating_duration_since(c).as_secs_f64() * 1000.0
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Round {
        pods_per_s: PODS as f64 / (last - start).as_secs_f64(),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        nodes_used: bound.values().map(|(n, _)| n).collect::<HashSet<_>>().len(),
    }
}

fn json(r: &Round) -> String {
    format!(
        "{{\"pods_per_s\":{:.1},\"p50_ms\":{:.0},\"p99_ms\":{:.0},\"nodes_used\":{}}}",
        r.pods_per_s, r.p50_ms, r.p99_ms, r.nodes_used
    )
}

async fn bench() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap();

    let ours = harness::unique_name("hubpack");
    let hubpack_group = harness::unique_name("bench-hubpack");
    let kube_group = harness::unique_name("bench-kube");
    nodes(&client, &hubpack_group).await;
    nodes(&client, &kube_group).await;

    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = Config {
        scheduler_name: ours.clone(),
        metrics_address: format!("127.0.0.1:{metrics_port}").parse().unwrap(),
        ..Config::default()
    };
    config.leader_election.enabled = false;
    config.policy.warm_settle_ms = 0;
    config.api.qps = 200.0;
    config.api.burst = 400;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(hubpack_scheduler::app::run(
        client.clone(),
        config,
        format!("{ours}-0"),
        shutdown.clone(),
    ));
    // Let its caches list the cluster.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let hubpack = round(&client, &ours, &hubpack_group).await;
    eprintln!("hubpack-scheduler: {}", json(&hubpack));
    let metrics = metrics_text(metrics_port).await;
    let decide_us = mean(&metrics, "hubpack_scheduler_decision_duration_seconds") * 1e6;
    eprintln!("hubpack-scheduler: mean decision {decide_us:.0} µs");
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let kube = round(&client, "default-scheduler", &kube_group).await;
    eprintln!("kube-scheduler:    {}", json(&kube));
    println!(
        "{{\"bench\":\"scheduler\",\"nodes\":{NODES},\"pods\":{PODS},\"hubpack\":{},\"hubpack_decide_mean_us\":{decide_us:.0},\"kube_scheduler\":{}}}",
        json(&hubpack),
        json(&kube)
    );
}

/// The scheduler's own /metrics text.
async fn metrics_text(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// `<name>_sum / <name>_count` of a histogram in OpenMetrics text.
fn mean(text: &str, name: &str) -> f64 {
    let value = |suffix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_{suffix} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    value("sum") / value("count")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}
