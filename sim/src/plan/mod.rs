//! `hubpack-sim plan`: given a hub (a scenario, or one event described by flags, optionally
//! with the operator's z2jh config.yaml) find the cheapest placeholder setting whose p95
//! wait meets a target with zero placement head-of-line blocking over the scenario's
//! seeds, next to z2jh as configured.
//!
//! The search runs hubpack (the scheduler the chart installs) with pre-pull, over each
//! family: no placeholders; per-user K (binary search on K); N-user placeholders of a
//! fresh node's worth × K (binary search on K); predictive with z from a ladder (and a
//! floor of one placeholder if no z is enough), bounded by the pool's capacity. Waits and
//! cost grow monotonically enough in K and z for the first setting that meets the target
//! to be the cheapest of its family; the cheapest over families is recommended.
//!
//! The search runs at `--expect-error` × the expected users (a margin for a forecast that
//! is short), so the recommendation still meets the target if more users come; the
//! recommendation and z2jh as configured are then also run at the expected users.

pub mod capacity;
pub mod event;
pub mod output;
pub mod pools;

use crate::engine::RunError;
use crate::models::placeholders::PlaceholderState;
use crate::report::summary::{PolicySummary, Summary};
use crate::runner::run_grid;
use crate::scenario::{PlaceholderMode, PolicySpec, PredictiveSpec, Scenario, SchedulerKind};
use hubpack_core::headroom::seats_in;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

/// What `plan` aims for.
#[derive(Debug, Clone)]
pub struct Target {
    pub p95_s: f64,
    pub seeds: u64,
}

/// One setting, evaluated over the seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Candidate {
    pub family: &'static str,
    pub label: String,
    pub policy: PolicySpec,
    /// The predictive controller's settings (predictive family only).
    pub predictive: Option<PredictiveSpec>,
    pub summary: PolicySummary,
    pub meets_target: bool,
    /// Seeds run: all of them, or the first few when those already settled it (a clear
    /// miss, or dearer than a setting that meets the target).
    pub seeds_run: u64,
    /// Kept as `outcome` in `plan --json`.
    #[serde(rename = "outcome")]
    pub verdict: Verdict,
}

/// How a setting fared against the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Meets,
    Misses,
    /// Stopped after the first seeds: it costs more than a setting that meets the target.
    Dearer,
}

impl Candidate {
    pub fn p95(&self) -> f64 {
        self.summary.wait_p95_s.mean
    }
    pub fn cost(&self) -> f64 {
        self.summary.cost.mean
    }
    pub fn placement_hol(&self) -> f64 {
        self.summary.placement_hol.mean
    }
}

/// How the search runs besides its target.
#[derive(Debug, Clone)]
pub struct Options {
    /// The recommendation must meet the target with this many times the expected users.
    pub expect_error: f64,
    /// A spinner on stderr (drawn only on a terminal).
    pub progress: bool,
}

/// The baseline and the recommendation at the expected users (the search ran at the
/// margin's load).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AtExpected {
    pub users: usize,
    pub baseline: PolicySummary,
    pub recommended: PolicySummary,
}

/// The predictive recommendation's p95 when arrivals are `factor` × the calendar.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sensitivity {
    pub factor: f64,
    pub seeds: u64,
    pub wait_p95_s: f64,
    pub placement_hol: f64,
    pub cost: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub target_p95_s: f64,
    pub seeds: u64,
    /// z2jh as configured (`--z2jh-values`) or as shipped.
    pub baseline: Candidate,
    pub baseline_description: String,
    pub recommended: Option<Candidate>,
    /// Every setting evaluated, in search order.
    pub evaluated: Vec<Candidate>,
    pub sensitivity: Vec<Sensitivity>,
    pub runs: u64,
    pub elapsed_s: f64,
    /// The search ran at this many times the expected users (`--expect-error`).
    pub expect_error: f64,
    /// Users arriving in the first seed: expected, and at the margin's load.
    pub users_expected: usize,
    pub users_searched: usize,
    /// With a margin: the baseline and the recommendation at the expected users.
    pub at_expected: Option<AtExpected>,
    /// The scenario with the recommendation in it, to save and rerun.
    #[serde(skip)]
    pub scenario: Scenario,
}

/// The z ladder for the predictive family: no margin up to ~p99.9.
const Z_LADDER: [f64; 6] = [0.0, 0.5, 1.0, 1.64, 2.33, 3.0];
/// Forecast errors the predictive recommendation is checked against.
const FACTORS: [f64; 3] = [0.75, 1.25, 1.5];

