//! The comparison table printed on the terminal (and embedded in report.html): a row per
//! policy, then the clairvoyant bound's rows.

use super::summary::Summary;
use crate::stats::Estimate;
use std::fmt::Write as _;

pub const HEADERS: [&str; 13] = [
    "policy",
    "p50 s",
    "p95 s",
    "p99 s",
    "max s",
    ">30s",
    ">5min",
    "placement HOL",
    "hub-queue HOL",
    "failed",
    "node-h",
    "peak nodes",
    "× bound",
];

fn est(e: &Estimate, digits: usize) -> String {
    if !e.mean.is_finite() {
        return "-".into();
    }
    if e.ci95 > 0.0 {
        format!("{:.*}±{:.*}", digits, e.mean, digits, e.ci95)
    } else {
        format!("{:.*}", digits, e.mean)
    }
}

fn pct(e: &Estimate) -> String {
    if e.mean.is_finite() {
        format!("{:.1}%", 100.0 * e.mean)
    } else {
        "-".into()
    }
}

/// One row of cells per policy, in HEADERS order.
pub fn rows(s: &Summary) -> Vec<Vec<String>> {
    s.policies
        .iter()
        .map(|p| {
            vec![
                p.label.clone(),
                est(&p.wait_p50_s, 0),
                est(&p.wait_p95_s, 0),
                est(&p.wait_p99_s, 0),
                est(&p.wait_max_s, 0),
                pct(&p.share_wait_over_30s),
                pct(&p.share_wait_over_5min),
                est(&p.placement_hol, 1),
                est(&p.hub_queue_hol, 1),
                est(&p.failed_spawns, 1),
                est(&p.node_hours, 1),
                est(&p.peak_nodes, 1),
                times(&p.node_hours_vs_bound),
            ]
        })
        .collect()
}

/// Node-hours as a multiple of the bound's.
fn times(e: &Estimate) -> String {
    if e.mean.is_finite() {
        format!("{:.2}×", e.mean)
    } else {
        "-".into()
    }
}

/// One row of cells per row of the bound, in HEADERS order: every user waits a warm start;
/// HOL and failed spawns do not apply.
pub fn bound_rows(s: &Summary) -> Vec<Vec<String>> {
    let base = s.bounds.first().map_or(f64::NAN, |b| b.node_hours.mean);
    s.bounds
        .iter()
        .map(|b| {
            let wait = format!("{:.0}", b.wait_s);
            vec![
                b.label.clone(),
                wait.clone(),
                wait.clone(),
                wait.clone(),
                wait,
                "0.0%".into(),
                "0.0%".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                est(&b.node_hours, 1),
                est(&b.peak_nodes, 1),
                times(&crate::stats::Estimate {
                    mean: b.node_hours.mean / base,
                    ci95: 0.0,
                }),
            ]
        })
        .collect()
}

/// A plain-text table with aligned columns.
pub fn render(s: &Summary) -> String {
    let rows: Vec<Vec<String>> = rows(s).into_iter().chain(bound_rows(s)).collect();
    let mut width: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            let pad = w - c.chars().count();
            if i == 0 {
                let _ = write!(out, "{c}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{c}", " ".repeat(pad));
            }
        }
        out.push('\n');
        out
    };
    let mut out = format!(
        "{}: {} seed(s); waits are means over seeds ± 95% CI; HOL = head-of-line-blocked users per run \
         (placement: sent to a cold node while a warm seat existed; hub queue: held by the spawn limit while warm seats existed); \
         × bound = node-hours ÷ the oracle's (a clairvoyant cluster: nodes Ready when needed, perfect packing, given back when empty; \
         oracle+ca-unneeded keeps each node the autoscaler's unneeded time)\n",
        s.scenario, s.seeds
    );
    out += &line(&HEADERS.map(String::from));
    for r in &rows {
        out += &line(r);
    }
    out
}
