//! # hubpack-core
//!
//! The pure model and policy shared by `hubpack-scheduler`, `hubpack-placeholder-ctl` and
//! `hubpack-sim`: no Kubernetes client, no async, no I/O, no clock. Callers pass a snapshot
//! and the time; functions return decisions as values, and the caller carries them out.
//!
//! - [`model`]: resources, pods, nodes, taints, selectors, images.
//! - [`filter`]: Kubernetes filter semantics (resources, taints, affinity, ports, volumes)
//!   with kube-scheduler's reason strings.
//! - [`snapshot`]: the cluster as the scheduler sees it, updated incrementally, with an
//!   index of nodes for the fast best-node query.
//! - [`policy`]: warm-first packing: `decide` (indexed) and `decide_full_scan` (oracle).
//! - [`headroom`]: placeholder headroom sizing.
//!
//! Data flow: adapters (or the simulator) convert objects into [`model`] values and feed
//! them to a [`snapshot::Snapshot`]; for each pending pod they call [`policy::decide`],
//! carry out the returned [`policy::Decision`] (bind, evict + nominate, report
//! Unschedulable) and record it back in the snapshot (`assume`, `nominate`, `remove_pod`).

#![forbid(unsafe_code)]

pub mod filter;
pub mod headroom;
pub mod model;
pub mod policy;
pub mod snapshot;
