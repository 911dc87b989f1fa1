//! `hubpack-scheduler`: loads the config, connects, starts watches, leader election, the
//! HTTP endpoints and the scheduling loop; on SIGTERM/SIGINT finishes in-flight binds,
//! releases the lease and exits 0.

use anyhow::Context as _;
use clap::Parser;
use hubpack_scheduler::config::Config;
use hubpack_scheduler::context::Context;
use hubpack_scheduler::http::{HttpState, serve};
use hubpack_scheduler::leader::{self, LeaderGate};
use hubpack_scheduler::metrics::Metrics;
use hubpack_scheduler::{scheduler_loop, watch};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
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

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::new(&mut registry);
    let gate = if config.leader_election.enabled {
        LeaderGate::new()
    } else {
        LeaderGate::always()
    };
    let (stores, writers) = watch::stores();
    let ctx = Arc::new(Context::new(
        client.clone(),
        config.clone(),
        stores,
        gate,
        metrics,
        Some(identity.clone()),
    ));
    let synced = Arc::new(AtomicUsize::new(0));
    let watchers = watch::spawn_all(&ctx, writers, synced.clone());

    let http = tokio::spawn(serve(
        config.metrics_address,
        HttpState {
            registry: Arc::new(registry),
            synced,
            kinds: watch::WATCHED_KINDS,
        },
        shutdown.clone(),
    ));
    let election = if config.leader_election.enabled {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let namespace = config.lease_namespace();
        let identity = identity.clone();
        Some(tokio::spawn(async move {
            let res = leader::run(
                client,
                &ctx.config.leader_election,
                &namespace,
                &identity,
                &ctx.leader,
                shutdown.clone(),
            )
            .await;
            if let Err(e) = &res {
                // Without an election we can never act again: stop, and let the restart
                // begin anew.
                tracing::error!(error = %e, "leader election failed");
                shutdown.cancel();
            }
            res
        }))
    } else {
        None
    };
    let sched = tokio::spawn(scheduler_loop::run(ctx.clone(), shutdown.clone()));

    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutdown signal received"),
        _ = shutdown.cancelled() => {}
    }
    shutdown.cancel();
    // First stop binding and let in-flight binds finish, then give the lease back.
    sched.await.context("scheduling loop")?;
    let mut failed = false;
    if let Some(e) = election {
        failed |= !matches!(e.await, Ok(Ok(())));
    }
    for w in watchers {
        w.abort();
    }
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "metrics server failed");
            failed = true;
        }
        Err(e) => tracing::warn!(error = %e, "metrics server task"),
    }
    if failed {
        anyhow::bail!("leader election or metrics server failed");
    }
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
