//! report.html: one self-contained page (inline SVG drawn with plotters, no scripts or
//! external assets). At the top a headline (the best policy against z2jh as shipped, or
//! the plan's recommendation against z2jh as configured) and, from `plan`, its text and
//! values.yaml, and each policy's node-hours against the clairvoyant bound; then the table
//! (the bound's rows last); then charts that stay readable: a wait CDF per scheduler (at
//! most one line per placeholder mode), nodes and users over time for the best policy
//! against z2jh only (and the oracle's nodes), and cost against p95 wait with one colour
//! per scheduler.

use super::summary::{PolicySummary, Summary, waits};
use super::table::{HEADERS, bound_rows, rows};
use crate::outcome::RunResult;
use crate::scenario::{Scenario, SchedulerKind};
use plotters::prelude::*;
use std::fmt::Write as _;

/// What `plan` adds to the page.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Replaces the computed headline.
    pub headline: Option<String>,
    pub plan_text: Option<String>,
    pub values_yaml: Option<String>,
    /// What the plan was given: files, flags, pools, the profile mix (name, value).
    pub inputs: Vec<(String, String)>,
    /// Notes and warnings about the inputs, one line each.
    pub warnings: Vec<String>,
    /// The z2jh values that adopt the recommendation.
    pub adoption: Option<String>,
}

/// `plan`'s inputs, warnings and the z2jh changes that adopt the recommendation.
fn plan_inputs(out: &mut String, extra: &Extra) {
    if !extra.inputs.is_empty() {
        out.push_str("<h3>Inputs</h3><table id=\"inputs\">");
        for (name, value) in &extra.inputs {
            let _ = write!(
                out,
                "<tr><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
                esc(name),
                esc(value)
            );
        }
        out.push_str("</table>");
    }
    if !extra.warnings.is_empty() {
        out.push_str("<h3>Warnings and notes</h3><ul id=\"warnings\">");
        for w in &extra.warnings {
            let _ = write!(out, "<li>{}</li>", esc(w));
        }
        out.push_str("</ul>");
    }
    if let Some(a) = &extra.adoption
        && !a.is_empty()
    {
        let _ = write!(
            out,
            "<h3>z2jh values to adopt it</h3><pre id=\"adoption\">{}</pre>",
            esc(a)
        );
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const W: u32 = 620;
const H: u32 = 340;

fn scheduler_color(s: SchedulerKind) -> RGBColor {
    match s {
        SchedulerKind::Spread => RGBColor(127, 127, 127),
        SchedulerKind::Z2jh => RGBColor(214, 39, 40),
        SchedulerKind::Hubpack => RGBColor(31, 119, 180),
    }
}

/// One line of a chart.
struct Line {
    name: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A line chart as an SVG string. With `log_x` (waits) the x axis is log10 of the value,
/// labelled 1 s, 10 s, 100 s…; `share_y` labels the y axis in percent. Grid lines are
/// plotters' bold mesh only, so the lines stay readable.
fn line_chart(
    title: &str,
    lines: &[Line],
    x_desc: &str,
    y_desc: &str,
    log_x: bool,
    share_y: bool,
) -> String {
    let mut svg = String::new();
    let lines: Vec<Line> = lines
        .iter()
        .map(|l| Line {
            name: l.name.clone(),
            color: l.color,
            points: l
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(x, y)| {
                    if log_x {
                        (x.max(1.0).log10(), y)
                    } else {
                        (x, y)
                    }
                })
                .collect(),
        })
        .collect();
    let drawn = (|| -> DrawResult {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE)?;
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0f64);
        for &(x, y) in lines.iter().flat_map(|l| l.points.iter()) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        let (x0, x1) = if log_x {
            // Whole decades, at least one.
            let lo = x0.floor().max(0.0);
            (lo, x1.ceil().max(lo + 1.0))
        } else {
            (x0.min(0.0), if x1 > x0 { x1 } else { x0 + 1.0 })
        };
        let y1 = if share_y || y1 <= 0.0 { 1.0 } else { y1 * 1.08 };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(x0..x1, 0f64..y1)?;
        let decades = (x1 - x0).round() as usize + 1;
        let x_fmt = |x: &f64| {
            if log_x {
                format!("{} s", 10f64.powf(*x).round())
            } else if (x1 - x0) >= 10.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            }
        };
        let y_fmt = |y: &f64| {
            if share_y {
                format!("{:.0}%", y * 100.0)
            } else if y1 >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.12));
        if log_x {
            mesh.x_labels(decades);
        }
        mesh.draw()?;
        for l in &lines {
            let c = l.color;
            chart
                .draw_series(LineSeries::new(l.points.iter().copied(), c.stroke_width(2)))?
                .label(l.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(if log_x {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 12))
            .draw()?;
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(e) => format!("<p>chart {}: {}</p>", esc(title), esc(&e.to_string())),
    }
}

/// Cost against p95 wait, one colour per scheduler, each point labelled.
fn scatter_chart(policies: &[&PolicySummary]) -> String {
    let mut svg = String::new();
    let drawn = (|| -> DrawResult {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE)?;
        let finite = policies
            .iter()
            .filter(|p| p.cost.mean.is_finite() && p.wait_p95_s.mean.is_finite());
        let (mut x1, mut y1) = (0f64, 0f64);
        for p in finite.clone() {
            x1 = x1.max(p.cost.mean);
            y1 = y1.max(p.wait_p95_s.mean);
        }
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Cost vs p95 wait (lower left is better)",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..(x1 * 1.15).max(1.0), 0f64..(y1 * 1.1).max(1.0))?;
        chart
            .configure_mesh()
            .x_desc("cost per run")
            .y_desc("p95 wait, s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        for s in [
            SchedulerKind::Spread,
            SchedulerKind::Z2jh,
            SchedulerKind::Hubpack,
        ] {
            let mine: Vec<&&PolicySummary> =
                finite.clone().filter(|p| p.policy.scheduler == s).collect();
            if mine.is_empty() {
                continue;
            }
            let c = scheduler_color(s);
            chart
                .draw_series(mine.iter().map(|p| {
                    EmptyElement::at((p.cost.mean, p.wait_p95_s.mean))
                        + Circle::new((0, 0), 4, c.filled())
                        + Text::new(
                            p.policy.placeholders.label(),
                            (6, -4),
                            ("sans-serif", 10).into_font().color(&c),
                        )
                }))?
                .label(s.name())
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(e) => format!("<p>chart: {}</p>", esc(&e.to_string())),
    }
}

/// Placeholder modes get the same colour in every per-scheduler CDF.
fn mode_color(i: usize) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
    ];
    C[i % C.len()]
}

