//! `hubpack-scheduler`: loads the config, connects, starts watches, leader election, the
//! HTTP endpoints and the scheduling loop; on SIGTERM/SIGINT finishes in-flight binds,
//! releases the lease and exits 0.

use anyhow::Context as _;
use clap::Parser;
use hubpack_kube::process;
use hubpack_scheduler::app;
use hubpack_scheduler::config::Config;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("HUBPACK_BUILD_COMMIT"), ")"),
    about = "JupyterHub-aware warm-first packing scheduler for Kubernetes"
)]
struct Args {
    /// Config file (YAML). Without it, every setting takes its default.
    #[arg(long, env = "HUBPACK_SCHEDULER_CONFIG")]
    config: Option<PathBuf>,
    /// Kubeconfig file; in-cluster configuration (or $KUBECONFIG) when omitted.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    process::init_tracing("hubpack-scheduler", args.log_json, std::io::stdout);
    // Config errors are the operator's to fix: say what and how, exit 2, no backtrace.
    let config = match args.config.as_deref() {
        Some(path) => Config::load(path),
        None => Config::parse("", "<defaults>"),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hubpack-scheduler: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hubpack-scheduler: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, args.kubeconfig)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "exiting");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, kubeconfig: Option<PathBuf>) -> anyhow::Result<()> {
    let started = process::start(kubeconfig.as_deref(), "hubpack-scheduler")
        .await
        .context("connecting to the API server")?;
    app::run(started.client, config, started.identity, started.shutdown).await?;
    Ok(())
}
