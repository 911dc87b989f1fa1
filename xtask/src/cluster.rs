//! `cargo xtask cluster build|up|down`: the local real control plane (logic in hubpack-e2e).

use anyhow::Context;
use clap::{Args, Subcommand};
use hubpack_e2e::autoscaler::{AutoscalerTimings, NodeGroup};
use hubpack_e2e::binaries::{self, Component};
use hubpack_e2e::cluster::{Cluster, ClusterOptions, stop_state_dir};
use hubpack_e2e::karpenter::{ConsolidationPolicy, KarpenterOptions};
use hubpack_e2e::kwok::parse_go_duration;
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const DEFAULT_STATE_DIR: &str = "/tmp/hubpack-cluster";
/// What the CI end-to-end suite needs: the control plane, cluster-autoscaler (from the upstream
/// source bundle in ../shared/upstream), Karpenter's kwok provider, and helm to render the chart.
const CI_COMPONENTS: &[Component] = &[
    Component::Etcd,
    Component::Kwok,
    Component::K8s,
    Component::Autoscaler,
    Component::Karpenter,
    Component::Helm,
];

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Build and cache the control-plane binaries (default: etcd kwok k8s ca karpenter helm).
    Build {
        /// Components: etcd, kwok, k8s, ca, karpenter, helm.
        components: Vec<String>,
    },
    /// Start a local cluster detached and print its kubeconfig.
    Up(Box<UpArgs>),
    /// Stop the cluster started by `up`.
    Down {
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
}

#[derive(Args)]
pub struct UpArgs {
    /// Nodes in the core pool.
    #[arg(long, default_value_t = 1)]
    nodes: u32,
    /// Nodes of another pool, e.g. `--pool user=3` (pools: user, core).
    #[arg(long = "pool", value_name = "POOL=N")]
    pools: Vec<String>,
    /// Run the real cluster-autoscaler (kwok provider) over a `user` and a `core` node group
    /// (0..10 nodes each); its nodes boot with --boot-delay and pull with --pull-time.
    #[arg(long)]
    autoscaler: bool,
    /// With --autoscaler: install the CapacityBuffer CRD and run the autoscaler with
    /// --capacity-buffer-controller-enabled --capacity-buffer-pod-injection-enabled. With
    /// --karpenter: turn on Karpenter's CapacityBuffer feature gate.
    #[arg(long)]
    capacity_buffers: bool,
    /// cluster-autoscaler `--scan-interval`, a Go duration.
    #[arg(long, default_value = "2s")]
    scan_interval: String,
    /// cluster-autoscaler `--scale-down-unneeded-time`.
    #[arg(long, default_value = "30s")]
    scale_down_unneeded_time: String,
    /// cluster-autoscaler `--scale-down-delay-after-add`.
    #[arg(long, default_value = "30s")]
    scale_down_delay_after_add: String,
    /// cluster-autoscaler `--unremovable-node-recheck-timeout`.
    #[arg(long, default_value = "30s")]
    unremovable_node_recheck_timeout: String,
    /// cluster-autoscaler `--max-node-provision-time`.
    #[arg(long, default_value = "5m")]
    max_node_provision_time: String,
    /// cluster-autoscaler `--expendable-pods-priority-cutoff` (pods below it never trigger
    /// scale-up; z2jh's placeholders sit at -10).
    #[arg(long, default_value_t = -10, allow_hyphen_values = true)]
    expendable_pods_priority_cutoff: i32,
    /// Run the real Karpenter (kwok provider) with a `user` NodePool (z2jh's user-pool label
    /// and taint); its nodes register after --boot-delay minus --karpenter-ready-delay, then
    /// turn Ready after --karpenter-ready-delay.
    #[arg(long)]
    karpenter: bool,
    /// The NodePool's consolidationPolicy: WhenEmpty or WhenEmptyOrUnderutilized.
    #[arg(long, default_value = "WhenEmptyOrUnderutilized")]
    consolidation_policy: String,
    /// The NodePool's consolidateAfter (whole seconds).
    #[arg(long, default_value = "30s")]
    consolidate_after: String,
    /// Karpenter's BATCH_IDLE_DURATION.
    #[arg(long, default_value = "1s")]
    batch_idle_duration: String,
    /// Karpenter's BATCH_MAX_DURATION.
    #[arg(long, default_value = "10s")]
    batch_max_duration: String,
    /// How long a Karpenter node is registered but NotReady (not-ready taint on).
    #[arg(long, default_value = "5s")]
    karpenter_ready_delay: String,
    /// Do not run the stock kube-scheduler (it places DaemonSet pods and default-scheduler pods).
    #[arg(long)]
    no_kube_scheduler: bool,
    /// Do not run the dynamic provisioner (it serves the default StorageClass `standard`,
    /// WaitForFirstConsumer: a claim gets a PersistentVolume on the node its pod was given).
    #[arg(long)]
    no_provisioner: bool,
    /// Boot time of nodes added later (e.g. by the autoscaler), a Go duration.
    #[arg(long, default_value = "30s")]
    boot_delay: String,
    /// Image pull time on a node lacking the image, a Go duration.
    #[arg(long, default_value = "20s")]
    pull_time: String,
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
}