fn cdf(seeds: &[RunResult]) -> Vec<(f64, f64)> {
    let mut all: Vec<f64> = seeds.iter().flat_map(waits).collect();
    all.sort_by(f64::total_cmp);
    let n = all.len().max(1) as f64;
    let step = (all.len() / 400).max(1);
    all.iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i + 1 == all.len())
        .map(|(i, w)| (w.max(1.0), (i + 1) as f64 / n))
        .collect()
}

pub fn render(sc: &Scenario, summary: &Summary, runs: &[Vec<RunResult>], extra: &Extra) -> String {
    let runs: Vec<&Vec<RunResult>> = runs.iter().filter(|s| !s.is_empty()).collect();
    let (best, base) = super::pick_best_and_baseline(summary);
    let headline = extra
        .headline
        .clone()
        .unwrap_or_else(|| super::headline(summary));

    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hubpack-sim: {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1300px}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}\
         .headline{{font-size:1.25em;background:#eef5fb;padding:.6em 1em;border-left:4px solid #1f77b4}}\
         pre{{background:#f6f6f6;padding:.8em;overflow:auto}}\
         .plots{{display:flex;flex-wrap:wrap;gap:1em}}</style></head><body>\
         <h1>hubpack-sim: {name}</h1><p class=\"headline\" id=\"headline\">{headline}</p>\
         <p id=\"bound\">{bound}</p>",
        name = esc(&sc.name),
        headline = esc(headline.trim()),
        bound = esc(super::bound_lines(summary).trim()).replace('\n', "<br>"),
    );
    if let Some(t) = &extra.plan_text {
        let _ = write!(out, "<h2>Plan</h2><pre id=\"plan\">{}</pre>", esc(t));
    }
    plan_inputs(&mut out, extra);
    if let Some(v) = &extra.values_yaml
        && !v.is_empty()
    {
        let _ = write!(
            out,
            "<h3>values.yaml for charts/hubpack</h3><pre id=\"values\">{}</pre>",
            esc(v)
        );
    }
    let _ = write!(
        out,
        "<h2>All policies</h2><p>{seeds} seed(s) per policy; price {price} per node-hour. \
         Waits are arrival → running server; ± is a 95% confidence interval over seeds. \
         Placement HOL: users sent to a cold node while a warm seat they fit (free or held by a \
         placeholder) existed, the scheduler's doing; hub-queue HOL: users held by the hub's \
         spawn limit while warm seats existed. Both are users per run. × bound: node-hours as \
         a multiple of the oracle's, a clairvoyant cluster (every node Ready exactly when its \
         first user needs it, perfect packing, given back once empty), a lower bound of what \
         starting every user warm costs; oracle+ca-unneeded keeps each node the autoscaler's \
         scale-down-unneeded time.</p><table><tr>",
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
    for (r, b) in bound_rows(summary).iter().zip(&summary.bounds) {
        out.push_str("<tr class=\"bound\">");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        let _ = write!(out, "<td>{:.1}</td><td>-</td><td>-</td></tr>", b.cost.mean);
    }
    out.push_str("</table><h2>Charts</h2><div class=\"plots\">");

    // Wait CDF, one chart per scheduler.
    for s in [
        SchedulerKind::Hubpack,
        SchedulerKind::Z2jh,
        SchedulerKind::Spread,
    ] {
        let lines: Vec<Line> = runs
            .iter()
            .filter(|seeds| seeds[0].policy.scheduler == s)
            .enumerate()
            .map(|(i, seeds)| Line {
                name: format!(
                    "{}{}",
                    seeds[0].policy.placeholders.label(),
                    if seeds[0].policy.prepull {
                        ""
                    } else {
                        ", no pre-pull"
                    }
                ),
                color: mode_color(i),
                points: cdf(seeds),
            })
            .collect();
        if !lines.is_empty() {
            out += &line_chart(
                &format!("Wait CDF with {} (all seeds)", s.name()),
                &lines,
                "wait from arrival to a running server (log scale)",
                "users served within",
                true,
                true,
            );
        }
    }
    // Over time: the best policy against z2jh.
    let pick: Vec<(usize, RGBColor)> = [
        (best, RGBColor(31, 119, 180)),
        (base, RGBColor(214, 39, 40)),
    ]
    .into_iter()
    .filter_map(|(i, c)| i.map(|i| (i, c)))
    .fold(Vec::new(), |mut v, (i, c)| {
        if !v.iter().any(|(j, _)| *j == i) {
            v.push((i, c));
        }
        v
    });
    let over_time = |f: &dyn Fn(&crate::outcome::Sample) -> f64| -> Vec<Line> {
        pick.iter()
            .filter_map(|&(i, color)| {
                let r = runs.get(i)?.first()?;
                Some(Line {
                    name: r.policy.label(),
                    color,
                    points: r.samples.iter().map(|x| (x.t_s / 3600.0, f(x))).collect(),
                })
            })
            .collect()
    };
    let mut nodes = over_time(&|x| (x.nodes_ready + x.nodes_booting) as f64);
    if let Some(b) = runs
        .first()
        .and_then(|r| r.first())
        .and_then(|r| crate::oracle::bound(sc, r.seed).ok())
    {
        let end = crate::clock::secs(sc.duration_h * 3600.0);
        // Drawn as steps: a corner at each change.
        let mut points = vec![(0.0, b.nodes.at(0) as f64)];
        for &(t, v) in b.nodes.points.iter().filter(|p| p.0 > 0 && p.0 < end) {
            let h = t as f64 / 3.6e6;
            points.push((h, points[points.len() - 1].1));
            points.push((h, v as f64));
        }
        points.push((end as f64 / 3.6e6, b.nodes.at(end) as f64));
        nodes.push(Line {
            name: crate::oracle::ORACLE.into(),
            color: RGBColor(44, 160, 44),
            points,
        });
    }
    out += &line_chart(
        "Nodes over time (seed 0)",
        &nodes,
        "hours since the start",
        "nodes (booting + Ready)",
        false,
        false,
    );
    out += &line_chart(
        "Users running (seed 0)",
        &over_time(&|x| x.users_running as f64),
        "hours since the start",
        "users with a running server",
        false,
        false,
    );
    let all: Vec<&PolicySummary> = summary.policies.iter().collect();
    out += &scatter_chart(&all);
    out.push_str("</div></body></html>\n");
    out
}
