//! The report directory: `summary.json` (every run, real and simulated), `runs.csv` (one
//! row per run), and per scenario an HTML page of inline-SVG charts: per stack, node counts
//! over time and the start-time CDF, real runs (blue) and simulated runs (orange) side by side,
//! drawn with plotters as hubpack-sim's report is.
//! Times are at the scenario's real scale (the real runs de-compressed).

use crate::frontier::{self, Goal, Point};
use crate::metrics::cdf;
use crate::plan::ALL_STACKS;
use crate::run_numbers::RunNumbers;
use plotters::prelude::*;
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::Path;

/// One line of a chart (or, `dots`, its points alone).
struct Line {
    name: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    dots: bool,
}

/// Real runs blue, simulated runs orange.
const REAL: RGBColor = RGBColor(31, 119, 180);
const SIM: RGBColor = RGBColor(255, 127, 14);

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A line chart as an SVG string, drawn with plotters (as hubpack-sim's report).
fn chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
    legend: SeriesLabelPosition,
) -> String {
    let mut svg = String::new();
    let drawn = (|| -> DrawResult {
        let root = SVGBackend::with_string(&mut svg, (560, 320)).into_drawing_area();
        root.fill(&WHITE)?;
        let (mut x1, mut y1) = (1f64, 1f64);
        for &(x, y) in lines.iter().flat_map(|l| l.points.iter()) {
            if x.is_finite() && y.is_finite() {
                x1 = x1.max(x);
                y1 = y1.max(y);
            }
        }
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x1 * 1.02, 0f64..y1 * 1.05)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        for l in lines {
            let c = l.color;
            let points = l
                .points
                .iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite());
            if l.dots {
                chart
                    .draw_series(points.map(|p| Circle::new(p, 4, c.filled())))?
                    .label(l.name.clone())
                    .legend(move |(x, y)| Circle::new((x + 9, y), 4, c.filled()));
            } else {
                chart
                    .draw_series(LineSeries::new(points, c.stroke_width(2)))?
                    .label(l.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
            }
        }
        chart
            .configure_series_labels()
            .position(legend)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 11))
            .draw()?;
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(e) => format!("<p>chart {title}: {e}</p>"),
    }
}

/// What `--real-from` reads back from summary.json.
#[derive(Deserialize)]
pub struct Earlier {
    pub runs: Vec<RunNumbers>,
    pub container_start_s: Option<f64>,
    /// Absent in reports from before the spread was fitted.
    #[serde(default)]
    pub container_start_sigma: Option<f64>,
    #[serde(default)]
    pub warm_start_by_stack: std::collections::BTreeMap<String, crate::simulate::WarmStartFit>,
    /// The JSON summary line, parsed.
    #[serde(default)]
    pub summary: serde_json::Value,
}

impl Earlier {
    /// The autoscaler the summary names (None: a report from before it did).
    pub fn autoscaler(&self) -> Result<Option<hubpack_sim::scenario::AutoscalerKind>, String> {
        match self.summary.get("autoscaler").and_then(|a| a.as_str()) {
            None => Ok(None),
            Some(name) => name.parse().map(Some),
        }
    }
}

