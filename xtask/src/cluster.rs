//! `cargo xtask cluster build|up|down`: the local real control plane (being built).

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Build and cache the control-plane binaries.
    Build,
}

pub fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Build => build_for_ci(),
    }
}

/// Builds what the CI end-to-end suite needs.
pub fn build_for_ci() -> anyhow::Result<()> {
    crate::run::step(
        "cluster build",
        std::process::Command::new("bash")
            .arg(crate::run::root().join("tests/controlplane/build.sh"))
            .args(["etcd", "kwok", "k8s", "ca"]),
    )
}
