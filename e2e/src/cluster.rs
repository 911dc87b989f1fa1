//! A whole local cluster: etcd, kube-apiserver (RBAC, static admin token), kube-controller-manager,
//! kwok with the e2e Stages, the image model and, optionally, cluster-autoscaler, all on
//! 127.0.0.1 with free ports, their logs and pids in a state directory.
//!
//! [`Cluster::start`] returns once the apiserver is ready and the initial nodes are Ready with
//! their not-ready taint lifted; the processes run detached until [`Cluster::stop`] or
//! [`stop_state_dir`] (or, for test binaries, until the watchdog sees the test process exit).

use crate::autoscaler::{self, AutoscalerTimings, NodeGroup};
use crate::binaries::{self, BinaryError, Component};
use crate::components;
use crate::karpenter::{self, KarpenterOptions};
use crate::kwok;
use crate::nodes::NodeTemplate;
use crate::pki::{Pki, PkiError};
use crate::processes::{self, Managed, ProcessError};
use crate::wait;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, PostParams};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Process names, in start order (teardown goes in reverse).
pub const ORDER: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kwok",
    "image-model",
    "provisioner",
    "kube-scheduler",
    "cluster-autoscaler",
    "karpenter-node-model",
    "karpenter",
];

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Where pki, kubeconfig, logs and pids go; wiped at start.
    pub state_dir: PathBuf,
    /// Nodes created at start (name, template); they boot at once unless the template says.
    pub nodes: Vec<(String, NodeTemplate)>,
    /// Boot time of a node whose template gives none (e.g. nodes cluster-autoscaler adds).
    pub default_boot_delay: Duration,
    /// Image pull time of the image model.
    pub default_pull_time: Duration,
    /// Node groups served by the real cluster-autoscaler; `None` runs no autoscaler.
    pub autoscaler: Option<Vec<NodeGroup>>,
    /// cluster-autoscaler's scan interval, unneeded time, delays, expendable cutoff.
    pub autoscaler_timings: AutoscalerTimings,
    /// Install the CapacityBuffer CRD and run cluster-autoscaler's buffer controller and
    /// pod injection ([`crate::capacity_buffers`]).
    pub capacity_buffers: bool,
    /// The real Karpenter (kwok provider) with its user NodePools; `None` runs no Karpenter.
    pub karpenter: Option<KarpenterOptions>,
    /// Run the stock kube-scheduler (scheduler name `default-scheduler`): it places DaemonSet
    /// pods (e.g. image pre-pullers) and any pod not given another scheduler, as in a real
    /// cluster. On by default; turn it off to compare schedulers one at a time.
    pub kube_scheduler: bool,
    /// Run the dynamic provisioner process (`hubpack-e2e-model provisioner`) with its default
    /// WaitForFirstConsumer StorageClass ([`crate::provisioner::DEFAULT_CLASS`]). Off by
    /// default: tests start their own [`crate::provisioner::Provisioner`] for their classes.
    pub provisioner: bool,
    /// The `hubpack-e2e-model` binary (tests: `env!("CARGO_BIN_EXE_hubpack-e2e-model")`).
    pub model_bin: PathBuf,
    /// How long each component may take to become ready.
    pub ready_timeout: Duration,
}

