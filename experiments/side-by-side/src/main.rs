//! `cargo xtask bench side-by-side [--scenario FILE]... [--runs N] [--compression F]
//! [--autoscaler cluster-autoscaler|karpenter] [--stacks a,b] [--out DIR]`, or
//! `cargo run --release -p hubpack-side-by-side -- [ARGS]` (the binary also takes
//! `--validation-runs N --parallel N --real-from FILE` and the simulator's parameters): the
//! side-by-side experiment (see the library's doc). The JSON summary is the last line of
//! stdout.
//!
//! To read one run closely: `SBS_KEEP_STATE=1` keeps each cluster's state directory (the
//! components' logs; `HUBPACK_CA_VERBOSITY=4` for CA's) with `users.tsv` and `nodes.tsv`,
//! the run's per-user and per-node timeline at the scenario's scale; `RUST_LOG=…` prints the
//! in-process controllers' logs (e.g. `hubpack_placeholder_ctl=info`: every decision).

#![allow(clippy::unwrap_used)] // an experiment may unwrap

use clap::Parser;
use futures::StreamExt;
use hubpack_side_by_side::metrics::{self, rel_err};
use hubpack_side_by_side::plan::{self, ALL_STACKS, Plan, STACKS, Stack};
use hubpack_side_by_side::report;
use hubpack_side_by_side::run_numbers::RunNumbers;
use hubpack_side_by_side::simulate::{self, SimParams, WarmStartFit};
use hubpack_side_by_side::{frontier, real};
use hubpack_sim::scenario::{AutoscalerKind, Scenario};
use std::path::PathBuf;

const CALIBRATION: &str = "sbs-class-burst";

#[derive(Parser)]
struct Args {
    /// Scenario files (default: the three in sim/scenarios/side-by-side/).
    #[arg(long)]
    scenario: Vec<PathBuf>,
    /// Real runs per stack and scenario (seeds 0..N; the simulator uses the same seeds).
    #[arg(long, default_value_t = 3)]
    runs: u64,
    /// Real runs per stack of the validation scenarios (default: --runs).
    #[arg(long)]
    validation_runs: Option<u64>,
    /// Every duration of the scenario is divided by this for the real runs.
    #[arg(long, default_value_t = 10.0)]
    compression: f64,
    /// Comma-separated stacks (z2jh, z2jh_nuser, hubpack, hubpack_predictive,
    /// hubpack_predictive_buffer); default the first four (with --real-from: those the
    /// report has real runs of).
    #[arg(long)]
    stacks: Option<String>,
    /// The autoscaler of the real clusters and the simulator: cluster-autoscaler or
    /// karpenter (default cluster-autoscaler; with --real-from, the report's).
    #[arg(long)]
    autoscaler: Option<AutoscalerKind>,
    /// Real runs at once (each its own cluster).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// The report directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run no cluster: take the real runs from an earlier report's summary.json (or its
    /// real-runs.jsonl) and only simulate again (e.g. after a model fix).
    #[arg(long)]
    real_from: Option<PathBuf>,
    /// The simulator's warm start instead of the fitted one (with --real-from: default the
    /// value that report was fitted with).
    #[arg(long)]
    container_start_s: Option<f64>,
    /// The warm start's spread (log-normal σ) instead of the fitted one (with --real-from:
    /// default the value that report was fitted with, else 0).
    #[arg(long)]
    container_start_sigma: Option<f64>,
    /// The simulator's cluster-autoscaler loop (seconds at the scenario's scale) instead of
    /// fitting it on the calibration scenario.
    #[arg(long)]
    loop_s: Option<f64>,
    /// The simulator's node boot (created → schedulable, seconds at the scenario's scale)
    /// instead of the calibration runs' median (for reports without node timings).
    #[arg(long)]
    node_boot_s: Option<f64>,
    /// The simulator's image pull (schedulable → warm) instead of the calibration runs'.
    #[arg(long)]
    node_pull_s: Option<f64>,
}

fn main() {
    // The in-process controllers' logs (placeholder decisions, scheduling) only when asked:
    // `RUST_LOG=hubpack_placeholder_ctl=info` to read a run's decisions beside its timeline.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Err(e) = runtime.block_on(bench(Args::parse())) {
        eprintln!("side-by-side: {e}");
        std::process::exit(1);
    }
}