pub fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Build { components } => {
            let components = if components.is_empty() {
                CI_COMPONENTS.to_vec()
            } else {
                components
                    .iter()
                    .map(|c| {
                        Component::parse(c).with_context(|| {
                            format!("unknown component {c:?} (expected etcd, kwok, k8s, ca, karpenter, helm)")
                        })
                    })
                    .collect::<anyhow::Result<_>>()?
            };
            build(&components)
        }
        ClusterCommand::Up(args) => up(*args),
        ClusterCommand::Down { state_dir } => {
            let stopped = stop_state_dir(&state_dir);
            if stopped.is_empty() {
                eprintln!("no cluster processes recorded in {}", state_dir.display());
            } else {
                eprintln!("stopped: {}", stopped.join(", "));
            }
            Ok(())
        }
    }
}

/// Builds what the CI end-to-end suite needs, first making sure the machine has the tools
/// (a fresh machine may lack openssl; Go lives in /usr/local/go/bin, maybe not on PATH).
pub fn build_for_ci() -> anyhow::Result<()> {
    // openssl makes the cluster's certificates; procps' `kill` stops its processes.
    ensure_debian_packages(&[("openssl", "openssl"), ("kill", "procps")])?;
    build(CI_COMPONENTS)
}

/// Runs build.sh, which finds Go (on PATH or /usr/local/go/bin) and fails naming the component.
fn build(components: &[Component]) -> anyhow::Result<()> {
    let t0 = Instant::now();
    eprintln!(
        "==> cluster build {}",
        components
            .iter()
            .map(|c| c.script_name())
            .collect::<Vec<_>>()
            .join(" ")
    );
    binaries::build(components)?;
    eprintln!("==> cluster build done in {:.1?}", t0.elapsed());
    Ok(())
}

/// Whether an executable file named `command` is on PATH (shell builtins such as `kill` do not
/// count: the harness runs the program).
fn on_path(command: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(command).is_file())
}