struct Search<'a> {
    sc: &'a Scenario,
    target: &'a Target,
    bar: ProgressBar,
    evaluated: Vec<Candidate>,
    runs: u64,
    /// The cheapest cost among settings that meet the target so far.
    best_cost: f64,
}

/// Seeds run first; the rest only if those do not settle the outcome. A setting's cost
/// varies by ~1% between seeds, and a clear miss is clear on any seed.
const SCREEN_SEEDS: u64 = 2;
/// Seeds for each forecast-error check of the recommendation.
const SENSITIVITY_SEEDS: u64 = 5;
/// A screened p95 this many times the target is a clear miss.
const CLEAR_MISS: f64 = 2.0;
/// A screened cost this much above the best so far cannot win.
const DEARER: f64 = 1.1;

impl Search<'_> {
    fn eval(
        &mut self,
        family: &'static str,
        sc: &Scenario,
        policy: PolicySpec,
        predictive: Option<PredictiveSpec>,
    ) -> Result<Candidate, RunError> {
        self.eval_with(family, sc, policy, predictive, true)
    }

    /// Evaluates a setting; with `screen`, the first seeds may settle it (a placement HOL,
    /// a clear miss, or a cost above the best so far) before the rest are run.
    fn eval_with(
        &mut self,
        family: &'static str,
        sc: &Scenario,
        policy: PolicySpec,
        predictive: Option<PredictiveSpec>,
        screen: bool,
    ) -> Result<Candidate, RunError> {
        self.bar.set_message(policy.label());
        let all = self.target.seeds;
        let first = if screen { SCREEN_SEEDS.min(all) } else { all };
        let mut runs = run_grid(sc, std::slice::from_ref(&policy), first, false)?;
        self.runs += first;
        let mut summary = Summary::of(sc, &runs).policies.remove(0);
        let mut verdict = None;
        if first < all {
            if summary.placement_hol.mean > 0.0
                || summary.wait_p95_s.mean > CLEAR_MISS * self.target.p95_s
            {
                verdict = Some(Verdict::Misses);
            } else if summary.cost.mean > DEARER * self.best_cost {
                verdict = Some(Verdict::Dearer);
            }
        }
        let seeds_run = if verdict.is_some() {
            first
        } else {
            if first < all {
                let rest = run_seeds(sc, &policy, first..all)?;
                runs[0].extend(rest);
                self.runs += all - first;
                summary = Summary::of(sc, &runs).policies.remove(0);
            }
            all
        };
        // A setting under which spawns fail never meets the target, however short the
        // waits of those who got in.
        let meets = summary.wait_p95_s.mean <= self.target.p95_s
            && summary.placement_hol.mean == 0.0
            && summary.failed_spawns.mean == 0.0
            && summary.wait_p95_s.mean.is_finite();
        let verdict = verdict.unwrap_or(if meets {
            Verdict::Meets
        } else {
            Verdict::Misses
        });
        if verdict == Verdict::Meets && family != "z2jh as configured" {
            self.best_cost = self.best_cost.min(summary.cost.mean);
        }
        self.bar.inc(1);
        let label = match &predictive {
            Some(p) => format!(
                "{} (z {}, {}..{} seats)",
                policy.label(),
                p.z,
                p.min_seats,
                p.max_seats
            ),
            None => with_placeholder_size(sc, &policy),
        };
        let c = Candidate {
            family,
            label,
            policy,
            predictive,
            summary,
            meets_target: verdict == Verdict::Meets,
            seeds_run,
            verdict,
        };
        self.evaluated.push(c.clone());
        Ok(c)
    }

    fn hubpack(placeholders: PlaceholderMode) -> PolicySpec {
        PolicySpec {
            scheduler: SchedulerKind::Hubpack,
            placeholders,
            prepull: true,
        }
    }

    /// The cheapest k in 1..=hi for which `mode(k)` meets the target (binary search: more
    /// placeholders wait less and cost more). A setting dearer than the best so far sends
    /// the search lower, like a pass, without being one.
    fn smallest_k(
        &mut self,
        family: &'static str,
        hi: usize,
        mode: impl Fn(usize) -> PlaceholderMode,
    ) -> Result<(), RunError> {
        let sc = self.sc;
        if !self.surely_dearer(&mode(hi))
            && self
                .eval(family, sc, Self::hubpack(mode(hi)), None)?
                .verdict
                == Verdict::Misses
        {
            return Ok(());
        }
        let (mut lo, mut hi) = (1usize, hi.saturating_sub(1));
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            let verdict = if self.surely_dearer(&mode(mid)) {
                Verdict::Dearer
            } else {
                self.eval(family, sc, Self::hubpack(mode(mid)), None)?
                    .verdict
            };
            match verdict {
                Verdict::Misses => lo = mid + 1,
                Verdict::Meets | Verdict::Dearer => {
                    if mid == 0 {
                        break;
                    }
                    hi = mid - 1;
                }
            }
        }
        Ok(())
    }
}

