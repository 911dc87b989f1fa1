//! `hubpack-placeholder-ctl [run] --config FILE` runs the controller;
//! `hubpack-placeholder-ctl plan --config FILE [--hours 24] [--from 2026-12-14T08:00
//! --time-zone Europe/Berlin]` prints the forecast and the placeholder target per pool for
//! the coming hours (or those from `--from`) and writes nothing.

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use hubpack_kube::process;
use hubpack_placeholder_ctl::adapter::app;
use hubpack_placeholder_ctl::checkpoint;
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
        /// Start at this moment instead of now: a local time such as 2026-12-14T08:00 (in
        /// --time-zone), or an RFC 3339 time with its offset.
        #[arg(long)]
        from: Option<String>,
        /// The IANA time zone of --from and of the table's times.
        #[arg(long, default_value = "UTC")]
        time_zone: String,
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
            from,
            time_zone,
        } => runtime.block_on(plan(
            config,
            cli.common.kubeconfig,
            PlanArgs {
                hours,
                step_minutes,
                from,
                time_zone,
            },
        )),
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

struct PlanArgs {
    hours: f64,
    step_minutes: f64,
    from: Option<String>,
    time_zone: String,
}

async fn plan(config: Config, kubeconfig: Option<PathBuf>, args: PlanArgs) -> anyhow::Result<()> {
    let PlanArgs {
        hours,
        step_minutes,
        from,
        time_zone,
    } = args;
    if !(hours > 0.0 && hours.is_finite() && step_minutes > 0.0 && step_minutes.is_finite()) {
        anyhow::bail!("--hours and --step-minutes must be positive numbers");
    }
    let tz = forecast_cli::zone(&time_zone).map_err(anyhow::Error::msg)?;
    let now = forecast_cli::plan_start(
        from.as_deref(),
        &time_zone,
        jiff::Timestamp::now().as_millisecond(),
    )
    .map_err(anyhow::Error::msg)?;
    // Event ConfigMaps only when a cluster was named: plan must work offline.
    let client = match kubeconfig {
        Some(_) => Some(
            process::client(kubeconfig.as_deref())
                .await
                .context("connecting to the API server")?,
        ),
        None => None,
    };
    let horizon = (hours * 3_600_000.0) as i64 + secs(config.lead_time.max_seconds);
    let learned = match &client {
        Some(c) if config.checkpoint.enabled => learned(c, &config).await,
        _ => forecast_cli::Learned::default(),
    };
    let (events, problems) =
        forecast_cli::gather(&config, client, now - 3_600_000, now + horizon).await;
    for p in &problems {
        eprintln!("warning: {p}");
    }
    print!(
        "{}",
        forecast_cli::table_in(
            &config,
            &events,
            now,
            hours,
            (step_minutes * 60_000.0) as i64,
            &tz,
            &learned
        )
    );
    Ok(())
}

/// The controller's learned lead and background from its checkpoint; none (with a warning)
/// when it cannot be read.
async fn learned(client: &kube::Client, config: &Config) -> forecast_cli::Learned {
    let name = &config.checkpoint.config_map_name;
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), &config.namespace());
    let text = match api.get_opt(name).await {
        Ok(Some(cm)) => cm
            .data
            .and_then(|mut d| d.remove(checkpoint::DATA_KEY))
            .unwrap_or_default(),
        Ok(None) => {
            eprintln!(
                "note: no checkpoint {name} yet: configured lead time and initial background"
            );
            return forecast_cli::Learned::default();
        }
        Err(e) => {
            eprintln!("warning: cannot read the checkpoint {name}: {e}");
            return forecast_cli::Learned::default();
        }
    };
    match checkpoint::decode(&text) {
        Ok(saved) => {
            eprintln!(
                "learned lead time and background from the checkpoint {name} (written by {} at {})",
                saved.writer,
                jiff::Timestamp::from_millisecond(saved.written_at)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            );
            forecast_cli::Learned::from_checkpoint(config, &saved)
        }
        Err(e) => {
            eprintln!("warning: {e}");
            forecast_cli::Learned::default()
        }
    }
}
