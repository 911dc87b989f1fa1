//! `cargo xtask bench core|sim|scheduler|side-by-side`: each benchmark prints a JSON summary as its last line.

use crate::run::{cargo, step};
use clap::{Args, ValueEnum};

#[derive(Args)]
pub struct BenchArgs {
    pub which: Which,
    /// side-by-side: scenario files (repeatable; default sim/scenarios/side-by-side/*).
    #[arg(long)]
    pub scenario: Vec<std::path::PathBuf>,
    /// side-by-side: real runs per stack and scenario.
    #[arg(long)]
    pub runs: Option<u32>,
    /// side-by-side: the time compression factor (default 10).
    #[arg(long)]
    pub compression: Option<f64>,
    /// side-by-side: no cluster; the real runs of an earlier report's summary.json (or its
    /// real-runs.jsonl), simulated again.
    #[arg(long)]
    pub real_from: Option<std::path::PathBuf>,
    /// side-by-side: the autoscaler, cluster-autoscaler (default) or karpenter.
    #[arg(long)]
    pub autoscaler: Option<String>,
    /// side-by-side: comma-separated stacks (z2jh, z2jh_nuser, hubpack, hubpack_predictive,
    /// hubpack_predictive_buffer; default the first four).
    #[arg(long)]
    pub stacks: Option<String>,
    /// side-by-side: the report directory (default out/side-by-side/).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Which {
    /// The core's decision latency on a 5,000-node synthetic cluster.
    Core,
    /// The simulator's speed on a week of a 3,000-user hub, the shipped compare grid, and
    /// `plan` on the class burst with 20 seeds.
    Sim,
    /// hubpack-scheduler vs kube-scheduler (z2jh's profile) on the local control plane:
    /// 500 kwok nodes, 5,000 pods at once, a 300-user class burst onto placeholders (bind and
    /// Ready), hubpack's burst behind 10,000 pending unschedulable pods vs idle, and a class
    /// overflowing a full pool while new nodes turn Ready one by one (order inversions).
    Scheduler,
    /// hubpack vs the z2jh stack on fresh local clusters with the real cluster-autoscaler
    /// (or Karpenter), and hubpack-sim against those runs (report in out/side-by-side/).
    SideBySide,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.which {
        Which::SideBySide => {
            // The experiment and the image model its clusters run, both optimized.
            step(
                "build hubpack-e2e-model (release)",
                cargo().args([
                    "build",
                    "--release",
                    "-p",
                    "hubpack-e2e",
                    "--bin",
                    "hubpack-e2e-model",
                ]),
            )?;
            let mut cmd = cargo();
            cmd.args(["run", "--release", "-p", "hubpack-side-by-side", "--"])
                .env(
                    "HUBPACK_E2E_MODEL_BIN",
                    target_dir().join("release").join("hubpack-e2e-model"),
                );
            for file in &args.scenario {
                // cargo runs from the workspace root: make paths absolute.
                let file = std::path::absolute(file)?;
                cmd.arg("--scenario").arg(file);
            }
            if let Some(n) = args.runs {
                cmd.arg(format!("--runs={n}"));
            }
            if let Some(f) = args.compression {
                cmd.arg(format!("--compression={f}"));
            }
            if let Some(file) = &args.real_from {
                cmd.arg("--real-from").arg(std::path::absolute(file)?);
            }
            if let Some(kind) = &args.autoscaler {
                cmd.arg(format!("--autoscaler={kind}"));
            }
            if let Some(stacks) = &args.stacks {
                cmd.arg(format!("--stacks={stacks}"));
            }
            if let Some(dir) = &args.out {
                cmd.arg("--out").arg(std::path::absolute(dir)?);
            }
            step("bench side-by-side", &mut cmd)
        }
        Which::Core => step(
            "bench core",
            cargo().args(["bench", "-p", "hubpack-core", "--bench", "decide"]),
        ),
        Which::Sim => step(
            "bench sim",
            cargo().args(["bench", "-p", "hubpack-sim", "--bench", "sim"]),
        ),
        Which::Scheduler => {
            // The bench runs the scheduler as its own process (as in a cluster, and so its RSS
            // is its own): build that binary optimized first and tell the bench where it is.
            step(
                "build hubpack-scheduler (release)",
                cargo().args(["build", "--release", "-p", "hubpack-scheduler"]),
            )?;
            step(
                "bench scheduler",
                cargo()
                    .args(["bench", "-p", "hubpack-e2e", "--bench", "scheduler"])
                    .env(
                        "HUBPACK_SCHEDULER_BIN",
                        target_dir().join("release").join("hubpack-scheduler"),
                    ),
            )
        }
    }
}

/// Where cargo puts what it builds.
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::run::root().join("target"))
}