impl Search<'_> {
    /// Whether a static setting must cost more than the best so far, without running it:
    /// its placeholders exist all run long, so from the first boot on the cluster keeps at
    /// least the nodes they fill (up to the pool's maximum).
    fn surely_dearer(&self, mode: &PlaceholderMode) -> bool {
        let Ok(state) = PlaceholderState::new(self.sc, mode, SchedulerKind::Hubpack) else {
            return false;
        };
        let pool = &self.sc.pools[state.pool];
        let fresh = &pool.allocatable.to_resources() - &pool.daemonset_overhead.to_resources();
        let per_node = usize::try_from(seats_in(&fresh, &state.request)).unwrap_or(0);
        let nodes = state.desired.div_ceil(per_node.max(1)).min(pool.max_nodes) as f64;
        let hours = (self.sc.duration_h - 2.0 * pool.boot.median_s / 3600.0).max(0.0);
        nodes * hours * self.sc.price_per_node_hour > DEARER * self.best_cost
    }
}

/// The policy's label, with what its static placeholders are: "hubpack / per-user 110
/// (110 × 0.05 CPU, 0.25 GiB)", "z2jh / n-user 31x5 (5 × 15.5 CPU, 55.8 GiB)".
fn with_placeholder_size(sc: &Scenario, policy: &PolicySpec) -> String {
    let label = policy.label();
    if !matches!(
        policy.placeholders,
        PlaceholderMode::PerUser { .. } | PlaceholderMode::NUser { .. }
    ) {
        return label;
    }
    match PlaceholderState::new(sc, &policy.placeholders, policy.scheduler) {
        Ok(st) if st.desired > 0 => format!(
            "{label} ({} × {})",
            st.desired,
            crate::scenario::human(&st.request)
        ),
        _ => label,
    }
}

/// Runs one policy for the given seeds, in parallel.
fn run_seeds(
    sc: &Scenario,
    policy: &PolicySpec,
    seeds: std::ops::Range<u64>,
) -> Result<Vec<crate::outcome::RunResult>, RunError> {
    use rayon::prelude::*;
    seeds
        .into_par_iter()
        .map(|seed| crate::engine::run_one(sc, policy.clone(), seed))
        .collect()
}

/// Runs the search with no margin. `baseline` is z2jh as configured (its description
/// says how).
pub fn plan(
    sc: &Scenario,
    baseline: PolicySpec,
    baseline_description: String,
    target: &Target,
    progress: bool,
) -> Result<Plan, RunError> {
    let opts = Options {
        expect_error: 1.0,
        progress,
    };
    plan_with(sc, baseline, baseline_description, target, &opts)
}

