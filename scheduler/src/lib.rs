//! hubpack-scheduler: the Kubernetes adapter of hubpack-core's warm-first packing policy.
//!
//! It watches pods (ours pending, and every non-terminal one for accounting), nodes and
//! volume objects, keeps a `hubpack_core` snapshot current, asks the core for a decision per
//! queued pod, and carries it out against the API server: bind through `pods/binding`,
//! preempt placeholders through the Eviction API after nominating the user pod, or report
//! the pod Unschedulable (condition + Event) so the cluster autoscaler scales up.
//!
//! Layout: [`convert`] (k8s-openapi → core types), [`config`], [`queue`], [`actions`]
//! (one file per API write), `cluster_state` (reflectors → snapshot), `schedule_one`
//! (decision → actions), [`leader`], [`metrics`], [`http`].

#![forbid(unsafe_code)]

pub mod actions;
pub mod app;
pub mod cluster_state;
pub mod config;
pub mod context;
pub mod convert;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod queue;
pub mod schedule_one;
pub mod scheduler_loop;
pub mod watch;

#[cfg(test)]
mod test_support;
