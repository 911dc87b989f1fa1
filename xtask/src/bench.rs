//! `cargo xtask bench core|sim|scheduler`: each benchmark prints a JSON summary as its last line.

use crate::run::{cargo, step};
use clap::{Args, ValueEnum};

#[derive(Args)]
pub struct BenchArgs {
    pub which: Which,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Which {
    /// The core's decision latency on a 5,000-node synthetic cluster.
    Core,
    /// The simulator's speed on a week of a 3,000-user hub and the shipped compare grid.
    Sim,
    /// hubpack-scheduler vs kube-scheduler on the local control plane.
    Scheduler,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.which {
        Which::Core => step(
            "bench core",
            cargo().args(["bench", "-p", "hubpack-core", "--bench", "decide"]),
        ),
        Which::Sim => step(
            "bench sim",
            cargo().args(["bench", "-p", "hubpack-sim", "--bench", "sim"]),
        ),
        Which::Scheduler => step(
            "bench scheduler",
            cargo().args(["bench", "-p", "hubpack-e2e", "--bench", "scheduler"]),
        ),
    }
}
