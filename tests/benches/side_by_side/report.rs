//! The report directory: `summary.json` (every run, real and simulated), `runs.csv` (one
//! row per run), and per scenario an HTML page of inline-SVG charts: per stack, node counts
//! over time and the start-time CDF, real runs solid and simulated runs dashed, side by side.
//! Times are at the scenario's real scale (the real runs de-compressed).

use crate::metrics::cdf;
use crate::plan::STACKS;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// One run's numbers, real or simulated, at the scenario's scale.
#[derive(Clone, Debug, Serialize)]
pub struct RunNumbers {
    pub scenario: String,
    pub stack: String,
    pub kind: &'static str,
    pub seed: u64,
    pub users: usize,
    pub unfinished: usize,
    pub p50_start_s: f64,
    pub p95_start_s: f64,
    pub p95_create_to_bound_s: f64,
    pub p95_create_to_ready_s: f64,
    pub node_hours: f64,
    pub peak_nodes: usize,
    pub nodes_removed_after_peak: usize,
    pub placement_hol_users: usize,
    /// Arrival → Ready of every finished user (sorted).
    pub waits_s: Vec<f64>,
    /// (t, user-pool nodes)
    pub nodes: Vec<(f64, f64)>,
}

const COLORS: [&str; 4] = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c"];

/// One line of a chart.
struct Line {
    name: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
    color: usize,
}

/// A line chart; each series (name, points, dashed, color index).
fn chart(title: &str, xl: &str, yl: &str, series: &[Line]) -> String {
    let (w, h, l, r, t, b) = (560.0, 300.0, 55.0, 150.0, 22.0, 38.0);
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (0.0f64, 1.0f64, 0.0f64, 1.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let px = |x: f64| l + (x - x0) / (x1 - x0).max(1e-9) * (w - l - r);
    let py = |y: f64| h - b - (y - y0) / (y1 - y0).max(1e-9) * (h - t - b);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11"><text x="{l}" y="14" font-weight="bold">{title}</text><line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="black"/><text x="{}" y="{}" text-anchor="middle">{xl}</text><text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">{yl}</text>"#,
        h - b,
        w - r,
        h - b,
        h - b,
        (l + w - r) / 2.0,
        h - 6.0,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
    );
    for i in 0..=4 {
        let (xv, yv) = (
            x0 + (x1 - x0) * i as f64 / 4.0,
            y0 + (y1 - y0) * i as f64 / 4.0,
        );
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{xv:.0}</text><text x="{}" y="{:.1}" text-anchor="end">{yv:.2}</text>"#,
            px(xv),
            h - b + 13.0,
            l - 4.0,
            py(yv) + 4.0
        );
    }
    for (i, line) in series.iter().enumerate() {
        let Line {
            name,
            points,
            dashed,
            color,
        } = line;
        let c = COLORS[color % COLORS.len()];
        let p: Vec<String> = points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let dash = if *dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.3"{dash} points="{}"/><text x="{}" y="{}" fill="{c}">{name}</text>"#,
            p.join(" "),
            w - r + 6.0,
            t + 12.0 * (i as f64 + 1.0)
        );
    }
    out.push_str("</svg>");
    out
}

/// Writes the whole report for these runs.
pub fn write(dir: &Path, runs: &[RunNumbers], summary_line: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(
            &serde_json::json!({"summary": serde_json::from_str::<serde_json::Value>(summary_line).unwrap_or_default(), "runs": runs}),
        )?,
    )?;
    let mut csv = String::from(
        "scenario,stack,kind,seed,users,unfinished,p50_start_s,p95_start_s,p95_create_to_bound_s,p95_create_to_ready_s,node_hours,peak_nodes,nodes_removed_after_peak,placement_hol_users\n",
    );
    for r in runs {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{:.1},{:.1},{:.1},{:.1},{:.3},{},{},{}",
            r.scenario,
            r.stack,
            r.kind,
            r.seed,
            r.users,
            r.unfinished,
            r.p50_start_s,
            r.p95_start_s,
            r.p95_create_to_bound_s,
            r.p95_create_to_ready_s,
            r.node_hours,
            r.peak_nodes,
            r.nodes_removed_after_peak,
            r.placement_hol_users
        );
    }
    std::fs::write(dir.join("runs.csv"), csv)?;
    let mut scenarios: Vec<&str> = runs.iter().map(|r| r.scenario.as_str()).collect();
    scenarios.dedup();
    for sc in scenarios {
        let mut html = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>side by side: {sc}</title></head><body><h1>{sc}</h1><p>Real runs (solid, local control plane, de-compressed to the scenario's scale) and hubpack-sim runs (dashed), per stack. Summary: <code>{summary_line}</code></p>"
        );
        for stack in STACKS {
            let of: Vec<&RunNumbers> = runs
                .iter()
                .filter(|r| r.scenario == sc && r.stack == stack.key())
                .collect();
            if of.is_empty() {
                continue;
            }
            // Real runs blue and solid, simulated runs orange and dashed.
            let series = |f: &dyn Fn(&RunNumbers) -> Vec<(f64, f64)>| -> Vec<Line> {
                of.iter()
                    .map(|r| Line {
                        name: format!("{} seed {}", r.kind, r.seed),
                        points: f(r),
                        dashed: r.kind == "sim",
                        color: if r.kind == "sim" { 1 } else { 2 },
                    })
                    .collect()
            };
            let _ = write!(
                html,
                "<h2>{}</h2><div style=\"display:flex;flex-wrap:wrap\">{}{}</div>",
                stack.key(),
                chart(
                    &format!("{}: user-pool nodes", stack.key()),
                    "time (s)",
                    "nodes",
                    &series(&|r| r.nodes.clone())
                ),
                chart(
                    &format!("{}: start time CDF", stack.key()),
                    "arrival → Ready (s)",
                    "share of users",
                    &series(&|r| cdf(&r.waits_s))
                ),
            );
        }
        html.push_str("</body></html>");
        std::fs::write(dir.join(format!("{sc}.html")), html)?;
    }
    Ok(())
}