impl ClusterOptions {
    pub fn new(state_dir: impl Into<PathBuf>, model_bin: impl Into<PathBuf>) -> Self {
        ClusterOptions {
            state_dir: state_dir.into(),
            nodes: vec![],
            default_boot_delay: Duration::from_secs(30),
            default_pull_time: Duration::from_secs(20),
            autoscaler: None,
            autoscaler_timings: AutoscalerTimings::default(),
            capacity_buffers: false,
            karpenter: None,
            kube_scheduler: true,
            provisioner: false,
            model_bin: model_bin.into(),
            ready_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Binary(#[from] BinaryError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{component} did not become ready: {reason}\n--- last lines of {log} ---\n{tail}")]
    NotReady {
        component: String,
        reason: String,
        log: String,
        tail: String,
    },
    #[error(
        "a cluster is already running from {0} (its pid files exist): run `cargo xtask cluster down` first"
    )]
    AlreadyRunning(PathBuf),
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig { path: PathBuf, reason: String },
    #[error(transparent)]
    Karpenter(#[from] karpenter::InstallError),
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error(transparent)]
    CapacityBuffers(#[from] crate::capacity_buffers::CrdError),
}

/// The binaries a cluster with these options runs, all found before anything starts.
struct Bins {
    etcd: PathBuf,
    apiserver: PathBuf,
    kcm: PathBuf,
    kwok: PathBuf,
    scheduler: Option<PathBuf>,
    autoscaler: Option<PathBuf>,
    karpenter: Option<PathBuf>,
}

impl Bins {
    fn find(opts: &ClusterOptions) -> Result<Bins, BinaryError> {
        Ok(Bins {
            etcd: binaries::find(Component::Etcd, "etcd")?,
            apiserver: binaries::find(Component::K8s, "kube-apiserver")?,
            kcm: binaries::find(Component::K8s, "kube-controller-manager")?,
            kwok: binaries::find(Component::Kwok, "kwok")?,
            scheduler: match opts.kube_scheduler {
                true => Some(binaries::find(Component::K8s, "kube-scheduler")?),
                false => None,
            },
            autoscaler: match &opts.autoscaler {
                Some(_) => Some(binaries::find(Component::Autoscaler, "cluster-autoscaler")?),
                None => None,
            },
            karpenter: match &opts.karpenter {
                Some(_) => Some(binaries::find(Component::Karpenter, "karpenter")?),
                None => None,
            },
        })
    }
}

/// A running cluster started by this process.
pub struct Cluster {
    pub state_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub api_port: u16,
    apiserver_args: Vec<String>,
    apiserver_bin: PathBuf,
    ready_timeout: Duration,
    processes: Mutex<Vec<Managed>>,
    started: Instant,
    timings: Mutex<Vec<(String, Duration)>>,
}

impl Cluster {
    /// Starts every component and waits until the cluster is usable.
    pub async fn start(opts: &ClusterOptions) -> Result<Cluster, ClusterError> {
        let t0 = Instant::now();
        let bins = Bins::find(opts)?;
        let apiserver_bin = bins.apiserver.clone();
        let dir = &opts.state_dir;
        if has_pid_files(dir) {
            return Err(ClusterError::AlreadyRunning(dir.clone()));
        }
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|source| ClusterError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let pki = Pki::generate(&dir.join("pki"))?;
        let api_port = processes::free_port()?;
        let kubeconfig = dir.join("kubeconfig");
        pki.write_kubeconfig(&kubeconfig, api_port)?;

        let mut cluster = Cluster {
            state_dir: dir.clone(),
            kubeconfig: kubeconfig.clone(),
            api_port,
            apiserver_args: vec![],
            apiserver_bin,
            ready_timeout: opts.ready_timeout,
            processes: Mutex::new(vec![]),
            started: t0,
            timings: Mutex::new(vec![]),
        };
        // From here on, a failure stops what was started.
        match cluster.bring_up(opts, &pki, bins).await {
            Ok(()) => {
                tracing::info!(elapsed = ?t0.elapsed(), kubeconfig = %kubeconfig.display(), "cluster ready");
                Ok(cluster)
            }
            Err(e) => {
                cluster.stop();
                Err(e)
            }
        }
    }

    async fn bring_up(
        &mut self,
        opts: &ClusterOptions,
        pki: &Pki,
        bins: Bins,
    ) -> Result<(), ClusterError> {
        let dir = opts.state_dir.clone();
        let timeout = opts.ready_timeout;

        let etcd_port = processes::free_port()?;
        let peer_port = processes::free_port()?;
        let etcd_args = components::etcd_args(&dir.join("etcd-data"), etcd_port, peer_port);
        self.start_process("etcd", &bins.etcd, &etcd_args, &[])?;
        let etcd_health = format!("127.0.0.1:{etcd_port}");
        self.wait_ready("etcd", timeout, || wait::http_ok(&etcd_health, "/health"))
            .await?;

        self.apiserver_args = components::apiserver_args(pki, etcd_port, self.api_port);
        let (bin, args) = (self.apiserver_bin.clone(), self.apiserver_args.clone());
        self.start_process("kube-apiserver", &bin, &args, &[])?;
        self.wait_apiserver_ready().await?;
        let client = self.client().await?;

        let kcm_args = components::controller_manager_args(&self.kubeconfig, pki);
        self.start_process("kube-controller-manager", &bins.kcm, &kcm_args, &[])?;

        let kwok_config = dir.join("kwok.yaml");
        kwok::write_config(&kwok_config, opts.default_boot_delay).map_err(|source| {
            ClusterError::Io {
                what: format!("writing {}", kwok_config.display()),
                source,
            }
        })?;
        self.start_process(
            "kwok",
            &bins.kwok,
            &kwok::args(&self.kubeconfig, &kwok_config),
            &[],
        )?;

        let image_args = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            "images".into(),
            format!("--pull-time={}", kwok::go_duration(opts.default_pull_time)),
        ];
        self.start_process(
            "image-model",
            &opts.model_bin,
            &image_args,
            &[("RUST_LOG", "info".into())],
        )?;
        if opts.provisioner {
            self.start_process(
                "provisioner",
                &opts.model_bin,
                &[
                    format!("--kubeconfig={}", self.kubeconfig.display()),
                    "provisioner".into(),
                ],
                &[("RUST_LOG", "info".into())],
            )?;
        }

        let nodes: Api<Node> = Api::all(client.clone());
        for (name, template) in &opts.nodes {
            let mut template = template.clone();
            template.boot_delay.get_or_insert(Duration::ZERO);
            nodes
                .create(&PostParams::default(), &template.node(name))
                .await
                .map_err(|source| ClusterError::Kube {
                    what: format!("creating node {name}"),
                    source,
                })?;
        }
        for (name, _) in &opts.nodes {
            let nodes = nodes.clone();
            let name = name.clone();
            self.wait_ready("kwok", timeout, move || {
                let (nodes, name) = (nodes.clone(), name.clone());
                async move {
                    nodes
                        .get_opt(&name)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|n| wait::node_schedulable(&n))
                }
            })
            .await?;
        }
        self.milestone("initial nodes Ready");

        if let Some(bin) = &bins.scheduler {
            self.start_kube_scheduler(bin).await?;
        }

        if let Some(groups) = &opts.autoscaler {
            let cms: Api<ConfigMap> = Api::namespaced(client.clone(), autoscaler::NAMESPACE);
            for cm in [
                autoscaler::provider_config_map(),
                autoscaler::templates_config_map(groups),
            ] {
                cms.create(&PostParams::default(), &cm)
                    .await
                    .map_err(|source| ClusterError::Kube {
                        what: "creating the autoscaler ConfigMaps".into(),
                        source,
                    })?;
            }
        }
        if opts.capacity_buffers {
            crate::capacity_buffers::install_crd(&client, timeout).await?;
        }
        if let Some(ca_bin) = &bins.autoscaler {
            let port = processes::free_port()?;
            let mut args = autoscaler::args(&self.kubeconfig, port, &opts.autoscaler_timings);
            if opts.capacity_buffers {
                args.extend(crate::capacity_buffers::autoscaler_args());
            }
            self.start_process(
                "cluster-autoscaler",
                ca_bin,
                &args,
                &autoscaler::env(&self.kubeconfig),
            )?;
            let addr = format!("127.0.0.1:{port}");
            self.wait_ready("cluster-autoscaler", timeout, || {
                wait::http_ok(&addr, "/health-check")
            })
            .await?;
        }
        if let (Some(bin), Some(karpenter)) = (&bins.karpenter, &opts.karpenter) {
            self.start_karpenter(bin, karpenter, &opts.model_bin, timeout)
                .await?;
        }
        Ok(())
    }

