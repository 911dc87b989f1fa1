//! Outputs of a run or a comparison: the per-policy summary (JSON and the terminal table),
//! pods.csv, timeseries.csv and a single self-contained report.html with inline SVG
//! charts drawn by plotters.

pub mod csv;
pub mod html;
pub mod summary;
pub mod table;

use crate::outcome::RunResult;
use crate::scenario::{PlaceholderMode, Scenario, SchedulerKind};
use std::path::Path;
use summary::Summary;

/// The p95 a policy must meet to count as "good" in the headline (seconds).
pub const HEADLINE_TARGET_P95_S: f64 = 30.0;

/// Writes every output file into `dir` (created if missing).
pub fn write_all(dir: &Path, sc: &Scenario, runs: &[Vec<RunResult>]) -> std::io::Result<Summary> {
    write_all_with(dir, sc, runs, &html::Extra::default())
}

/// As [`write_all`], with `plan`'s additions to the page.
pub fn write_all_with(
    dir: &Path,
    sc: &Scenario,
    runs: &[Vec<RunResult>],
    extra: &html::Extra,
) -> std::io::Result<Summary> {
    std::fs::create_dir_all(dir)?;
    let summary = Summary::of(sc, runs);
    let json = serde_json::to_string_pretty(&summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json)?;
    csv::write_pods(&dir.join("pods.csv"), runs)?;
    csv::write_timeseries_with_bound(&dir.join("timeseries.csv"), sc, runs)?;
    std::fs::write(
        dir.join("report.html"),
        html::render(sc, &summary, runs, extra),
    )?;
    Ok(summary)
}

/// (best, z2jh as shipped) as indices into `summary.policies`. Best: the cheapest policy
/// with p95 within [`HEADLINE_TARGET_P95_S`] and no placement HOL, else the lowest p95.
/// z2jh as shipped: z2jh without placeholders (replicas 0) with pre-pull, else any z2jh.
pub fn pick_best_and_baseline(s: &Summary) -> (Option<usize>, Option<usize>) {
    let p = &s.policies;
    let good = (0..p.len())
        .filter(|&i| {
            p[i].wait_p95_s.mean <= HEADLINE_TARGET_P95_S && p[i].placement_hol.mean == 0.0
        })
        .min_by(|&a, &b| p[a].cost.mean.total_cmp(&p[b].cost.mean));
    let best = good.or_else(|| {
        (0..p.len()).min_by(|&a, &b| p[a].wait_p95_s.mean.total_cmp(&p[b].wait_p95_s.mean))
    });
    let z2jh = |i: &usize| p[*i].policy.scheduler == SchedulerKind::Z2jh;
    let base = (0..p.len())
        .filter(z2jh)
        .find(|&i| p[i].policy.placeholders == PlaceholderMode::None && p[i].policy.prepull)
        .or_else(|| (0..p.len()).find(z2jh));
    (best, base)
}

/// One sentence: the best policy against z2jh as shipped (p95 wait, node-hours, cost).
pub fn headline(s: &Summary) -> String {
    let (best, base) = pick_best_and_baseline(s);
    let Some(b) = best.map(|i| &s.policies[i]) else {
        return "No policy finished.".into();
    };
    match base.map(|i| &s.policies[i]) {
        Some(z) if z.label != b.label => format!(
            "Best: {} — p95 wait {:.0} s vs {:.0} s for z2jh as shipped ({}), {:.1} vs {:.1} \
             node-hours, cost {:.2} vs {:.2}.",
            b.label,
            b.wait_p95_s.mean,
            z.wait_p95_s.mean,
            z.label,
            b.node_hours.mean,
            z.node_hours.mean,
            b.cost.mean,
            z.cost.mean
        ),
        _ => format!(
            "Best: {} — p95 wait {:.0} s, {:.1} node-hours, cost {:.2}.",
            b.label, b.wait_p95_s.mean, b.node_hours.mean, b.cost.mean
        ),
    }
}

/// Each policy's node-hours as a ratio of the clairvoyant bound, at its p95 wait ("hubpack /
/// predictive: 1.18× the bound at p95 wait 3 s"), one line each after a line naming the
/// bound; empty without a bound.
/// A line per policy whose runs lost running servers to Karpenter's consolidation (users
/// without `karpenter.sh/do-not-disrupt`): their node-hours look cheaper for it.
pub fn eviction_lines(s: &Summary) -> String {
    s.policies
        .iter()
        .filter(|p| p.servers_evicted.mean > 0.0)
        .map(|p| {
            format!(
                "{}: Karpenter's consolidation evicted {:.1} running servers per run (lost \
                 sessions; set karpenter.sh/do-not-disrupt on user pods)\n",
                p.label, p.servers_evicted.mean
            )
        })
        .collect()
}

pub fn bound_lines(s: &Summary) -> String {
    let (Some(oracle), Some(kept)) = (s.bounds.first(), s.bounds.get(1)) else {
        return String::new();
    };
    let mut out = format!(
        "The bound ({}: nodes Ready exactly when needed, perfect packing, each given back once \
         empty): {:.1} node-hours with every user waiting {:.0} s (a warm start); {:.1} for {}.\n",
        oracle.label, oracle.node_hours.mean, oracle.wait_s, kept.node_hours.mean, kept.label
    );
    for p in &s.policies {
        out += &format!("  {}\n", vs_bound(&p.label, p));
    }
    out
}

/// "LABEL: 1.18× the bound at p95 wait 3 s".
pub fn vs_bound(label: &str, p: &summary::PolicySummary) -> String {
    let ratio = p.node_hours_vs_bound.mean;
    if ratio.is_finite() {
        format!(
            "{label}: {ratio:.2}× the bound at p95 wait {:.0} s",
            p.wait_p95_s.mean
        )
    } else {
        // A bound of 0 node-hours: no user and no node kept.
        format!(
            "{label}: {:.1} node-hours where the bound needs none, at p95 wait {:.0} s",
            p.node_hours.mean, p.wait_p95_s.mean
        )
    }
}
