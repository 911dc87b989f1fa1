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
//! them to a [`snapshot::Snapshot`] as they change (`upsert_*`, `remove_*`). For each
//! pending pod (upserted first) they call [`policy::decide`], which only reads the
//! snapshot, carry out the returned [`policy::Decision`] and record it back:
//!
//! - `Bind`: bind, and `assume` the pod on the node at once (`forget` if the bind fails;
//!   the watch update carrying `nodeName` confirms it);
//! - `Preempt`: evict the victims and `nominate` the pod to the node; remove each victim
//!   once its deletion is observed, then decide again, which binds it there;
//! - `Unschedulable`: report [`policy::Diagnosis::message`] on the pod;
//! - `Skip`: nothing to do.
//!
//! [`policy::decide_full_scan`] gives the identical decision by brute force: it is the
//! oracle of the property tests and the baseline of `cargo xtask bench core`.

#![forbid(unsafe_code)]

pub mod filter;
pub mod headroom;
pub mod model;
pub mod policy;
pub mod snapshot;
