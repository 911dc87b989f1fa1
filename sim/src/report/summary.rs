//! summary.json: per policy, wait percentiles with 95% CIs over seeds, shares of long
//! waits, failed spawns, head-of-line-blocked users (placement and hub queue apart), node-hours and cost, peak nodes and
//! autoscaler activity; node-hours as a ratio of the clairvoyant bound ([`crate::oracle`]),
//! whose rows follow the policies.

use crate::oracle::{self, Bound};
use crate::outcome::{RunResult, WaitCause};
use crate::scenario::{PolicySpec, Scenario};
use crate::stats::{Estimate, quantile};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub seeds: usize,
    pub price_per_node_hour: f64,
    pub policies: Vec<PolicySummary>,
    /// The clairvoyant bound on the same seeds: [`oracle::ORACLE`], then
    /// [`oracle::ORACLE_CA_UNNEEDED`].
    pub bounds: Vec<BoundSummary>,
}

/// A row of the clairvoyant bound (see [`crate::oracle`]): every user starts with a warm
/// start's wait, on the fewest nodes that hold them.
#[derive(Debug, Clone, Serialize)]
pub struct BoundSummary {
    pub label: String,
    /// Users per seed it serves (mean).
    pub users: f64,
    /// Every user's wait: a warm start.
    pub wait_s: f64,
    pub node_hours: Estimate,
    pub cost: Estimate,
    pub peak_nodes: Estimate,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    pub label: String,
    pub policy: PolicySpec,
    /// Users per seed (mean).
    pub users: f64,
    /// Seconds from arrival to a running server (users who gave up count with the time
    /// until they did: a lower bound; users still waiting at the end are left out).
    pub wait_p50_s: Estimate,
    pub wait_p90_s: Estimate,
    pub wait_p95_s: Estimate,
    pub wait_p99_s: Estimate,
    pub wait_max_s: Estimate,
    pub share_wait_over_30s: Estimate,
    pub share_wait_over_60s: Estimate,
    pub share_wait_over_5min: Estimate,
    pub failed_spawns: Estimate,
    pub users_gave_up: Estimate,
    /// Users who waited > 30 s longer than a warm start while, at their arrival, a warm
    /// seat they fit (free or held by a placeholder) existed.
    pub head_of_line_blocked: Estimate,
    /// Users per run bound to a cold node while a warm seat (free or placeholder-held)
    /// existed at their arrival and at bind time: the scheduler's doing.
    pub placement_hol: Estimate,
    /// Users per run held by the hub's concurrent spawn limit while warm seats existed
    /// for every user not yet placed.
    pub hub_queue_hol: Estimate,
    pub node_hours: Estimate,
    /// Node-hours ÷ the clairvoyant bound's ([`oracle::ORACLE`]) on the same seed.
    pub node_hours_vs_bound: Estimate,
    pub cost: Estimate,
    pub peak_nodes: Estimate,
    pub scale_ups: Estimate,
    pub scale_downs: Estimate,
    /// Running servers lost to Karpenter's consolidation per run (0 unless user pods lack
    /// `karpenter.sh/do-not-disrupt`).
    pub servers_evicted: Estimate,
    pub events: Estimate,
}

/// The waits of one run, seconds, sorted: finished users' waits, and for users who gave
/// up the time until they did (a lower bound of what they would have waited).
pub fn waits(run: &RunResult) -> Vec<f64> {
    let mut w: Vec<f64> = run
        .users
        .iter()
        .filter_map(|u| u.wait_s.or(u.gave_up_after_s))
        .collect();
    w.sort_by(f64::total_cmp);
    w
}

