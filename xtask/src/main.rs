//! `cargo xtask …`: the one entry point for people and CI.
//!
//! - `test`: everything CI runs (the version check, format, lint, unit + property tests, the
//!   workflow and Dockerfile linters, control-plane build, end-to-end tests).
//! - `lint`: the version check and the workflow and Dockerfile linters alone.
//! - `bench core|sim|scheduler`: benchmarks; each prints a JSON summary as its last line.
//! - `cluster build|up|down`: the local real control plane.

mod bench;
mod cluster;
mod lint;
mod run;
mod test;
mod versions;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "hubpack project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything CI runs.
    Test(test::TestArgs),
    /// Check that the crates', chart's and CHANGELOG's versions agree; lint the GitHub
    /// workflows (actionlint) and the Dockerfile (hadolint and the pinning rules).
    Lint,
    /// Run a benchmark; the last line printed is a JSON summary.
    Bench(bench::BenchArgs),
    /// Build, start or stop the local control plane.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Test(args) => test::run(args),
        Command::Lint => {
            test::check_versions()?;
            lint::run()
        }
        Command::Bench(args) => bench::run(args),
        Command::Cluster(cmd) => cluster::run(cmd),
    }
}
