//! `hubpack-sim run|compare SCENARIO.yaml [--seeds N] [--out DIR] [--json]`: a thin CLI over
//! the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use hubpack_sim::engine::PolicySpec;
use hubpack_sim::report;
use hubpack_sim::runner::{grid, resolve_n, run_grid};
use hubpack_sim::scenario::{PlaceholderMode, Scenario, SchedulerKind};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "hubpack-sim",
    about = "Simulate a JupyterHub + cluster autoscaler and compare scheduling/placeholder policies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Common {
    /// The scenario file (see sim/scenarios/).
    scenario: PathBuf,
    /// Seeds per policy (default: the scenario's `seeds`).
    #[arg(long)]
    seeds: Option<u64>,
    /// Write summary.json, pods.csv, timeseries.csv and report.html here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the machine-readable summary (JSON) instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// One policy × seeds.
    Run {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_enum, default_value = "hubpack")]
        scheduler: SchedulerArg,
        /// none | per-user:K | n-user:K | n-user:NxK | predictive
        #[arg(long, default_value = "predictive")]
        placeholders: PlaceholderMode,
        #[arg(long)]
        no_prepull: bool,
    },
    /// The scenario's policy grid (schedulers × placeholder modes) × seeds.
    Compare {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchedulerArg {
    Spread,
    Z2jh,
    Hubpack,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let (common, policies) = match cli.command {
        Command::Run {
            common,
            scheduler,
            placeholders,
            no_prepull,
        } => {
            let scheduler = match scheduler {
                SchedulerArg::Spread => SchedulerKind::Spread,
                SchedulerArg::Z2jh => SchedulerKind::Z2jh,
                SchedulerArg::Hubpack => SchedulerKind::Hubpack,
            };
            let policy = PolicySpec {
                scheduler,
                placeholders,
                prepull: !no_prepull,
            };
            (common, Some(vec![policy]))
        }
        Command::Compare { common } => (common, None),
    };
    let sc = Scenario::load(&common.scenario)?;
    let policies = match policies {
        Some(p) => p
            .into_iter()
            .map(|p| PolicySpec {
                placeholders: resolve_n(&sc, &p.placeholders),
                ..p
            })
            .collect(),
        None => grid(&sc),
    };
    let seeds = common.seeds.unwrap_or(sc.seeds).max(1);
    let started = Instant::now();
    let runs = run_grid(
        &sc,
        &policies,
        seeds,
        !common.json && policies.len() as u64 * seeds > 20,
    )?;
    let elapsed = started.elapsed();
    let summary = match &common.out {
        Some(dir) => report::write_all(dir, &sc, &runs)
            .with_context(|| format!("writing {}", dir.display()))?,
        None => report::summary::Summary::of(&sc, &runs),
    };
    let text = if common.json {
        format!("{}\n", serde_json::to_string(&summary)?)
    } else {
        let events: u64 = runs.iter().flatten().map(|r| r.events).sum();
        format!(
            "{}{} runs, {} events in {:.2} s{}\n",
            report::table::render(&summary),
            runs.iter().map(Vec::len).sum::<usize>(),
            events,
            elapsed.as_secs_f64(),
            common
                .out
                .as_ref()
                .map(|d| format!("; wrote {}", d.display()))
                .unwrap_or_default()
        )
    };
    emit(&text)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
