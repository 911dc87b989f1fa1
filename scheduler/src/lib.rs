//! hubpack-scheduler: the Kubernetes adapter of hubpack-core's warm-first packing policy.
//!
//! It watches every pod (ours to place, the others for node accounting), nodes and
//! volume objects, keeps a `hubpack_core` snapshot current, asks the core for a decision per
//! queued pod, and carries it out against the API server: bind through `pods/binding`,
//! preempt placeholders through the Eviction API after nominating the user pod, or report
//! the pod Unschedulable (condition + Event) so the cluster autoscaler scales up.
//!
//! The Kubernetes plumbing it shares with hubpack-placeholder-ctl (process edge, HTTP
//! endpoints, supervision, leader election, the reflector loop, k8s → core conversion) is
//! [`hubpack_kube`]'s.
//!
//! Layout, in the order data flows:
//! - [`config`]: the YAML config file and its validation;
//! - [`stores`]: the reflector caches; [`watch`]: reflectors for pods, nodes, CSINodes, PVCs,
//!   PVs and StorageClasses, feeding
//! - [`cluster_state`]: the core snapshot plus in-flight work ([`in_flight`]: one state type
//!   and its transitions), via [`hubpack_kube::convert`]
//!   (k8s-openapi → core types, typed errors naming the field);
//! - [`queue`]: priority then age, backoff 1 s → 10 s, Unschedulable pods parked until the
//!   cluster changes;
//! - [`scheduler_loop`] → [`schedule_one`]: one decision at a time, carried out by
//! - [`actions`]: bind, evict, nominate, the Unschedulable condition, events, volume pre-binding;
//!   [`status_worker`] sends the writes that can wait ([`actions::status_lane`]);
//! - [`metrics`]; leader election and `/metrics` `/healthz` `/readyz` come from
//!   [`hubpack_kube::leader`] and [`hubpack_kube::http`];
//! - [`app`]: all of it as one function under a [`hubpack_kube::supervise::Supervisor`] (the
//!   binary adds signals; e2e tests run it in-process);
//!   [`context`] is what the parts share.

#![forbid(unsafe_code)]

pub mod actions;
pub mod app;
pub mod cluster_state;
pub mod config;
pub mod context;
pub mod error;
pub mod in_flight;
pub mod metrics;
pub mod pod_fields;
pub mod queue;
pub mod requeue;
pub mod schedule_one;
pub mod scheduler_loop;
pub mod status_worker;
pub mod stores;
pub mod watch;
