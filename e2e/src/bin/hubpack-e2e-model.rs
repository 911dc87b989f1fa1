//! The e2e cluster's model of what kwok lacks, as processes the harness starts (so a detached
//! `cargo xtask cluster up` cluster has them too): `images`, image pulls and node image caches
//! (`hubpack_e2e::images`); `provisioner`, a dynamic provisioner with a default
//! WaitForFirstConsumer StorageClass (`hubpack_e2e::provisioner`). Autoscaling is the real
//! cluster-autoscaler, not a model.

use anyhow::Context;
use clap::{Parser, Subcommand};
use hubpack_e2e::images::{self, ImageModelConfig};
use hubpack_e2e::kwok::parse_go_duration;
use hubpack_e2e::provisioner;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
struct Args {
    /// Admin kubeconfig of the cluster.
    #[arg(long)]
    kubeconfig: PathBuf,
    #[command(subcommand)]
    model: Model,
}

#[derive(Subcommand)]
enum Model {
    /// Hold bound pods until their images are pulled; list pulled images on nodes.
    Images {
        /// Pull time of an image a node lacks, a Go duration (e.g. `20s`, `1m30s`).
        #[arg(long, default_value = "20s")]
        pull_time: String,
    },
    /// Provision PersistentVolumes for claims of `--class` (created as the default
    /// StorageClass, WaitForFirstConsumer) on the node a scheduler selected.
    Provisioner {
        #[arg(long, default_value = provisioner::DEFAULT_CLASS)]
        class: String,
        /// The class's `provisioner` name, which this process serves.
        #[arg(long, default_value = provisioner::DEFAULT_PROVISIONER)]
        name: String,
    },
    /// Register each node Karpenter launches `Ready=False`, as a kubelet does.
    KarpenterNodes,
}

fn duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    parse_go_duration(text).with_context(|| format!("--{flag} {text:?} is not a duration like 20s"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_ansi(false)
        .init();
    let args = Args::parse();
    let client = hubpack_e2e::cluster::client_from_kubeconfig(&args.kubeconfig).await?;
    match args.model {
        Model::Images { pull_time } => {
            let config = ImageModelConfig {
                default_pull_time: duration("pull-time", &pull_time)?,
            };
            images::run(client, config).await?;
        }
        Model::Provisioner { class, name } => {
            provisioner::create_default_class(&client, &class, &name)
                .await
                .with_context(|| format!("creating the default StorageClass {class}"))?;
            tracing::info!(%class, provisioner = %name, "serving claims");
            provisioner::run(client, &name).await;
        }
        Model::KarpenterNodes => hubpack_e2e::karpenter::run_node_registration(client).await?,
    }
    Ok(())
}
