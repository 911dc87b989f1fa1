//! The e2e cluster's image model as a process (see `hubpack_e2e::images`): the harness starts it
//! next to kwok so a detached `cargo xtask cluster up` cluster models image pulls too.

use anyhow::Context;
use clap::Parser;
use hubpack_e2e::images::{self, ImageModelConfig};
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// Admin kubeconfig of the cluster.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Pull time of an image a node lacks, a Go duration (e.g. `20s`, `1m30s`).
    #[arg(long, default_value = "20s")]
    pull_time: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_ansi(false)
        .init();
    let args = Args::parse();
    let pull_time = hubpack_e2e::kwok::parse_go_duration(&args.pull_time).with_context(|| {
        format!(
            "--pull-time {:?} is not a duration like 20s",
            args.pull_time
        )
    })?;
    let client = hubpack_e2e::cluster::client_from_kubeconfig(&args.kubeconfig).await?;
    images::run(
        client,
        ImageModelConfig {
            default_pull_time: pull_time,
        },
    )
    .await?;
    Ok(())
}
