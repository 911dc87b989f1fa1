//! Runs a scenario: one policy × seeds, or the whole policy grid × seeds, in parallel with
//! rayon (each run stays single-threaded and deterministic), with an optional progress bar.

use crate::engine::{RunError, run_one};
use crate::models::placeholders::PlaceholderState;
use crate::outcome::RunResult;
use crate::scenario::{AutoscalerKind, PlaceholderMode, PolicySpec, Scenario, SchedulerKind};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

/// Every point of the scenario's policy grid. An `n-user` mode without N gets the N of
/// the placeholder pool (a fresh node's worth), so labels show the real size. A
/// CapacityBuffer is hubpack-placeholder-ctl's backend for hubpack-scheduler on
/// cluster-autoscaler: `predictive_buffer` pairs with the hubpack scheduler only, and is
/// left out on Karpenter.
pub fn grid(sc: &Scenario) -> Vec<PolicySpec> {
    let mut out = Vec::new();
    for &scheduler in &sc.policies.schedulers {
        for placeholders in &sc.policies.placeholders {
            if *placeholders == PlaceholderMode::PredictiveBuffer
                && (scheduler != SchedulerKind::Hubpack
                    || sc.autoscaler.kind == AutoscalerKind::Karpenter)
            {
                continue;
            }
            for prepull in sc.policies.prepull.values() {
                out.push(PolicySpec {
                    scheduler,
                    placeholders: resolve_n(sc, placeholders, scheduler),
                    prepull,
                });
            }
        }
    }
    out
}

/// Fills in N for `n-user` placeholders from the scenario when it is left out; a size that
/// cannot be computed stays unresolved (the run then reports the configuration error).
pub fn resolve_n(
    sc: &Scenario,
    mode: &PlaceholderMode,
    scheduler: crate::scenario::SchedulerKind,
) -> PlaceholderMode {
    match mode {
        PlaceholderMode::NUser { n: None, k } => match PlaceholderState::new(sc, mode, scheduler) {
            Ok(state) => PlaceholderMode::NUser {
                n: Some(state.seats_each),
                k: *k,
            },
            Err(_) => mode.clone(),
        },
        other => other.clone(),
    }
}

/// Runs every policy for seeds `0..seeds`; results are grouped per policy, in seed order.
pub fn run_grid(
    sc: &Scenario,
    policies: &[PolicySpec],
    seeds: u64,
    progress: bool,
) -> Result<Vec<Vec<RunResult>>, RunError> {
    let jobs: Vec<(usize, u64)> = (0..policies.len())
        .flat_map(|p| (0..seeds).map(move |s| (p, s)))
        .collect();
    let bar = if progress {
        let b = ProgressBar::new(jobs.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} runs {elapsed}") {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let results: Result<Vec<RunResult>, RunError> = jobs
        .par_iter()
        .map(|&(p, seed)| {
            let r = run_one(sc, policies[p].clone(), seed);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    let mut grouped: Vec<Vec<RunResult>> = policies.iter().map(|_| Vec::new()).collect();
    for (r, &(p, _)) in results?.into_iter().zip(&jobs) {
        grouped[p].push(r);
    }
    Ok(grouped)
}
