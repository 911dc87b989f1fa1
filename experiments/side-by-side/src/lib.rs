//! The side-by-side experiment: hubpack against the z2jh stack on fresh local clusters (the
//! real control plane, the real cluster-autoscaler or, with `--autoscaler karpenter`, the real
//! Karpenter), and hubpack-sim against those real runs.
//! The binary (`src/main.rs`, run by `cargo xtask bench side-by-side`) drives it; this library
//! holds its parts.
//!
//! Stacks ([`plan::Stack`]): z2jh as shipped (the stock kube-scheduler as a second scheduler
//! with z2jh's user-scheduler profile, per-user placeholders at −10, the continuous
//! pre-puller at −5); z2jh as 2i2c tunes it (one node-sized placeholder); hubpack-scheduler
//! with static N-user placeholders of z2jh's seat budget; hubpack-scheduler with
//! hubpack-placeholder-ctl sizing from the scenario's events; and, opt-in, the same controller
//! writing a CapacityBuffer instead of placeholder pods (cluster-autoscaler only). Scenarios
//! are hubpack-sim files at real scale (`sim/scenarios/side-by-side/`); one compression
//! factor divides every duration in them (boot, pull, sessions, culler, spawn limits'
//! retries, CA's scan interval, unneeded time and delays, Karpenter's consolidateAfter and
//! batch windows) for the real runs, whose times and node-hours are multiplied back:
//! every number reported is at the scenario's real scale.
//!
//! The simulator's free parameters ([`simulate::SimParams`]: a warm start, measured, and CA's
//! loop time, fitted by a grid search; `--real-from` fits the loop again, for a changed
//! model) come from the calibration scenario (`sbs-class-burst`, or the first given) only,
//! then the same values are used on the others (validation). The JSON summary (medians over
//! runs, on the calibration scenario; the sim errors are the largest over validation scenarios
//! and stacks) is the last line of stdout; the report directory (default `out/side-by-side/`)
//! has every run and the plots, and per scenario `<scenario>-frontier.{html,csv}`: what every
//! static seat budget costs there in the simulator ([`frontier`]).
//!
//! The parts:
//! - [`plan`]: a scenario compressed for the real runs, and the stacks;
//! - [`users`]: the scenario's sessions as users created and deleted on the real cluster;
//! - [`stacks`]: each stack's scheduler, placeholders and pre-puller on the real cluster;
//! - [`observe`]: what the real cluster shows (users' timings, nodes' lives);
//! - [`real`]: one real run, from a fresh cluster to its numbers;
//! - [`simulate`]: the same scenario and stack in hubpack-sim, and the fit of its parameters;
//! - [`frontier`]: what every static seat budget costs in the simulator;
//! - [`metrics`]: the arithmetic (node-hours, peaks, warm seats, relative errors), pure;
//! - [`run_numbers`]: one run's numbers, real or simulated;
//! - [`report`]: the report directory (runs, plots, the summary).

#![allow(clippy::unwrap_used)] // an experiment may unwrap

pub mod frontier;
pub mod metrics;
pub mod observe;
pub mod plan;
pub mod real;
pub mod report;
pub mod run_numbers;
pub mod simulate;
pub mod stacks;
pub mod users;