/// The workspace root (this crate lives in `experiments/side-by-side/`).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn bench(args: Args) -> Result<(), String> {
    let files = if args.scenario.is_empty() {
        ["class-burst", "steady", "event"]
            .iter()
            .map(|n| root().join(format!("sim/scenarios/side-by-side/{n}.yaml")))
            .collect()
    } else {
        args.scenario.clone()
    };
    let earlier = match &args.real_from {
        Some(file) => Some(earlier_real_runs(file)?),
        None => None,
    };
    let stacks: Vec<Stack> = match (&args.stacks, &earlier) {
        (Some(list), _) => list
            .split(',')
            .map(|s| {
                Stack::parse(s.trim()).ok_or(format!(
                    "--stacks: unknown stack {s:?} ({})",
                    ALL_STACKS.map(Stack::key).join(", ")
                ))
            })
            .collect::<Result<_, _>>()?,
        (None, Some(e)) => ALL_STACKS
            .into_iter()
            .filter(|s| e.runs.iter().any(|r| r.stack == s.key()))
            .collect(),
        (None, None) => STACKS.to_vec(),
    };
    let autoscaler = args
        .autoscaler
        .or(earlier.as_ref().and_then(|e| e.autoscaler))
        .unwrap_or_default();
    if let Some(why) = stacks.iter().find_map(|s| s.refused_on(autoscaler)) {
        return Err(why);
    }
    let f = args.compression;
    if !(f >= 1.0 && f.is_finite()) {
        return Err(format!("--compression {f}: must be a number ≥ 1"));
    }
    let mut scenarios = Vec::new();
    for file in &files {
        let mut sc = Scenario::load(file).map_err(|e| e.to_string())?;
        // The real clusters and the simulator run the same autoscaler, with the scenario's
        // settings for it.
        sc.autoscaler.kind = autoscaler;
        let plan = Plan::new(&sc, f).map_err(|e| format!("{}: {e}", file.display()))?;
        // What the simulator runs: Karpenter's wall-clock loops at the scenario's scale.
        plan::karpenter_loops_at_scale(&mut sc, f);
        scenarios.push((sc, plan));
    }
    // The calibration scenario first: its real runs fit the simulator.
    let cal = scenarios
        .iter()
        .position(|(sc, _)| sc.name == CALIBRATION)
        .unwrap_or(0);
    scenarios.swap(0, cal);

    let runs_of = |i: usize| match i {
        0 => args.runs,
        _ => args.validation_runs.unwrap_or(args.runs),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root().join("out/side-by-side"));
    let (mut all, mut fitted) = match earlier {
        Some(e) => (e.runs, e.warm_start),
        None => real_runs(&args, &scenarios, &stacks, &out).await,
    };
    if args.container_start_s.is_some() || args.container_start_sigma.is_some() {
        // A warm start given on the command line is every stack's.
        fitted.by_stack.clear();
    }
    let container_start_s = args
        .container_start_s
        .or(fitted.median_s)
        .unwrap_or(scenarios[0].0.hub.container_start_s);
    let container_start_sigma = args
        .container_start_sigma
        .or(fitted.sigma)
        .unwrap_or(scenarios[0].0.hub.container_start_sigma);
    // The calibration scenario's real nodes: boot and pull as the harness delivers them.
    let node_median = |f: &dyn Fn(&RunNumbers) -> &Vec<f64>| {
        let v: Vec<f64> = all
            .iter()
            .filter(|r| r.kind == "real" && r.scenario == scenarios[0].0.name)
            .flat_map(|r| f(r).iter().copied())
            .collect();
        (!v.is_empty()).then(|| metrics::median(&v))
    };
    let mut params = SimParams {
        container_start_s,
        container_start_sigma,
        warm_start_by_stack: fitted.by_stack.clone(),
        node_boot_s: args.node_boot_s.or(node_median(&|r| &r.node_boot_s)),
        node_pull_s: args.node_pull_s.or(node_median(&|r| &r.node_pull_s)),
        loop_s: scenarios[0].0.autoscaler.loop_s,
    };
    params.loop_s = match args.loop_s {
        Some(l) => l,
        // The loop is cluster-autoscaler's: nothing to fit on Karpenter.
        None if autoscaler == AutoscalerKind::Karpenter => params.loop_s,
        None => {
            let (sc, plan) = &scenarios[0];
            simulate::fit_loop_s(sc, plan, &stacks, runs_of(0), &params, &all)?
        }
    };
    eprintln!(
        "simulating on {} with {params:?} (fitted on {}; scenario: boot {} s, pull {} s)",
        autoscaler.name(),
        scenarios[0].0.name,
        scenarios[0].0.pools[0].boot.median_s,
        scenarios[0].0.images[0].pull.median_s,
    );
    for (i, (sc, plan)) in scenarios.iter().enumerate() {
        for &stack in &stacks {
            all.extend(simulate::numbers(sc, plan, stack, runs_of(i), &params)?);
        }
    }

    // Medians over runs.
    let med = |sc: &str, stack: Stack, kind: &str, f: &dyn Fn(&RunNumbers) -> f64| {
        simulate::median_of(&all, sc, stack, kind, f)
    };
    let cal_name = scenarios[0].0.name.clone();
    let validation: Vec<String> = scenarios[1..]
        .iter()
        .map(|(sc, _)| sc.name.clone())
        .collect();
    let judged = if validation.is_empty() {
        vec![cal_name.clone()]
    } else {
        validation.clone()
    };
    eprintln!(
        "\nscenario / stack: real vs sim (medians; seconds and node-hours at the scenario's scale)"
    );
    let (mut p95_err, mut nh_err) = (0.0f64, 0.0f64);
    for (sc, _) in &scenarios {
        for &stack in &stacks {
            let p95 = |k| med(&sc.name, stack, k, &|r| r.p95_start_s);
            let nh = |k| med(&sc.name, stack, k, &|r| r.node_hours);
            let hol = |k| med(&sc.name, stack, k, &|r| r.placement_hol_users as f64);
            let (pe, ne) = (
                rel_err(p95("sim"), p95("real")),
                rel_err(nh("sim"), nh("real")),
            );
            eprintln!(
                "  {:<16} {:<18} p95 {:>6.0} vs {:>6.0} s ({:>4.0}%), node-hours {:>6.2} vs {:>6.2} ({:>4.0}%), HOL {:.0} vs {:.0}, removed after peak {:.0} vs {:.0}",
                sc.name,
                stack.key(),
                p95("real"),
                p95("sim"),
                pe * 100.0,
                nh("real"),
                nh("sim"),
                ne * 100.0,
                hol("real"),
                hol("sim"),
                med(&sc.name, stack, "real", &|r| r.nodes_removed_after_peak
                    as f64),
                med(&sc.name, stack, "sim", &|r| r.nodes_removed_after_peak
                    as f64),
            );
            if judged.contains(&sc.name) && p95("real").is_finite() {
                p95_err = p95_err.max(pe);
                nh_err = nh_err.max(ne);
            }
        }
    }
    let real = |stack, f: &dyn Fn(&RunNumbers) -> f64| med(&cal_name, stack, "real", f);
    let num = |x: f64| {
        if x.is_finite() {
            serde_json::json!((x * 1000.0).round() / 1000.0)
        } else {
            serde_json::Value::Null
        }
    };
    let p95 = |r: &RunNumbers| r.p95_start_s;
    let nh = |r: &RunNumbers| r.node_hours;
    let hol = |r: &RunNumbers| r.placement_hol_users as f64;
    let ready_p99 = |r: &RunNumbers| r.p99_create_to_ready_s;
    let writes = |r: &RunNumbers| r.api_writes.unwrap_or(f64::NAN);
    let sim = |stack, f: &dyn Fn(&RunNumbers) -> f64| med(&cal_name, stack, "sim", f);
    let (pred, buf) = (Stack::HubpackPredictive, Stack::HubpackPredictiveBuffer);
    let line = format!(
        "{{\"bench\":\"side-by-side\",\"autoscaler\":\"{}\",\"z2jh_p95_start_s\":{},\"z2jh_nuser_p95_start_s\":{},\"hubpack_p95_start_s\":{},\"hubpack_predictive_p95_start_s\":{},\"z2jh_node_hours\":{},\"z2jh_nuser_node_hours\":{},\"hubpack_node_hours\":{},\"hubpack_predictive_node_hours\":{},\"z2jh_hol_users\":{},\"hubpack_hol_users\":{},\"sim_vs_real_p95_err\":{},\"sim_vs_real_node_hours_err\":{},\"hubpack_predictive_buffer_p95_start_s\":{},\"hubpack_predictive_buffer_node_hours\":{},\"hubpack_predictive_ready_p99_s\":{},\"hubpack_predictive_sim_ready_p99_s\":{},\"hubpack_predictive_api_writes\":{},\"hubpack_predictive_buffer_ready_p99_s\":{},\"hubpack_predictive_buffer_sim_ready_p99_s\":{},\"hubpack_predictive_buffer_api_writes\":{}}}",
        autoscaler.name(),
        num(real(Stack::Z2jh, &p95)),
        num(real(Stack::Z2jhNuser, &p95)),
        num(real(Stack::Hubpack, &p95)),
        num(real(Stack::HubpackPredictive, &p95)),
        num(real(Stack::Z2jh, &nh)),
        num(real(Stack::Z2jhNuser, &nh)),
        num(real(Stack::Hubpack, &nh)),
        num(real(Stack::HubpackPredictive, &nh)),
        num(real(Stack::Z2jh, &hol)),
        num(real(Stack::Hubpack, &hol)),
        num(p95_err),
        num(nh_err),
        num(real(buf, &p95)),
        num(real(buf, &nh)),
        num(real(pred, &ready_p99)),
        num(sim(pred, &ready_p99)),
        num(real(pred, &writes)),
        num(real(buf, &ready_p99)),
        num(sim(buf, &ready_p99)),
        num(real(buf, &writes)),
    );
    report::write(&out, &all, &line, &params)
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
    // What a static budget costs on each scenario, against the goal (simulator only).
    for (i, (sc, plan)) in scenarios.iter().enumerate() {
        let (points, goal) = frontier::sweep(sc, plan, runs_of(i), &params)?;
        let real_points: Vec<(String, f64, f64)> = ALL_STACKS
            .iter()
            .map(|&s| {
                let real = |f: &dyn Fn(&RunNumbers) -> f64| med(&sc.name, s, "real", f);
                (s.key().to_string(), real(&p95), real(&nh))
            })
            .filter(|(_, p, n)| p.is_finite() && n.is_finite())
            .collect();
        report::write_frontier(&out, &sc.name, &points, &goal, &real_points)
            .map_err(|e| format!("writing {}: {e}", out.display()))?;
        eprintln!(
            "static budgets on {}: {}",
            sc.name,
            frontier::verdict(&points, &goal)
        );
    }
    eprintln!(
        "\ncalibrated on {cal_name}; sim errors judged on {judged:?} (largest over stacks); report in {}",
        out.display()
    );
    println!("{line}");
    Ok(())
}

