//! The same scenarios through hubpack-sim, at the scenario's (real) scale, for every stack:
//! the policy each stack is in the simulator's terms, the same seeds as the real runs, and
//! the free parameters fitted on the calibration scenario ([`SimParams`]).

use crate::metrics::{self, finite_sorted, median, rel_err};
use crate::plan::{Plan, Stack};
use crate::run_numbers::RunNumbers;
use hubpack_sim::engine::run_one;
use hubpack_sim::outcome::RunResult;
use hubpack_sim::runner::resolve_n;
use hubpack_sim::scenario::{PlaceholderMode, PolicySpec, Scenario, SchedulerKind};
use hubpack_sim::stats::quantile;

pub fn policy(sc: &Scenario, plan: &Plan, stack: Stack) -> PolicySpec {
    let (scheduler, placeholders) = match stack {
        Stack::Z2jh => (
            SchedulerKind::Z2jh,
            PlaceholderMode::PerUser {
                k: plan.per_user_seats,
            },
        ),
        Stack::Z2jhNuser => (
            SchedulerKind::Z2jh,
            resolve_n(
                sc,
                &PlaceholderMode::NUser { n: None, k: 1 },
                SchedulerKind::Z2jh,
            ),
        ),
        Stack::Hubpack => {
            let (pods, each) = plan.static_n_user();
            (
                SchedulerKind::Hubpack,
                PlaceholderMode::NUser {
                    n: Some(each as i64),
                    k: pods,
                },
            )
        }
        Stack::HubpackPredictive => (SchedulerKind::Hubpack, PlaceholderMode::Predictive),
        Stack::HubpackPredictiveBuffer => {
            (SchedulerKind::Hubpack, PlaceholderMode::PredictiveBuffer)
        }
    };
    PolicySpec {
        scheduler,
        placeholders,
        prepull: true,
    }
}

/// A warm start as one stack's real users show it: pod created → Ready on a warm node,
/// median (de-compressed) and log-normal σ.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WarmStartFit {
    pub median_s: f64,
    pub sigma: f64,
}

/// The simulator's free parameters, fitted on the calibration scenario's real runs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SimParams {
    /// `hub.container_start_s`: a warm start, pod created → Ready on a warm node (the
    /// median the real runs show).
    pub container_start_s: f64,
    /// `hub.container_start_sigma`: the warm starts' log-normal spread, fitted on the same
    /// users' p95 (0 in reports from before it was fitted).
    #[serde(default)]
    pub container_start_sigma: f64,
    /// Each stack's own warm start where its calibration users were enough to fit one (20
    /// or more): a warm user's start runs through that stack's scheduler (kube-scheduler's
    /// preemption cycle, or hubpack-scheduler's bind), so the stacks' tails differ. The
    /// pooled values above serve the others and the frontier's policies.
    #[serde(default)]
    pub warm_start_by_stack: std::collections::BTreeMap<String, WarmStartFit>,
    /// The user pool's node boot (created → schedulable) and the image pull (schedulable →
    /// warm), as the real cluster's nodes show them (medians): the harness adds kwok's and
    /// the controllers' reaction to the configured boot delay and pull time, ten times over
    /// when compressed. `None`: the scenario's.
    pub node_boot_s: Option<f64>,
    pub node_pull_s: Option<f64>,
    /// `autoscaler.loop_s`: one cluster-autoscaler loop (the next starts at once after a
    /// scale-up). On the compressed clusters CA's wall-clock loop is multiplied by the
    /// factor, so it is fitted: the candidate whose calibration runs come closest.
    pub loop_s: f64,
}

impl SimParams {
    /// The parameters `stack` is simulated with: its own warm start if fitted.
    pub fn for_stack(&self, stack: Stack) -> SimParams {
        let mut p = self.clone();
        if let Some(w) = self.warm_start_by_stack.get(stack.key()) {
            p.container_start_s = w.median_s;
            p.container_start_sigma = w.sigma;
        }
        p
    }
}

/// The `autoscaler.loop_s` values tried when fitting (seconds at the scenario's scale).
pub const LOOP_CANDIDATES_S: [f64; 6] = [1.0, 2.5, 5.0, 7.5, 10.0, 15.0];

/// One simulated run per seed of a stack, with the fitted parameters set.
pub fn runs(
    sc: &Scenario,
    plan: &Plan,
    stack: Stack,
    seeds: u64,
    params: &SimParams,
) -> Result<Vec<RunResult>, String> {
    runs_of_policy(sc, policy(sc, plan, stack), seeds, &params.for_stack(stack))
}

/// One simulated run per seed of any policy, with the fitted parameters set.
pub fn runs_of_policy(
    sc: &Scenario,
    policy: PolicySpec,
    seeds: u64,
    params: &SimParams,
) -> Result<Vec<RunResult>, String> {
    let mut sc = sc.clone();
    sc.hub.container_start_s = params.container_start_s;
    sc.hub.container_start_sigma = params.container_start_sigma;
    sc.autoscaler.loop_s = params.loop_s;
    if let Some(b) = params.node_boot_s {
        for pool in &mut sc.pools {
            pool.boot.median_s = b;
        }
    }
    if let Some(p) = params.node_pull_s {
        for image in &mut sc.images {
            image.pull.median_s = p;
        }
    }
    (0..seeds)
        .map(|seed| run_one(&sc, policy.clone(), seed).map_err(|e| e.to_string()))
        .collect()
}