pub(crate) fn ensure_debian_packages(packages: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(command, _)| !on_path(command))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("==> installing Debian packages: {}", missing.join(" "));
    crate::run::step("apt-get update", Command::new("apt-get").arg("update"))?;
    crate::run::step(
        "apt-get install",
        Command::new("apt-get")
            .args(["install", "-y"])
            .args(&missing),
    )
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let image_model = build_image_model()?;
    let mut opts = ClusterOptions::new(&args.state_dir, image_model);
    opts.default_boot_delay = duration("--boot-delay", &args.boot_delay)?;
    opts.default_pull_time = duration("--pull-time", &args.pull_time)?;
    let mut pools = vec![(Pool::Core, args.nodes)];
    for spec in &args.pools {
        let (name, count) = spec
            .split_once('=')
            .with_context(|| format!("--pool {spec:?}: expected POOL=N, e.g. user=3"))?;
        let pool =
            Pool::parse(name).with_context(|| format!("--pool {spec:?}: pools are user, core"))?;
        let count: u32 = count
            .parse()
            .with_context(|| format!("--pool {spec:?}: N is not a number"))?;
        pools.push((pool, count));
    }
    for (pool, count) in pools {
        for i in 0..count {
            opts.nodes
                .push((format!("{}-{i}", pool.name()), NodeTemplate::new(pool)));
        }
    }
    opts.kube_scheduler = !args.no_kube_scheduler;
    opts.provisioner = !args.no_provisioner;
    if args.capacity_buffers && !args.autoscaler && !args.karpenter {
        anyhow::bail!(
            "--capacity-buffers needs --autoscaler or --karpenter (whose buffers it enables)"
        );
    }
    // Karpenter installs the CRD from its own module.
    opts.capacity_buffers = args.capacity_buffers && args.autoscaler;
    if args.autoscaler {
        build(&[Component::Autoscaler])?;
        opts.autoscaler = Some(
            [Pool::User, Pool::Core]
                .into_iter()
                .map(|pool| NodeGroup::of_pool(NodeTemplate::new(pool), 0, 10))
                .collect(),
        );
        opts.autoscaler_timings = AutoscalerTimings {
            scan_interval: duration("--scan-interval", &args.scan_interval)?,
            scale_down_unneeded_time: duration(
                "--scale-down-unneeded-time",
                &args.scale_down_unneeded_time,
            )?,
            scale_down_delay_after_add: duration(
                "--scale-down-delay-after-add",
                &args.scale_down_delay_after_add,
            )?,
            unremovable_node_recheck_timeout: duration(
                "--unremovable-node-recheck-timeout",
                &args.unremovable_node_recheck_timeout,
            )?,
            max_node_provision_time: duration(
                "--max-node-provision-time",
                &args.max_node_provision_time,
            )?,
            expendable_pods_priority_cutoff: args.expendable_pods_priority_cutoff,
            ..AutoscalerTimings::default()
        };
    }
    if args.karpenter {
        build(&[Component::Karpenter])?;
        opts.karpenter = Some(karpenter_options(&args, opts.default_boot_delay)?);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cluster = runtime.block_on(Cluster::start(&opts))?;
    let kubectl = binaries::find(Component::K8s, "kubectl")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "kubectl".into());
    println!("cluster ready in {:.1?}", t0.elapsed());
    for (what, at) in cluster.startup_timings() {
        println!("  {what:<24} ready at {at:.1?}");
    }
    println!("kubeconfig: {}", cluster.kubeconfig.display());
    println!("logs:       {}/logs", cluster.state_dir.display());
    println!(
        "try:        {kubectl} --kubeconfig {} get nodes",
        cluster.kubeconfig.display()
    );
    println!("stop:       cargo xtask cluster down");
    cluster.detach();
    Ok(())
}

fn karpenter_options(args: &UpArgs, boot_delay: Duration) -> anyhow::Result<KarpenterOptions> {
    let ready_delay = duration("--karpenter-ready-delay", &args.karpenter_ready_delay)?;
    Ok(KarpenterOptions {
        consolidation_policy: ConsolidationPolicy::parse(&args.consolidation_policy).with_context(
            || {
                format!(
                    "--consolidation-policy {:?}: WhenEmpty or WhenEmptyOrUnderutilized",
                    args.consolidation_policy
                )
            },
        )?,
        consolidate_after: duration("--consolidate-after", &args.consolidate_after)?,
        batch_idle_duration: duration("--batch-idle-duration", &args.batch_idle_duration)?,
        batch_max_duration: duration("--batch-max-duration", &args.batch_max_duration)?,
        registration_delay: boot_delay.saturating_sub(ready_delay),
        ready_delay,
        capacity_buffers: args.capacity_buffers,
        ..KarpenterOptions::default()
    })
}

fn duration(flag: &str, text: &str) -> anyhow::Result<std::time::Duration> {
    parse_go_duration(text)
        .with_context(|| format!("{flag} {text:?} is not a duration like 30s or 1m30s"))
}

/// Builds the image model binary and returns its path.
fn build_image_model() -> anyhow::Result<PathBuf> {
    crate::run::step(
        "build hubpack-e2e-model",
        crate::run::cargo().args(["build", "-p", "hubpack-e2e", "--bin", "hubpack-e2e-model"]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::run::root().join("target"));
    Ok(target.join("debug/hubpack-e2e-model"))
}
