//! # hubpack-core
//!
//! The pure model and policy shared by `hubpack-scheduler`, `hubpack-placeholder-ctl` and
//! `hubpack-sim`: no Kubernetes client, no async, no I/O, no clock. Callers pass a snapshot
//! and the time; functions return decisions as values, and the caller carries them out.
//!
//! - [`model`]: resources, pods, nodes, taints, selectors, images.

#![forbid(unsafe_code)]

pub mod headroom;
pub mod model;
