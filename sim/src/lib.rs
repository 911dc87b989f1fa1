//! # hubpack-sim
//!
//! A discrete-event simulator of a JupyterHub on an autoscaled Kubernetes cluster, to
//! compare scheduling and placeholder policies before touching a cluster. It drives the
//! same `hubpack_core::policy::decide` as the live scheduler and the same headroom sizing as
//! the placeholder controller, next to models of kube-scheduler (`spread`, `z2jh`) and of
//! cluster-autoscaler, node boot, image pulls, the hub's spawner and culler.
//!
//! - [`scenario`]: the YAML input; [`scenario::z2jh_values`]: a z2jh config.yaml applied
//!   to it; [`models`]: the simulated world ([`models::Sim`]: the agenda, the
//!   [`cluster_state`], each model's state) and the handlers of the parts around the
//!   scheduler; [`engine`]: one deterministic run, the event loop that dispatches to them
//!   and the scheduling pass; [`outcome`]: what a run records; [`runner`]: the
//!   policy × seed grid in parallel; [`plan`]: the cheapest placeholder setting meeting a
//!   p95 target, next to z2jh as configured; [`oracle`]: the clairvoyant lower bound of
//!   node-hours every report compares against; [`report`]: summary.json, pods.csv,
//!   timeseries.csv, report.html and the terminal table.
//!
//! ## What the model leaves out (read results with these in mind)
//! - kube-scheduler baselines: ties go to the lowest node index (upstream picks at random);
//!   only resource fit, MostAllocated/LeastAllocated and ImageLocality are scored (one
//!   untainted pool); every node is scored (fine below 100 nodes); a preemptor binds in the
//!   same instant its victims leave, so no pod stays nominated.
//! - cluster-autoscaler: scale-up estimates with first-fit-decreasing; no
//!   max-node-provision-time, unready limits or failed boots.
//! - cluster-autoscaler's scale-down: a node that received planned moves is evaluated with
//!   them; utilization is judged on requests before the moves; a failed removal
//!   simulation (not a utilization miss) starts the unremovable recheck timeout.
//! - Hub: users refused by the spawn limit come back after Retry-After (30–60 s) or give
//!   up with a set probability; timed-out spawns retry up to `max_attempts`; no node or pod
//!   failures.
//! - Placeholders serve the first profile's pool, sized in the pool's mean user. The
//!   predictive controller learns arrivals with hubpack-core's `ArrivalLearner`, as the live
//!   controller does (user pods counted at their creation, after the hub's spawn overhead
//!   and limit; the background outside scheduled events only), with no weekly profile; `lead_min: auto` samples only scale-ups a pending
//!   placeholder triggered, on nodes the pre-puller warms.

#![forbid(unsafe_code)]

pub mod clock;
pub mod cluster_state;
pub mod engine;
pub mod events;
pub mod models;
pub mod oracle;
pub mod outcome;
pub mod plan;
pub mod policy;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod session;
pub mod stats;
#[cfg(test)]
mod test_support;