    async fn start_kube_scheduler(&self, bin: &Path) -> Result<(), ClusterError> {
        let config = self.state_dir.join("kube-scheduler.yaml");
        let text = components::kube_scheduler_config(&self.kubeconfig);
        std::fs::write(&config, text).map_err(|source| ClusterError::Io {
            what: format!("writing {}", config.display()),
            source,
        })?;
        let port = processes::free_port()?;
        let args = components::kube_scheduler_args(&config, port);
        self.start_process("kube-scheduler", bin, &args, &[])?;
        // /healthz on the secure port needs TLS; a listening port is enough to know it started,
        // and the scheduler's own informers wait for the apiserver.
        let addr = format!("127.0.0.1:{port}");
        self.wait_ready("kube-scheduler", self.ready_timeout, || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(&addr).await.is_ok() }
        })
        .await
    }

    pub(crate) fn start_process(
        &self,
        name: &str,
        bin: &Path,
        args: &[String],
        envs: &[(&str, String)],
    ) -> Result<(), ClusterError> {
        let managed = processes::start(&self.state_dir, name, bin, args, envs)?;
        self.lock().push(managed);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Managed>> {
        self.processes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn running(&self, name: &str) -> bool {
        self.lock()
            .iter_mut()
            .find(|p| p.name == name)
            .is_some_and(Managed::is_running)
    }

    /// Polls `ready` until true; fails early with the log tail if the process `component` dies.
    pub(crate) async fn wait_ready<F, Fut>(
        &self,
        component: &str,
        timeout: Duration,
        mut ready: F,
    ) -> Result<(), ClusterError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if ready().await {
                if component != "kwok" {
                    self.milestone(component);
                }
                return Ok(());
            }
            let reason = if !self.running(component) {
                Some("the process exited".to_string())
            } else if Instant::now() > deadline {
                Some(format!("not ready after {timeout:?}"))
            } else {
                None
            };
            if let Some(reason) = reason {
                let log = processes::log_path(&self.state_dir, component);
                return Err(ClusterError::NotReady {
                    component: component.into(),
                    reason,
                    tail: processes::log_tail(&log, 40),
                    log: log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_apiserver_ready(&self) -> Result<(), ClusterError> {
        let client = self.client().await?;
        self.wait_ready("kube-apiserver", self.ready_timeout, || {
            let client = client.clone();
            async move { wait::apiserver_ready(&client).await }
        })
        .await
    }

    /// A new client for the admin user. Each test makes its own: a client is tied to the tokio
    /// runtime it first runs on.
    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        client_from_kubeconfig(&self.kubeconfig).await
    }

    /// Stops the kube-apiserver alone (etcd and the rest keep running).
    pub fn stop_apiserver(&self) {
        let mut procs = self.lock();
        if let Some(pos) = procs.iter().position(|p| p.name == "kube-apiserver") {
            let mut p = procs.remove(pos);
            p.stop(&self.state_dir, Duration::from_secs(5));
        }
    }

    /// Starts the kube-apiserver again with the same flags and port, and waits for /readyz.
    pub async fn start_apiserver(&self) -> Result<(), ClusterError> {
        if self.running("kube-apiserver") {
            return Ok(());
        }
        self.start_process(
            "kube-apiserver",
            &self.apiserver_bin,
            &self.apiserver_args,
            &[],
        )?;
        self.wait_apiserver_ready().await
    }

    /// Stops the kube-apiserver and starts it again (the scheduler's recovery test).
    pub async fn restart_apiserver(&self) -> Result<(), ClusterError> {
        self.stop_apiserver();
        self.start_apiserver().await
    }

    /// Stops every process this cluster started: cluster-autoscaler first and alone (on SIGTERM
    /// its kwok provider deletes its groups' nodes; it must finish while the apiserver answers),
    /// then the rest together.
    pub fn stop(&self) {
        let mut procs = self.lock();
        if let Some(pos) = procs.iter().position(|p| p.name == "cluster-autoscaler") {
            let mut ca = procs.remove(pos);
            ca.stop(&self.state_dir, AUTOSCALER_STOP_GRACE);
        }
        // A throwaway cluster: a few seconds of graceful shutdown, then SIGKILL (the apiserver drains
        // for much longer, and nothing here needs its data after it stops).
        processes::stop_all(&self.state_dir, &mut procs, Duration::from_secs(3));
        procs.clear();
    }

    /// When each component became ready, counted from the start of [`Cluster::start`].
    pub fn startup_timings(&self) -> Vec<(String, Duration)> {
        self.timings.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn milestone(&self, what: &str) {
        if let Ok(mut t) = self.timings.lock() {
            t.push((what.to_string(), self.started.elapsed()));
        }
    }

    /// Keeps the processes running after this value is dropped (for `cargo xtask cluster up`).
    pub fn detach(self) {
        self.lock().clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops a cluster started by another process from its state dir (`cargo xtask cluster down`).
pub fn stop_state_dir(state_dir: &Path) -> Vec<String> {
    let mut stopped = Vec::new();
    if processes::stop_recorded(state_dir, "cluster-autoscaler", AUTOSCALER_STOP_GRACE) {
        stopped.push("cluster-autoscaler".to_string());
    }
    stopped.extend(processes::stop_all_recorded(
        state_dir,
        ORDER,
        Duration::from_secs(3),
    ));
    stopped
}

/// How long cluster-autoscaler may take to delete its nodes and exit on SIGTERM.
const AUTOSCALER_STOP_GRACE: Duration = Duration::from_secs(10);

fn has_pid_files(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("pids"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// A client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, ClusterError> {
    let err = |reason: String| ClusterError::Kubeconfig {
        path: path.to_path_buf(),
        reason,
    };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| err(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| err(e.to_string()))
}