/// Runs the search at `opts.expect_error` × the expected users.
pub fn plan_with(
    expected: &Scenario,
    baseline: PolicySpec,
    baseline_description: String,
    target: &Target,
    opts: &Options,
) -> Result<Plan, RunError> {
    let started = Instant::now();
    let margin = opts.expect_error.max(0.0);
    let mut searched = expected.clone();
    searched.forecast.actual_factor *= margin;
    let sc = &searched;
    let bar = if opts.progress {
        let b = ProgressBar::new_spinner();
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {pos} settings tried, {elapsed}: {msg}")
        {
            b.set_style(style);
        }
        b.enable_steady_tick(Duration::from_millis(120));
        b
    } else {
        ProgressBar::hidden()
    };
    let mut s = Search {
        sc,
        target,
        bar,
        evaluated: Vec::new(),
        runs: 0,
        best_cost: f64::INFINITY,
    };
    let base = s.eval_with("z2jh as configured", sc, baseline, None, false)?;

    // A fresh node's worth of users, and the pool's capacity in users.
    let probe = PlaceholderState::new(
        sc,
        &PlaceholderMode::NUser { n: None, k: 1 },
        SchedulerKind::Hubpack,
    )?;
    let n = probe.seats_each;
    let max_nodes = sc.pools[probe.pool].max_nodes.max(1);
    let capacity = usize::try_from(n).unwrap_or(1).max(1) * max_nodes;
    // More seats than users ever arrive is never cheaper.
    let users = crate::models::arrivals::generate(sc, 0)?.len().max(1);
    let per_user_max = capacity.min(users);
    let n_user_max = max_nodes.min(users.div_ceil(usize::try_from(n).unwrap_or(1).max(1)));

    // Cheap families first, so the dearer ones can stop early.
    s.eval("none", sc, Search::hubpack(PlaceholderMode::None), None)?;
    // Predictive: z up the ladder; if none is enough, a floor of one placeholder.
    'floors: for floor in [0.0, n as f64] {
        for z in Z_LADDER {
            let mut variant = sc.clone();
            variant.predictive.z = z;
            variant.predictive.min_seats = floor;
            variant.predictive.max_seats = capacity as f64;
            let p = variant.predictive.clone();
            let c = s.eval(
                "predictive",
                &variant,
                Search::hubpack(PlaceholderMode::Predictive),
                Some(p),
            )?;
            if c.verdict != Verdict::Misses {
                break 'floors;
            }
        }
    }
    s.smallest_k("n-user", n_user_max, |k| PlaceholderMode::NUser {
        n: Some(n),
        k,
    })?;
    s.smallest_k("per-user", per_user_max, |k| PlaceholderMode::PerUser { k })?;

    let recommended = s
        .evaluated
        .iter()
        .skip(1)
        .filter(|c| c.meets_target)
        .min_by(|a, b| {
            a.cost()
                .total_cmp(&b.cost())
                .then(a.p95().total_cmp(&b.p95()))
        })
        .cloned();

    let users_expected = crate::models::arrivals::generate(expected, 0)?.len();
    let at_expected = match &recommended {
        Some(r) if (margin - 1.0).abs() > 1e-9 => {
            s.bar.set_message("at the expected users");
            let mut variant = expected.clone();
            if let Some(p) = &r.predictive {
                variant.predictive = p.clone();
            }
            let policies = [base.policy.clone(), r.policy.clone()];
            let runs = run_grid(&variant, &policies, target.seeds, false)?;
            s.runs += 2 * target.seeds;
            let mut sum = Summary::of(&variant, &runs).policies;
            let recommended = sum.remove(1);
            Some(AtExpected {
                users: users_expected,
                baseline: sum.remove(0),
                recommended,
            })
        }
        _ => None,
    };

    // The scenario to save (at the expected users): the recommendation's settings,
    // compared with z2jh.
    let mut scenario = expected.clone();
    let mut sensitivity = Vec::new();
    if let Some(r) = &recommended {
        if let Some(p) = &r.predictive {
            scenario.predictive = p.clone();
            for factor in FACTORS {
                let mut variant = scenario.clone();
                variant.forecast.actual_factor = factor;
                variant.seeds = SENSITIVITY_SEEDS.min(target.seeds);
                let runs = run_grid(
                    &variant,
                    std::slice::from_ref(&r.policy),
                    variant.seeds,
                    false,
                )?;
                s.runs += variant.seeds;
                let c = Summary::of(&variant, &runs).policies.remove(0);
                sensitivity.push(Sensitivity {
                    factor,
                    seeds: variant.seeds,
                    wait_p95_s: c.wait_p95_s.mean,
                    placement_hol: c.placement_hol.mean,
                    cost: c.cost.mean,
                });
            }
        }
        scenario.policies.schedulers = vec![base.policy.scheduler, SchedulerKind::Hubpack];
        scenario.policies.placeholders = vec![
            base.policy.placeholders.clone(),
            r.policy.placeholders.clone(),
        ];
        scenario.policies.prepull = crate::scenario::PrepullChoice::One(true);
    }
    s.bar.finish_and_clear();
    Ok(Plan {
        target_p95_s: target.p95_s,
        seeds: target.seeds,
        baseline: base,
        baseline_description,
        recommended,
        evaluated: s.evaluated,
        sensitivity,
        runs: s.runs,
        elapsed_s: started.elapsed().as_secs_f64(),
        expect_error: margin,
        users_expected,
        users_searched: users,
        at_expected,
        scenario,
    })
}

/// z2jh as shipped (chart defaults): user-scheduler on, no placeholders (replicas 0),
/// continuous pre-puller on.
pub fn z2jh_as_shipped() -> (PolicySpec, String) {
    let p = PolicySpec {
        scheduler: SchedulerKind::Z2jh,
        placeholders: PlaceholderMode::None,
        prepull: true,
    };
    let d = format!(
        "{} (z2jh chart defaults: userScheduler on, userPlaceholder.replicas 0, continuous pre-puller on)",
        p.label()
    );
    (p, d)
}
