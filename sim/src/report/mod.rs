//! Outputs of a run or a comparison: the per-policy summary (JSON and the terminal table),
//! pods.csv, timeseries.csv and a single self-contained report.html with inline SVG.

pub mod csv;
pub mod html;
pub mod summary;
mod svg;
pub mod table;

use crate::metrics::RunResult;
use crate::scenario::Scenario;
use std::path::Path;

/// Writes every output file into `dir` (created if missing).
pub fn write_all(
    dir: &Path,
    sc: &Scenario,
    runs: &[Vec<RunResult>],
) -> std::io::Result<summary::Summary> {
    std::fs::create_dir_all(dir)?;
    let summary = summary::Summary::of(sc, runs);
    let json = serde_json::to_string_pretty(&summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json)?;
    csv::write_pods(&dir.join("pods.csv"), runs)?;
    csv::write_timeseries(&dir.join("timeseries.csv"), runs)?;
    std::fs::write(dir.join("report.html"), html::render(sc, &summary, runs))?;
    Ok(summary)
}
