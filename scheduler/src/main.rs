//! `hubpack-scheduler`: loads the config, connects, starts watches, leader election, the
//! HTTP endpoints and the scheduling loop; on SIGTERM/SIGINT finishes in-flight binds,
//! releases the lease and exits 0.

use anyhow::Context as _;
use clap::Parser;
use hubpack_scheduler::app;
use hubpack_scheduler::config::Config;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(
    version,
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
    init_tracing(args.log_json);
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

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn client(kubeconfig: Option<PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(&path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

async fn run(config: Config, kubeconfig: Option<PathBuf>) -> anyhow::Result<()> {
    let client = client(kubeconfig)
        .await
        .context("connecting to the API server")?;
    let identity = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("hubpack-scheduler-{}", std::process::id()));
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown signal received");
        on_signal.cancel();
    });
    app::run(client, config, identity, shutdown).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
