//! # hubpack-sim
//!
//! A discrete-event simulator of a JupyterHub on an autoscaled Kubernetes cluster, to
//! compare scheduling and placeholder policies before touching a cluster. It drives the
//! same `hubpack_core::policy::decide` as the live scheduler and the same headroom sizing as
//! the placeholder controller, next to models of kube-scheduler (`spread`, `z2jh`) and of
//! cluster-autoscaler, node boot, image pulls, the hub's spawner and culler.
//!
//! - [`scenario`]: the YAML input; [`engine`]: one deterministic run; [`runner`]: the
//!   policy × seed grid in parallel; [`report`]: summary.json, pods.csv, timeseries.csv,
//!   report.html and the terminal table.

#![forbid(unsafe_code)]

pub mod clock;
pub mod cluster;
pub mod engine;
pub mod events;
pub mod metrics;
pub mod models;
pub mod policy;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod stats;