/// Writes the whole report for these runs.
pub fn write(
    dir: &Path,
    runs: &[RunNumbers],
    summary_line: &str,
    params: &crate::simulate::SimParams,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "summary": serde_json::from_str::<serde_json::Value>(summary_line).unwrap_or_default(),
            "container_start_s": params.container_start_s,
            "container_start_sigma": params.container_start_sigma,
            "warm_start_by_stack": params.warm_start_by_stack,
            "sim_params": params,
            "runs": runs,
        }))?,
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
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>side by side: {sc}</title></head><body><h1>{sc}</h1><p>Real runs (blue: the local control plane with the real autoscaler the summary names, de-compressed to the scenario's scale) and hubpack-sim runs (orange), per stack. Summary: <code>{summary_line}</code></p>"
        );
        for stack in ALL_STACKS {
            let of: Vec<&RunNumbers> = runs
                .iter()
                .filter(|r| r.scenario == sc && r.stack == stack.key())
                .collect();
            if of.is_empty() {
                continue;
            }
            let series = |f: &dyn Fn(&RunNumbers) -> Vec<(f64, f64)>| -> Vec<Line> {
                of.iter()
                    .map(|r| Line {
                        name: format!("{} seed {}", r.kind, r.seed),
                        points: f(r),
                        color: if r.kind == "sim" { SIM } else { REAL },
                        dots: false,
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
                    &series(&|r| r.nodes.clone()),
                    SeriesLabelPosition::LowerRight,
                ),
                chart(
                    &format!("{}: start time CDF", stack.key()),
                    "arrival → Ready (s)",
                    "share of users",
                    &series(&|r| cdf(&r.waits_s)),
                    SeriesLabelPosition::LowerRight,
                ),
            );
        }
        html.push_str("</body></html>");
        std::fs::write(dir.join(format!("{sc}.html")), html)?;
    }
    Ok(())
}

/// `<scenario>-frontier.csv` and `.html`: the static budgets' p95 start against node-hours
/// in the simulator (lines), the stacks' simulated points, and the real runs' medians
/// (`real`: (stack, p95, node-hours)).
pub fn write_frontier(
    dir: &Path,
    scenario: &str,
    points: &[Point],
    goal: &Goal,
    real: &[(String, f64, f64)],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(format!("{scenario}-frontier.csv")),
        frontier::csv(points, goal),
    )?;
    let family = |name: &str, color: RGBColor, dots: bool| Line {
        name: format!("{name} (sim)"),
        points: points
            .iter()
            .filter(|p| p.family == name)
            .map(|p| (p.node_hours, p.p95_start_s))
            .collect(),
        color,
        dots,
    };
    let mut lines = vec![
        family("hubpack_static", SIM, false),
        family("hubpack_node_sized", RGBColor(23, 190, 207), false),
        family("z2jh_per_user", RGBColor(120, 120, 120), false),
    ];
    for (stack, color) in [
        ("z2jh", RGBColor(120, 120, 120)),
        ("z2jh_nuser", RGBColor(148, 103, 189)),
        ("hubpack_predictive", RGBColor(44, 160, 44)),
    ] {
        lines.push(family(stack, color, true));
    }
    lines.push(Line {
        name: "real runs' medians, every stack".into(),
        points: real.iter().map(|(_, p95, nh)| (*nh, *p95)).collect(),
        color: REAL,
        dots: true,
    });
    lines.push(Line {
        name: "the goal's corner".into(),
        points: vec![
            (0.0, goal.max_p95_start_s),
            (goal.max_node_hours, goal.max_p95_start_s),
            (goal.max_node_hours, 0.0),
        ],
        color: RGBColor(214, 39, 40),
        dots: false,
    });
    let real_rows: String = real
        .iter()
        .map(|(stack, p95, nh)| {
            format!("<tr><td>{stack}</td><td>{p95:.0}</td><td>{nh:.2}</td></tr>")
        })
        .collect();
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>static budgets: {scenario}</title></head><body><h1>What a static seat budget costs: {scenario}</h1><p>hubpack-sim with the fitted parameters: hubpack-scheduler with static N-user placeholders and with node-sized ones, and z2jh with per-user placeholders, every budget from none to twice z2jh's (lines, seats rising to the right); z2jh as shipped, as 2i2c tunes it and hubpack's predictive controller as points; the real runs' medians in blue. The goal's corner (red) is from the simulated z2jh stacks. {}</p>{}<table border=\"1\"><tr><th>real stack</th><th>p95 start (s)</th><th>node-hours</th></tr>{real_rows}</table><p>Every point: <code>{scenario}-frontier.csv</code>.</p></body></html>",
        frontier::verdict(points, goal),
        chart(
            &format!("{scenario}: p95 start against node-hours"),
            "node-hours",
            "p95 arrival → Ready (s)",
            &lines,
            SeriesLabelPosition::UpperLeft,
        ),
    );
    std::fs::write(dir.join(format!("{scenario}-frontier.html")), html)
}
