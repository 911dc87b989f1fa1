//! `cargo xtask test`: the version check, format, lint and doc-link checks, unit and property
//! tests, the workflow and Dockerfile linters, then the control plane build and the end-to-end
//! tests against it.

use crate::run::{cargo, step};
use clap::Args;

#[derive(Args)]
pub struct TestArgs {
    /// Skip the control-plane build and the end-to-end tests.
    #[arg(long)]
    pub no_e2e: bool,
}

pub fn run(args: TestArgs) -> anyhow::Result<()> {
    check_versions()?;
    step(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    step(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "cargo doc (broken doc links are errors)",
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    // The simulator's report is checked in a real browser (sim/tests/report_browser.rs).
    crate::cluster::ensure_debian_packages(&[("chromium", "chromium")])?;
    step(
        "unit and property tests",
        cargo().args(["test", "--workspace", "--exclude", "hubpack-e2e"]),
    )?;
    crate::lint::run()?;
    if args.no_e2e {
        return Ok(());
    }
    crate::cluster::build_for_ci()?;
    step(
        "end-to-end tests",
        cargo().args(["test", "-p", "hubpack-e2e", "--", "--test-threads=1"]),
    )?;
    Ok(())
}

/// The crates', the chart's and the CHANGELOG's versions agree (a fast first step).
pub fn check_versions() -> anyhow::Result<()> {
    eprintln!("==> versions agree (Cargo.toml, Chart.yaml, CHANGELOG.md)");
    let versions = crate::versions::Versions::read()?;
    let version = versions.agree()?;
    eprintln!("    {version}");
    Ok(())
}
