//! One real run: a fresh local cluster with the real cluster-autoscaler (one node group of
//! the scenario's user nodes, booting and pulling in the scenario's times, compressed; with
//! CapacityBuffers for the buffer stack) or the real Karpenter (one user NodePool of one
//! instance type of the scenario's node, the boot split into registration and ready
//! delays), the stack's scheduler, placeholders and pre-puller, and the users of one seed;
//! observed until the scenario's (compressed) end.

use crate::metrics::{self, Request, finite_sorted, node_hours, peak_and_removed_after};
use crate::observe::{self, Observer, Shared, UserSeen};
use crate::plan::{Plan, Stack};
use crate::run_numbers::RunNumbers;
use crate::{stacks, users};
use hubpack_e2e::autoscaler::NodeGroup;
use hubpack_e2e::cluster::{Cluster, ClusterOptions};
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_e2e::processes;
use hubpack_sim::scenario::AutoscalerKind;
use hubpack_sim::stats::quantile;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A real run's numbers plus what calibrates the simulator.
pub struct RealRun {
    pub numbers: RunNumbers,
    /// Pod created → Ready of users bound to an already warm node (compressed seconds).
    pub warm_create_to_ready_s: Vec<f64>,
}

fn template(plan: &Plan) -> NodeTemplate {
    NodeTemplate::new(Pool::User).with_resources(
        &plan.cpu(plan.node_cpu),
        &plan.gib(plan.node_memory_gib),
        plan.node_pods as u32,
    )
}

/// The `hubpack-e2e-model` binary the cluster runs beside the control plane:
/// `$HUBPACK_E2E_MODEL_BIN` (`cargo xtask bench side-by-side` builds it and sets it), else the
/// one built next to this binary (`cargo build --release -p hubpack-e2e --bin
/// hubpack-e2e-model`).
pub fn model_bin() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("HUBPACK_E2E_MODEL_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    let sibling = exe.with_file_name("hubpack-e2e-model");
    if sibling.is_file() {
        Ok(sibling)
    } else {
        Err(format!(
            "no {}: build it (cargo build --release -p hubpack-e2e --bin hubpack-e2e-model) or set HUBPACK_E2E_MODEL_BIN",
            sibling.display()
        ))
    }
}

pub async fn run(
    plan: &Plan,
    stack: Stack,
    seed: u64,
    sessions: &[(Duration, Duration)],
) -> Result<RealRun, String> {
    if let Some(why) = stack.refused_on(plan.autoscaler_kind) {
        return Err(why);
    }
    let tag = format!("{}-{}-{seed}", plan.name, stack.key());
    let dir = format!("/tmp/hubpack-sbs-{}-{tag}", std::process::id());
    let mut opts = ClusterOptions::new(&dir, model_bin()?);
    let base = template(plan);
    opts.nodes = (0..plan.initial_nodes)
        .map(|i| {
            let warm = base
                .clone()
                .with_images([plan.image.clone()])
                .with_boot_delay(Duration::ZERO);
            (format!("user-initial-{i}"), warm)
        })
        .collect();
    opts.default_boot_delay = plan.boot;
    opts.default_pull_time = plan.pull;
    let max_new = plan.max_nodes.saturating_sub(plan.initial_nodes);
    match plan.autoscaler_kind {
        AutoscalerKind::ClusterAutoscaler => {
            opts.autoscaler = Some(vec![NodeGroup::of_pool(base, 0, max_new as u32)]);
            opts.autoscaler_timings = plan.autoscaler.clone();
            opts.capacity_buffers = stack.uses_capacity_buffers();
        }
        AutoscalerKind::Karpenter => {
            opts.karpenter = Some(plan.karpenter.options(max_new, plan.node_cpu));
        }
    }
    opts.ready_timeout = Duration::from_secs(300);
    let cluster = Cluster::start(&opts).await.map_err(|e| e.to_string())?;
    processes::spawn_watchdog(&cluster.state_dir, std::process::id()).map_err(|e| e.to_string())?;
    let client = cluster.client().await.map_err(|e| e.to_string())?;

    let gib = 1i64 << 30;
    let obs: Shared = Arc::new(Observer {
        t0: Instant::now(),
        image: plan.image.clone(),
        user_request: Request {
            cpu_m: (plan.user_cpu * 1000.0).round() as i64,
            mem: (plan.user_memory_gib * gib as f64).round() as i64,
            pods: 1,
        },
        seen: Mutex::new(observe::Seen::for_users(sessions.len())),
    });
    let mut watches = observe::watch(&client, obs.clone());
    if plan.autoscaler_kind == AutoscalerKind::Karpenter {
        watches.push(observe::watch_node_claims(&client, obs.clone()));
    }
    let sampler = tokio::spawn({
        let obs = obs.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                obs.sample();
            }
        }
    });
    let t0_ms = jiff::Timestamp::now().as_millisecond();
    let running = stacks::start(&cluster, &client, plan, stack, t0_ms).await;
    let running = match running {
        Ok(r) => r,
        Err(e) => {
            sampler.abort();
            watches.iter().for_each(|w| w.abort());
            return Err(e);
        }
    };
    let people = users::start(&client, plan, stack, sessions, obs.clone());
    let end = obs.t0 + plan.duration;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(30).min(end - Instant::now())).await;
        let s = obs.lock();
        let last = s.samples.last().copied().unwrap_or_default();
        let ready = s.users.iter().filter(|u| u.ready_s.is_some()).count();
        eprintln!(
            "[{tag}] t={:>5.0} s (scenario {:>6.0} s): {} user nodes ({} schedulable), {} users bound, {} placeholders bound, {ready}/{} users were Ready",
            last.0,
            last.0 * plan.compression,
            last.1,
            last.2,
            last.3,
            last.4,
            sessions.len()
        );
    }
    people.iter().for_each(|p| p.abort());
    sampler.abort();
    let api_writes = running.api_writes().await;
    let numbers = numbers(plan, stack, seed, &obs).map(|mut r| {
        r.numbers.api_writes = api_writes;
        r
    });
    watches.iter().for_each(|w| w.abort());
    running.stop(&cluster.state_dir).await;
    cluster.stop();
    // Keep the logs only when asked (they are large), with the run's timeline beside them.
    if std::env::var_os("SBS_KEEP_STATE").is_some() {
        let (users, nodes) = obs.timeline_tsv(plan.compression);
        let _ = std::fs::write(format!("{dir}/users.tsv"), users);
        let _ = std::fs::write(format!("{dir}/nodes.tsv"), nodes);
        eprintln!("[{tag}] state and timelines kept in {dir}");
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    numbers
}