/// Finished users' waits (arrival → Ready) and gave-up times, as hubpack-sim reports them.
pub fn waits(r: &RunResult) -> Vec<f64> {
    hubpack_sim::report::summary::waits(r)
}

/// (t, nodes) of the simulated run, every sample.
pub fn nodes_over_time(r: &RunResult) -> Vec<(f64, f64)> {
    r.samples
        .iter()
        .map(|s| (s.t_s, (s.nodes_ready + s.nodes_booting) as f64))
        .collect()
}

/// The simulated stand-in for pod creation → Ready: arrival → Ready less the hub's spawn
/// overhead, for users Ready at their first attempt (the simulator records arrivals, not pod
/// creations; a user held by the spawn limit counts that wait too).
pub fn create_to_ready_s(r: &RunResult, spawn_overhead_s: f64) -> Vec<f64> {
    r.users
        .iter()
        .filter(|u| u.attempts <= 1)
        .filter_map(|u| Some((u.ready_s? - u.arrival_s - spawn_overhead_s).max(0.0)))
        .collect()
}

pub fn placement_hol(r: &RunResult) -> usize {
    r.users.iter().filter(|u| u.placement_hol).count()
}

/// Every simulated run of `stack` on the scenario, as the report counts them.
pub fn numbers(
    sc: &Scenario,
    plan: &Plan,
    stack: Stack,
    seeds: u64,
    params: &SimParams,
) -> Result<Vec<RunNumbers>, String> {
    Ok(runs(sc, plan, stack, seeds, params)?
        .iter()
        .enumerate()
        .map(|(seed, r)| {
            let waits = waits(r);
            let ready = create_to_ready_s(r, sc.hub.spawn_overhead_s);
            let lives: Vec<metrics::Life> = r
                .nodes
                .iter()
                .map(|n| metrics::Life {
                    created_s: n.created_s,
                    deleted_s: n.deleted_s,
                })
                .collect();
            let (peak, _, removed) =
                metrics::peak_and_removed_after(&lives, sc.duration_h * 3600.0);
            RunNumbers {
                scenario: sc.name.clone(),
                stack: stack.key().into(),
                kind: "sim".into(),
                seed: seed as u64,
                users: r.users.len(),
                unfinished: r.users.iter().filter(|u| u.ready_s.is_none()).count(),
                p50_start_s: median(&waits),
                p95_start_s: quantile(&finite_sorted(&waits), 0.95),
                // The simulator records arrivals, not pod creations.
                p95_create_to_bound_s: f64::NAN,
                p95_create_to_ready_s: f64::NAN,
                p99_create_to_ready_s: quantile(&finite_sorted(&ready), 0.99),
                api_writes: None,
                node_hours: r.node_hours,
                peak_nodes: peak,
                nodes_removed_after_peak: removed,
                placement_hol_users: placement_hol(r),
                waits_s: waits,
                nodes: nodes_over_time(r),
                node_boot_s: Vec::new(),
                node_pull_s: Vec::new(),
            }
        })
        .collect())
}

/// Median of `f` over `runs` of one scenario, stack and kind.
pub fn median_of(
    runs: &[RunNumbers],
    scenario: &str,
    stack: Stack,
    kind: &str,
    f: impl Fn(&RunNumbers) -> f64,
) -> f64 {
    let v: Vec<f64> = runs
        .iter()
        .filter(|r| r.scenario == scenario && r.stack == stack.key() && r.kind == kind)
        .map(f)
        .collect();
    median(&v)
}

/// How far simulated runs are from the real ones on one scenario: the mean, over stacks
/// with real runs, of the relative errors of the median p95 start and node-hours.
pub fn error_against(
    real: &[RunNumbers],
    sim: &[RunNumbers],
    scenario: &str,
    stacks: &[Stack],
) -> f64 {
    let mut errs = Vec::new();
    for &stack in stacks {
        for f in [
            |r: &RunNumbers| r.p95_start_s,
            |r: &RunNumbers| r.node_hours,
        ] {
            let (re, si) = (
                median_of(real, scenario, stack, "real", f),
                median_of(sim, scenario, stack, "sim", f),
            );
            if re.is_finite() && si.is_finite() {
                errs.push(rel_err(si, re));
            }
        }
    }
    if errs.is_empty() {
        f64::NAN
    } else {
        errs.iter().sum::<f64>() / errs.len() as f64
    }
}

/// `autoscaler.loop_s` fitted on the calibration scenario's real runs: the candidate with
/// the smallest [`error_against`] them (each candidate's error printed).
pub fn fit_loop_s(
    sc: &Scenario,
    plan: &Plan,
    stacks: &[Stack],
    seeds: u64,
    base: &SimParams,
    real: &[RunNumbers],
) -> Result<f64, String> {
    let mut best = (f64::INFINITY, sc.autoscaler.loop_s);
    for loop_s in LOOP_CANDIDATES_S {
        let params = SimParams {
            loop_s,
            ..base.clone()
        };
        let mut sim = Vec::new();
        for &stack in stacks {
            sim.extend(numbers(sc, plan, stack, seeds, &params)?);
        }
        let err = error_against(real, &sim, &sc.name, stacks);
        eprintln!(
            "calibration on {}: autoscaler.loop_s {loop_s:>4} s → mean error {:.1}%",
            sc.name,
            err * 100.0
        );
        if err < best.0 {
            best = (err, loop_s);
        }
    }
    Ok(best.1)
}
