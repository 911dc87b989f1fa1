//! The bench's cluster: the local control plane without its stock kube-scheduler (each round
//! starts the scheduler under test itself), 500 kwok user nodes, a few warm (the user image is
//! there) and the rest cold (it is not; a pull takes [`pull_time`]), and the placeholder
//! PriorityClass. Also starts and measures the two schedulers.

use futures::StreamExt;
use hubpack_e2e::binaries::{self, Component};
use hubpack_e2e::cluster::{Cluster, ClusterOptions};
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_e2e::processes::{self, Managed};
use hubpack_e2e::wait;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const IMAGE: &str = "jupyter/base-notebook:2024";
pub const IMAGE_FULL: &str = "docker.io/jupyter/base-notebook:2024";
pub const PLACEHOLDER_CLASS: &str = "bench-user-placeholder";
/// Node size: 16 users of [`crate::workload::USER_CPU`]/[`crate::workload::USER_MEMORY`] fit.
pub const NODE_CPU: &str = "8";
pub const NODE_MEMORY: &str = "32Gi";
pub const SEATS_PER_NODE: usize = 16;
/// How long a pull takes on a cold node (`BENCH_PULL_S`, default 60 s): shorter than in
/// life (5-10 min) so the bench can wait for every user of the class burst to be Ready,
/// cold pulls included: users wait for Ready, not for the bind.
pub fn pull_time() -> Duration {
    Duration::from_secs(
        std::env::var("BENCH_PULL_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    )
}

pub fn warm_name(i: usize) -> String {
    format!("user-warm-{i}")
}

/// A fresh cluster with `warm` warm and `cold` cold user nodes, all Ready.
pub async fn cluster(tag: &str, warm: usize, cold: usize) -> (Cluster, kube::Client) {
    let dir = format!("/tmp/hubpack-bench-{}-{tag}", std::process::id());
    let mut opts = ClusterOptions::new(dir, env!("CARGO_BIN_EXE_hubpack-e2e-model"));
    opts.kube_scheduler = false;
    opts.default_pull_time = pull_time();
    opts.ready_timeout = Duration::from_secs(300);
    let cluster = Cluster::start(&opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // If the bench dies, its processes go with it.
    processes::spawn_watchdog(&cluster.state_dir, std::process::id()).unwrap();
    let client = cluster.client().await.unwrap();

    let t0 = Instant::now();
    let template = NodeTemplate::new(Pool::User)
        .with_boot_delay(Duration::ZERO)
        .with_resources(NODE_CPU, NODE_MEMORY, 110);
    let warm_template = template.clone().with_images([IMAGE_FULL]);
    let nodes: Api<Node> = Api::all(client.clone());
    let specs: Vec<Node> = (0..warm)
        .map(|i| warm_template.node(&warm_name(i)))
        .chain((0..cold).map(|i| template.node(&format!("user-cold-{i}"))))
        .collect();
    futures::stream::iter(specs)
        .map(|n| {
            let nodes = nodes.clone();
            async move { nodes.create(&PostParams::default(), &n).await.unwrap() }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    wait::until(
        "every bench node Ready and untainted",
        Duration::from_secs(300),
        || {
            let nodes = nodes.clone();
            async move {
                let list = nodes.list(&ListParams::default()).await.ok()?;
                let ready = list
                    .items
                    .iter()
                    .filter(|n| wait::node_schedulable(n))
                    .count();
                (ready >= warm + cold).then_some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "[{tag}] cluster up: {warm} warm + {cold} cold nodes Ready in {:.0} s",
        t0.elapsed().as_secs_f64()
    );

    let class = PriorityClass {
        metadata: ObjectMeta {
            name: Some(PLACEHOLDER_CLASS.into()),
            ..Default::default()
        },
        value: -10,
        preemption_policy: Some("Never".into()),
        ..Default::default()
    };
    Api::<PriorityClass>::all(client.clone())
        .create(&PostParams::default(), &class)
        .await
        .unwrap();
    (cluster, client)
}

/// Which scheduler a round runs, and with which client budget.
#[derive(Clone, Debug)]
pub enum Scheduler {
    /// The hubpack-scheduler binary at this path, with `api.qps`/`api.burst`.
    Hubpack { bin: PathBuf, qps: u32, burst: u32 },
    /// The stock kube-scheduler with z2jh's profile; `None`: z2jh sets no client budget, so
    /// kube-scheduler's defaults (QPS 50, burst 100) apply.
    Kube { qps: Option<(u32, u32)> },
}

pub const SCHEDULER_NAME: &str = "user-scheduler";

/// A running scheduler process and, for hubpack, its metrics port.
pub struct Running {
    pub process: Managed,
    pub metrics_port: Option<u16>,
}

impl Running {
    /// (current, peak) resident set size in MiB, from /proc.
    pub fn rss_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid))
            .unwrap_or_default();
        let kib = |key: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }

    pub fn stop(mut self, state_dir: &Path) {
        self.process.stop(state_dir, Duration::from_secs(10));
    }
}

/// Starts `which` (process name `name`) on `cluster` and waits until it listens.
pub async fn start(cluster: &Cluster, which: &Scheduler, name: &str) -> Running {
    let dir = &cluster.state_dir;
    let config = dir.join(format!("{name}.yaml"));
    let port = processes::free_port().unwrap();
    let (bin, args, envs, metrics_port) = match which {
        Scheduler::Hubpack { bin, qps, burst } => {
            std::fs::write(&config, hubpack_config(*qps, *burst, port)).unwrap();
            let args = vec![
                format!("--config={}", config.display()),
                format!("--kubeconfig={}", cluster.kubeconfig.display()),
            ];
            let envs = vec![("POD_NAME", name.to_string())];
            (bin.clone(), args, envs, Some(port))
        }
        Scheduler::Kube { qps } => {
            std::fs::write(
                &config,
                hubpack_e2e::components::z2jh_user_scheduler_config(
                    &cluster.kubeconfig,
                    SCHEDULER_NAME,
                    *qps,
                    None,
                ),
            )
            .unwrap();
            let bin = binaries::find(Component::K8s, "kube-scheduler").unwrap();
            let args = vec![
                format!("--config={}", config.display()),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={port}"),
                // As z2jh runs its user-scheduler: don't read kube-system's
                // extension-apiserver-authentication ConfigMap (no RBAC needed for it).
                "--authentication-skip-lookup=true".into(),
            ];
            (bin, args, vec![], None)
        }
    };
    let process = processes::start(dir, name, &bin, &args, &envs).unwrap();
    let addr = format!("127.0.0.1:{port}");
    let listening = wait::until(
        &format!("{name} listening"),
        Duration::from_secs(60),
        || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(&addr).await.ok().map(|_| ()) }
        },
    )
    .await;
    if let Err(e) = listening {
        let log = processes::log_path(dir, name);
        panic!("{e}\n{}", processes::log_tail(&log, 40));
    }
    // Its caches list the cluster before the clock starts: hubpack says so on /readyz;
    // kube-scheduler's secure port needs TLS, so it gets the time hubpack needs at most.
    match metrics_port {
        Some(port) => {
            let ready = wait::until(
                &format!("{name} /readyz"),
                Duration::from_secs(60),
                || async move {
                    let text = http_get(port, "/readyz").await;
                    text.lines()
                        .next()
                        .is_some_and(|l| l.contains(" 200"))
                        .then_some(())
                },
            )
            .await;
            ready.unwrap_or_else(|e| panic!("{e}"));
        }
        None => tokio::time::sleep(Duration::from_secs(3)).await,
    }
    Running {
        process,
        metrics_port,
    }
}

/// hubpack-scheduler's config: the bench's scheduler name, no leader election (one replica),
/// nodes count as warm as soon as they are Ready (they were all just created), the given
/// write budget. `bindConcurrency` is left at the binary's default so an older binary reads
/// the same file.
fn hubpack_config(qps: u32, burst: u32, metrics_port: u16) -> String {
    format!(
        "schedulerName: {SCHEDULER_NAME}\n\
         policy:\n  warmSettleSeconds: 0\n\
         leaderElection:\n  enabled: false\n\
         api:\n  qps: {qps}\n  burst: {burst}\n\
         metricsAddress: 127.0.0.1:{metrics_port}\n"
    )
}

/// The scheduler's own /metrics text (hubpack only).
pub async fn metrics_text(port: u16) -> String {
    http_get(port, "/metrics").await
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (status line, headers and body; empty on error).
async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    let _ = s.write_all(request.as_bytes()).await;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out
}

/// `<name>_sum / <name>_count` of a histogram in OpenMetrics text.
pub fn histogram_mean(text: &str, name: &str) -> f64 {
    let value = |suffix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_{suffix} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    value("sum") / value("count")
}

/// A gauge's value (the first sample line `name{labels} v`), NaN when absent.
pub fn gauge(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{sample} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}