fn numbers(plan: &Plan, stack: Stack, seed: u64, obs: &Observer) -> Result<RealRun, String> {
    let f = plan.compression;
    let end_s = plan.duration.as_secs_f64();
    let lives = obs.user_pool_lives();
    let (boot, pull) = obs.node_timings();
    let s = obs.lock();
    let arrived: Vec<&UserSeen> = s.users.iter().filter(|u| u.arrival_s > 0.0).collect();
    let mut waits: Vec<f64> = arrived
        .iter()
        .filter_map(|u| u.ready_s.map(|r| (r - u.arrival_s) * f))
        .collect();
    waits.sort_by(f64::total_cmp);
    let bound: Vec<f64> = arrived
        .iter()
        .filter_map(|u| Some((u.bound_s? - u.created_s?) * f))
        .collect();
    let ready: Vec<f64> = arrived
        .iter()
        .filter_map(|u| Some((u.ready_s? - u.created_s?) * f))
        .collect();
    let warm: Vec<f64> = arrived
        .iter()
        .filter(|u| !u.cold_node)
        .filter_map(|u| Some(u.ready_s? - u.created_s?))
        .collect();
    let (peak, _, removed) = peak_and_removed_after(&lives, end_s);
    let nodes = s.samples.iter().map(|x| (x.0 * f, x.1 as f64)).collect();
    Ok(RealRun {
        numbers: RunNumbers {
            scenario: plan.name.clone(),
            stack: stack.key().into(),
            kind: "real".into(),
            seed,
            users: arrived.len(),
            unfinished: arrived.iter().filter(|u| u.ready_s.is_none()).count(),
            p50_start_s: metrics::median(&waits),
            p95_start_s: quantile(&finite_sorted(&waits), 0.95),
            p95_create_to_bound_s: quantile(&finite_sorted(&bound), 0.95),
            p95_create_to_ready_s: quantile(&finite_sorted(&ready), 0.95),
            p99_create_to_ready_s: quantile(&finite_sorted(&ready), 0.99),
            api_writes: None,
            node_hours: node_hours(&lives, end_s) * f,
            peak_nodes: peak,
            nodes_removed_after_peak: removed,
            placement_hol_users: arrived.iter().filter(|u| u.placement_hol).count(),
            waits_s: waits,
            nodes,
            node_boot_s: boot.iter().map(|b| b * f).collect(),
            node_pull_s: pull.iter().map(|p| p * f).collect(),
        },
        warm_create_to_ready_s: warm,
    })
}
