//! `hubpack-sim run|compare SCENARIO.yaml [--seeds N] [--out DIR] [--json]`: a thin CLI over
//! the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use hubpack_sim::engine::PolicySpec;
use hubpack_sim::report;
use hubpack_sim::runner::{grid, resolve_n, run_grid};
use hubpack_sim::scenario::{PlaceholderMode, Scenario, SchedulerKind};
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
        placeholders: String,
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

fn parse_mode(s: &str) -> anyhow::Result<PlaceholderMode> {
    let bad = || {
        anyhow::anyhow!(
            "--placeholders {s:?}: use none, per-user:K, n-user:K, n-user:NxK or predictive"
        )
    };
    Ok(match s.split_once(':') {
        None if s == "none" => PlaceholderMode::None,
        None if s == "predictive" => PlaceholderMode::Predictive,
        Some(("per-user", k)) => PlaceholderMode::PerUser {
            k: k.parse().map_err(|_| bad())?,
        },
        Some(("n-user", spec)) => match spec.split_once('x') {
            Some((n, k)) => PlaceholderMode::NUser {
                n: Some(n.parse().map_err(|_| bad())?),
                k: k.parse().map_err(|_| bad())?,
            },
            None => PlaceholderMode::NUser {
                n: None,
                k: spec.parse().map_err(|_| bad())?,
            },
        },
        _ => return Err(bad()),
    })
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
                placeholders: parse_mode(&placeholders)?,
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
    if common.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", report::table::render(&summary));
        let events: u64 = runs.iter().flatten().map(|r| r.events).sum();
        println!(
            "{} runs, {} events in {:.2} s{}",
            runs.iter().map(Vec::len).sum::<usize>(),
            events,
            elapsed.as_secs_f64(),
            common
                .out
                .as_ref()
                .map(|d| format!("; wrote {}", d.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}
