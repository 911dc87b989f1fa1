//! report.html: one self-contained page (inline SVG, no scripts or external assets) with the
//! wait CDF per policy, nodes and users over time, cost vs p95 wait, and the table.

use super::summary::{Summary, waits};
use super::svg::{Series, lines, scatter};
use super::table::{HEADERS, rows};
use crate::metrics::RunResult;
use crate::scenario::Scenario;
use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render(sc: &Scenario, summary: &Summary, runs: &[Vec<RunResult>]) -> String {
    let mut cdf = Vec::new();
    for seeds in runs.iter().filter(|s| !s.is_empty()) {
        let mut all: Vec<f64> = seeds.iter().flat_map(waits).collect();
        all.sort_by(f64::total_cmp);
        let n = all.len().max(1) as f64;
        // At most ~400 points per curve keeps the page small.
        let step = (all.len() / 400).max(1);
        let points = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i + 1 == all.len())
            .map(|(i, w)| (w.max(1.0), (i + 1) as f64 / n))
            .collect();
        cdf.push(Series {
            name: seeds[0].policy.label(),
            points,
            dashed: false,
        });
    }
    let mut nodes = Vec::new();
    for seeds in runs.iter().filter_map(|s| s.first()) {
        nodes.push(Series {
            name: seeds.policy.label(),
            points: seeds
                .samples
                .iter()
                .map(|x| (x.t_s / 3600.0, (x.nodes_ready + x.nodes_booting) as f64))
                .collect(),
            dashed: false,
        });
    }
    let users: Vec<Series> = runs
        .iter()
        .filter_map(|s| s.first())
        .map(|r| Series {
            name: r.policy.label(),
            points: r
                .samples
                .iter()
                .map(|x| (x.t_s / 3600.0, x.users_running as f64))
                .collect(),
            dashed: false,
        })
        .collect();
    let pareto: Vec<(String, f64, f64)> = summary
        .policies
        .iter()
        .map(|p| (p.label.clone(), p.cost.mean, p.wait_p95_s.mean))
        .collect();

    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>hubpack-sim: {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}\
         .plots{{display:flex;flex-wrap:wrap;gap:1em}}</style></head><body>\
         <h1>hubpack-sim: {name}</h1><p>{seeds} seed(s) per policy; price {price} per node-hour. \
         Waits are arrival → running server; ± is a 95% confidence interval over seeds. \
         HOL = users who waited over 30 s more than a warm start while a warm seat they fit \
         (free or held by a placeholder) existed at their arrival.</p><table><tr>",
        name = esc(&sc.name),
        seeds = summary.seeds,
        price = sc.price_per_node_hour,
    );
    for h in HEADERS
        .iter()
        .chain(["cost", "scale-ups", "scale-downs"].iter())
    {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for (r, p) in rows(summary).iter().zip(&summary.policies) {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        let _ = write!(
            out,
            "<td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
            p.cost.mean, p.scale_ups.mean, p.scale_downs.mean
        );
    }
    out.push_str("</table><div class=\"plots\">");
    out += &lines(
        "Wait CDF (all seeds)",
        &cdf,
        "wait, s (log)",
        "share of users",
        true,
    );
    out += &lines("Nodes over time (seed 0)", &nodes, "hours", "nodes", false);
    out += &lines("Users running (seed 0)", &users, "hours", "users", false);
    out += &scatter("Cost vs p95 wait", &pareto, "cost", "p95 wait, s");
    out.push_str("</div></body></html>\n");
    out
}