impl Summary {
    pub fn of(sc: &Scenario, runs: &[Vec<RunResult>]) -> Summary {
        let seeds: Vec<u64> = runs
            .iter()
            .find(|r| !r.is_empty())
            .map(|r| r.iter().map(|x| x.seed).collect())
            .unwrap_or_default();
        // A seed whose arrivals cannot be drawn has no run either.
        let bounds: Vec<Bound> = seeds
            .iter()
            .filter_map(|&s| oracle::bound(sc, s).ok())
            .collect();
        let policies = runs
            .iter()
            .filter(|r| !r.is_empty())
            .map(|seeds| PolicySummary::of(sc, seeds, &bounds))
            .collect();
        Summary {
            scenario: sc.name.clone(),
            seeds: runs.first().map_or(0, Vec::len),
            price_per_node_hour: sc.price_per_node_hour,
            policies,
            bounds: BoundSummary::of(sc, &bounds),
        }
    }
}

impl BoundSummary {
    /// The two rows of the bound over these seeds (none without seeds).
    fn of(sc: &Scenario, bounds: &[Bound]) -> Vec<BoundSummary> {
        if bounds.is_empty() {
            return Vec::new();
        }
        let per = |f: &dyn Fn(&Bound) -> f64| -> Estimate {
            Estimate::of(&bounds.iter().map(f).collect::<Vec<_>>())
        };
        let users = per(&|b| b.users as f64).mean;
        let wait_s = sc.hub.spawn_overhead_s + sc.hub.container_start_s;
        let row = |label: &str, hours: &dyn Fn(&Bound) -> f64| BoundSummary {
            label: label.to_string(),
            users,
            wait_s,
            node_hours: per(hours),
            cost: per(&|b| hours(b) * sc.price_per_node_hour),
            peak_nodes: per(&|b| b.peak_nodes as f64),
        };
        vec![
            row(oracle::ORACLE, &|b| b.node_hours),
            row(oracle::ORACLE_CA_UNNEEDED, &|b| b.node_hours_ca_unneeded),
        ]
    }
}

impl PolicySummary {
    fn of(sc: &Scenario, seeds: &[RunResult], bounds: &[Bound]) -> PolicySummary {
        let per = |f: &dyn Fn(&RunResult) -> f64| -> Estimate {
            Estimate::of(&seeds.iter().map(f).collect::<Vec<_>>())
        };
        let q = |p: f64| per(&|r: &RunResult| quantile(&waits(r), p));
        let share = |limit: f64| {
            per(&|r: &RunResult| {
                let w = waits(r);
                if w.is_empty() {
                    0.0
                } else {
                    w.iter().filter(|&&x| x > limit).count() as f64 / w.len() as f64
                }
            })
        };
        PolicySummary {
            label: seeds[0].policy.label(),
            policy: seeds[0].policy.clone(),
            users: per(&|r| r.users.len() as f64).mean,
            wait_p50_s: q(0.50),
            wait_p90_s: q(0.90),
            wait_p95_s: q(0.95),
            wait_p99_s: q(0.99),
            wait_max_s: q(1.0),
            share_wait_over_30s: share(30.0),
            share_wait_over_60s: share(60.0),
            share_wait_over_5min: share(300.0),
            failed_spawns: per(&|r| f64::from(r.failed_spawns)),
            users_gave_up: per(&|r| {
                r.users
                    .iter()
                    .filter(|u| u.cause == WaitCause::GaveUp)
                    .count() as f64
            }),
            head_of_line_blocked: per(&|r| {
                r.users.iter().filter(|u| u.head_of_line_blocked).count() as f64
            }),
            placement_hol: per(&|r| r.users.iter().filter(|u| u.placement_hol).count() as f64),
            hub_queue_hol: per(&|r| r.users.iter().filter(|u| u.hub_queue_hol).count() as f64),
            node_hours: per(&|r| r.node_hours),
            node_hours_vs_bound: per(&|r| {
                bounds
                    .iter()
                    .find(|b| b.seed == r.seed && b.node_hours > 0.0)
                    .map_or(f64::NAN, |b| r.node_hours / b.node_hours)
            }),
            cost: per(&|r| r.node_hours * sc.price_per_node_hour),
            peak_nodes: per(&|r| r.peak_nodes as f64),
            scale_ups: per(&|r| r.scale_ups as f64),
            scale_downs: per(&|r| r.scale_downs as f64),
            servers_evicted: per(&|r| r.servers_evicted as f64),
            events: per(&|r| r.events as f64),
        }
    }
}
