//! hubpack-kube: the Kubernetes edge that hubpack's binaries (hubpack-scheduler and
//! hubpack-placeholder-ctl) share, so neither depends on the other. Everything here is
//! plumbing between the API server and a binary's own logic; no policy lives here (that is
//! hubpack-core's).
//!
//! Modules:
//! - [`process`]: what a binary does before any work starts: logging, loading its YAML config,
//!   connecting to the API server, its replica identity, SIGTERM → cancellation;
//! - [`http`]: `/metrics`, `/healthz`, `/readyz`;
//! - [`supervise`]: every long-running task under one [`supervise::Supervisor`], so one that
//!   ends stops the replica;
//! - [`leader`]: Lease-based election with our own deadline, its one config
//!   ([`leader::LeaderElectionConfig`]) and that config's validation;
//! - [`reflect`]: one reflector loop (watch + cache with backoff, readiness, wake-ups) and
//!   the relist bookkeeping that yields deletions missed during a watch gap;
//! - [`convert`]: k8s-openapi objects → hubpack-core values (pods, nodes, quantities,
//!   selectors, conditions, volumes), typed errors naming the field;
//! - [`error`]: the crate's [`Error`];
//! - `test_support` (feature `test-support`): a tower-test mock API server for unit tests.

#![forbid(unsafe_code)]

pub mod convert;
pub mod error;
pub mod events;
pub mod http;
pub mod leader;
pub mod process;
pub mod reflect;
pub mod supervise;

pub use error::{Error, Result};

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
