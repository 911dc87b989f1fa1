//! The same scenarios through hubpack-sim, at the scenario's (real) scale, for every stack:
//! the policy each stack is in the simulator's terms, the same seeds as the real runs, and
//! the one free parameter fitted on the calibration scenario (`hub.container_start_s`, a
//! warm start: pod created → Ready on a warm node).

use crate::plan::{Plan, Stack};
use hubpack_sim::engine::{PolicySpec, run_one};
use hubpack_sim::metrics::RunResult;
use hubpack_sim::runner::resolve_n;
use hubpack_sim::scenario::{PlaceholderMode, Scenario, SchedulerKind};

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
    };
    PolicySpec {
        scheduler,
        placeholders,
        prepull: true,
    }
}

/// One simulated run per seed, with `container_start_s` set.
pub fn runs(
    sc: &Scenario,
    plan: &Plan,
    stack: Stack,
    seeds: u64,
    container_start_s: f64,
) -> Result<Vec<RunResult>, String> {
    let mut sc = sc.clone();
    sc.hub.container_start_s = container_start_s;
    (0..seeds)
        .map(|seed| run_one(&sc, policy(&sc, plan, stack), seed).map_err(|e| e.to_string()))
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

pub fn placement_hol(r: &RunResult) -> usize {
    r.users.iter().filter(|u| u.placement_hol).count()
}