/// Every real run, `parallel` at a time, and the simulator's warm start fitted on the first
/// (calibration) scenario's runs.
async fn real_runs(
    args: &Args,
    scenarios: &[(Scenario, Plan)],
    stacks: &[Stack],
    out: &std::path::Path,
) -> (Vec<RunNumbers>, WarmStart) {
    // Each run's numbers as soon as it ends, so a crash loses no finished run.
    let _ = std::fs::create_dir_all(out);
    let log = out.join("real-runs.jsonl");
    let mut jobs = Vec::new();
    let runs_of = |i: usize| match i {
        0 => args.runs,
        _ => args.validation_runs.unwrap_or(args.runs),
    };
    for (i, (sc, plan)) in scenarios.iter().enumerate() {
        for seed in 0..runs_of(i) {
            let sessions = match Plan::sessions(sc, seed, plan.compression) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{}: {e}", sc.name);
                    continue;
                }
            };
            for &stack in stacks {
                jobs.push((i, plan.clone(), stack, seed, sessions.clone()));
            }
        }
    }
    eprintln!(
        "side-by-side: {} real runs ({} scenarios × {} stacks; {} runs of the calibration scenario, {} of the others), {} at a time, compression {}",
        jobs.len(),
        scenarios.len(),
        stacks.len(),
        args.runs,
        args.validation_runs.unwrap_or(args.runs),
        args.parallel,
        args.compression
    );
    let results: Vec<(usize, Result<real::RealRun, String>)> = futures::stream::iter(jobs)
        .map(|(i, plan, stack, seed, sessions)| {
            let log = &log;
            async move {
            let started = std::time::Instant::now();
            let r = real::run(&plan, stack, seed, &sessions).await;
            match &r {
                Ok(r) => eprintln!(
                    "[{} {} seed {seed}] done in {:.0} s: p95 start {:.0} s, node-hours {:.2}, HOL {}",
                    plan.name,
                    stack.key(),
                    started.elapsed().as_secs_f64(),
                    r.numbers.p95_start_s,
                    r.numbers.node_hours,
                    r.numbers.placement_hol_users
                ),
                Err(e) => eprintln!("[{} {} seed {seed}] failed: {e}", plan.name, stack.key()),
            }
            if let Ok(r) = &r {
                use std::io::Write as _;
                let line = serde_json::to_string(&r.numbers).unwrap_or_default();
                let appended = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .and_then(|mut f| writeln!(f, "{line}"));
                if let Err(e) = appended {
                    eprintln!("{}: {e}", log.display());
                }
            }
            (i, r)
            }
        })
        .buffer_unordered(args.parallel.max(1))
        .collect()
        .await;

    // Calibrate on the first scenario's real runs.
    // The calibration scenario's warm users: every stack's, or one stack's.
    let warm_of = |stack: Option<Stack>| -> Vec<f64> {
        results
            .iter()
            .filter(|(i, _)| *i == 0)
            .filter_map(|(_, r)| r.as_ref().ok())
            .filter(|r| stack.is_none_or(|s| r.numbers.stack == s.key()))
            .flat_map(|r| r.warm_create_to_ready_s.iter().copied())
            .collect()
    };
    let warm = warm_of(None);
    let mut fitted = WarmStart {
        median_s: metrics::calibrated_container_start_s(&warm, args.compression),
        sigma: metrics::calibrated_container_start_sigma(&warm),
        by_stack: Default::default(),
    };
    eprintln!(
        "calibration on {}: warm pod created → Ready over {} users: median {:?} s, σ {:?} (scenario values {}, {})",
        scenarios[0].0.name,
        warm.len(),
        fitted.median_s,
        fitted.sigma,
        scenarios[0].0.hub.container_start_s,
        scenarios[0].0.hub.container_start_sigma
    );
    // Each stack's own, where it has enough warm users.
    for &stack in stacks {
        let warm = warm_of(Some(stack));
        if let (Some(median_s), Some(sigma)) = (
            metrics::calibrated_container_start_s(&warm, args.compression),
            metrics::calibrated_container_start_sigma(&warm),
        ) {
            eprintln!(
                "calibration on {}, {}: {} warm users: median {median_s:.3} s, σ {sigma:.3}",
                scenarios[0].0.name,
                stack.key(),
                warm.len()
            );
            fitted
                .by_stack
                .insert(stack.key().into(), WarmStartFit { median_s, sigma });
        }
    }
    let all = results
        .into_iter()
        .filter_map(|(_, r)| r.ok().map(|r| r.numbers))
        .collect();
    (all, fitted)
}

