//! `hubpack-placeholder-ctl [run] --config FILE` runs the controller;
//! `hubpack-placeholder-ctl plan --config FILE [--hours 24]` prints the forecast and the
//! placeholder target per pool for the coming hours and writes nothing.

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use hubpack_kube::process;
use hubpack_placeholder_ctl::adapter::app;
use hubpack_placeholder_ctl::config::Config;
use hubpack_placeholder_ctl::forecast_cli;
use hubpack_placeholder_ctl::sources::secs;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("HUBPACK_BUILD_COMMIT"), ")"),
    about = "Keeps N-user placeholders and image pre-pullers sized ahead of predicted arrivals"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Config file (YAML).
    #[arg(long, env = "HUBPACK_PLACEHOLDER_CTL_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Kubeconfig file; in-cluster configuration (or $KUBECONFIG) when omitted.
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller (the default).
    Run,
    /// Print the forecast and placeholder target per pool for the coming hours; writes
    /// nothing. Reads event ConfigMaps too when a cluster is reachable via --kubeconfig.
    Plan {
        #[arg(long, default_value_t = 24.0)]
        hours: f64,
        /// Minutes between rows.
        #[arg(long, default_value_t = 15.0)]
        step_minutes: f64,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    process::init_tracing(
        "hubpack-placeholder-ctl",
        cli.common.log_json,
        std::io::stderr,
    );
    let Some(path) = cli.common.config.as_deref() else {
        eprintln!("hubpack-placeholder-ctl: --config FILE is required (see config.example.yaml)");
        return std::process::ExitCode::from(2);
    };
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hubpack-placeholder-ctl: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hubpack-placeholder-ctl: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => runtime.block_on(run(config, cli.common.kubeconfig)),
        Command::Plan {
            hours,
            step_minutes,
        } => runtime.block_on(plan(config, cli.common.kubeconfig, hours, step_minutes)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubpack-placeholder-ctl: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, kubeconfig: Option<PathBuf>) -> anyhow::Result<()> {
    let started = process::start(kubeconfig.as_deref(), "hubpack-placeholder-ctl")
        .await
        .context("connecting to the API server")?;
    app::run(started.client, config, started.identity, started.shutdown).await?;
    Ok(())
}

async fn plan(
    config: Config,
    kubeconfig: Option<PathBuf>,
    hours: f64,
    step_minutes: f64,
) -> anyhow::Result<()> {
    if !(hours > 0.0 && hours.is_finite() && step_minutes > 0.0 && step_minutes.is_finite()) {
        anyhow::bail!("--hours and --step-minutes must be positive numbers");
    }
    // Event ConfigMaps only when a cluster was named: plan must work offline.
    let client = match kubeconfig {
        Some(_) => Some(
            process::client(kubeconfig.as_deref())
                .await
                .context("connecting to the API server")?,
        ),
        None => None,
    };
    let now = jiff::Timestamp::now().as_millisecond();
    let horizon = (hours * 3_600_000.0) as i64 + secs(config.lead_time.max_seconds);
    let (events, problems) =
        forecast_cli::gather(&config, client, now - 3_600_000, now + horizon).await;
    for p in &problems {
        eprintln!("warning: {p}");
    }
    print!(
        "{}",
        forecast_cli::table(
            &config,
            &events,
            now,
            hours,
            (step_minutes * 60_000.0) as i64
        )
    );
    Ok(())
}