/// The warm start fitted on the calibration scenario's real runs: median and log-normal σ
/// (None: not fitted, e.g. no warm users, or a report from before σ was fitted).
#[derive(Clone, Debug, Default)]
struct WarmStart {
    median_s: Option<f64>,
    sigma: Option<f64>,
    /// Each stack's own (see `SimParams::warm_start_by_stack`).
    by_stack: std::collections::BTreeMap<String, WarmStartFit>,
}

/// What `--real-from` takes from an earlier report.
struct Earlier {
    runs: Vec<RunNumbers>,
    /// The warm start it fitted (none from real-runs.jsonl).
    warm_start: WarmStart,
    /// The autoscaler its runs used (None: before the summary said).
    autoscaler: Option<AutoscalerKind>,
}

/// The real runs of an earlier report, the warm start it fitted and its autoscaler.
fn earlier_real_runs(file: &std::path::Path) -> Result<Earlier, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if file.extension().is_some_and(|x| x == "jsonl") {
        // real-runs.jsonl: one run a line, no fitted value (give --container-start-s).
        let runs = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", file.display())))
            .collect::<Result<_, _>>()?;
        return Ok(Earlier {
            runs,
            warm_start: WarmStart::default(),
            autoscaler: None,
        });
    }
    let earlier: report::Earlier =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let autoscaler = earlier.autoscaler()?;
    let runs = earlier
        .runs
        .into_iter()
        .filter(|r| r.kind == "real")
        .collect();
    Ok(Earlier {
        runs,
        warm_start: WarmStart {
            median_s: earlier.container_start_s,
            sigma: earlier.container_start_sigma,
            by_stack: earlier.warm_start_by_stack,
        },
        autoscaler,
    })
}
